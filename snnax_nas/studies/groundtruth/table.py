"""A trained-architecture table of the ground-truth study: reading it and
checking it against what it claims (accuracies in range, a ``params`` column
equal to the analytic count at the trained network, duplicate rows)."""

from __future__ import annotations

import csv
import dataclasses
import math
from typing import Optional

import numpy as np

from snnax_nas import configs
from snnax_nas import genotype as genotype_lib
from snnax_nas import memory
from snnax_nas import ops as ops_lib

ACCURACY_RANGE = (0.0, 100.0)  # a table's accuracies are top-1 percentages
# Rows of one canonical cell are separately trained copies of one function
# (they differ in dead-path edges only); their accuracies differ by training
# noise. On the development tables such copies differ by up to 0.98 points
# (CIFAR-100) and 0.90 (TinyImageNet); a wider spread is reported.
DUPLICATE_TOLERANCE = 1.0  # points of accuracy


@dataclasses.dataclass(frozen=True)
class Table:
  """A trained-architecture table, one row per distinct canonical cell.

  Attributes:
    genotypes: int8 [N, 4, 4] canonical cells.
    names: the N canonical genotype strings.
    accuracy: float64 [N] trained accuracy (%); the mean where several rows
      of the file share a canonical form.
    merged_rows: rows of the file merged into another of the same form.
    path: the file.
    row_genotypes: int8 [R, 4, 4] the file's R rows as written (not pruned).
    row_cell: int [R] the distinct cell of each row (an index of ``names``).
    row_params: int64 [R] the ``params`` column (-1 where a row leaves it
      blank), or None when the file has no such column.
    duplicates: the cells whose rows' accuracies differ by more than
      :data:`DUPLICATE_TOLERANCE`: ``{"genotype", "rows", "accuracies",
      "spread"}`` each (file row numbers, as a spreadsheet counts them).
  """

  genotypes: np.ndarray
  names: list
  accuracy: np.ndarray
  merged_rows: int
  path: str = ""
  row_genotypes: Optional[np.ndarray] = None
  row_cell: Optional[np.ndarray] = None
  row_params: Optional[np.ndarray] = None
  duplicates: list = dataclasses.field(default_factory=list)


def read_table(path: str, ops) -> Table:
  """Reads a ``genotype,accuracy[,params,...]`` CSV; rows are merged by
  canonical form.

  Args:
    path: the CSV file.
    ops: the op set the genotype strings use.

  Returns:
    A :class:`Table` in order of first appearance. Check its ``params``
    column against a network with :func:`check_params`.

  Raises:
    ValueError: a missing column, a bad genotype, an accuracy that is not a
      number in :data:`ACCURACY_RANGE` or a params value that is not a
      non-negative integer (the message names the file, row and value), a
      cell with a backward edge, or fewer than 2 distinct cells.
  """
  ops = ops_lib.op_set(ops)
  try:  # utf-8-sig: a spreadsheet's byte-order mark is not part of the header
    with open(path, newline="", encoding="utf-8-sig") as f:
      reader = csv.DictReader(f)
      header, rows = reader.fieldnames or (), list(reader)
  except UnicodeDecodeError:
    raise ValueError(f"{path!r} is not UTF-8 text; save the table as UTF-8 CSV") from None
  except IsADirectoryError:
    raise ValueError(f"{path!r} is a directory, not a CSV file") from None
  if not {"genotype", "accuracy"} <= set(header):
    raise ValueError(f"{path!r} needs a header with columns genotype and accuracy")
  if not rows:
    raise ValueError(f"{path!r} has a header and no rows: a table needs at least 2 cells")
  has_params = "params" in rows[0]
  groups: dict = {}
  raw, cell_names, logged = [], [], []
  lo, hi = ACCURACY_RANGE
  for i, r in enumerate(rows, start=2):  # row 1 is the header, as a spreadsheet counts
    try:
      g = genotype_lib.parse_genotype(r["genotype"], ops)
      acc = float(r["accuracy"])
    except (TypeError, ValueError) as e:
      raise ValueError(f"{path!r} row {i}: {e}") from None
    if not math.isfinite(acc):
      raise ValueError(f"{path!r} row {i}: accuracy {r['accuracy']!r} is not a finite number")
    if not lo <= acc <= hi:
      raise ValueError(f"{path!r} row {i}: accuracy {r['accuracy']} is outside [{lo:g}, "
                       f"{hi:g}]; the column is top-1 accuracy in percent")
    if genotype_lib.has_backward(g):
      raise ValueError(f"{path!r} row {i}: {r['genotype']} has a backward edge; the "
                       "tables are forward cells")
    if has_params:
      logged.append(_read_params(path, i, r["params"]))
    can = genotype_lib.canonical(g)
    name = genotype_lib.format_genotype(can)
    groups.setdefault(name, (can, [], []))[1].append(acc)
    groups[name][2].append(i)
    raw.append(g)
    cell_names.append(name)
  if len(groups) < 2:
    raise ValueError(f"{path!r} holds {len(groups)} distinct cell(s); need at least 2")
  names = list(groups)
  index = {n: k for k, n in enumerate(names)}
  duplicates = [dict(genotype=n, rows=groups[n][2], accuracies=groups[n][1],
                     spread=float(max(groups[n][1]) - min(groups[n][1])))
                for n in names if max(groups[n][1]) - min(groups[n][1]) > DUPLICATE_TOLERANCE]
  return Table(np.stack([groups[n][0] for n in names]).astype(np.int8), names,
               np.array([np.mean(groups[n][1]) for n in names]), len(rows) - len(names),
               path=path, row_genotypes=np.stack(raw).astype(np.int8),
               row_cell=np.array([index[n] for n in cell_names]),
               row_params=np.array(logged, np.int64) if has_params else None,
               duplicates=duplicates)


def _read_params(path: str, row: int, text) -> int:
  """One ``params`` value: a non-negative integer, or -1 for a blank."""
  if text is None or not str(text).strip():
    return -1
  try:
    value = float(text)
  except ValueError:
    value = math.nan
  if not (math.isfinite(value) and value >= 0 and value == int(value)):
    raise ValueError(f"{path!r} row {row}: params {text!r} is not a non-negative integer")
  return int(value)


def _params_agree(table: Table, trained: configs.NetworkConfig) -> tuple:
  """Per row of the file: whether its logged params equal the analytic count
  at ``trained``, of the pruned cell or of the cell as written (dead-path
  convs counted); and the two counts. Blank rows agree."""
  pruned = memory.param_count(table.genotypes, trained)[table.row_cell]
  unpruned = memory.unpruned_param_count(table.row_genotypes, trained)
  logged = table.row_params
  return (logged < 0) | (logged == pruned) | (logged == unpruned), pruned, unpruned


def check_params(table: Table, trained: configs.NetworkConfig) -> None:
  """Checks the table's ``params`` column (when it has one) against the
  analytic count at the network it claims to be trained at.

  A row agrees when its logged count equals the exact count of its cell
  (:func:`snnax_nas.memory.param_count`) or the count of its cell as
  written, dead-path convs included (:func:`snnax_nas.memory.unpruned_param_count`:
  a tool that does not prune cells logs that, as the development tables do).

  Args:
    table: from :func:`read_table`.
    trained: the network the table was trained at.

  Raises:
    ValueError: in one line: how many rows disagree, the first of them with
      both counts, and the network preset of
      :data:`snnax_nas.configs.network.PRESETS` under which every row agrees
      (or, when none does, the fields to set).
  """
  if table.row_params is None:
    return
  ok, pruned, unpruned = _params_agree(table, trained)
  if ok.all():
    return
  from snnax_nas.configs import network as network_configs
  matches = [p for p in network_configs.PRESETS
             if _params_agree(table, configs.network_config(p, ops=trained.ops))[0].all()]
  if matches:
    hint = (f"it matches --config.trained.preset={' or '.join(matches)} (with "
            "trained.width, trained.hidden and trained.second_pool unset)")
  else:
    hint = (f"no network preset ({', '.join(network_configs.PRESETS)}) matches it: set "
            "--config.trained.preset and trained.width / trained.hidden / "
            "trained.second_pool to the network the table was trained at")
  i = int(np.flatnonzero(~ok)[0])
  raise ValueError(
      f"{table.path!r}: the params column disagrees with the trained network in "
      f"{int((~ok).sum())} of {int((table.row_params >= 0).sum())} rows: row {i + 2} logs "
      f"{int(table.row_params[i]):,}, the trained network counts {int(pruned[i]):,} "
      f"({int(unpruned[i]):,} with the cell's dead-path convs); {hint}")
