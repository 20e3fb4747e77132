"""SpikeNAS memory-aware consecutive per-cell search.

SpikeNAS (Putra & Shafique, arXiv 2402.11322) has no public code; this is our design from the paper's
description:

  (a) a reduced op set (presets ``spikenas`` = skip, conv3x3 and
      ``spikenas3`` = skip, conv3x3, avgpool3x3; any op set works) and a
      configurable number of cells (``cfg.cells_per_stage``);
  (b) the candidates of a step are distinct canonical cells
      (:func:`snnax_nas.genotype.unique_canonical`), so no two equivalent
      cells are scored in one step;
  (c) the analytic memory model (:func:`snnax_nas.memory.within_budget` on
      the full per-cell network, at ``weight_bits``) runs first: a candidate
      over the budget is never scored;
  (d) consecutive per-cell search. Step 0 searches one genotype shared by all
      ``L = 2 * cells_per_stage`` cells (SNASNet's setting, on the reduced
      space). Step ``l = 1 .. L-1`` re-searches cell ``l``: cells ``< l`` stay
      fixed to their chosen genotypes and cells ``>= l`` take the candidate
      ("starting from the second cell, applying the same architecture to the
      previous cells"). Each step keeps its best in-budget candidate. The
      incumbent (the genotype cell ``l`` already holds) is always in the step's
      candidates and is rescored with that step's ids, so each choice compares
      candidates scored within one step;
  (e) weights at 32/16/8/4 bits enter the budget as ``params * bits / 8``
      bytes.

A step's pool is the whole enumerated space of the op set (forward, or
backward with ``cfg.backward``) when it has at most ``num_candidates``
distinct canonical valid cells, else a sample of ``num_candidates`` distinct
cells drawn with the reference sampler from a generator seeded by ``(seed,
step)`` (:func:`snnax_nas.search.candidate_pool`). Candidate ids are ``step *
ID_STRIDE + index in the pool``. A budget below the smallest network of the
space raises ValueError stating that minimum.
"""

from __future__ import annotations

import time
from typing import Optional

import jax
import numpy as np

from snnax_nas import configs
from snnax_nas import genotype as genotype_lib
from snnax_nas import memory
from snnax_nas import score_store
from snnax_nas.search import result as result_lib
from snnax_nas.search import scoring
from snnax_nas.search import space as space_lib

# SpikeNAS candidate ids are step * ID_STRIDE + pool index: unique over the
# search and independent of how many candidates earlier steps skipped.
ID_STRIDE = 1 << 20


def spikenas_search(images, key: jax.Array, cfg: configs.NetworkConfig, *,
                    num_candidates: int = 64, seed: int = 0,
                    budget_params: Optional[float] = None, budget_bytes: Optional[float] = None,
                    weight_bits: int = 32, scorer: scoring.ScorerOptions = scoring.REFERENCE_SCORER,
                    store: Optional[score_store.ScoreStore] = None,
                    progress: Optional[scoring.ProgressFn] = None) -> result_lib.SearchResult:
  """SpikeNAS: memory-aware consecutive per-cell search (module docstring).

  Args:
    images: normalised score batches [R, B, H, W, C].
    key: PRNG key of the weights (candidate id ``c`` uses ``fold_in(key, c)``).
    cfg: the network config: ``ops`` (e.g. the ``spikenas`` preset),
      ``cells_per_stage`` (L = 2 * cells_per_stage cells) and ``backward``.
    num_candidates: the most distinct cells per step; the whole space when it
      is no larger.
    seed: seed of the sampled pools (step ``l`` uses ``(seed, l)``).
    budget_params: parameter budget of the full network; None or inf for no
      limit.
    budget_bytes: weight-memory budget in bytes at ``weight_bits``; None or
      inf for no limit.
    weight_bits: weight precision: 32, 16, 8 or 4.
    scorer: kernel, chunk layout, weight draws and conv precision
      (:class:`snnax_nas.search.ScorerOptions`; the defaults are the reference).
    store: score store for resuming (default: a throwaway in-memory one).
    progress: ``progress(label, done, total)`` after each chunk.

  Returns:
    A :class:`SearchResult`; ``steps[l]`` holds step ``l``'s pool size,
    scored/skipped counts and choice.

  Raises:
    ValueError: bad arguments (including a NaN, zero or negative budget), a
      budget below the smallest network (the message states it), no step-0
      candidate within the budget, or a store holding another search.
  """
  t0 = time.perf_counter()
  scoring.check_common_args(cfg, scorer)
  if int(num_candidates) != num_candidates or not 1 <= num_candidates < ID_STRIDE - 1:
    raise ValueError(f"num_candidates must be an integer in [1, {ID_STRIDE - 1}), "
                     f"got {num_candidates!r}")
  num_cells = cfg.num_cells
  if num_cells * ID_STRIDE > scoring.MAX_ID:
    raise ValueError(f"{num_cells} cells exceed the candidate id range")
  budget_params, budget_bytes = memory.normalize_budget(budget_params, budget_bytes, weight_bits)
  budget = dict(budget_params=budget_params, budget_bytes=budget_bytes, weight_bits=weight_bits)
  space_lib.check_budget(cfg, **budget)

  def pool_of(step):
    """Step ``step``'s candidate cells: ``(int8 [M, 4, 4], enumerated)``."""
    rng = np.random.default_rng([int(seed), step])
    return space_lib.candidate_pool(cfg.ops, cfg.backward, int(num_candidates), rng)

  def step_cells(pool, chosen, step):
    """int32 [M, L, 4, 4]: cells < step from ``chosen``, the rest the candidate."""
    cells = np.empty((len(pool), num_cells, 4, 4), np.int32)
    if step:
      cells[:, :step] = chosen[:step]
    cells[:, step:] = pool[:, None]
    return cells

  # Step 0 is checked before the store is touched: a hopeless budget leaves
  # no trace in the workdir.
  pool0, _ = pool_of(0)
  cells0 = step_cells(pool0.astype(np.int32), None, 0)
  if not memory.within_budget(cells0, cfg, **budget).any():
    params0 = memory.param_count(cells0, cfg)
    c = int(np.argmin(params0))
    raise ValueError(
        f"none of the {len(pool0)} sampled step-0 cells fits the memory budget of "
        f"{space_lib.budget_text(budget_params, budget_bytes, weight_bits)} (cheapest sampled "
        f"{genotype_lib.format_genotype(pool0[c])}: {int(params0[c]):,} params; the "
        f"space's smallest network: {space_lib.smallest_network(cfg)[1]:,} params); raise "
        "num_candidates or the budget")
  store = store if store is not None else score_store.ScoreStore()
  store.bind(scoring.fingerprint("spikenas", cfg, images, key, scorer.kernel,
                                num_candidates=int(num_candidates), seed=int(seed), **budget,
                                **scorer.score_args()))
  store_scorer = scoring.StoreScorer(images, key, cfg, store, scorer, weight_bits=weight_bits,
                                    progress=progress)
  chosen = np.zeros((num_cells, 4, 4), np.int32)
  steps, scored, skipped = [], 0, 0
  best = None
  for step in range(num_cells):
    pool, enumerated = pool_of(step)
    pool = pool.astype(np.int32)
    incumbent_added = False
    if step > 0:
      # The incumbent (cell `step`'s current genotype) competes in this step,
      # so the choice compares candidates scored under the same step.
      keys = genotype_lib.genotype_key(pool)
      if not (keys == genotype_lib.genotype_key(chosen[step])).any():
        pool = np.concatenate([pool, chosen[step][None]])
        incumbent_added = True
    cells = step_cells(pool, chosen, step)
    params = memory.param_count(cells, cfg)
    idx = np.flatnonzero(memory.within_budget(cells, cfg, **budget))
    texts = space_lib.arch_strings(cells[idx])
    scores, singular = store_scorer.run(step, step * ID_STRIDE + idx, texts,
                                        genotype_lib.arch_of(cells[idx], cfg), params[idx],
                                        f"spikenas step {step + 1}/{num_cells}")
    b = result_lib.best_finite_index(scores)
    win = int(idx[b])
    chosen[step:] = pool[win]
    scored += len(idx)
    skipped += int(len(pool) - len(idx))
    best = dict(genotype=texts[b], score=float(scores[b]), singular=bool(singular[b]),
                params=int(params[win]))
    steps.append(dict(step=step, cell=step if step else "all", pool=len(pool),
                      enumerated=enumerated, incumbent_added=incumbent_added,
                      scored=len(idx), skipped=int(len(pool) - len(idx)),
                      best_id=int(step * ID_STRIDE + win),
                      cell_genotype=genotype_lib.format_genotype(pool[win]),
                      genotype=texts[b], score=result_lib.json_float(scores[b]),
                      params=int(params[win])))
  result = result_lib.SearchResult(
      method="spikenas", genotype=best["genotype"], score=best["score"],
      singular=best["singular"], params=best["params"],
      weight_bytes=int(memory.weight_bytes(best["params"], weight_bits)),
      weight_bits=weight_bits, budget_params=budget_params, budget_bytes=budget_bytes,
      candidates_scored=scored, candidates_skipped=skipped, evaluations=scored, steps=steps)
  return store_scorer.finish(result, t0)
