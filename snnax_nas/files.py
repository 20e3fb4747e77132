"""Atomic file writes (a file is either its old version or its whole new one),
and the one JSON reader.

Every file a job writes into a workdir goes through these helpers, so a job
killed at any point (even ``kill -9``) never leaves a half-written file: the
text goes to ``PATH.tmp`` in the same directory, is flushed and fsynced, then
renamed over ``PATH`` (``os.replace`` is atomic on POSIX file systems).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from typing import Any
from typing import Iterable
from typing import Iterator
from typing import Mapping
from typing import Optional
from typing import Sequence


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w", **kwargs) -> Iterator[Any]:
  """Opens ``PATH.tmp`` for writing; on a clean exit renames it to ``path``.

  On an exception the temporary file is removed and ``path`` is untouched.

  Args:
    path: the destination file.
    mode: ``"w"`` (text) or ``"wb"`` (bytes).
    **kwargs: passed to :func:`open` (``newline=""`` for CSV, ...).
  """
  if mode not in ("w", "wb"):
    raise ValueError(f"atomic_open mode must be 'w' or 'wb', got {mode!r}")
  tmp = path + ".tmp"
  try:
    with open(tmp, mode, **kwargs) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    raise


def write_text(path: str, text: str) -> None:
  """Writes ``text`` to ``path`` atomically."""
  with atomic_open(path) as f:
    f.write(text)


def write_json(path: str, obj: Any, *, indent: int = 2) -> None:
  """Writes ``obj`` as JSON (sorted keys, trailing newline) atomically."""
  write_text(path, json.dumps(obj, indent=indent, sort_keys=True) + "\n")


def read_json(path: str, *, required: bool = False) -> Optional[Any]:
  """The JSON in ``path``, read back.

  Args:
    path: the file.
    required: raise when it does not exist (else None: a job's output not
      written yet).

  Raises:
    ValueError: the file exists but cannot be read or parsed, or (``required``)
      does not exist; the message names the file.
  """
  if not os.path.isfile(path):
    if required:
      raise ValueError(f"{path} not found")
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(f"cannot read {path}: {e}") from None


def write_csv(path: str, header: Sequence[str], rows: Iterable[Sequence]) -> None:
  """Writes a CSV (``header`` then ``rows``) atomically."""
  with atomic_open(path, newline="") as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(rows)


def write_dict_csv(path: str, rows: Sequence[Mapping[str, Any]],
                   columns: Sequence[str] | None = None) -> None:
  """Writes dict rows as a CSV atomically.

  Args:
    path: the destination file.
    rows: one mapping per row; missing keys are written empty.
    columns: the column order; by default the union of the rows' keys in
      first-seen order.
  """
  if columns is None:
    columns = []
    for r in rows:
      columns += [k for k in r if k not in columns]
  with atomic_open(path, newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows(rows)


def pyplot() -> Any:
  """``matplotlib.pyplot`` on the file-only Agg backend (no display needed),
  imported on first use: the slow import is paid by plotting code only."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def save_figure(fig: Any, path: str, **kwargs) -> None:
  """Saves a matplotlib figure to ``path`` atomically (format from the suffix)."""
  root, ext = os.path.splitext(path)
  tmp = root + ".tmp" + ext  # matplotlib picks the format from the suffix
  try:
    fig.savefig(tmp, **kwargs)
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    raise
