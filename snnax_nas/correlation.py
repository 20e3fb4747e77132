"""Rank correlation between a zero-cost score and trained accuracy.

Used to judge a training-free score against any benchmark table of trained
architectures: Kendall's tau-b, Spearman's rho and top-k overlap, with the
parameter count as the baseline every such table should show beside a score.
"""

from __future__ import annotations

import numpy as np


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


def kendall_tau(x, y) -> float:
  """Kendall's tau-b (tie-corrected), O(n^2) memory-light pairwise count.

  Fine for the few-thousand-architecture tables this is used on.
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  n = len(x)
  concordant = discordant = ties_x = ties_y = 0
  for i in range(n - 1):
    dx = np.sign(x[i + 1:] - x[i])
    dy = np.sign(y[i + 1:] - y[i])
    prod = dx * dy
    concordant += int((prod > 0).sum())
    discordant += int((prod < 0).sum())
    ties_x += int(((dx == 0) & (dy != 0)).sum())
    ties_y += int(((dy == 0) & (dx != 0)).sum())
  denom = np.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
  return float((concordant - discordant) / denom) if denom > 0 else float("nan")


def top_k_overlap(score, truth, k: int) -> float:
  """Fraction of the true top-k (by ``truth``) also in the top-k by ``score``."""
  k = int(min(k, len(score)))
  if k <= 0:
    raise ValueError(f"k must be >= 1, got {k}")
  top_score = set(np.argsort(-np.asarray(score, np.float64), kind="stable")[:k].tolist())
  top_truth = set(np.argsort(-np.asarray(truth, np.float64), kind="stable")[:k].tolist())
  return len(top_score & top_truth) / k


def correlation_report(score, truth, ks=(10, 50)) -> dict:
  """Kendall tau, Spearman rho and top-k overlaps of ``score`` vs ``truth``.

  Non-finite scores (singular kernels) rank below every finite one.
  """
  score = np.asarray(score, np.float64)
  truth = np.asarray(truth, np.float64)
  if score.shape != truth.shape or score.ndim != 1:
    raise ValueError(f"score {score.shape} and truth {truth.shape} must be equal 1-D shapes")
  if len(score) < 2:
    raise ValueError(f"need at least 2 architectures, got {len(score)}")
  finite = np.isfinite(score)
  floor = score[finite].min() - 1.0 if finite.any() else 0.0
  score = np.where(finite, score, floor)
  report = {"n": int(len(score)), "kendall_tau": kendall_tau(score, truth),
            "spearman_rho": spearman_rho(score, truth)}
  for k in ks:
    report[f"top{k}_overlap"] = top_k_overlap(score, truth, k)
  return report
