"""The outcome of a search, the same for every method (:class:`SearchResult`),
and its pick: the best scored candidate by the one rule of every search and
study (:func:`snnax_nas.stats.best_index`: the highest score, NaN as -inf,
the first of equal scores), refused when no score is finite
(:func:`best_finite_index`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np

from snnax_nas import stats

METHODS = ("random", "spikenas", "lightsnn")


@dataclasses.dataclass
class SearchResult:
  """Outcome of a search (the same fields for every method).

  Attributes:
    method: ``"random"``, ``"spikenas"`` or ``"lightsnn"``.
    genotype: the chosen architecture; per-cell genotypes joined with ``|``
      when cells differ, e.g. ``"0303/0030/2002/0200"`` or ``"0122/..|0222/.."``.
    score: its SAHD score (mean log|det K| over the R batches; ``-inf`` if
      singular).
    singular: its kernel was singular.
    params: its parameter count (:func:`snnax_nas.memory.param_count`).
    weight_bytes: bytes of its weights at ``weight_bits``.
    weight_bits: weight precision of the memory model (32/16/8/4).
    budget_params: parameter budget, or None (no limit).
    budget_bytes: weight-memory budget in bytes, or None (no limit).
    candidates_scored: candidates (LightSNN: pruning evaluations) the method
      scored to decide, loaded from the store or scored in this run.
    candidates_skipped: candidates the budget removed before scoring.
    evaluations: score evaluations the method used to decide (equal to
      ``candidates_scored``; 60 for LightSNN's 3 ops x 12 edges).
    extra_evaluations: evaluations made only to report a score (LightSNN:
      1, the pruned network; 0 otherwise).
    steps: per-step summaries (SpikeNAS cell steps, LightSNN rounds).
    records: one :class:`snnax_nas.score_store.Row` per scored candidate.
    notes: remarks about the result (e.g. an invalid pruned cell).
    compile_seconds: wall time of the first scorer call of this run (it
      includes compilation).
    run_seconds: wall time of the other scorer calls of this run.
    wall_seconds: wall time of the whole search call.
    scored_this_run: evaluations computed in this run.
    loaded_from_store: evaluations loaded from the score store.
  """

  method: str
  genotype: str
  score: float
  singular: bool
  params: int
  weight_bytes: int
  weight_bits: int
  budget_params: Optional[int]
  budget_bytes: Optional[int]
  candidates_scored: int
  candidates_skipped: int
  evaluations: int
  extra_evaluations: int = 0
  steps: list = dataclasses.field(default_factory=list)
  records: list = dataclasses.field(default_factory=list)
  notes: list = dataclasses.field(default_factory=list)
  compile_seconds: float = 0.0
  run_seconds: float = 0.0
  wall_seconds: float = 0.0
  scored_this_run: int = 0
  loaded_from_store: int = 0

  TIMING_FIELDS = ("compile_seconds", "run_seconds", "wall_seconds", "scored_this_run",
                   "loaded_from_store")

  def summary(self) -> dict:
    """JSON-ready summary: the result fields, and ``timing`` (the fields that
    differ between an uninterrupted and a resumed run). Records are left out
    (they go to ``scores.csv``); a non-finite score is written as None."""
    out = {}
    for f in dataclasses.fields(self):
      if f.name == "records" or f.name in self.TIMING_FIELDS:
        continue
      out[f.name] = getattr(self, f.name)
    out["score"] = json_float(self.score)
    out["timing"] = {k: getattr(self, k) for k in self.TIMING_FIELDS}
    return out


def json_float(x: float) -> Optional[float]:
  """``float(x)``, or None when it is not finite (JSON has no inf or NaN)."""
  x = float(x)
  return x if math.isfinite(x) else None


def best_finite_index(scores: np.ndarray) -> int:
  """The best of float scores [M] by the one rule,
  :func:`snnax_nas.stats.best_index` (the highest, NaN as -inf, the first of
  equal scores).

  Raises:
    ValueError: no score is finite (every kernel singular): a "best" among
      them would be an arbitrary pick reported as a result.
  """
  scores = np.asarray(scores, np.float64)
  if not np.isfinite(scores).any():
    raise ValueError(
        f"all {scores.size} candidates scored have a singular kernel (score -inf): none can be "
        "chosen. The inputs may be degenerate (constant images, or pixel values far outside "
        "the usual range: check the dataset's normalisation), or the network never fires on "
        "them (raise network.width or scoring.batch_size)")
  return stats.best_index(scores)
