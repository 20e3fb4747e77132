"""Rank correlation between a zero-cost score and trained accuracy.

Used to judge a training-free score against any benchmark table of trained
architectures: Kendall's tau-b, Spearman's rho, top-k overlap and the
percentile of the score's argmax, each with a bootstrap confidence interval,
and the parameter count as the baseline every such table should show beside
a score.

Bootstrap: ``resamples`` (default 1000) resamples of the rows with
replacement, drawn by ``numpy.random.default_rng(seed)`` (default seed 0); a
statistic's interval is the 2.5th and 97.5th percentile of its resampled
values (95 % percentile interval). The same seed draws the same resamples
for every score of a table, so differences between two scores can be read
pairwise off :func:`bootstrap_statistics`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


def rankdata(x: np.ndarray) -> np.ndarray:
  """Average ranks (1-based, ties share their mean rank) of a 1-D array."""
  x = np.asarray(x, np.float64)
  order = np.argsort(x, kind="mergesort")
  ranks = np.empty(len(x), np.float64)
  sorted_x = x[order]
  # Boundaries of runs of equal values.
  starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
  ends = np.r_[starts[1:], len(x)]
  for s, e in zip(starts, ends):
    ranks[order[s:e]] = 0.5 * (s + e - 1) + 1.0
  return ranks


def spearman_rho(x, y) -> float:
  """Spearman's rank correlation (Pearson correlation of average ranks)."""
  rx, ry = rankdata(x), rankdata(y)
  rx, ry = rx - rx.mean(), ry - ry.mean()
  denom = np.sqrt((rx * rx).sum() * (ry * ry).sum())
  return float((rx * ry).sum() / denom) if denom > 0 else float("nan")


def _pair_counts(x, y, block: int = 256) -> tuple[int, int, int, int, int]:
  """Pair counts ``(concordant, discordant, tied in x only, tied in y only,
  tied in both)`` over the ``n (n - 1) / 2`` pairs, by pairwise signs.

  Rows are compared ``block`` at a time against all others (memory
  ``block * n``), each pair counted once (``j > i``).
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  n = len(x)
  counts = np.zeros(5, np.int64)
  for s in range(0, n, block):
    i = np.arange(s, min(s + block, n))
    upper = np.arange(n)[None, :] > i[:, None]
    dx = np.sign(x[None, :] - x[i, None])
    dy = np.sign(y[None, :] - y[i, None])
    prod = dx * dy
    counts += [((prod > 0) & upper).sum(), ((prod < 0) & upper).sum(),
               ((dx == 0) & (dy != 0) & upper).sum(), ((dy == 0) & (dx != 0) & upper).sum(),
               ((dx == 0) & (dy == 0) & upper).sum()]
  return tuple(int(c) for c in counts)


def kendall_tau(x, y, block: int = 256) -> float:
  """Kendall's tau-b (tie-corrected) by pairwise sign counts.

  Pairs tied in ``x`` leave both the numerator and the denominator, so a
  coarse score (a parameter count with a few distinct values) is credited
  only for the pairs it orders: see :func:`tie_broken_tau`.
  """
  c, d, tx, ty, _ = _pair_counts(x, y, block)
  denom = np.sqrt((c + d + tx) * (c + d + ty))
  return float((c - d) / denom) if denom > 0 else float("nan")


def tie_broken_tau(x, y, block: int = 256) -> float:
  """Expected Kendall tau-b of ``y`` with ``x`` after ``x``'s ties are broken
  uniformly at random: what a rule that must pick one of equal-scoring rows
  (the largest cell, when several are the largest) achieves on average.

  Breaking a tie of ``x`` makes the pair concordant or discordant with equal
  probability, so the expected numerator is tau-b's ``C - D`` while every
  pair now counts on the ``x`` side: ``(C - D) / sqrt(P (P - T_y))`` with
  ``P`` all pairs and ``T_y`` the pairs tied in ``y`` (exact, no sampling).
  Equals :func:`kendall_tau` when ``x`` has no ties.
  """
  c, d, tx, ty, both = _pair_counts(x, y, block)
  pairs = c + d + tx + ty + both
  denom = np.sqrt(pairs * (pairs - ty - both))
  return float((c - d) / denom) if denom > 0 else float("nan")


def within_group_tau(score, truth, groups, tau=kendall_tau) -> float:
  """Kendall's tau-b inside groups, pair-weighted over the groups.

  With groups ``g`` (e.g. cells of equal parameter count), tau-b is computed
  inside each group of at least two rows and the groups are averaged with
  weights ``n_g (n_g - 1) / 2``, their numbers of pairs. It asks what a score
  says about rows a size-only rule cannot tell apart. Groups where the score
  or the truth is constant (tau undefined) are left out; NaN if none is left.

  Args:
    score, truth: float [N].
    groups: [N] group labels (any hashable numbers).
    tau: the per-group statistic (:func:`kendall_tau` or :func:`tie_broken_tau`).
  """
  score, truth, groups = (np.asarray(a) for a in (score, truth, groups))
  num = den = 0.0
  for g in np.unique(groups):
    m = groups == g
    pairs = m.sum() * (m.sum() - 1) / 2
    t = tau(score[m], truth[m]) if pairs else float("nan")
    if np.isfinite(t):
      num, den = num + pairs * t, den + pairs
  return num / den if den else float("nan")


def residual_tau(score, truth, size) -> float:
  """Kendall's tau-b of ``score`` and ``truth`` after removing size from both.

  Each of ``score`` and ``truth`` is replaced by its residual of the least-
  squares line on ``size`` (with intercept), so a score that is a linear
  function of size has tau NaN (a constant residual) and what remains is what
  it adds beyond a linear size trend. Non-finite scores are set to the lowest
  finite score first (they rank last).
  """
  score = np.asarray(score, np.float64)
  finite = np.isfinite(score)
  score = np.where(finite, score, score[finite].min() if finite.any() else 0.0)
  x = np.stack([np.ones(len(score)), np.asarray(size, np.float64)], 1)
  resid = lambda y: y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
  rs = resid(score)
  if np.allclose(rs, 0.0, atol=1e-9 * max(1.0, np.abs(score).max())):
    return float("nan")
  return kendall_tau(rs, resid(np.asarray(truth, np.float64)))


def top_k_overlap(score, truth, k: int) -> float:
  """Fraction of the true top-k (by ``truth``) also in the top-k by ``score``."""
  if k <= 0:
    raise ValueError(f"k must be >= 1, got {k}")
  k = int(min(k, len(score)))
  top_score = set(np.argsort(-np.asarray(score, np.float64), kind="stable")[:k].tolist())
  top_truth = set(np.argsort(-np.asarray(truth, np.float64), kind="stable")[:k].tolist())
  return len(top_score & top_truth) / k


def argmax_percentile(score, truth) -> float:
  """Percentile (0 = worst, 100 = best) of the true accuracy of the row the
  score ranks first: ``100 (rank(truth)[pick] - 1) / (n - 1)`` with average
  ranks; rows tied for the top score share the mean of their percentiles."""
  score, truth = np.asarray(score, np.float64), np.asarray(truth, np.float64)
  picks = np.flatnonzero(score == score.max())
  return float(100.0 * (rankdata(truth)[picks].mean() - 1.0) / max(len(truth) - 1, 1))


def _finite_ranks(score: np.ndarray) -> np.ndarray:
  """``score`` with ``-inf`` (singular kernels) just below every finite value
  and ``+inf`` just above, so they rank last / first."""
  finite = np.isfinite(score)
  lo = score[finite].min() - 1.0 if finite.any() else 0.0
  hi = score[finite].max() + 1.0 if finite.any() else 0.0
  return np.where(finite, score, np.where(score > 0, hi, lo))


def _statistics(score: np.ndarray, truth: np.ndarray, ks: Sequence[int]) -> dict:
  out = {"kendall_tau": kendall_tau(score, truth), "spearman_rho": spearman_rho(score, truth),
         "argmax_percentile": argmax_percentile(score, truth)}
  for k in ks:
    out[f"top{k}_overlap"] = top_k_overlap(score, truth, k)
  return out


def _clean(score, truth) -> tuple[np.ndarray, np.ndarray, int]:
  """Validated float64 ``(score, truth, excluded)``: rows with a NaN score or
  accuracy dropped (and counted), infinite scores ranked at the ends."""
  score = np.asarray(score, np.float64)
  truth = np.asarray(truth, np.float64)
  if score.shape != truth.shape or score.ndim != 1:
    raise ValueError(f"score {score.shape} and truth {truth.shape} must be equal 1-D shapes")
  keep = ~(np.isnan(score) | np.isnan(truth))
  if not np.isfinite(truth[keep]).all():
    raise ValueError("truth holds an infinite accuracy; fix the table")
  score, truth = score[keep], truth[keep]
  if len(score) < 2:
    raise ValueError(f"need at least 2 architectures with a score and an accuracy, "
                     f"got {len(score)}")
  return _finite_ranks(score), truth, int((~keep).sum())


def bootstrap_statistics(score, truth, ks=(10, 50), resamples: int = BOOTSTRAP_RESAMPLES,
                         seed: int = BOOTSTRAP_SEED) -> dict:
  """Each statistic of :func:`correlation_report` over bootstrap resamples.

  Args:
    score, truth: float [n] (cleaned as in :func:`correlation_report`).
    ks: top-k sizes.
    resamples: number of resamples of the n rows, with replacement.
    seed: seed of ``numpy.random.default_rng``; the same seed gives the same
      resamples for any score of the same n rows (paired comparisons).

  Returns:
    ``{statistic: float64 [resamples]}``.
  """
  score, truth, _ = _clean(score, truth)
  if resamples < 1:
    raise ValueError(f"resamples must be >= 1, got {resamples}")
  rng = np.random.default_rng(seed)
  n = len(score)
  out = {}
  for r in range(resamples):
    idx = rng.integers(0, n, n)
    for name, v in _statistics(score[idx], truth[idx], ks).items():
      out.setdefault(name, np.empty(resamples))[r] = v
  return out


def interval(samples: np.ndarray) -> list[float]:
  """The 95 % percentile interval ``[q2.5, q97.5]`` of bootstrap samples
  (NaN resamples, e.g. a constant resampled score, are ignored)."""
  return [float(np.nanpercentile(samples, 2.5)), float(np.nanpercentile(samples, 97.5))]


def correlation_report(score, truth, ks=(10, 50), resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> dict:
  """Kendall tau, Spearman rho, top-k overlaps and argmax percentile of
  ``score`` vs ``truth``, each with a 95 % bootstrap interval.

  Rows with a NaN score or accuracy are excluded and counted
  (``excluded_nan``); ``-inf`` scores (singular kernels) rank below every
  finite one. ``resamples=0`` skips the intervals.

  Returns:
    ``{"n", "excluded_nan", statistic: value, statistic + "_ci": [lo, hi],
    "resamples", "bootstrap_seed"}``.
  """
  for k in ks:
    if k <= 0:
      raise ValueError(f"top-k sizes must be >= 1, got {k}")
  clean_score, clean_truth, excluded = _clean(score, truth)
  report = {"n": int(len(clean_score)), "excluded_nan": excluded}
  report.update(_statistics(clean_score, clean_truth, ks))
  if resamples:
    boot = bootstrap_statistics(clean_score, clean_truth, ks, resamples, seed)
    for name, samples in boot.items():
      report[f"{name}_ci"] = interval(samples)
    report.update(resamples=int(resamples), bootstrap_seed=int(seed))
  return report
