"""SNASNet random search (Kim et al., ECCV 2022: 5000 sampled genotypes, each
scored once, the argmax; no iteration or refinement).

Sample N valid genotypes with the reference sampler
(:func:`snnax_nas.genotype_space.sample_genotypes`, forward or backward space as
``cfg.backward``), one genotype shared by every cell, score each with its own
fresh weights and take the argmax. Duplicates are kept, as the reference keeps
them: the reference draws 5000 times with replacement and initialises a fresh
network for each draw, so a genotype drawn twice is scored twice with
different random weights (and may win on the luckier draw). Candidate ``i`` is
the i-th draw and has candidate id ``i``. An optional memory budget is applied
BEFORE scoring: over-budget draws are never scored, only counted.
"""

from __future__ import annotations

import time
from typing import Optional

import jax
import numpy as np

from snnax_nas import configs
from snnax_nas import genotype as genotype_lib
from snnax_nas import genotype_space
from snnax_nas import memory
from snnax_nas import score_store
from snnax_nas.search import result as result_lib
from snnax_nas.search import scoring
from snnax_nas.search import space as space_lib


def random_search(images, key: jax.Array, cfg: configs.NetworkConfig, *,
                  num_candidates: int = 5000, seed: int = 0, genotypes=None,
                  budget_params: Optional[float] = None, budget_bytes: Optional[float] = None,
                  weight_bits: int = 32, scorer: scoring.ScorerOptions = scoring.REFERENCE_SCORER,
                  store: Optional[score_store.ScoreStore] = None,
                  progress: Optional[scoring.ProgressFn] = None) -> result_lib.SearchResult:
  """SNASNet: score N sampled genotypes (optionally budget-filtered), argmax.

  Args:
    images: normalised score batches [R, B, H, W, C].
    key: PRNG key of the weights and dropout (candidate ``i`` uses
      ``fold_in(key, i)``).
    cfg: the network config; ``cfg.ops`` and ``cfg.backward`` define the space.
    num_candidates: draws N (reference: 5000); ignored with ``genotypes``.
    seed: seed of the numpy sampler.
    genotypes: optional explicit candidates instead of sampling (anything
      :func:`snnax_nas.genotype.as_genotypes` accepts: strings, [N, 4, 4] or
      [N, L, 4, 4]).
    budget_params: parameter budget (candidates above it are never scored);
      None or inf for no limit.
    budget_bytes: weight-memory budget in bytes at ``weight_bits``; None or
      inf for no limit.
    weight_bits: weight precision of the memory model: 32, 16, 8 or 4.
    scorer: kernel, chunk layout, weight draws and conv precision
      (:class:`snnax_nas.search.ScorerOptions`; the defaults are the reference).
    store: score store for resuming (default: a throwaway in-memory one).
    progress: ``progress(label, done, total)`` after each chunk.

  Returns:
    A :class:`SearchResult` (step 0 only; duplicates scored separately).

  Raises:
    ValueError: bad arguments (including a NaN, zero or negative budget), a
      budget below the smallest network (the message states it), no
      candidate within the budget, or a store holding another search.
  """
  t0 = time.perf_counter()
  scoring.check_common_args(cfg, scorer)
  budget_params, budget_bytes = memory.normalize_budget(budget_params, budget_bytes, weight_bits)
  budget = dict(budget_params=budget_params, budget_bytes=budget_bytes, weight_bits=weight_bits)
  if genotypes is None:
    if int(num_candidates) != num_candidates or num_candidates < 1:
      raise ValueError(f"num_candidates must be an integer >= 1, got {num_candidates!r}")
    space_lib.check_budget(cfg, **budget)
    drawn = genotype_space.sample_genotypes(np.random.default_rng(seed), int(num_candidates),
                                          cfg.ops, backward=cfg.backward)
    cells = genotype_lib.as_genotypes(drawn, cfg)
  else:
    cells = genotype_lib.as_genotypes(genotypes, cfg)
    if len(cells) == 0:
      raise ValueError("no candidate genotypes given")
  n = len(cells)
  params = memory.param_count(cells, cfg)
  ok = memory.within_budget(cells, cfg, **budget)
  if not ok.any():
    cheapest = int(np.argmin(params))
    raise ValueError(
        f"none of the {n} candidates fits the memory budget of "
        f"{space_lib.budget_text(budget_params, budget_bytes, weight_bits)}; the cheapest needs "
        f"{int(params[cheapest]):,} params = "
        f"{int(memory.weight_bytes(params[cheapest], weight_bits)):,} bytes")
  texts = space_lib.arch_strings(cells)
  store = store if store is not None else score_store.ScoreStore()
  store.bind(scoring.fingerprint(
      "random", cfg, images, key, scorer.kernel, num_candidates=int(num_candidates),
      seed=int(seed),
      genotypes=None if genotypes is None else texts, **budget,
      **scorer.score_args()))
  store_scorer = scoring.StoreScorer(images, key, cfg, store, scorer, weight_bits=weight_bits,
                                    progress=progress)
  idx = np.flatnonzero(ok)
  scores, singular = store_scorer.run(0, idx, [texts[i] for i in idx],
                                      genotype_lib.arch_of(cells[idx], cfg), params[idx], "random")
  b = result_lib.best_finite_index(scores)
  best = int(idx[b])
  result = result_lib.SearchResult(
      method="random", genotype=texts[best], score=float(scores[b]), singular=bool(singular[b]),
      params=int(params[best]), weight_bytes=int(memory.weight_bytes(params[best], weight_bits)),
      weight_bits=weight_bits, budget_params=budget_params, budget_bytes=budget_bytes,
      candidates_scored=len(idx), candidates_skipped=int(n - len(idx)), evaluations=len(idx),
      steps=[dict(step=0, candidates=n, scored=len(idx), skipped=int(n - len(idx)),
                  best_id=best, genotype=texts[best], score=result_lib.json_float(scores[b]))])
  return store_scorer.finish(result, t0)
