"""Crash-safe store of scored candidates (SQLite), so a search can resume.

A search scores candidates chunk by chunk and commits each chunk as one
SQLite transaction: after a crash (even ``kill -9``) a chunk is either fully
on disk or absent and gets rescored, never half written. A rerun loads the
rows already stored instead of rescoring them. That is exact, not
approximate: candidate pools are deterministic in the seed and a score
depends only on (key, candidate id, architecture) (see
:func:`snnax_nas.score.score_candidates`), so a resumed search makes the same
decisions as an uninterrupted one.

Rows are keyed by ``(step, candidate_id)``: ``step`` is the search step
(SpikeNAS cell step, LightSNN pruning round, 0 for random search) and
``candidate_id`` the candidate's id within the search. Each row also keeps
the architecture string, so a row can never be silently reused for a
different architecture (:meth:`ScoreStore.lookup` checks it).

The store keeps a *fingerprint* of everything that determines the results
(method, network config, images, key, search arguments). It is written when
the store is first bound and checked on every later bind: resuming with a
different configuration raises :class:`FingerprintMismatch` naming the
store's directory instead of mixing two searches.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sqlite3
from typing import Iterable
from typing import Optional
from typing import Sequence

STORE_NAME = "results.sqlite"  # the file name of earlier runs, so their workdirs resume

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS scores (
  step INTEGER NOT NULL,
  candidate_id INTEGER NOT NULL,
  genotype TEXT NOT NULL,
  score REAL,
  singular INTEGER NOT NULL,
  params INTEGER NOT NULL,
  weight_bytes INTEGER NOT NULL,
  PRIMARY KEY (step, candidate_id)
);
"""


class FingerprintMismatch(ValueError):
  """The store holds results of a search with another configuration."""


class StoreConflict(ValueError):
  """A stored row disagrees with the candidate it is looked up for."""


@dataclasses.dataclass(frozen=True)
class Row:
  """One scored candidate.

  Attributes:
    step: search step (SpikeNAS cell step, LightSNN round, 0 for random).
    candidate_id: the candidate's id within the search (see the method).
    genotype: architecture string (``|``-joined per-cell genotypes, or a
      LightSNN supernet mask string).
    score: SAHD log-determinant, ``-inf`` for a singular kernel.
    singular: the kernel was singular in some batch.
    params: parameter count of the network.
    weight_bytes: bytes of its weights at the search's weight precision.
  """

  step: int
  candidate_id: int
  genotype: str
  score: float
  singular: bool
  params: int
  weight_bytes: int


def _to_db_score(x: float) -> Optional[float]:
  # SQLite stores +-inf as REAL; NaN would become NULL, kept as NULL on purpose.
  x = float(x)
  return None if math.isnan(x) else x


class ScoreStore:
  """SQLite-backed rows of scored candidates.

  Args:
    path: database file, or ``":memory:"`` for a throwaway store (library use
      without a workdir).
  """

  def __init__(self, path: str = ":memory:"):
    self.path = path
    if path != ":memory:":
      parent = os.path.dirname(os.path.abspath(path))
      if not os.path.isdir(parent):
        raise ValueError(f"score store directory {parent!r} does not exist")
    try:
      # isolation_level=None: explicit BEGIN/COMMIT, one transaction per chunk.
      self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
      if path != ":memory:":
        # WAL: a commit is atomic across kill -9, and readers (progress
        # pollers, tests) never block the writer.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
      self._db.executescript(_SCHEMA)
    except sqlite3.Error as e:
      raise ValueError(f"cannot open score store {path!r}: {e}; if the file is damaged, "
                       "move it aside and rerun to score from scratch") from None

  @property
  def where(self) -> str:
    """Human-readable location: the directory holding the store."""
    if self.path == ":memory:":
      return "<memory>"
    return os.path.dirname(os.path.abspath(self.path))

  def close(self):
    """Closes the database connection."""
    self._db.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  # --------------------------------------------------------------------------
  # Fingerprint.

  def fingerprint(self) -> Optional[str]:
    """The stored fingerprint, or None for a fresh store."""
    row = self._db.execute("SELECT value FROM meta WHERE key = 'fingerprint'").fetchone()
    return None if row is None else row[0]

  def bind(self, fingerprint: dict):
    """Stores ``fingerprint`` in a fresh store, or checks it against the stored one.

    Args:
      fingerprint: JSON-serialisable description of everything that
        determines the results.

    Raises:
      FingerprintMismatch: the store holds another configuration; the message
        names the store's directory and the first differing key.
    """
    text = json.dumps(fingerprint, sort_keys=True)
    stored = self.fingerprint()
    if stored is None:
      self._db.execute("BEGIN IMMEDIATE")
      self._db.execute("INSERT OR REPLACE INTO meta VALUES ('fingerprint', ?)", (text,))
      self._db.execute("COMMIT")
      return
    if stored == text:
      return
    old = json.loads(stored)
    diff = sorted(k for k in set(old) | set(fingerprint)
                  if old.get(k) != json.loads(json.dumps(fingerprint.get(k))))
    first = diff[0] if diff else "?"
    raise FingerprintMismatch(
        f"workdir {self.where!r} holds results of a search with a different "
        f"configuration ({first}: stored {old.get(first)!r}, now "
        f"{fingerprint.get(first)!r}); use another workdir or delete it")

  # --------------------------------------------------------------------------
  # Rows.

  def lookup(self, step: int, candidate_ids: Sequence[int],
             genotypes: Sequence[str]) -> dict[int, Row]:
    """Stored rows of the given candidates of one step.

    Args:
      step: the search step.
      candidate_ids: ids to look up.
      genotypes: the architecture string of each id (same order).

    Returns:
      ``{candidate_id: Row}`` for the ids already stored.

    Raises:
      StoreConflict: a stored row has another architecture string.
    """
    want = {int(c): g for c, g in zip(candidate_ids, genotypes)}
    out = {}
    for row in self.rows(step):
      if row.candidate_id in want:
        if row.genotype != want[row.candidate_id]:
          raise StoreConflict(
              f"score store in {self.where!r}: step {step} candidate "
              f"{row.candidate_id} is stored as {row.genotype!r} but is now "
              f"{want[row.candidate_id]!r}; the store belongs to another search")
        out[row.candidate_id] = row
    return out

  def add(self, rows: Iterable[Row]):
    """Stores rows in ONE transaction (all or nothing across a crash).

    Raises:
      StoreConflict: a ``(step, candidate_id)`` is already stored (a
        candidate is never stored twice; another process wrote it).
    """
    values = [(int(r.step), int(r.candidate_id), str(r.genotype), _to_db_score(r.score),
               int(bool(r.singular)), int(r.params), int(r.weight_bytes)) for r in rows]
    self._db.execute("BEGIN IMMEDIATE")
    try:
      self._db.executemany("INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?)", values)
    except sqlite3.IntegrityError:
      self._db.execute("ROLLBACK")
      # Only another process writing the same store gets here: this process
      # scores only the candidates it found missing.
      raise StoreConflict(
          f"score store in {self.where!r} already holds some of these candidates: is "
          "another search writing to the same workdir?") from None
    except BaseException:
      self._db.execute("ROLLBACK")
      raise
    self._db.execute("COMMIT")

  def rows(self, step: Optional[int] = None) -> list[Row]:
    """Stored rows (of one step, or all), ordered by (step, candidate_id)."""
    query = "SELECT * FROM scores"
    args: tuple = ()
    if step is not None:
      query += " WHERE step = ?"
      args = (int(step),)
    out = []
    for s, c, g, score, sing, p, wb in self._db.execute(query + " ORDER BY step, candidate_id",
                                                         args):
      out.append(Row(s, c, g, float("nan") if score is None else float(score), bool(sing), p,
                     wb))
    return out

  def count(self) -> int:
    """Number of stored rows."""
    return int(self._db.execute("SELECT COUNT(*) FROM scores").fetchone()[0])


def open_store(workdir: str) -> ScoreStore:
  """The store of a workdir, ``<workdir>/results.sqlite`` (created if absent)."""
  return ScoreStore(os.path.join(workdir, STORE_NAME))
