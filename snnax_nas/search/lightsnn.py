"""LightSNN pruning (Abdennadher et al., arXiv 2503.21846; TE-NAS style).

Start from the supernet with every op of the op set on every edge (12 edges
with backward cells, 6 without), one mask ``[E, |ops|]`` shared by all cells
as LightSNN shares its α. An edge outputs the MEAN of its active ops, ``zero``
counting as an op whose output is 0 (LightSNN's softmax over α = 0 for active
and -1000 for removed ops is exactly this mean). Each round, for every edge
with more than one active op, the network is scored with each remaining op
removed; on each edge the op whose removal gives the HIGHEST score is dropped.
Rounds repeat until every edge holds one op: with the 3-op ``lightsnn`` set
that is 2 rounds, 12*3 + 12*2 = 60 evaluations with backward edges (6*3 +
6*2 = 30 without). A round is ONE scorer call with multi-hot op weights, and
every evaluation uses the same candidate id, hence the same supernet weights
(LightSNN scores one supernet). The pruned cell may hold both a forward and a
backward op on one node pair; the network supports it. The reference code's
feedback state never reaches the cell output (a bug: its ``nodes_back`` is
reset every forward and the cell appends new feedback while reading the first
three entries); we implement the paper's intent with the core network's backward semantics, where feedback
enters the next timestep's node values.
"""

from __future__ import annotations

import time
from typing import Optional

import jax
import numpy as np

from snnax_nas import configs
from snnax_nas import genotype as genotype_lib
from snnax_nas import memory
from snnax_nas import ops as ops_lib
from snnax_nas import score_store
from snnax_nas.search import result as result_lib
from snnax_nas.search import scoring


def _edge_name(e: int) -> str:
  i, j = genotype_lib.EDGES[e]
  return f"{i}->{j}"


def mask_string(mask: np.ndarray, ops: ops_lib.OpSet) -> str:
  """The record string of one op mask.

  Args:
    mask: bool ``[E, len(ops.ops)]`` active ops per edge (columns in the op
      set's listed order).
    ops: the op set.

  Returns:
    ``"mask:012,012,..."``: the genotype digits of each edge's active ops
    (edges in :data:`snnax_nas.genotype.EDGES` order, ``-`` for none).
  """
  digits = [0 if op.kind == "zero" else ops.digit(op.name) for op in ops.ops]
  return "mask:" + ",".join("".join(str(digits[j]) for j in np.flatnonzero(row)) or "-"
                            for row in np.asarray(mask, bool))


def mask_arch(masks, cfg: configs.NetworkConfig) -> np.ndarray:
  """Supernet op weights of op masks: the mean over each edge's active ops.

  Args:
    masks: bool ``[M, E, len(cfg.ops.ops)]`` (columns in the listed op order,
      ``zero`` included), at least one active op per edge.
    cfg: the network config.

  Returns:
    float32 ``[M, L, E, O]`` (``O`` non-zero ops): ``mask[:, :, nonzero] /
    mask.sum(-1)``, the same for every cell.
  """
  masks = np.asarray(masks, bool)
  cols = [j for j, op in enumerate(cfg.ops.ops) if op.kind != "zero"]
  w = masks[..., cols].astype(np.float32) / masks.sum(-1, keepdims=True).astype(np.float32)
  return np.ascontiguousarray(np.broadcast_to(
      w[:, None], (w.shape[0], cfg.num_cells) + w.shape[1:]))


def supernet_param_count(masks, cfg: configs.NetworkConfig) -> np.ndarray:
  """Parameters of supernets restricted to op masks (LightSNN evaluations).

  The memory model's formula (:func:`snnax_nas.memory.fixed_params` plus
  :func:`snnax_nas.memory.op_params` of every active op of each edge of each
  cell); no dead-edge pruning, since a supernet keeps every active op.

  Args:
    masks: bool ``[..., E, len(cfg.ops.ops)]`` active ops per edge (columns in
      the op set's listed order), shared by all cells.
    cfg: the network config.

  Returns:
    int64 ``[...]`` parameter counts.
  """
  masks = np.asarray(masks, np.int64)
  total = np.full(masks.shape[:-2], memory.fixed_params(cfg), np.int64)
  for _, _, c in cfg.cell_shapes:
    cost = np.array([memory.op_params(op, c) for op in cfg.ops.ops], np.int64)
    total = total + (masks @ cost).sum(-1)
  return total


def lightsnn_prune(images, key: jax.Array, cfg: configs.NetworkConfig, *,
                   candidate_id: int = 0, weight_bits: int = 32,
                   scorer: scoring.ScorerOptions = scoring.REFERENCE_SCORER, score_final: bool = True,
                   store: Optional[score_store.ScoreStore] = None,
                   progress: Optional[scoring.ProgressFn] = None) -> result_lib.SearchResult:
  """LightSNN: prune a shared-α supernet by op importance (module docstring).

  Args:
    images: normalised score batches [R, B, H, W, C] (LightSNN: B = 64).
    key: PRNG key; every evaluation uses ``fold_in(key, candidate_id)``, i.e.
      one supernet's weights.
    cfg: the network config (``ops``: e.g. the ``lightsnn`` preset;
      ``backward``: 12 edges instead of 6).
    candidate_id: the weights' id.
    weight_bits: weight precision of the reported memory.
    scorer: kernel, chunk layout, weight draws and conv precision
      (:class:`snnax_nas.search.ScorerOptions`; the defaults are the reference).
    score_final: also score the pruned network (canonical form, same supernet
      weights) for ``score``; one extra evaluation after the rounds.
      Otherwise ``score`` is NaN.
    store: score store for resuming (rounds are its steps; the final
      evaluation is step ``num_rounds``).
    progress: ``progress(label, done, total)`` after each round.

  Returns:
    A :class:`SearchResult`: ``candidates_scored`` = ``evaluations`` =
    pruning evaluations (60 for ``lightsnn`` ops with backward edges),
    ``extra_evaluations`` = 1 with ``score_final``; ``steps[r]`` lists round
    ``r``'s dropped op per edge.

  Raises:
    ValueError: bad arguments or a store holding another search.
  """
  t0 = time.perf_counter()
  scoring.check_common_args(cfg, scorer)
  memory.check_weight_bits(weight_bits)
  if not 0 <= int(candidate_id) <= scoring.MAX_ID:
    raise ValueError(f"candidate_id must be in [0, {scoring.MAX_ID}], got {candidate_id!r}")
  ops = cfg.ops
  num_edges, num_ops = cfg.num_edges, len(ops.ops)
  store = store if store is not None else score_store.ScoreStore()
  store.bind(scoring.fingerprint("lightsnn", cfg, images, key, scorer.kernel,
                                candidate_id=int(candidate_id), weight_bits=weight_bits,
                                score_final=bool(score_final),
                                **scorer.score_args()))
  store_scorer = scoring.StoreScorer(images, key, cfg, store, scorer, weight_bits=weight_bits,
                                    progress=progress)
  mask = np.ones((num_edges, num_ops), bool)
  steps, evaluations, rnd = [], 0, 0
  while (mask.sum(-1) > 1).any():
    evals = [(e, j) for e in range(num_edges) if mask[e].sum() > 1
             for j in np.flatnonzero(mask[e])]
    masks = np.repeat(mask[None], len(evals), axis=0)
    for k, (e, j) in enumerate(evals):
      masks[k, e, j] = False
    m = len(evals)
    scores, _ = store_scorer.run(rnd, np.arange(m), [mask_string(x, ops) for x in masks],
                                 mask_arch(masks, cfg), supernet_param_count(masks, cfg),
                                 f"lightsnn round {rnd + 1}", one_call=True,
                                 scorer_ids=np.full(m, int(candidate_id)))
    dropped = {}
    for e in sorted({e for e, _ in evals}):
      ks = [k for k, (ee, _) in enumerate(evals) if ee == e]
      k = ks[result_lib.best_finite_index(scores[ks])]  # removing this op helps the score most
      mask[e, evals[k][1]] = False
      dropped[_edge_name(e)] = ops.ops[evals[k][1]].name
    evaluations += m
    steps.append(dict(step=rnd, round=rnd, evaluations=m, dropped=dropped,
                      mask=mask_string(mask, ops)))
    rnd += 1
  # One op per edge is left: read it off as a genotype (a pair may keep both
  # a forward and a backward op).
  raw = np.zeros((4, 4), np.int32)
  for e in range(num_edges):
    op = ops.ops[int(np.flatnonzero(mask[e])[0])]
    i, j = genotype_lib.EDGES[e]
    raw[i, j] = 0 if op.kind == "zero" else ops.digit(op.name)
  cell = genotype_lib.canonical(raw)
  text = genotype_lib.format_genotype(cell)
  params = int(memory.param_count(cell, cfg))
  notes = []
  if not bool(genotype_lib.is_valid(raw)):
    notes.append(f"pruned cell {genotype_lib.format_genotype(raw)} has no input->output edge "
                 "(the reference sampler would reject it)")
  final_score, final_singular = float("nan"), False
  if score_final:
    cells = genotype_lib.as_genotypes(cell[None], cfg)
    s, sing = store_scorer.run(rnd, [0], [text], genotype_lib.arch_of(cells, cfg), [params],
                               "lightsnn final", one_call=True, scorer_ids=[int(candidate_id)])
    final_score, final_singular = float(s[0]), bool(sing[0])
  result = result_lib.SearchResult(
      method="lightsnn", genotype=text, score=final_score, singular=final_singular,
      params=params, weight_bytes=int(memory.weight_bytes(params, weight_bits)),
      weight_bits=weight_bits, budget_params=None, budget_bytes=None,
      candidates_scored=evaluations, candidates_skipped=0, evaluations=evaluations,
      extra_evaluations=int(bool(score_final)), steps=steps, notes=notes)
  return store_scorer.finish(result, t0)
