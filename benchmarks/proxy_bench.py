r"""Training-free proxies and their aggregates against size, on trained-cell tables.

  python benchmarks/proxy_bench.py --out=runs/proxies \
      --tables=../shared/benchmarks/cells_cifar100.csv:cifar100,../shared/benchmarks/cells_tinyimagenet.csv:tinyimagenet \
      --groups=forward:20,spike:20,common:20,gradient:3,draws2:10 \
      --report=benchmarks/reports/proxies.md

Phase 1 (``score``, resumable per table, group and seed): every cell of each
table is scored by each group of proxies (``GROUPS``) in ONE
``score_candidates`` call per seed (the proxies of a group read the same
forward pass; the gradient ones add its backward), at the ground-truth job's CPU setting (``--width`` 8, one batch of
``--batch`` 32 images of the bundled ``cifar10_sample``, T 5), with the
job's key derivation: seed s scores cell i on weights from
``fold_in(key(s), i)`` and on the batches of seed s. The analytic proxies
(``params``, ``flops``, ``conv_depth``) come from the same call, on the host.

Phase 2 (``report``): per table, proxy and aggregate, over the seeds: Kendall
tau per seed (mean and 95 % bootstrap interval of the mean), within-size tau
(inside groups of equal parameter count, pair-weighted), tau residualised on
size (:mod:`snnax_nas.correlation`), and the ground-truth job's pick quality
(:func:`evaluate_seed`: SpikeNAS's shared-cell pick with this score, at
budgets f = 0.25, 0.5, 0.75, 1) with its paired difference to ``largest`` and
``random_cell``. Cost: each network proxy alone against SAHD alone on
``--cost_rows`` cells, interleaved in one run (compile excluded), median of
``--cost_repeats``.

Aggregates are fixed before looking at any table (``AGGREGATES``): AZ-NAS's
non-linear rank aggregation, ``sum_m log(rank_m / N)`` with ranks ascending
(best = N), over the named members. Which one to adopt is chosen on the
first table and reported on the second.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from snnax_nas import distributed  # noqa: E402

distributed.use_cpu_cores()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from snnax_nas import configs  # noqa: E402
from snnax_nas import correlation  # noqa: E402
from snnax_nas import data as data_lib  # noqa: E402
from snnax_nas import memory  # noqa: E402
from snnax_nas import score  # noqa: E402
from snnax_nas import stats  # noqa: E402
from snnax_nas.studies import groundtruth  # noqa: E402

FORWARD_KERNELS = ("sahd", "sahd_time", "expressivity")
GRADIENT_KERNELS = ("grad_norm", "snip", "jacob_cov")
# Spike-specific and AZ-NAS progressivity, added after the forward group's
# first seeds were scored (a group of their own, so those files stay valid).
SPIKE_KERNELS = ("informative", "progressivity")
NETWORK_KERNELS = FORWARD_KERNELS + SPIKE_KERNELS + GRADIENT_KERNELS
ANALYTIC_KERNELS = ("params", "flops", "conv_depth")
# Score groups, each one score_candidates call per table and seed: (kernels,
# scorer options, name suffix). The scoring variants of the job's config
# (common weights, several draws) are measured on SAHD.
GROUPS = {
    "forward": (FORWARD_KERNELS + ANALYTIC_KERNELS, {}, ""),
    "common": (("sahd",), dict(common_weights=True), " (common weights)"),
    "gradient": (GRADIENT_KERNELS, {}, ""),
    "spike": (SPIKE_KERNELS, {}, ""),
    "draws2": (("sahd",), dict(draws=2), " (2 draws)"),
}
AGGREGATES = {
    # AZ-NAS's components as far as built here: expressivity, trainability
    # (surrogate gradient norm), complexity (FLOPs).
    "az (expressivity+grad_norm+flops)": ("expressivity", "grad_norm", "flops"),
    "sahd+params": ("sahd", "params"),
    "sahd+conv_depth": ("sahd", "conv_depth"),
    "conv_depth+params": ("conv_depth", "params"),
    "sahd+conv_depth+params": ("sahd", "conv_depth", "params"),
    "expressivity+conv_depth+params": ("expressivity", "conv_depth", "params"),
    "jacob_cov+params": ("jacob_cov", "params"),
    # Fixed with the spike group, before it was scored on either table.
    "az forward (expressivity+progressivity+flops)": ("expressivity", "progressivity", "flops"),
    "informative+params": ("informative", "params"),
    "informative+conv_depth+params": ("informative", "conv_depth", "params"),
    "expressivity+progressivity+conv_depth+params": ("expressivity", "progressivity",
                                                     "conv_depth", "params"),
    # Chosen on cells_cifar100 alone (its first 4 seeds of the spike group),
    # before cells_tinyimagenet's spike group was scored: there progressivity
    # ranked within size in reverse (within-size tau -0.31), so its negation
    # ("-name": the member's score negated) joins the structural pair. Read on
    # cells_tinyimagenet as held out.
    "-progressivity+conv_depth+params": ("-progressivity", "conv_depth", "params"),
    "-progressivity+sahd+conv_depth+params": ("-progressivity", "sahd", "conv_depth", "params"),
}
FRACTIONS = (0.25, 0.5, 0.75, 1.0)


def _member(scores: dict, name: str) -> np.ndarray:
  """An aggregate member's column: ``scores[name]``, negated for ``-name``."""
  return -np.asarray(scores[name[1:]]) if name.startswith("-") else scores[name]


def log_rank_sum(columns) -> np.ndarray:
  """AZ-NAS aggregation ``sum_m log(rank_m / N)`` of score columns [N] each
  (average ranks, ascending; -inf and NaN rank lowest)."""
  n = len(columns[0])
  out = np.zeros(n)
  for c in columns:
    c = np.asarray(c, np.float64)
    out += np.log(correlation.rankdata(np.where(np.isfinite(c), c, -np.inf)) / n)
  return out


def _setting(args, preset):
  config = configs.get_config("groundtruth")
  config.network.width, config.scoring.batch_size = args.width, args.batch
  config.scoring.repeats = args.repeats
  config.trained.preset = preset
  info = data_lib.get_info(config.dataset)
  return config, configs.network_from_job_config(config.network, info)


def score_phase(args, path, preset, name, group, seeds):
  config, cfg = _setting(args, preset)
  table = groundtruth.read_table(path, cfg.ops)
  kernels, options, suffix = GROUPS[group]
  rows = np.arange(len(table.names))
  if group == "gradient" and args.gradient_rows:  # evenly spread cells: the costly group
    rows = np.unique(np.linspace(0, len(rows) - 1, args.gradient_rows).round().astype(int))
  out = os.path.join(args.out, name)
  os.makedirs(out, exist_ok=True)
  for seed in range(seeds):
    f = os.path.join(out, f"seed_{seed:04d}_{group}.npz")
    if os.path.exists(f):
      continue
    images = data_lib.score_batches(config.dataset, args.repeats, args.batch, seed, None)
    t0 = time.perf_counter()
    res = score.score_candidates(table.genotypes[rows], images, jax.random.key(seed), cfg,
                                 kernel=kernels, chunk_size="auto", map_batch_size="auto",
                                 candidate_ids=rows, **options)
    wall = time.perf_counter() - t0
    names = [k + suffix for k in kernels]
    np.savez(f + ".tmp.npz", scores=np.asarray(res.scores).reshape(len(rows), -1), rows=rows,
             kernels=np.array(names), wall=wall, compile=res.compile_seconds,
             load=os.getloadavg()[0])
    os.replace(f + ".tmp.npz", f)
    print(f"{name} {group} seed {seed}: {len(rows)} cells x {len(kernels)} proxies in "
          f"{wall:.1f} s (compile {res.compile_seconds:.1f} s, load {os.getloadavg()[0]:.1f})",
          flush=True)


def cost_phase(args, path, preset):
  """Run time per candidate of each network proxy alone over SAHD's, interleaved."""
  config, cfg = _setting(args, preset)
  table = groundtruth.read_table(path, cfg.ops)
  rows = np.linspace(0, len(table.names) - 1, args.cost_rows).astype(int)
  images = data_lib.score_batches(config.dataset, args.repeats, args.batch, 0, None)
  key = jax.random.key(0)
  times = {k: [] for k in NETWORK_KERNELS}
  for k in NETWORK_KERNELS:  # compile each once
    score.score_candidates(table.genotypes[rows[:8]], images, key, cfg, kernel=k, chunk_size=8)
  for _ in range(args.cost_repeats):
    for k in NETWORK_KERNELS:
      r = score.score_candidates(table.genotypes[rows], images, key, cfg, kernel=k,
                                 chunk_size=8)
      times[k].append(r.compile_seconds + r.run_seconds)
  med = {k: float(np.median(v)) for k, v in times.items()}
  return {k: dict(seconds_per_cell=med[k] / len(rows), over_sahd=med[k] / med["sahd"])
          for k in NETWORK_KERNELS}


def _interval(values, digits=3):
  s = stats.bootstrap_interval(np.asarray(values, np.float64))
  return stats.interval_cell(s["mean"], s["lo"], s["hi"], digits)


def report_phase(args, path, preset, name):
  _, cfg = _setting(args, preset)
  table = groundtruth.read_table(path, cfg.ops)
  trained = configs.network_config(preset, ops=cfg.ops)
  groundtruth.check_params(table, trained)  # the table's params column is of that network
  params = memory.param_count(table.genotypes, trained)
  acc = table.accuracy
  budgets = groundtruth.budgets_bytes(params, 32, FRACTIONS, [])
  fits = [(label, memory.params_within_budget(params, budget_bytes=b, weight_bits=32))
          for label, b in budgets]
  files = sorted(f for f in os.listdir(os.path.join(args.out, name)) if f.startswith("seed_")
                 and f.endswith(".npz") and ".tmp" not in f)
  per_seed = {}  # seed -> ({proxy: scores [N]}, {proxy: wall share})
  subsets = []  # (seed, rows, {proxy: scores [n]}, wall)
  for f in files:
    seed = int(f[5:9])
    with np.load(os.path.join(args.out, name, f)) as z:
      names = [str(k) for k in z["kernels"]]
      idx = z["rows"] if "rows" in z.files else np.arange(len(acc))
      if len(idx) < len(acc):  # a subset of the cells: compared on its rows only
        subsets.append((seed, idx, {k: z["scores"][:, i] for i, k in enumerate(names)},
                        float(z["wall"])))
        continue
      got, walls = per_seed.setdefault(seed, ({}, {}))
      for i, k in enumerate(names):
        got[k] = z["scores"][:, i]
        walls[k] = float(z["wall"])
  scores_of, wall_of = {}, {}
  for seed, (got, walls) in sorted(per_seed.items()):
    for k, v in got.items():
      scores_of.setdefault(k, []).append((seed, v))
      wall_of.setdefault(k, []).append(walls[k])
    for agg, members in AGGREGATES.items():
      if all(m.lstrip("-") in got for m in members):
        scores_of.setdefault(agg, []).append(
            (seed, log_rank_sum([_member(got, m) for m in members])))
        wall_of.setdefault(agg, []).append(sum(walls[m.lstrip("-")] for m in set(members)))
  rows, picks = [], []
  for k, seeded in scores_of.items():
    seeds = [v for _, v in seeded]
    taus = [correlation.kendall_tau(_ranked(v), acc) for v in seeds]
    broken = [correlation.tie_broken_tau(_ranked(v), acc) for v in seeds]
    within = [correlation.within_group_tau(_ranked(v), acc, params) for v in seeds]
    within_broken = [correlation.within_group_tau(_ranked(v), acc, params,
                                                  tau=correlation.tie_broken_tau) for v in seeds]
    resid = [correlation.residual_tau(v, acc, params) for v in seeds]
    rows.append(dict(proxy=k, tau=taus, broken=broken, within=within,
                     within_broken=within_broken, resid=resid,
                     seeds=len(seeds)))
    for (seed, v), wall in zip(seeded, wall_of[k]):
      secs = np.full(len(v), wall / len(v))
      picks += [dict(r, proxy=k) for r in groundtruth.evaluate_seed(
          v, secs, acc, params, fits, ("spikenas", "random_cell", "largest"), seed,
          spikenas_candidates=64, random_draws=64)]
  subset_rows = []
  for seed, idx, got, wall in subsets:
    full = per_seed.get(seed, ({}, {}))[0]
    pool = dict({k: v[idx] for k, v in full.items()}, **got)
    for k, v in pool.items():
      subset_rows.append(dict(proxy=k, seed=seed, cells=len(idx),
                              tau=correlation.kendall_tau(_ranked(v), acc[idx]),
                              broken=correlation.tie_broken_tau(_ranked(v), acc[idx]),
                              within=correlation.within_group_tau(_ranked(v), acc[idx],
                                                                  params[idx]),
                              resid=correlation.residual_tau(v, acc[idx], params[idx]),
                              per_cell=wall / len(idx) if k in got else None))
  return dict(table=name, cells=len(acc), seeds=len(per_seed), rows=rows, picks=picks,
              subset=subset_rows,
              walls=[w for w in wall_of.get("sahd", [0.0])],
              size_tau=correlation.kendall_tau(params, acc))


def _ranked(s):
  s = np.asarray(s, np.float64)
  finite = np.isfinite(s)
  return np.where(finite, s, s[finite].min() - 1.0 if finite.any() else 0.0)


def markdown(res, cost) -> str:
  lines = [f"### `{res['table']}`: {res['cells']} cells, {res['seeds']} seeds",
           "", f"Exact parameter count: Kendall τ {res['size_tau']:.3f} (no seed dependence). "
           f"Whole-table SAHD-group scoring per seed (the forward proxies in one call): median "
           f"{np.median(res['walls']):.0f} s.", "",
           "| proxy | seeds | τ-b per seed [95 % CI] | τ, ties broken at random | within-size τ-b "
           "[95 % CI] | within-size τ, ties broken | τ residualised on size [95 % CI] | "
           "cost × SAHD |", "|---|---|---|---|---|---|---|---|"]
  for r in res["rows"]:
    c = cost.get(r["proxy"], {}).get("over_sahd") if cost else None
    c = "~0 (host)" if r["proxy"] in ANALYTIC_KERNELS else (f"{c:.2f}" if c else "sum of members")
    lines.append(f"| {r['proxy']} | {r['seeds']} | {_interval(r['tau'])} | "
                 f"{_interval(r['broken'])} | {_interval(r['within'])} | "
                 f"{_interval(r['within_broken'])} | "
                 f"{_interval(r['resid'])} | {c} |")
  if res["subset"]:
    lines += ["", "Gradient proxies (their cost keeps them to a subset of evenly spread cells): "
              "every proxy on the same cells and seed; Kendall τ, within-size τ, τ residualised "
              "on size:", "", "| proxy | seed | cells | τ-b | τ, ties broken | within-size τ | "
              "τ resid. | s per cell |", "|---|---|---|---|---|---|---|---|"]
    for r in res["subset"]:
      per = f"{r['per_cell']:.2f}" if r["per_cell"] else ""
      lines.append(f"| {r['proxy']} | {r['seed']} | {r['cells']} | {r['tau']:.3f} | "
                   f"{r['broken']:.3f} | "
                   f"{r['within']:.3f} | {r['resid']:.3f} | {per} |")
  lines += ["", "SpikeNAS's shared-cell pick with each proxy (mean over seeds [95 % CI]); "
            "differences paired by seed:", "",
            "| proxy | budget | accuracy (%) | percentile | regret | − largest (points) | "
            "− random_cell (points) |", "|---|---|---|---|---|---|---|"]
  picks = res["picks"]
  for r in res["rows"]:
    k = r["proxy"]
    for label in sorted({p["budget"] for p in picks}, key=lambda x: float(x[2:])):
      mine = {(p["method"], p["seed"]): p for p in picks if p["proxy"] == k
              and p["budget"] == label}
      sp = [v for (m, _), v in sorted(mine.items()) if m == "spikenas"]
      diff = lambda other: [mine[("spikenas", s)]["accuracy"] - mine[(other, s)]["accuracy"]
                            for (m, s) in sorted(mine) if m == "spikenas"]
      lines.append(f"| {k} | {label} | {_interval([p['accuracy'] for p in sp], 2)} | "
                   f"{_interval([p['percentile'] for p in sp], 1)} | "
                   f"{_interval([p['regret'] for p in sp], 2)} | {_interval(diff('largest'), 2)} | "
                   f"{_interval(diff('random_cell'), 2)} |")
  return "\n".join(lines)


def _relative(arg: str) -> str:
  """A ``--flag=path[,path...]`` argument with its absolute paths made relative
  to the working directory (the report names no machine's folders)."""
  flag, sep, value = arg.partition("=")
  parts = [os.path.relpath(v.split(":")[0]) + v[len(v.split(":")[0]):]
           if os.path.isabs(v) else v for v in value.split(",")]
  return flag + sep + ",".join(parts) if sep else arg


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--tables", required=True, help="comma list of CSV:trained_preset")
  p.add_argument("--out", required=True, help="folder of per-seed score files (resumable)")
  p.add_argument("--groups", default="forward:20,spike:20,common:20,gradient:3,draws2:10",
                 help="score groups (GROUPS) with their seed counts, run in this order")
  p.add_argument("--gradient_rows", type=int, default=48,
                 help="cells (evenly spread) the gradient group scores; 0 = all")
  p.add_argument("--width", type=int, default=8)
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--repeats", type=int, default=1)
  p.add_argument("--phase", default="score,cost,report")
  p.add_argument("--cost_rows", type=int, default=16)
  p.add_argument("--cost_repeats", type=int, default=3)
  p.add_argument("--report", default=None, help="write the Markdown tables here")
  args = p.parse_args()
  tables = [t.rsplit(":", 1) for t in args.tables.split(",")]
  phases = args.phase.split(",")
  groups = [(g.split(":")[0], int(g.split(":")[1])) for g in args.groups.split(",")]
  if "score" in phases:
    for group, seeds in groups:  # every table per group first: the primary group ends first
      for path, preset in tables:
        score_phase(args, path, preset, os.path.splitext(os.path.basename(path))[0], group,
                    seeds)
  cost = cost_phase(args, *tables[0]) if "cost" in phases else {}
  if cost:
    print("cost:", cost, flush=True)
  if "report" in phases:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    parts = [f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on "
             f"commit {commit}, 2 XLA:CPU devices, width {args.width}, B {args.batch}, "
             f"R {args.repeats}, T 5, `cifar10_sample`; the scores (phase `score`) are read "
             f"from `--out`. Command: `python benchmarks/proxy_bench.py "
             f"{' '.join(_relative(a) for a in sys.argv[1:])}`."]
    for path, preset in tables:
      name = os.path.splitext(os.path.basename(path))[0]
      parts.append(markdown(report_phase(args, path, preset, name), cost))
    text = "\n\n".join(parts) + "\n"
    print(text)
    if args.report:
      with open(args.report, "w") as f:
        f.write(text)


if __name__ == "__main__":
  main()
