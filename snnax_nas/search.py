"""Training-free architecture search: SNASNet, SpikeNAS and LightSNN.

Three methods, one result type (:class:`SearchResult`). All score candidates
with the batched SAHD scorer (:func:`snnax_nas.score.score_candidates`), never
one candidate per Python call, and all score through a
:class:`snnax_nas.results.ResultsStore`, so a killed search resumes where it
stopped and ends with exactly the result an uninterrupted run gives.

**SNASNet random search** (:func:`random_search`, spec §5). Sample N valid
genotypes with the reference sampler (:func:`snnax_nas.genotype.sample_genotypes`,
forward or backward space as ``cfg.backward``), one genotype shared by every
cell, score each with its own fresh weights and take the argmax. Duplicates
are kept, as the reference keeps them: the reference draws 5000 times with
replacement and initialises a fresh network for each draw, so a genotype drawn
twice is scored twice with different random weights (and may win on the
luckier draw). Candidate ``i`` is the i-th draw and has candidate id ``i``.
An optional memory budget is applied BEFORE scoring: over-budget draws are
never scored, only counted.

**SpikeNAS memory-aware search** (:func:`spikenas_search`). SpikeNAS has no
public code (spec §9); this is our design from the paper's description:

  (a) a reduced op set (presets ``spikenas`` = skip, conv3x3 and
      ``spikenas3`` = skip, conv3x3, avgpool3x3; any op set works) and a
      configurable number of cells (``cfg.cells_per_stage``);
  (b) the candidates of a step are distinct canonical cells
      (:func:`snnax_nas.genotype.unique_canonical`), so no two equivalent
      cells are scored in one step;
  (c) the analytic memory model (:func:`snnax_nas.memory.param_count` of the
      full per-cell network, at ``weight_bits``) runs first: a candidate over
      the budget is never scored;
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
  distinct canonical valid cells, else a sample of ``num_candidates``
  distinct cells drawn with the reference sampler from a generator seeded by
  ``(seed, step)``. Candidate ids are ``step * ID_STRIDE + index in the pool``.
  A budget below the smallest network of the space raises ValueError stating
  that minimum.

**LightSNN pruning** (:func:`lightsnn_prune`, TE-NAS style, spec §9). Start
from the supernet with every op of the op set on every edge (12 edges with
backward cells, 6 without), one mask ``[E, |ops|]`` shared by all cells as
LightSNN shares its α. An edge outputs the MEAN of its active ops, ``zero``
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
feedback state never reaches the cell output (spec §9, a bug); we implement the
paper's intent with the core network's backward semantics, where feedback
enters the next timestep's node values.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import time
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from snnax_nas import distributed
from snnax_nas import flops
from snnax_nas import genotype as genotype_lib
from snnax_nas import memory
from snnax_nas import network as network_lib
from snnax_nas import ops as ops_lib
from snnax_nas import results
from snnax_nas import score

METHODS = ("random", "spikenas", "lightsnn")
# SpikeNAS candidate ids are step * ID_STRIDE + pool index: unique over the
# search and independent of how many candidates earlier steps skipped.
ID_STRIDE = 1 << 20
_MAX_ID = (1 << 31) - 1  # candidate ids are int32 in the scorer

# progress(label, done, total): done=0 before a step's first scorer call, then
# after every call; label names the step. Counts exclude rows already stored.
ProgressFn = Callable[[str, int, int], None]
Record = results.Row


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
    budget_params: parameter budget, or None.
    budget_bytes: weight-memory budget in bytes, or None.
    candidates_scored: candidates (LightSNN: pruning evaluations) the method
      scored to decide, loaded from the store or scored in this run.
    candidates_skipped: candidates the budget removed before scoring.
    evaluations: score evaluations the method used to decide (equal to
      ``candidates_scored``; 60 for LightSNN's 3 ops x 12 edges).
    extra_evaluations: evaluations made only to report a score (LightSNN:
      1, the pruned network; 0 otherwise).
    steps: per-step summaries (SpikeNAS cell steps, LightSNN rounds).
    records: one :class:`snnax_nas.results.Row` per scored candidate.
    notes: remarks about the result (e.g. an invalid pruned cell).
    compile_seconds: wall time of the first scorer call of this run (it
      includes compilation).
    run_seconds: wall time of the other scorer calls of this run.
    wall_seconds: wall time of the whole search call.
    scored_this_run: evaluations computed in this run.
    loaded_from_store: evaluations loaded from the results store.
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
    out["score"] = _json_float(self.score)
    out["timing"] = {k: getattr(self, k) for k in self.TIMING_FIELDS}
    return out


def _json_float(x: float) -> Optional[float]:
  x = float(x)
  return x if math.isfinite(x) else None


# ----------------------------------------------------------------------------
# Spaces, strings and the memory model.

@functools.lru_cache(maxsize=16)
def search_space(ops: ops_lib.OpSet, backward: bool) -> np.ndarray:
  """Every distinct canonical valid cell of an op set.

  Args:
    ops: the op set (an :class:`snnax_nas.ops.OpSet`; hashable, so cached).
    backward: the backward (feedback) space instead of the forward one.

  Returns:
    Read-only ``int8 [M, 4, 4]`` in enumeration order (e.g. M = 7,556 for
    ``snasnet`` forward, 104,708 backward; 64 for ``spikenas`` forward).
  """
  raw = (genotype_lib.enumerate_backward if backward else genotype_lib.enumerate_forward)(ops)
  out = genotype_lib.unique_canonical(raw[genotype_lib.is_valid(raw)])
  out.setflags(write=False)
  return out


def candidate_pool(ops, backward: bool, num_candidates: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, bool]:
  """The candidate cells of one SpikeNAS step.

  Args:
    ops: the op set (anything :func:`snnax_nas.ops.op_set` accepts).
    backward: backward space instead of forward.
    num_candidates: the most distinct cells to return, >= 1.
    rng: generator for the sampled case (unused when the space is small).

  Returns:
    ``(pool int8 [M, 4, 4], enumerated)``: the whole space (``enumerated``
    True) when it has at most ``num_candidates`` distinct canonical valid
    cells, else ``num_candidates`` distinct cells drawn with the reference
    sampler, deduplicated by canonical form, in order of first draw.
  """
  ops = ops_lib.op_set(ops)
  space = search_space(ops, bool(backward))
  if len(space) <= num_candidates:
    return np.array(space), True
  got = np.zeros((0, 4, 4), genotype_lib.GENOTYPE_DTYPE)
  while len(got) < num_candidates:
    need = num_candidates - len(got)
    draw = genotype_lib.sample_genotypes(rng, 2 * need + 16, ops, backward=backward)
    got = genotype_lib.unique_canonical(np.concatenate([got, draw]))
  return got[:num_candidates], False


def arch_strings(cells) -> list[str]:
  """Strings of per-cell architectures.

  Args:
    cells: int ``[N, L, 4, 4]`` genotypes.

  Returns:
    ``N`` strings: one genotype string when all cells agree, else the cells'
    strings joined with ``|`` (the form :func:`snnax_nas.score.as_genotypes`
    parses).
  """
  cells = np.asarray(cells)
  n, num_cells = cells.shape[:2]
  flat = genotype_lib.format_genotypes(cells.reshape(-1, 4, 4))
  out = []
  for i in range(n):
    row = flat[i * num_cells:(i + 1) * num_cells]
    out.append(row[0] if all(r == row[0] for r in row) else "|".join(row))
  return out


def _check_budget_args(budget_params, budget_bytes, weight_bits):
  if weight_bits not in memory.WEIGHT_BITS:
    raise ValueError(f"weight_bits must be one of {memory.WEIGHT_BITS}, got {weight_bits!r}")
  for name, value in (("budget_params", budget_params), ("budget_bytes", budget_bytes)):
    if value is not None and not value > 0:
      raise ValueError(f"{name} must be > 0, got {value!r}")


def fits_budget(params, *, budget_params: Optional[float] = None,
                budget_bytes: Optional[float] = None, weight_bits: int = 32) -> np.ndarray:
  """bool [N]: which parameter counts fit the budget (same rule as
  :func:`snnax_nas.memory.within_budget`, on counts already computed).

  Args:
    params: int parameter counts [N].
    budget_params: most parameters, or None.
    budget_bytes: most weight bytes at ``weight_bits``, or None.
    weight_bits: 32, 16, 8 or 4.
  """
  params = np.asarray(params, np.int64)
  ok = np.ones(params.shape, bool)
  if budget_params is not None:
    ok &= params <= budget_params
  if budget_bytes is not None:
    ok &= memory.weight_bytes(params, weight_bits) <= budget_bytes
  return ok


def _budget_text(budget_params, budget_bytes, weight_bits) -> str:
  parts = []
  if budget_params is not None:
    parts.append(f"{budget_params:,} params")
  if budget_bytes is not None:
    parts.append(f"{budget_bytes:,} bytes ({budget_bytes / 1e6:.6g} MB) at {weight_bits}-bit "
                 "weights")
  return " and ".join(parts)


def smallest_network(cfg: network_lib.NetworkConfig) -> tuple[str, int]:
  """The cheapest network of the search space of ``cfg``.

  Per-cell search cannot go lower than one cell shared by all cells: a cell's
  cost is a sum of per-edge op costs whose order does not depend on the width,
  so the cheapest cell is the same in every cell.

  Returns:
    ``(genotype string, parameter count)``.
  """
  space = search_space(cfg.ops, cfg.backward)
  params = memory.param_count(space, cfg)
  i = int(np.argmin(params))
  return genotype_lib.format_genotype(space[i]), int(params[i])


def check_budget(cfg: network_lib.NetworkConfig, *, budget_params=None, budget_bytes=None,
                 weight_bits: int = 32):
  """Checks that the budget admits at least the smallest network of the space.

  Raises:
    ValueError: bad budget arguments, or a budget below the minimum; the
      message states the minimum in params and bytes.
  """
  _check_budget_args(budget_params, budget_bytes, weight_bits)
  if budget_params is None and budget_bytes is None:
    return
  g, p = smallest_network(cfg)
  if not fits_budget([p], budget_params=budget_params, budget_bytes=budget_bytes,
                     weight_bits=weight_bits)[0]:
    space = "backward" if cfg.backward else "forward"
    raise ValueError(
        f"memory budget of {_budget_text(budget_params, budget_bytes, weight_bits)} is below "
        f"the smallest network of the search space: minimum {p:,} params = "
        f"{int(memory.weight_bytes(p, weight_bits)):,} bytes at {weight_bits}-bit weights "
        f"(cell {g} in all {cfg.num_cells} cells, op set {cfg.ops}, {space} space, "
        f"width {cfg.width})")


def supernet_param_count(masks, cfg: network_lib.NetworkConfig) -> np.ndarray:
  """Parameters of supernets restricted to op masks (LightSNN evaluations).

  Same formula as :mod:`snnax_nas.memory` (fixed part plus ``k*k*C*C + 2C``
  per active conv op of each edge of each cell); no dead-edge pruning, since
  a supernet keeps every active op.

  Args:
    masks: bool ``[..., E, len(cfg.ops.ops)]`` active ops per edge (columns in
      the op set's listed order), shared by all cells.
    cfg: the network config.

  Returns:
    int64 ``[...]``.
  """
  masks = np.asarray(masks, bool)
  total = np.full(masks.shape[:-2], memory.fixed_params(cfg), np.int64)
  for _, _, c in cfg.cell_shapes:
    cost = np.array([op.kernel * op.kernel * c * c + 2 * c if op.has_lif else 0
                     for op in cfg.ops.ops], np.int64)
    total = total + (masks.astype(np.int64) @ cost).sum(-1)
  return total


# ----------------------------------------------------------------------------
# Scoring through the store.

def _key_data(key) -> list:
  key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    key = jax.random.key_data(key)
  return np.asarray(key).ravel().tolist()


def _fingerprint(method: str, cfg, images, key, kernel: str, **args) -> dict:
  """Everything that determines a search's results (chunking excluded: a
  score does not depend on it, so a resumed run may change ``chunk_size``)."""
  images = np.ascontiguousarray(np.asarray(images, np.float32))
  return dict(method=method, cfg=repr(cfg), kernel=kernel,
              images=f"{list(images.shape)}:{hashlib.sha256(images.tobytes()).hexdigest()}",
              key=_key_data(key), **args)


class _StoreScorer:
  """Scores candidates through a results store.

  Rows already stored are loaded; the others are scored by
  :func:`snnax_nas.score.score_candidates`, chunk by chunk (or in one call),
  and each call's rows are committed in one transaction before the next.
  """

  def __init__(self, images, key, cfg, store: results.ResultsStore, *, kernel: str,
               chunk_size: int, map_batch_size: int, weight_bits: int,
               progress: Optional[ProgressFn]):
    if int(chunk_size) < 1:
      raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    self.images = jnp.asarray(images, jnp.float32)
    self.key, self.cfg, self.store = key, cfg, store
    self.kernel, self.chunk_size, self.map_batch_size = kernel, int(chunk_size), map_batch_size
    self.weight_bits, self.progress = weight_bits, progress
    self.calls = 0
    self.compile_seconds = self.run_seconds = 0.0
    self.scored = self.loaded = 0
    self.records: list[results.Row] = []

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
    if ids.size and (ids.min() < 0 or scorer_ids.max() > _MAX_ID):
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
          None, self.images, self.key, self.cfg, kernel=self.kernel,
          chunk_size=self.chunk_size, map_batch_size=self.map_batch_size,
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
      new = [results.Row(step, int(ids[k]), texts[k], float(group_scores[j]),
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
    return {int(ids[k]): results.Row(step, int(ids[k]), texts[k], float(stored_scores[k]),
                                     bool(stored_singular[k]), int(params[k]), int(wbytes[k]))
            for k in np.flatnonzero(found)}

  def finish(self, result: SearchResult, t0: float) -> SearchResult:
    result.records = list(self.records)
    result.compile_seconds = self.compile_seconds
    result.run_seconds = self.run_seconds
    result.scored_this_run = self.scored
    result.loaded_from_store = self.loaded
    result.wall_seconds = time.perf_counter() - t0
    return result


def _argmax(scores: np.ndarray) -> int:
  """First index of the highest score (-inf scores lose to any finite one)."""
  return int(np.argmax(np.where(np.isnan(scores), -np.inf, scores)))


def _validate_common(cfg, kernel, chunk_size):
  if not isinstance(cfg, network_lib.NetworkConfig):
    raise ValueError(f"cfg must be a NetworkConfig, got {type(cfg).__name__}")
  if kernel not in score.KERNELS:
    raise ValueError(f"unknown kernel {kernel!r}; choose from {score.KERNELS}")
  if int(chunk_size) < 1:
    raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")


# ----------------------------------------------------------------------------
# SNASNet random search.

def random_search(images, key: jax.Array, cfg: network_lib.NetworkConfig, *,
                  num_candidates: int = 5000, seed: int = 0, genotypes=None,
                  budget_params: Optional[int] = None, budget_bytes: Optional[int] = None,
                  weight_bits: int = 32, kernel: str = "sahd", chunk_size: int = 8,
                  map_batch_size: int = 1, store: Optional[results.ResultsStore] = None,
                  progress: Optional[ProgressFn] = None) -> SearchResult:
  """SNASNet: score N sampled genotypes (optionally budget-filtered), argmax.

  Args:
    images: normalised score batches [R, B, H, W, C].
    key: PRNG key of the weights and dropout (candidate ``i`` uses
      ``fold_in(key, i)``).
    cfg: the network config; ``cfg.ops`` and ``cfg.backward`` define the space.
    num_candidates: draws N (reference: 5000); ignored with ``genotypes``.
    seed: seed of the numpy sampler.
    genotypes: optional explicit candidates instead of sampling (anything
      :func:`snnax_nas.score.as_genotypes` accepts: strings, [N, 4, 4] or
      [N, L, 4, 4]).
    budget_params: parameter budget (candidates above it are never scored).
    budget_bytes: weight-memory budget in bytes at ``weight_bits``.
    weight_bits: weight precision of the memory model: 32, 16, 8 or 4.
    kernel: ``"sahd"`` or ``"hamming"``.
    chunk_size: candidates per scorer call (= per store commit).
    map_batch_size: candidates vmapped together inside a chunk.
    store: results store for resuming (default: a throwaway in-memory one).
    progress: ``progress(label, done, total)`` after each chunk.

  Returns:
    A :class:`SearchResult` (step 0 only; duplicates scored separately).

  Raises:
    ValueError: bad arguments, a budget below the smallest network (the
      message states it), no candidate within the budget, or a store holding
      another search.
  """
  t0 = time.perf_counter()
  _validate_common(cfg, kernel, chunk_size)
  _check_budget_args(budget_params, budget_bytes, weight_bits)
  if genotypes is None:
    if int(num_candidates) != num_candidates or num_candidates < 1:
      raise ValueError(f"num_candidates must be an integer >= 1, got {num_candidates!r}")
    check_budget(cfg, budget_params=budget_params, budget_bytes=budget_bytes,
                 weight_bits=weight_bits)
    drawn = genotype_lib.sample_genotypes(np.random.default_rng(seed), int(num_candidates),
                                          cfg.ops, backward=cfg.backward)
    cells = score.as_genotypes(drawn, cfg)
  else:
    cells = score.as_genotypes(genotypes, cfg)
    if len(cells) == 0:
      raise ValueError("no candidate genotypes given")
  n = len(cells)
  params = memory.param_count(cells, cfg)
  ok = fits_budget(params, budget_params=budget_params, budget_bytes=budget_bytes,
                   weight_bits=weight_bits)
  if not ok.any():
    cheapest = int(np.argmin(params))
    raise ValueError(
        f"none of the {n} candidates fits the memory budget of "
        f"{_budget_text(budget_params, budget_bytes, weight_bits)}; the cheapest needs "
        f"{int(params[cheapest]):,} params = "
        f"{int(memory.weight_bytes(params[cheapest], weight_bits)):,} bytes")
  texts = arch_strings(cells)
  store = store if store is not None else results.ResultsStore()
  store.bind(_fingerprint(
      "random", cfg, images, key, kernel, num_candidates=int(num_candidates), seed=int(seed),
      genotypes=None if genotypes is None else texts, budget_params=budget_params,
      budget_bytes=budget_bytes, weight_bits=weight_bits))
  scorer = _StoreScorer(images, key, cfg, store, kernel=kernel, chunk_size=chunk_size,
                        map_batch_size=map_batch_size, weight_bits=weight_bits,
                        progress=progress)
  idx = np.flatnonzero(ok)
  scores, singular = scorer.run(0, idx, [texts[i] for i in idx], score.arch_of(cells[idx], cfg),
                                params[idx], "random")
  b = _argmax(scores)
  best = int(idx[b])
  result = SearchResult(
      method="random", genotype=texts[best], score=float(scores[b]), singular=bool(singular[b]),
      params=int(params[best]), weight_bytes=int(memory.weight_bytes(params[best], weight_bits)),
      weight_bits=weight_bits, budget_params=budget_params, budget_bytes=budget_bytes,
      candidates_scored=len(idx), candidates_skipped=int(n - len(idx)), evaluations=len(idx),
      steps=[dict(step=0, candidates=n, scored=len(idx), skipped=int(n - len(idx)),
                  best_id=best, genotype=texts[best], score=_json_float(scores[b]))])
  return scorer.finish(result, t0)


# ----------------------------------------------------------------------------
# SpikeNAS memory-aware consecutive per-cell search.

def spikenas_search(images, key: jax.Array, cfg: network_lib.NetworkConfig, *,
                    num_candidates: int = 64, seed: int = 0,
                    budget_params: Optional[int] = None, budget_bytes: Optional[int] = None,
                    weight_bits: int = 32, kernel: str = "sahd", chunk_size: int = 8,
                    map_batch_size: int = 1, store: Optional[results.ResultsStore] = None,
                    progress: Optional[ProgressFn] = None) -> SearchResult:
  """SpikeNAS: memory-aware consecutive per-cell search (module docstring).

  Args:
    images: normalised score batches [R, B, H, W, C].
    key: PRNG key of the weights (candidate id ``c`` uses ``fold_in(key, c)``).
    cfg: the network config: ``ops`` (e.g. the ``spikenas`` preset),
      ``cells_per_stage`` (L = 2 * cells_per_stage cells) and ``backward``.
    num_candidates: the most distinct cells per step; the whole space when it
      is no larger.
    seed: seed of the sampled pools (step ``l`` uses ``(seed, l)``).
    budget_params: parameter budget of the full network.
    budget_bytes: weight-memory budget in bytes at ``weight_bits``.
    weight_bits: weight precision: 32, 16, 8 or 4.
    kernel: ``"sahd"`` or ``"hamming"``.
    chunk_size: candidates per scorer call (= per store commit).
    map_batch_size: candidates vmapped together inside a chunk.
    store: results store for resuming (default: a throwaway in-memory one).
    progress: ``progress(label, done, total)`` after each chunk.

  Returns:
    A :class:`SearchResult`; ``steps[l]`` holds step ``l``'s pool size,
    scored/skipped counts and choice.

  Raises:
    ValueError: bad arguments, a budget below the smallest network (the
      message states it), no step-0 candidate within the budget, or a store
      holding another search.
  """
  t0 = time.perf_counter()
  _validate_common(cfg, kernel, chunk_size)
  if int(num_candidates) != num_candidates or not 1 <= num_candidates < ID_STRIDE - 1:
    raise ValueError(f"num_candidates must be an integer in [1, {ID_STRIDE - 1}), "
                     f"got {num_candidates!r}")
  num_cells = cfg.num_cells
  if num_cells * ID_STRIDE > _MAX_ID:
    raise ValueError(f"{num_cells} cells exceed the candidate id range")
  check_budget(cfg, budget_params=budget_params, budget_bytes=budget_bytes,
               weight_bits=weight_bits)
  budget = dict(budget_params=budget_params, budget_bytes=budget_bytes, weight_bits=weight_bits)

  def pool_of(step):
    rng = np.random.default_rng([int(seed), step])
    return candidate_pool(cfg.ops, cfg.backward, int(num_candidates), rng)

  def step_cells(pool, chosen, step):
    cells = np.empty((len(pool), num_cells, 4, 4), np.int32)
    if step:
      cells[:, :step] = chosen[:step]
    cells[:, step:] = pool[:, None]
    return cells

  # Step 0 is checked before the store is touched: a hopeless budget leaves
  # no trace in the workdir.
  pool0, _ = pool_of(0)
  params0 = memory.param_count(step_cells(pool0.astype(np.int32), None, 0), cfg)
  if not fits_budget(params0, **budget).any():
    c = int(np.argmin(params0))
    raise ValueError(
        f"none of the {len(pool0)} sampled step-0 cells fits the memory budget of "
        f"{_budget_text(budget_params, budget_bytes, weight_bits)} (cheapest sampled "
        f"{genotype_lib.format_genotype(pool0[c])}: {int(params0[c]):,} params; the "
        f"space's smallest network: {smallest_network(cfg)[1]:,} params); raise "
        "num_candidates or the budget")
  store = store if store is not None else results.ResultsStore()
  store.bind(_fingerprint("spikenas", cfg, images, key, kernel,
                          num_candidates=int(num_candidates), seed=int(seed), **budget))
  scorer = _StoreScorer(images, key, cfg, store, kernel=kernel, chunk_size=chunk_size,
                        map_batch_size=map_batch_size, weight_bits=weight_bits,
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
    ok = fits_budget(params, **budget)
    idx = np.flatnonzero(ok)
    texts = arch_strings(cells[idx])
    scores, singular = scorer.run(step, step * ID_STRIDE + idx, texts,
                                  score.arch_of(cells[idx], cfg), params[idx],
                                  f"spikenas step {step + 1}/{num_cells}")
    b = _argmax(scores)
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
                      genotype=texts[b], score=_json_float(scores[b]), params=int(params[win])))
  result = SearchResult(
      method="spikenas", genotype=best["genotype"], score=best["score"],
      singular=best["singular"], params=best["params"],
      weight_bytes=int(memory.weight_bytes(best["params"], weight_bits)),
      weight_bits=weight_bits, budget_params=budget_params, budget_bytes=budget_bytes,
      candidates_scored=scored, candidates_skipped=skipped, evaluations=scored, steps=steps)
  return scorer.finish(result, t0)


# ----------------------------------------------------------------------------
# LightSNN pruning.

def _edge_name(e: int) -> str:
  i, j = genotype_lib.EDGES[e]
  return f"{i}->{j}"


def mask_string(mask: np.ndarray, ops: ops_lib.OpSet) -> str:
  """``"mask:012,012,..."``: the genotype digits of each edge's active ops
  (edges in :data:`snnax_nas.genotype.EDGES` order, ``-`` for none)."""
  digits = [0 if op.kind == "zero" else ops.digit(op.name) for op in ops.ops]
  return "mask:" + ",".join("".join(str(digits[j]) for j in np.flatnonzero(row)) or "-"
                            for row in np.asarray(mask, bool))


def mask_arch(masks, cfg: network_lib.NetworkConfig) -> np.ndarray:
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


def lightsnn_prune(images, key: jax.Array, cfg: network_lib.NetworkConfig, *,
                   candidate_id: int = 0, weight_bits: int = 32, kernel: str = "sahd",
                   chunk_size: int = 8, map_batch_size: int = 1, score_final: bool = True,
                   store: Optional[results.ResultsStore] = None,
                   progress: Optional[ProgressFn] = None) -> SearchResult:
  """LightSNN: prune a shared-α supernet by op importance (module docstring).

  Args:
    images: normalised score batches [R, B, H, W, C] (LightSNN: B = 64).
    key: PRNG key; every evaluation uses ``fold_in(key, candidate_id)``, i.e.
      one supernet's weights.
    cfg: the network config (``ops``: e.g. the ``lightsnn`` preset;
      ``backward``: 12 edges instead of 6).
    candidate_id: the weights' id.
    weight_bits: weight precision of the reported memory.
    kernel: ``"sahd"`` or ``"hamming"``.
    chunk_size: compiled chunk size inside a round's single scorer call.
    map_batch_size: candidates vmapped together inside a chunk.
    score_final: also score the pruned network (canonical form, same supernet
      weights) for ``score``; one extra evaluation after the rounds.
      Otherwise ``score`` is NaN.
    store: results store for resuming (rounds are its steps; the final
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
  _validate_common(cfg, kernel, chunk_size)
  _check_budget_args(None, None, weight_bits)
  if not 0 <= int(candidate_id) <= _MAX_ID:
    raise ValueError(f"candidate_id must be in [0, {_MAX_ID}], got {candidate_id!r}")
  ops = cfg.ops
  num_edges, num_ops = cfg.num_edges, len(ops.ops)
  store = store if store is not None else results.ResultsStore()
  store.bind(_fingerprint("lightsnn", cfg, images, key, kernel, candidate_id=int(candidate_id),
                          weight_bits=weight_bits, score_final=bool(score_final)))
  scorer = _StoreScorer(images, key, cfg, store, kernel=kernel, chunk_size=chunk_size,
                        map_batch_size=map_batch_size, weight_bits=weight_bits,
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
    scores, _ = scorer.run(rnd, np.arange(m), [mask_string(x, ops) for x in masks],
                           mask_arch(masks, cfg), supernet_param_count(masks, cfg),
                           f"lightsnn round {rnd + 1}", one_call=True,
                           scorer_ids=np.full(m, int(candidate_id)))
    dropped = {}
    for e in sorted({e for e, _ in evals}):
      ks = [k for k, (ee, _) in enumerate(evals) if ee == e]
      k = ks[_argmax(scores[ks])]  # removing this op helps the score most
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
    cells = score.as_genotypes(cell[None], cfg)
    s, sing = scorer.run(rnd, [0], [text], score.arch_of(cells, cfg), [params],
                         "lightsnn final", one_call=True, scorer_ids=[int(candidate_id)])
    final_score, final_singular = float(s[0]), bool(sing[0])
  result = SearchResult(
      method="lightsnn", genotype=text, score=final_score, singular=final_singular,
      params=params, weight_bytes=int(memory.weight_bytes(params, weight_bits)),
      weight_bits=weight_bits, budget_params=None, budget_bytes=None,
      candidates_scored=evaluations, candidates_skipped=0, evaluations=evaluations,
      extra_evaluations=int(bool(score_final)), steps=steps, notes=notes)
  return scorer.finish(result, t0)
