"""Scoring through a store: every method scores candidates with the batched
SAHD scorer (:func:`snnax_nas.score.score_candidates`), never one candidate
per Python call, and always through a :class:`snnax_nas.score_store.ScoreStore`
(:class:`StoreScorer`), so a killed search resumes where it stopped and ends
with exactly the result an uninterrupted run gives.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from typing import Optional
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from snnax_nas import autotune
from snnax_nas import callbacks
from snnax_nas import configs
from snnax_nas import distributed
from snnax_nas import flops
from snnax_nas import kernels
from snnax_nas import memory
from snnax_nas import score
from snnax_nas import score_store
from snnax_nas.search.result import SearchResult

MAX_ID = (1 << 31) - 1  # candidate ids are int32 in the scorer

# progress(label, done, total): done=0 before a step's first scorer call, then
# after every call; label names the step. Counts exclude rows already stored.
ProgressFn = callbacks.SearchProgress  # the Protocol, re-exported


# ----------------------------------------------------------------------------
# Scoring through the store.

def _key_data(key) -> list:
  key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    key = jax.random.key_data(key)
  return np.asarray(key).ravel().tolist()


def fingerprint(method: str, cfg, images, key, kernel: str, **args) -> dict:
  """Everything that determines a search's results, for
  :meth:`snnax_nas.score_store.ScoreStore.bind`.

  Chunking is left out: a score does not depend on it, so a resumed run may
  change ``chunk_size``.

  Args:
    method: the method name.
    cfg: the network config (its repr is stored).
    images: score batches [R, B, H, W, C] (their shape and SHA-256 are stored).
    key: the weights' PRNG key (typed or raw; its data is stored).
    kernel: the scorer kernel.
    **args: the method's own arguments (JSON-ready values).

  Returns:
    A JSON-ready dict.
  """
  images = np.ascontiguousarray(np.asarray(images, np.float32))
  return dict(method=method, cfg=repr(cfg), kernel=kernel,
              images=f"{list(images.shape)}:{hashlib.sha256(images.tobytes()).hexdigest()}",
              key=_key_data(key), **args)


@dataclasses.dataclass(frozen=True)
class ScorerOptions:
  """How a search scores its candidates: one object for the three searches
  (:func:`snnax_nas.score.score_candidates` takes the same fields).

  Attributes:
    kernel: a name of :data:`snnax_nas.kernels.KERNELS` (``"sahd"``: the
      reference).
    chunk_size: candidates per scorer call (= per store commit; LightSNN:
      the compiled chunk inside a round's single call).
    map_batch_size: candidates vmapped together inside a chunk.
    draws: fresh weight draws per candidate, each over all R batches.
    conv_dtype: cell-conv precision: None / ``"float32"`` (the reference) or
      ``"bfloat16"`` (float32 accumulation).
    common_weights: every candidate on the same weight draw (common random
      numbers); False (the reference): each candidate id its own.
    time_batched: score a space without backward edges with every layer run
      once over all timesteps (see :func:`snnax_nas.score.score_candidates`);
      same scores up to float rounding, so not part of :meth:`score_args`.
  """

  kernel: str = "sahd"
  chunk_size: int = 8
  map_batch_size: int = 1
  draws: int = 1
  conv_dtype: Optional[str] = None
  common_weights: bool = False
  time_batched: bool = False

  def __post_init__(self):
    if self.kernel not in kernels.KERNELS:
      raise ValueError(f"unknown kernel {self.kernel!r}; choose from {kernels.KERNELS}")
    for name in ("chunk_size", "map_batch_size", "draws"):
      value = getattr(self, name)
      if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value}")
      object.__setattr__(self, name, int(value))
    autotune.conv_dtype_name(self.conv_dtype)  # raises naming a bad dtype

  def score_args(self) -> dict:
    """The options that change scores, for :func:`fingerprint`: empty at
    their defaults (one draw, float32 convs), so a store's fingerprint names
    only what a user changed (chunking never changes a score)."""
    args = {}
    if self.draws != 1:
      args["draws"] = self.draws
    dtype = autotune.conv_dtype_name(self.conv_dtype)
    if dtype is not None:
      args["conv_dtype"] = dtype
    if self.common_weights:
      args["common_weights"] = True
    return args


# The reference's scorer: SAHD, one draw, float32 convs (frozen: a safe default).
REFERENCE_SCORER = ScorerOptions()


class StoreScorer:
  """Scores candidates through a score store.

  Rows already stored are loaded; the others are scored by
  :func:`snnax_nas.score.score_candidates`, chunk by chunk (or in one call),
  and each call's rows are committed in one transaction before the next.
  """

  def __init__(self, images, key, cfg, store: score_store.ScoreStore, scorer: ScorerOptions, *,
               weight_bits: int, progress: Optional[ProgressFn]):
    self.images = jnp.asarray(images, jnp.float32)
    self.key, self.cfg, self.store = key, cfg, store
    self.options = scorer
    self.chunk_size = scorer.chunk_size
    self.weight_bits, self.progress = weight_bits, progress
    self.calls = 0
    self.compile_seconds = self.run_seconds = 0.0
    self.scored = self.loaded = 0
    self.records: list[score_store.Row] = []

  def run(self, step: int, ids, texts: Sequence[str], arch: np.ndarray, params, label: str,
          *, one_call: bool = False, scorer_ids=None) -> tuple[np.ndarray, np.ndarray]:
    """Scores of candidates ``ids`` of ``step`` (from the store or computed).

    Args:
      step: search step of the rows.
      ids: int [M] record ids, unique within the step.
      texts: [M] architecture strings (stored, and checked on reload).
      arch: float32 [M, L, E, O] op weights.
      params: int [M] parameter counts.
      label: progress label.
      one_call: score all missing candidates in ONE scorer call (LightSNN
        rounds) instead of one call per chunk.
      scorer_ids: int [M] ids for the weight keys (default ``ids``).

    Returns:
      ``(scores float64 [M], singular bool [M])`` in the order of ``ids``.
    """
    ids = np.asarray(ids, np.int64)
    scorer_ids = ids if scorer_ids is None else np.asarray(scorer_ids, np.int64)
    if ids.size and (ids.min() < 0 or scorer_ids.max() > MAX_ID):
      raise ValueError(f"candidate ids out of the int32 range: {ids.min()}..{ids.max()}")
    params = np.asarray(params, np.int64)
    wbytes = memory.weight_bytes(params, self.weight_bits)
    rows = self._stored_rows(step, ids, texts, params, wbytes)
    self.loaded += len(rows)
    missing = np.array([k for k, c in enumerate(ids.tolist()) if c not in rows], np.int64)
    # Costliest first, so each chunk holds candidates of similar cost and its
    # devices (and processes) finish together; no score depends on the order.
    missing = missing[flops.costliest_first(arch[missing], self.cfg, self.images.shape[1],
                                            self.images.shape[0])]
    # Several processes: each scores its share of a group (one chunk each).
    per_group = self.chunk_size * jax.process_count()
    if one_call:
      groups = [missing] if len(missing) else []
    else:
      groups = [missing[s:s + per_group] for s in range(0, len(missing), per_group)]
    done = 0
    if self.progress is not None and len(missing):
      self.progress(label, 0, len(missing))
    for group in groups:
      mine = group[distributed.process_share(len(group))]
      res = score.score_candidates(
          None, self.images, self.key, self.cfg, **dataclasses.asdict(self.options),
          candidate_ids=scorer_ids[mine].astype(np.int32), arch=arch[mine])
      # Each call here is one chunk (or one round); only the process's first
      # call compiles, so it alone counts as compile time.
      if self.calls == 0:
        self.compile_seconds += res.compile_seconds
        self.run_seconds += res.run_seconds
      else:
        self.run_seconds += res.compile_seconds + res.run_seconds
      self.calls += 1
      group_scores = distributed.gather_shares(res.scores, len(group))
      group_singular = distributed.gather_shares(res.singular, len(group))
      new = [score_store.Row(step, int(ids[k]), texts[k], float(group_scores[j]),
                             bool(group_singular[j]), int(params[k]), int(wbytes[k]))
             for j, k in enumerate(group)]
      self.store.add(new)  # committed: a kill after this line loses nothing
      rows.update((r.candidate_id, r) for r in new)
      self.scored += len(group)
      done += len(group)
      if self.progress is not None:
        self.progress(label, done, len(missing))
    ordered = [rows[int(c)] for c in ids]
    self.records.extend(ordered)
    return (np.array([r.score for r in ordered], np.float64),
            np.array([r.singular for r in ordered], bool))

  def _stored_rows(self, step, ids, texts, params, wbytes) -> dict:
    """Stored rows of ``ids``: ``{candidate_id: Row}``.

    With several processes, process 0's store is the record (the others run
    with a throwaway one): its rows are broadcast, so every process skips and
    scores exactly the same candidates.
    """
    rows = self.store.lookup(step, ids.tolist(), texts)
    if jax.process_count() == 1:
      return rows
    found = np.array([int(c) in rows for c in ids], bool)
    stored_scores = np.array([rows[int(c)].score if f else 0.0 for c, f in zip(ids, found)],
                             np.float64)
    stored_singular = np.array([rows[int(c)].singular if f else False
                                for c, f in zip(ids, found)], bool)
    found, stored_scores, stored_singular = distributed.broadcast_from_first(
        (found, stored_scores, stored_singular))
    return {int(ids[k]): score_store.Row(step, int(ids[k]), texts[k], float(stored_scores[k]),
                                         bool(stored_singular[k]), int(params[k]),
                                         int(wbytes[k]))
            for k in np.flatnonzero(found)}

  def finish(self, result: SearchResult, t0: float) -> SearchResult:
    """Fills ``result``'s records and timing from this scorer; ``t0`` is the
    ``time.perf_counter()`` at the start of the search call."""
    result.records = list(self.records)
    result.compile_seconds = self.compile_seconds
    result.run_seconds = self.run_seconds
    result.scored_this_run = self.scored
    result.loaded_from_store = self.loaded
    result.wall_seconds = time.perf_counter() - t0
    return result


def check_common_args(cfg, scorer: ScorerOptions) -> None:
  """Raises ValueError unless ``cfg`` is a NetworkConfig and ``scorer`` a
  :class:`ScorerOptions`."""
  if not isinstance(cfg, configs.NetworkConfig):
    raise ValueError(f"cfg must be a NetworkConfig, got {type(cfg).__name__}")
  if not isinstance(scorer, ScorerOptions):
    raise ValueError(f"scorer must be a ScorerOptions, got {type(scorer).__name__}")
