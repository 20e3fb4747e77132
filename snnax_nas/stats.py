"""The statistics every study reports, and the one rule that picks the best of
scored candidates.

* :func:`t_interval`: mean over seeds with its 95 % Student-t interval (the
  compare and analyze_ops studies: a handful of seeds, each a trained network).
* :func:`bootstrap_interval`: mean over seeds with a 95 % bootstrap interval
  of the mean (the groundtruth study: many cheap seeds).
* :func:`paired_difference` / :func:`paired_differences`: ``a - b`` paired by
  seed, with either interval; pairing removes what a seed does to both
  methods, so it separates smaller gaps than two unpaired intervals.
* :func:`interval_cell` and :func:`paired_markdown`: the one way a mean
  with its interval, and a table of paired differences, are written.
* :func:`best_index`: the highest score, NaN counted as -inf, the first of
  equal scores winning; every search and study picks with it.

Every interval function returns ``{"mean", "lo", "hi", "n", "missing"}``:
``n`` values used, ``missing`` values left out (None or NaN).
"""

from __future__ import annotations

import math
from typing import Callable
from typing import Hashable
from typing import Mapping
from typing import Optional
from typing import Sequence

import numpy as np
from scipy import stats as scipy_stats

BOOTSTRAP_RESAMPLES = 2000

Interval = Callable[[Sequence[Optional[float]]], dict]


def _finite_values(values: Sequence[Optional[float]]) -> tuple[np.ndarray, int]:
  """``(float64 [n] the values that are not None or NaN, how many were)``."""
  v = np.array([math.nan if x is None else x for x in values], np.float64).reshape(-1)
  keep = v[~np.isnan(v)]
  return keep, int(len(v) - len(keep))


def t_interval(values: Sequence[Optional[float]]) -> dict:
  """Mean with its 95 % Student-t interval over seeds.

  With a handful of seeds the t interval is the honest one (a bootstrap of
  three values is far too narrow); it assumes the per-seed values are
  independent and roughly normal.

  Args:
    values: one value per seed; None and NaN are left out (counted as
      ``missing``).

  Returns:
    ``{"mean", "lo", "hi", "n", "missing"}``; ``lo``/``hi`` are NaN with
    fewer than two values, ``mean`` too with none.
  """
  v, missing = _finite_values(values)
  if not len(v):
    return dict(mean=math.nan, lo=math.nan, hi=math.nan, n=0, missing=missing)
  if len(v) < 2:
    return dict(mean=float(v[0]), lo=math.nan, hi=math.nan, n=1, missing=missing)
  half = float(scipy_stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
  return dict(mean=float(v.mean()), lo=float(v.mean() - half), hi=float(v.mean() + half),
              n=int(len(v)), missing=missing)


def bootstrap_interval(values: Sequence[Optional[float]], resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = 0) -> dict:
  """Mean over seeds with a 95 % percentile-bootstrap interval of the mean.

  Args:
    values: one value per seed; None and NaN are left out (counted as
      ``missing``).
    resamples: bootstrap resamples of the seeds, >= 1.
    seed: of the resamples (``numpy.random.default_rng(seed)``).

  Returns:
    ``{"mean", "lo", "hi", "n", "missing"}``; all NaN but the counts when no
    value is left; ``lo == hi == mean`` with one.

  Raises:
    ValueError: ``resamples`` < 1.
  """
  if int(resamples) < 1:
    raise ValueError(f"resamples={resamples} must be >= 1")
  v, missing = _finite_values(values)
  if not len(v):
    return dict(mean=math.nan, lo=math.nan, hi=math.nan, n=0, missing=missing)
  means = np.random.default_rng(seed).choice(v, (int(resamples), len(v))).mean(-1)
  return dict(mean=float(v.mean()), lo=float(np.percentile(means, 2.5)),
              hi=float(np.percentile(means, 97.5)), n=int(len(v)), missing=missing)


def paired_difference(a: Mapping[Hashable, Optional[float]],
                      b: Mapping[Hashable, Optional[float]],
                      interval: Interval = t_interval, scale: float = 1.0) -> Optional[dict]:
  """``scale * (a - b)`` paired by seed, summarised by ``interval``.

  Args:
    a, b: ``{seed: value}`` of two methods; seeds in only one are left out.
    interval: :func:`t_interval` or :func:`bootstrap_interval` (any function
      of the per-seed differences with their return type).
    scale: applied to each difference (100: fractions to points).

  Returns:
    ``interval``'s dict of the differences plus ``wins`` (seeds where ``a``
    is larger); None when no seed has both. A NaN value (no result that seed)
    makes its difference missing.
  """
  seeds = sorted(set(a) & set(b))
  if not seeds:
    return None
  diffs = [math.nan if a[s] is None or b[s] is None else scale * (a[s] - b[s]) for s in seeds]
  return dict(interval(diffs), wins=int(sum(d > 0 for d in diffs)))


def paired_differences(rows: Sequence[Mapping], a: str, b: str, metric: str, group: str,
                       interval: Interval = t_interval, scale: float = 1.0) -> list[dict]:
  """Per value of ``row[group]``, :func:`paired_difference` of ``metric``
  between methods ``a`` and ``b``.

  Args:
    rows: one dict per (group, method, seed), with keys ``group``,
      ``"method"``, ``"seed"`` and ``metric``.
    a, b: the two methods.
    metric: the key compared.
    group: the key the pairs are made within (``"budget"``); groups in
      order of first appearance, those without a seed of both left out.
    interval, scale: as :func:`paired_difference`.

  Returns:
    One dict per group: ``group``, a, b, metric, and the
    :func:`paired_difference` fields.
  """
  out = []
  for value in dict.fromkeys(r[group] for r in rows):
    mine = [r for r in rows if r[group] == value]
    diff = paired_difference({r["seed"]: r[metric] for r in mine if r["method"] == a},
                             {r["seed"]: r[metric] for r in mine if r["method"] == b},
                             interval, scale)
    if diff is not None:
      out.append({group: value, "a": a, "b": b, "metric": metric, **diff})
  return out


def interval_cell(mean: Optional[float], lo: float, hi: float, digits: int,
                  scale: float = 1.0, signed: bool = False) -> str:
  """A mean with its interval as a table cell: ``"12.34 [11.02, 13.66]"``.

  Args:
    mean, lo, hi: the :func:`t_interval` / :func:`bootstrap_interval` fields.
    digits: decimals.
    scale: applied to all three (100: fractions to %).
    signed: always write the sign (differences).

  Returns:
    ``"—"`` for a None or NaN mean; the mean alone when the interval is NaN
    (one seed).
  """
  if mean is None or math.isnan(mean):
    return "—"
  spec = f"{'+' if signed else ''}.{digits}f"
  text = format(scale * mean, spec)
  if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
    return text
  return f"{text} [{format(scale * lo, spec)}, {format(scale * hi, spec)}]"


def paired_markdown(rows: Sequence[Mapping], groups: Sequence[tuple[str, str]],
                    interval_name: str, unit: str = "points", digits: int = 2) -> str:
  """Paired differences as a Markdown table: the group columns, ``a − b``,
  the mean with its interval, the seeds compared and ``a``'s wins.

  Args:
    rows: :func:`paired_differences` rows (or dicts with the same fields).
    groups: ``(header, key)`` of each group column (a float written ``:g``).
    interval_name: e.g. ``"95 % t interval"``, written in the header.
    unit: of the differences, written in the header.
    digits: decimals of the differences.
  """
  head = [h for h, _ in groups] + ["difference", f"mean [{interval_name}] ({unit})", "seeds",
                                   "wins"]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for r in rows:
    cells = [f"{r[k]:g}" if isinstance(r[k], float) else str(r[k]) for _, k in groups]
    cells += [f"{r['a']} − {r['b']}", interval_cell(r["mean"], r["lo"], r["hi"], digits,
                                                     signed=True),
              str(r["n"]), f"{r['wins']} of {r['n']}"]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def best_index(scores) -> int:
  """The index of the best score: the highest, NaN counted as -inf, the first
  of equal scores winning (so a pool in candidate-id order picks the lowest
  id). -1 for no scores.

  Args:
    scores: float [M].
  """
  s = np.asarray(scores, np.float64).reshape(-1)
  if not len(s):
    return -1
  return int(np.argmax(np.where(np.isnan(s), -np.inf, s)))
