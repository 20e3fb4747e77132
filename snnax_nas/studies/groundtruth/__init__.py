"""Ground truth for the searches from a table of trained architectures, without
training.

A table of trained accuracies (CSV ``genotype,accuracy[,params]``, e.g. the
SpikeNAS-Bench cells: op set ``skip,conv3x3@0.5,conv3x3,conv3x3@1.5``, forward
cells, one genotype shared by all cells) is the search space: every search
below picks one of its cells, so the pick's accuracy is known. The table is
checked against what it claims: accuracies in [0, 100]; a ``params`` column
equal, row by row, to the analytic count at ``trained`` (of the cell, or of
the cell as written with its dead-path convs, which tools that do not prune
cells count), else refused naming the network preset that matches; rows of
one canonical cell are merged by the mean, and those whose accuracies
differ by more than :data:`DUPLICATE_TOLERANCE` are reported. Memory is the
analytic count (:func:`snnax_nas.memory.param_count`) of each cell in the
network the table was trained at (``trained``), and a budget is a fraction
of the table's weight range (``min + f * (max - min)``) or MB at
``weight_bits``.

Per seed ``s`` the scoring network (``network``, usually far narrower than
the trained one, for speed) scores every cell of the table once: weights of
cell ``i`` from ``fold_in(key(seed + s), i)``, score batches drawn with seed
``seed + s``. The methods then pick from these scores:

* ``spikenas``: SpikeNAS's memory-aware search restricted to the table. Its
  first step (SNASNet's setting: one genotype shared by all cells, which is
  what the table holds) draws a pool of ``spikenas_candidates`` distinct
  cells (the whole table when it is no larger), never scores a pool cell over
  the budget, and keeps the best-scoring one. The per-cell steps that follow
  in :func:`snnax_nas.search.spikenas_search` would build networks of mixed
  cells, which the table has no accuracy for: this is the shared-cell result.
* ``random``: SNASNet random search: ``random_draws`` cells drawn uniformly
  with replacement (as the reference sampler draws; repeated draws are scored
  again), all scored (it is not memory-aware), the best-scoring draw that fits
  the budget kept. One set of draws per seed serves every budget.
* ``random_cell``: a uniformly random cell within the budget (nothing scored).
* ``largest``: the cell with the most parameters within the budget, ties
  broken uniformly at random (nothing scored).

Per (budget, method) and seed: the pick's true accuracy, its percentile among
the in-budget cells (100 x the fraction of them with accuracy <= the pick's),
the regret to the best in-budget cell, the candidates scored, and the search
time; each is given as the mean over seeds with a 95 % bootstrap interval
of the mean (:func:`snnax_nas.stats.bootstrap_interval`), and SpikeNAS's
accuracy minus each other method's (:func:`snnax_nas.stats.paired_differences`), paired by seed (same scores, same
budget), which separates smaller differences than two unpaired intervals.

Search time, measured: every cell of the table is scored in one
:func:`snnax_nas.score.score_candidates` call per seed after the scorer has
been compiled (compile time is excluded and reported apart), and that call's
wall time is shared among the cells in proportion to their executed FLOPs
(:func:`snnax_nas.flops.candidate_flops`). A method's time is the sum of
these shares over the candidates it scored (each repeated draw again). The
total per seed is measured; the split by FLOPs is a model (convolutions,
linear layers and Grams counted; elementwise work not).

Operation significance (:func:`op_significance`): for each op, the best and
median accuracy of the in-budget cells of the table that do not use it,
exact and without scoring.
"""

from __future__ import annotations

import math
import os
import time
from typing import Callable
from typing import Optional
from typing import Sequence
import zlib

import numpy as np

from snnax_nas import configs
from snnax_nas import genotype as genotype_lib
from snnax_nas import memory
from snnax_nas import ops as ops_lib
from snnax_nas import stats
from snnax_nas.budget import Budget
from snnax_nas.studies.groundtruth import tables
from snnax_nas.studies.groundtruth.table import ACCURACY_RANGE  # noqa: F401 (public)
from snnax_nas.studies.groundtruth.table import DUPLICATE_TOLERANCE
from snnax_nas.studies.groundtruth.table import Table
from snnax_nas.studies.groundtruth.table import check_params
from snnax_nas.studies.groundtruth.table import read_table

METHODS = ("spikenas", "random", "random_cell", "largest")
METRICS = ("accuracy", "percentile", "regret", "scored", "seconds")


def _parse_mb(text: str) -> float:
  """One ``budget.mb`` item: a positive, finite number of MB."""
  try:
    mb = float(text)
  except ValueError:
    mb = math.nan
  if not (math.isfinite(mb) and mb > 0):
    raise ValueError(f"--config.budget.mb: {text.strip()!r} is not a positive number of MB")
  return mb


def budgets_bytes(params: np.ndarray, weight_bits: int, fractions: Sequence[float] = (),
                  mbs: Sequence[float] = ()) -> list:
  """The budgets of a run, in bytes of weights at ``weight_bits``.

  Args:
    params: int [N] parameter counts of the table's cells.
    weight_bits: 32, 16, 8 or 4.
    fractions: of the table's weight range, each in [0, 1].
    mbs: MB (10^6 bytes).

  Returns:
    ``[(label, bytes)]``: fractions first (label ``"f=0.25"``), then MBs
    (label ``"2.5 MB"``).
  """
  lo, hi = (int(memory.weight_bytes(int(p), weight_bits)) for p in (params.min(), params.max()))
  out = []
  for f in fractions:
    memory.parse_fractions(f)  # checks the range, names a bad value
    out.append((f"f={f:g}", int(math.floor(lo + f * (hi - lo)))))
  for mb in mbs:
    out.append((f"{mb:g} MB", memory.budget_bytes_from_mb(mb)))
  return out


# ----------------------------------------------------------------------------
# The methods: each returns (pick index or -1 when nothing fits, indices scored).

def pick_spikenas(scores: np.ndarray, fits: np.ndarray, rng: np.random.Generator,
                  num_candidates: int) -> tuple[int, np.ndarray]:
  """SpikeNAS's shared-cell step on the table (module docstring).

  Args:
    scores: float [N] scores of the table's cells (-inf: singular).
    fits: bool [N], within the budget.
    rng: draws the pool when the table holds more than ``num_candidates``.
    num_candidates: pool size, >= 1.

  Returns:
    ``(index, scored)``: the best-scoring in-budget pool cell (the first of
    equal scores, in pool order; -1 when no pool cell fits) and int [M] the
    pool cells scored.
  """
  n = len(scores)
  pool = np.arange(n) if n <= num_candidates else rng.choice(n, num_candidates, replace=False)
  scored = pool[fits[pool]]
  return _best(scores, scored), scored


def pick_random(scores: np.ndarray, fits: np.ndarray,
                draws: np.ndarray) -> tuple[int, np.ndarray]:
  """SNASNet random search on the table: every draw scored, the best
  in-budget draw kept.

  Args:
    scores: float [N] scores of the table's cells.
    fits: bool [N], within the budget.
    draws: int [D] cell indices drawn (with replacement; the same draws for
      every budget of a seed).

  Returns:
    ``(index, scored)``: the best-scoring in-budget draw (-1 when none fits)
    and ``draws`` (all are scored).
  """
  return _best(scores, draws[fits[draws]]), draws


def pick_random_cell(fits: np.ndarray, rng: np.random.Generator) -> int:
  """A uniformly random in-budget cell (-1 when none fits); nothing scored."""
  ok = np.flatnonzero(fits)
  return int(rng.choice(ok)) if len(ok) else -1


def pick_largest(params: np.ndarray, fits: np.ndarray, rng: np.random.Generator) -> int:
  """The in-budget cell with the most parameters, ties broken uniformly at
  random (-1 when none fits); nothing scored."""
  ok = np.flatnonzero(fits)
  if not len(ok):
    return -1
  top = ok[params[ok] == params[ok].max()]
  return int(rng.choice(top))


def _best(scores: np.ndarray, idx: np.ndarray) -> int:
  """The best-scoring of ``idx`` by :func:`snnax_nas.stats.best_index`; -1 if empty."""
  b = stats.best_index(scores[idx])
  return int(idx[b]) if b >= 0 else -1


def pick_quality(accuracy: np.ndarray, fits: np.ndarray, pick: int) -> dict:
  """True accuracy of a pick, its percentile among the in-budget cells and
  its regret to the best of them.

  Args:
    accuracy: float [N] trained accuracies (%).
    fits: bool [N], within the budget.
    pick: index of the picked cell, or -1 (no pick: NaN everywhere).

  Returns:
    ``{"accuracy", "percentile", "regret"}``: the pick's accuracy (%), 100 x
    the fraction of in-budget cells whose accuracy is <= it, and the best
    in-budget accuracy minus it (points, >= 0).
  """
  if pick < 0:
    return dict(accuracy=math.nan, percentile=math.nan, regret=math.nan)
  if not fits[pick]:
    raise ValueError(f"cell {pick} is over the budget; a pick must fit it")
  inside = accuracy[fits]
  a = float(accuracy[pick])
  return dict(accuracy=a, percentile=float(100.0 * np.mean(inside <= a)),
              regret=float(inside.max() - a))


def evaluate_seed(scores: np.ndarray, seconds: np.ndarray, accuracy: np.ndarray,
                  params: np.ndarray, budgets: Sequence[tuple], methods: Sequence[str],
                  seed: int, *, spikenas_candidates: int, random_draws: int) -> list:
  """Every method under every budget for one seed's scores.

  Args:
    scores: float [N] this seed's scores of the table's cells.
    seconds: float [N] this seed's measured scoring time per cell.
    accuracy: float [N] trained accuracies.
    params: int [N] parameter counts at the trained network.
    budgets: ``[(label, fits bool [N])]``: which cells each budget admits.
    methods: names of :data:`METHODS`.
    seed: the seed. SNASNet's draws come from ``default_rng([seed, 1])``
      (the same for every budget); the other methods' from ``default_rng([seed,
      method index, crc32(budget label)])``.
    spikenas_candidates: SpikeNAS pool size.
    random_draws: SNASNet draws.

  Returns:
    One dict per (budget, method): budget, method, seed, pick (genotype
    index), the :func:`pick_quality` fields, scored, seconds.
  """
  out = []
  draws = np.random.default_rng([seed, 1]).integers(0, len(scores), random_draws)
  for label, fits in budgets:
    for m in methods:
      rng = np.random.default_rng([seed, METHODS.index(m), _label_seed(label)])
      scored = np.zeros(0, np.int64)
      if m == "spikenas":
        pick, scored = pick_spikenas(scores, fits, rng, spikenas_candidates)
      elif m == "random":
        pick, scored = pick_random(scores, fits, draws)
      elif m == "random_cell":
        pick = pick_random_cell(fits, rng)
      elif m == "largest":
        pick = pick_largest(params, fits, rng)
      else:
        raise ValueError(f"unknown method {m!r}; methods: {', '.join(METHODS)}")
      out.append(dict(budget=label, method=m, seed=seed, pick=pick,
                      **pick_quality(accuracy, fits, pick), scored=int(len(scored)),
                      seconds=float(seconds[scored].sum())))
  return out


def _label_seed(label: str) -> int:
  """A stable integer of a budget label (Python's hash is salted per process)."""
  return zlib.crc32(label.encode())


def op_significance(genotypes: np.ndarray, accuracy: np.ndarray, ops: ops_lib.OpSet,
                    budgets: Sequence[tuple]) -> list:
  """How much each op is worth on the table, exactly: for each budget, the
  best and median accuracy of the in-budget cells, of all of them and of those
  that do not use the op.

  Args:
    genotypes: int [N, 4, 4] the table's canonical cells.
    accuracy: float [N] trained accuracies.
    ops: their op set.
    budgets: ``[(label, fits bool [N])]``.

  Returns:
    One dict per (budget, space): budget, removed ("" for the full space),
    cells, best, median, best_delta and median_delta (to the full space; NaN
    when no cell is left).
  """
  rows_, cols = zip(*genotype_lib.FORWARD_EDGES)
  digits = np.asarray(genotypes)[:, list(rows_), list(cols)]  # [N, 6]
  out = []
  for label, fits in budgets:
    full = None
    for d in range(0, ops.num_digits):
      if d and ops.op_of_digit(d).kind == "zero":
        continue
      keep = fits & ~(digits == d).any(-1) if d else fits
      acc = accuracy[keep]
      best = float(acc.max()) if len(acc) else math.nan
      median = float(np.median(acc)) if len(acc) else math.nan
      if not d:
        full = (best, median)
      out.append(dict(budget=label, removed=ops.op_of_digit(d).name if d else "",
                      cells=int(keep.sum()), best=best, median=median,
                      best_delta=best - full[0], median_delta=median - full[1]))
  return out


# ----------------------------------------------------------------------------
# Scoring every cell once per seed.

def score_table(table: Table, cfg: configs.NetworkConfig, images, key, *,
                progress: Optional[Callable[[int, int], None]] = None, **scorer) -> dict:
  """Scores every cell of the table once and shares the measured wall time
  among them by executed FLOPs (module docstring).

  Call it once first to compile (its time then includes compilation).

  Args:
    table: the table.
    cfg: the scoring network (``cfg.ops`` the table's op set).
    images: score batches [R, B, H, W, C].
    key: PRNG key; cell ``i`` uses ``fold_in(key, i)``.
    progress: ``progress(done, total)`` after each chunk.
    **scorer: the scorer's keyword arguments (``kernel``, ``draws``,
      ``common_weights``, ``conv_dtype``, ``time_batched``, ``chunk_size``,
      ``map_batch_size``) as :func:`snnax_nas.score.score_candidates` takes
      them; :func:`snnax_nas.autotune.scoring_options` makes them from a
      config's ``scoring`` section.

  Returns:
    ``{"scores": float64 [N], "seconds": float64 [N], "wall": seconds}``.
  """
  from snnax_nas import flops
  from snnax_nas import score
  cells = genotype_lib.as_genotypes(table.genotypes, cfg)
  arch = genotype_lib.arch_of(cells, cfg)
  t0 = time.perf_counter()
  res = score.score_candidates(None, images, key, cfg, arch=arch, progress=progress, **scorer)
  wall = time.perf_counter() - t0
  cost = flops.candidate_flops(arch, cfg, images.shape[1], images.shape[0]).executed
  return dict(scores=np.asarray(res.scores, np.float64), seconds=wall * cost / cost.sum(),
              wall=wall)


def size_baselines(table: Table, trained: configs.NetworkConfig, params: np.ndarray) -> dict:
  """What size alone says about the table: Kendall tau with accuracy of the
  exact parameter count, the FLOPs and the conv depth (``snnax_nas.proxies``)
  at the trained network, each with its within-size tau (inside groups of
  equal parameter count, pair-weighted; NaN for the count itself) and its tau
  residualised on the parameter count (:mod:`snnax_nas.correlation`), and
  the tau they reach when their ties (a few distinct values) are broken at
  random, which is what a rule that must pick one cell achieves. They depend
  on no seed. A score earns its cost only where it beats these.

  Returns:
    ``{name: {"kendall_tau", "tie_broken_tau", "within_size_tau",
    "residual_tau"}}``.
  """
  from snnax_nas import correlation
  from snnax_nas import proxies
  out = {}
  for name in proxies.ANALYTIC_KERNELS:
    x = proxies.analytic_scores((name,), trained, genotypes=table.genotypes)[:, 0]
    out[name] = dict(kendall_tau=correlation.kendall_tau(x, table.accuracy),
                     tie_broken_tau=correlation.tie_broken_tau(x, table.accuracy),
                     within_size_tau=correlation.within_group_tau(x, table.accuracy, params),
                     residual_tau=correlation.residual_tau(x, table.accuracy, params))
  return out


def run(config, workdir: str) -> dict:
  """The ground-truth job (:mod:`snnax_nas.configs.groundtruth`): reads the table,
  scores it under ``num_seeds`` seeds (resumable per seed), evaluates every
  method under every budget and writes ``per_seed.csv``, ``results.csv``,
  ``results.md``, ``ops.csv`` and ``summary.json`` to ``workdir``.

  Args:
    config: the job config (:mod:`snnax_nas.configs.groundtruth`).
    workdir: output folder; holds ``scores/seed_XXXX.npz`` (one per finished
      seed; a rerun loads them) and the workdir record ``config.json``.

  Returns:
    The summary dict written to ``summary.json``.

  Raises:
    ValueError: a bad config value (named), a bad table, or a workdir that
      holds another run.
  """
  from absl import logging
  import jax

  from snnax_nas import autotune
  from snnax_nas import correlation
  from snnax_nas import data as data_lib
  from snnax_nas import distributed
  from snnax_nas import files
  from snnax_nas import score
  from snnax_nas import workdir as workdir_lib
  from snnax_nas.jobs import common

  if not config.table:
    raise ValueError("config.table is required: a CSV genotype,accuracy[,params]")
  if config.num_seeds < 1:
    raise ValueError(f"num_seeds={config.num_seeds} must be >= 1")
  if config.spikenas_candidates < 1 or config.random_draws < 1:
    raise ValueError(f"spikenas_candidates={config.spikenas_candidates} and random_draws="
                     f"{config.random_draws} must be >= 1")
  methods = [m.strip() for m in config.methods.split(",") if m.strip()]
  bad = [m for m in methods if m not in METHODS]
  if bad or not methods:
    raise ValueError(f"methods={config.methods!r}: choose from {', '.join(METHODS)}")
  if len(set(methods)) < len(methods):
    raise ValueError(f"methods={config.methods!r} names a method more than once")
  common.refuse_unread_network_fields(config, "groundtruth")
  try:  # every field of the scoring section reaches the scorer; checked before the workdir
    layout = autotune.scoring_options(config.scoring)
  except ValueError as e:
    raise ValueError(f"--config.{e}") from None
  ops = ops_lib.op_set(config.network.ops)
  table = read_table(config.table, ops)
  trained = configs.network_config(config.trained.preset, ops=ops,
                                   **{k: v for k, v in config.trained.items()
                                      if k != "preset" and v is not None})
  bits = config.budget.weight_bits
  memory.check_weight_bits(bits)
  check_params(table, trained)
  params = memory.param_count(table.genotypes, trained)
  fractions = memory.parse_fractions(config.budget.fraction) if config.budget.fraction else []
  mbs = [_parse_mb(x) for x in str(config.budget.mb).split(",")] if config.budget.mb else []
  budgets = budgets_bytes(params, bits, fractions, mbs)
  if not budgets:
    raise ValueError("give budget.fraction and/or budget.mb")
  fits = [(label, Budget(None, b, bits).fits_params(params))
          for label, b in budgets]
  for (label, _), (_, ok) in zip(budgets, fits):
    if not ok.any():
      raise ValueError(f"--config.budget.mb: {label}: no cell of the table fits (the smallest "
                       f"is {memory.weight_bytes(int(params.min()), bits) / 1e6:.4f} MB at "
                       f"{bits}-bit)")
  info = data_lib.get_info(config.dataset)
  cfg = configs.network_from_job_config(config.network, info)
  record = workdir_lib.make_record("groundtruth", config, cfg, {"table": config.table})
  workdir_lib.claim(workdir, record)
  os.makedirs(os.path.join(workdir, "scores"), exist_ok=True)
  lo, hi = int(params.min()), int(params.max())
  logging.info("table %s: %d distinct cells (%d rows merged); weights at the trained network "
               "%.3f-%.3f MB at %d-bit (%s-%s params)", config.table, len(table.names),
               table.merged_rows, memory.weight_bytes(lo, bits) / 1e6,
               memory.weight_bytes(hi, bits) / 1e6, bits, f"{lo:,}", f"{hi:,}")
  for (label, b), (_, ok) in zip(budgets, fits):
    logging.info("budget %s = %.3f MB: %d of %d cells fit", label, b / 1e6, ok.sum(), len(ok))
  if table.duplicates:
    logging.warning("table %s: %d cell(s) have rows whose accuracies differ by more than %g "
                    "points (merged by the mean): %s", config.table, len(table.duplicates),
                    DUPLICATE_TOLERANCE, "; ".join(
                        f"{d['genotype']} rows {', '.join(map(str, d['rows']))}: "
                        f"{', '.join(f'{a:g}' for a in d['accuracies'])}"
                        for d in table.duplicates))

  distributed.use_cpu_cores()
  compile_seconds = None
  per_seed, taus, within, residual = [], [], [], []
  t_start = time.perf_counter()
  for k in range(config.num_seeds):
    seed = int(config.seed) + k
    path = os.path.join(workdir, "scores", f"seed_{seed:04d}.npz")
    if not os.path.exists(path):
      images = data_lib.score_batches(config.dataset, config.scoring.repeats,
                                      config.scoring.batch_size, seed, config.data_dir)
      key = jax.random.key(seed)
      if compile_seconds is None:  # compile on the first chunk's worth, timed apart
        t0 = time.perf_counter()
        score.score_candidates(table.genotypes[:1], images, key, cfg, **layout)
        compile_seconds = time.perf_counter() - t0
        files.write_json(os.path.join(workdir, "scores", f"compile_{seed:04d}.json"),
                         dict(compile_seconds=compile_seconds, load=os.getloadavg()[0]))
      got = score_table(table, cfg, images, key, **layout)
      with files.atomic_open(path, "wb") as f:
        np.savez(f, scores=got["scores"], seconds=got["seconds"], wall=got["wall"],
                 load=os.getloadavg()[0])
      done = k + 1
      eta = (time.perf_counter() - t_start) / done * (config.num_seeds - done)
      logging.info("seed %d: %d cells scored in %.1f s (load %.1f); %d/%d seeds, ETA %.0f s",
                   seed, len(table.names), got["wall"], os.getloadavg()[0], done,
                   config.num_seeds, eta)
    with np.load(path) as z:
      scores, seconds = z["scores"], z["seconds"]
    finite = np.isfinite(scores)  # a singular kernel (-inf) ranks below every finite score
    ranked = np.where(finite, scores, scores[finite].min() - 1.0 if finite.any() else 0.0)
    taus.append(correlation.kendall_tau(ranked, table.accuracy))
    within.append(correlation.within_group_tau(ranked, table.accuracy, params))
    residual.append(correlation.residual_tau(scores, table.accuracy, params))
    per_seed += evaluate_seed(scores, seconds, table.accuracy, params, fits, methods, seed,
                              spikenas_candidates=config.spikenas_candidates,
                              random_draws=config.random_draws)
  rows = []
  for (label, b), (_, ok) in zip(budgets, fits):
    for m in methods:
      mine = [r for r in per_seed if r["budget"] == label and r["method"] == m]
      row = dict(budget=label, budget_mb=b / 1e6, in_budget=int(ok.sum()),
                 best_in_budget=float(table.accuracy[ok].max()) if ok.any() else math.nan,
                 method=m)
      for metric in METRICS:
        s = stats.bootstrap_interval([r[metric] for r in mine])
        row.update({metric: s["mean"], f"{metric}_lo": s["lo"], f"{metric}_hi": s["hi"]})
      row["no_pick"] = stats.bootstrap_interval([r["accuracy"] for r in mine])["missing"]
      rows.append(row)
  if compile_seconds is None:  # every seed was loaded: the first run's record
    import glob
    import json
    found = sorted(glob.glob(os.path.join(workdir, "scores", "compile_*.json")))
    if found:
      with open(found[0]) as f:
        compile_seconds = json.load(f)["compile_seconds"]
  ops_rows = op_significance(table.genotypes, table.accuracy, ops, fits)
  paired = []
  for other in [m for m in methods if m != "spikenas"] if "spikenas" in methods else []:
    paired += stats.paired_differences(per_seed, "spikenas", other, "accuracy", "budget",
                                       stats.bootstrap_interval)
  files.write_dict_csv(os.path.join(workdir, "per_seed.csv"), per_seed)
  files.write_dict_csv(os.path.join(workdir, "results.csv"), rows)
  files.write_dict_csv(os.path.join(workdir, "ops.csv"), ops_rows)
  files.write_text(os.path.join(workdir, "results.md"),
                   tables.results_markdown(rows) + "\n\n"
                   + tables.paired_markdown(paired).rstrip("\n") + "\n\n"
                   + tables.ops_markdown(ops_rows) + "\n")
  tau = stats.bootstrap_interval(taus)
  summary = dict(table=config.table, cells=len(table.names), merged_rows=table.merged_rows,
                 duplicates=dict(tolerance_points=DUPLICATE_TOLERANCE,
                                 over_tolerance=table.duplicates),
                 min_params=lo, max_params=hi, weight_bits=bits,
                 budgets=[dict(label=label, bytes=b, cells=int(ok.sum()))
                          for (label, b), (_, ok) in zip(budgets, fits)],
                 seeds=config.num_seeds, compile_seconds=compile_seconds,
                 kendall_tau=tau, within_size_tau=stats.bootstrap_interval(within),
                 residual_tau=stats.bootstrap_interval(residual),
                 size_baselines=size_baselines(table, trained, params),
                 results=rows, paired=paired, ops=ops_rows)
  # Standard JSON: a metric with no pick in any seed (NaN) is written as null.
  files.write_json(os.path.join(workdir, "summary.json"), workdir_lib.json_ready(summary))
  return summary


def report(summary: dict, workdir: str) -> str:
  """The lines ``launch.groundtruth`` prints: the table's cells and weight
  range, the score's rank correlation, and ``results.md`` (results, paired
  differences, op significance)."""
  tau = summary["kendall_tau"]
  with open(os.path.join(workdir, "results.md")) as f:
    text = f.read()
  over = summary["duplicates"]["over_tolerance"]
  spread = (f"; the rows of {len(over)} cell(s) differ by more than "
            f"{summary['duplicates']['tolerance_points']:g} points" if over else "")
  return (f"{summary['cells']} distinct cells ({summary['merged_rows']} rows merged{spread}), "
          f"{summary['min_params']:,}-{summary['max_params']:,} params at the trained network; "
          f"{summary['seeds']} seeds; Kendall tau of the score per seed {tau['mean']:.3f} "
          f"[{tau['lo']:.3f}, {tau['hi']:.3f}]\n{tables.size_markdown(summary)}\n\n{text}")
