r"""Ranks the score variants of ``snnax_nas.score`` on a table of trained cells.

  python benchmarks/score_variants_bench.py \
      --table=../shared/benchmarks/cells_cifar100.csv --results=benchmarks/RESULTS.md

Scores every genotype of ``--table`` (columns genotype, accuracy) with every
kernel of :data:`snnax_nas.kernels.KERNELS` in ONE compiled call per weight-draw
setting (all kernels read the same forward passes, so the single-draw scores
equal what ``score_candidates(kernel=k)`` gives for each k alone, up to float
summation order), then with ``--draws`` weight draws for ``--draws_kernels``;
adds rank ensembles of the best variants and of SAHD with the parameter
count. Setting as ``launch.score`` at its defaults: width 16, T 5, B 64,
R 2, seed 0, the bundled ``cifar10_sample``; key ``jax.random.key(seed)``,
candidate ids = table rows.

For each variant: Kendall tau with its 95 % bootstrap interval, the paired
bootstrap interval of tau minus SAHD's tau (same resamples), Spearman rho,
top-10 overlap, the argmax percentile and singular count
(:mod:`snnax_nas.correlation`), and the cost per candidate relative to SAHD:
the run time (compile excluded) of ``score_candidates`` with that kernel alone
on ``--cost_candidates`` rows, divided by SAHD's on the same rows. An
ensemble's cost is the sum of its members' (an upper bound: one call
computing all members shares their forward passes). Prints progress,
the table, and appends the table as a Markdown section to ``--results``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from snnax_nas import distributed
from snnax_nas import genotype as genotype_lib
from snnax_nas import kernels
from snnax_nas import proxies
from snnax_nas import score  # noqa: E402  (before jax initialises its backends)

distributed.use_cpu_cores()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from snnax_nas import configs  # noqa: E402
from snnax_nas import correlation  # noqa: E402
from snnax_nas import data as data_lib  # noqa: E402
from snnax_nas import files  # noqa: E402
from snnax_nas import memory  # noqa: E402


def _args():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--table", required=True, help="CSV with columns genotype, accuracy.")
  p.add_argument("--ops", default="skip,conv3x3@0.5,conv3x3,conv3x3@1.5")
  p.add_argument("--dataset", default="cifar10_sample")
  p.add_argument("--width", type=int, default=16)
  p.add_argument("--timesteps", type=int, default=5)
  p.add_argument("--batch_size", type=int, default=64)
  p.add_argument("--repeats", type=int, default=2)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--chunk_size", type=int, default=8)
  p.add_argument("--draws", type=int, default=2, help="Weight draws of the multi-draw pass.")
  p.add_argument("--draws_kernels", default="sahd",
                 help="Kernels of the multi-draw pass ('' skips it).")
  p.add_argument("--cost_candidates", type=int, default=16,
                 help="Rows timed per variant for the cost column (spread over the table).")
  p.add_argument("--resamples", type=int, default=1000)
  p.add_argument("--limit", type=int, default=0, help="Score only the first rows (smoke test).")
  p.add_argument("--results", default="", help="Markdown file to append the section to.")
  p.add_argument("--scores_out", default="", help="CSV to write every variant's scores to.")
  return p.parse_args()


def _progress(what):
  t0 = time.perf_counter()

  def report(done, total):
    dt = time.perf_counter() - t0
    print(f"  [{what}] {done}/{total} candidates, {dt:.0f} s", flush=True)
  return report


def _commit() -> str:
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  try:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True,
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                           capture_output=True, text=True).stdout.strip()
    return head + (" + uncommitted changes" if dirty else "")
  except (OSError, subprocess.CalledProcessError):
    return "unknown"


def main():
  a = _args()
  with open(a.table, newline="") as f:
    rows = list(csv.DictReader(f))
  if a.limit:
    rows = rows[:a.limit]
  texts = [r["genotype"] for r in rows]
  acc = np.array([float(r["accuracy"]) for r in rows])
  info = data_lib.get_info(a.dataset)
  cfg = configs.network_config_for_dataset(info, width=a.width, timesteps=a.timesteps,
                                           ops=a.ops)
  genotypes = genotype_lib.as_genotypes(texts, cfg)
  params = memory.param_count(genotypes, cfg).astype(np.float64)
  images = data_lib.score_batches(a.dataset, a.repeats, a.batch_size, a.seed)
  key = jax.random.key(a.seed)
  n = len(texts)
  # The forward-pass kernels and the exact size baselines; the gradient proxies
  # (20-60x SAHD's cost on CPU) are measured by benchmarks/proxy_bench.py.
  names = kernels.PROBE_KERNELS + proxies.ANALYTIC_KERNELS
  print(f"{n} cells, {jax.local_device_count()} devices, kernels {names}", flush=True)

  scores, singular = {}, {}
  t = time.perf_counter()
  res = score.score_candidates(genotypes, images, key, cfg, kernel=names,
                               chunk_size=a.chunk_size, progress=_progress("all kernels, D=1"))
  print(f"pass D=1: {time.perf_counter() - t:.0f} s (compile {res.compile_seconds:.0f} s)",
        flush=True)
  for j, k in enumerate(names):
    scores[k], singular[k] = res.scores[:, j], res.singular[:, j]
  draws_kernels = tuple(k for k in a.draws_kernels.split(",") if k)
  if draws_kernels and a.draws > 1:
    t = time.perf_counter()
    res = score.score_candidates(genotypes, images, key, cfg, kernel=draws_kernels,
                                 draws=a.draws, chunk_size=a.chunk_size,
                                 progress=_progress(f"D={a.draws}"))
    print(f"pass D={a.draws}: {time.perf_counter() - t:.0f} s", flush=True)
    for j, k in enumerate(draws_kernels):
      scores[f"{k} D={a.draws}"] = res.scores[:, j]
      singular[f"{k} D={a.draws}"] = res.singular[:, j]

  ks = (10,)
  reports = {name: correlation.correlation_report(s, acc, ks, a.resamples, a.seed)
             for name, s in scores.items()}
  reports["params"] = correlation.correlation_report(params, acc, ks, a.resamples, a.seed)
  singles = sorted(scores, key=lambda v: -reports[v]["kendall_tau"])
  ensembles = {}
  for m in (2, 3):
    members = singles[:m]
    ensembles[f"rank ens. of {' + '.join(members)}"] = members
  ensembles["rank ens. of sahd + params"] = ["sahd", "params"]
  pool = dict(scores, params=params)
  for name, members in ensembles.items():
    scores[name] = kernels.rank_ensemble(*[pool[v] for v in members])
    singular[name] = np.zeros(n, bool)
    reports[name] = correlation.correlation_report(scores[name], acc, ks, a.resamples, a.seed)

  if a.scores_out:
    names = list(scores)
    files.write_csv(a.scores_out, ["genotype", "accuracy", "params"] + names,
                 [[t, acc[i], params[i]] + [repr(float(scores[v][i])) for v in names]
                  for i, t in enumerate(texts)])
    print(f"wrote {a.scores_out}", flush=True)

  # Paired tau differences against SAHD: the same seed gives the same resamples.
  boot = {name: correlation.bootstrap_statistics(s, acc, ks, a.resamples, a.seed)["kendall_tau"]
          for name, s in dict(scores, params=params).items()}
  delta_ci = {name: correlation.interval(b - boot["sahd"]) for name, b in boot.items()}

  # Cost per candidate: each variant alone on the same spread-out rows.
  cost_rows = np.linspace(0, n - 1, min(a.cost_candidates, n)).round().astype(int)
  seconds = {}

  def timed(kernel, draws=1):
    r = score.score_candidates(genotypes[cost_rows], images, key, cfg, kernel=kernel,
                               draws=draws, chunk_size=a.chunk_size,
                               candidate_ids=cost_rows)
    return r.run_seconds / max(len(cost_rows) - a.chunk_size, 1)

  seconds["params"] = 0.0
  for name in scores:
    if name.startswith("rank ens.") or name in proxies.ANALYTIC_KERNELS:
      seconds[name] = seconds.get(name, 0.0)  # exact, on the host: no scorer call
      continue
    job = (name.split(" D=")[0], int(name.split(" D=")[1]) if " D=" in name else 1)
    seconds[name] = seconds[job] = timed(*job)
    print(f"  cost {name}: {seconds[name]:.3f} s/candidate", flush=True)
  for name, members in ensembles.items():  # upper bound: members timed apart
    seconds[name] = sum(seconds[m] for m in members)

  def ci(r, stat, d=3):
    lo, hi = r[f"{stat}_ci"]
    return f"{r[stat]:.{d}f} [{lo:.{d}f}, {hi:.{d}f}]"

  header = ("| variant | Kendall τ [95 % CI] | τ − τ(SAHD) [paired 95 % CI] | within-size τ | "
            "τ residualised on size | Spearman ρ | top-10 overlap | argmax percentile [95 % CI] | "
            "singular | cost × SAHD |")
  lines = [header, "|" + "---|" * 10]
  for name in list(scores) + ([] if "params" in scores else ["params"]):
    r = reports[name]
    lo, hi = delta_ci[name]
    delta = r["kendall_tau"] - reports["sahd"]["kendall_tau"]
    sing = int(singular[name].sum()) if name in singular else 0
    x = pool.get(name, scores.get(name))
    lines.append(f"| {name} | {ci(r, 'kendall_tau')} | {delta:+.3f} [{lo:+.3f}, {hi:+.3f}] | "
                 f"{correlation.within_group_tau(x, acc, params):.3f} | "
                 f"{correlation.residual_tau(x, acc, params):.3f} | "
                 f"{r['spearman_rho']:.3f} | {r['top10_overlap']:.2f} | "
                 f"{ci(r, 'argmax_percentile', 1)} | {sing} | "
                 f"{seconds[name] / seconds[('sahd', 1)]:.2f} |")
  table = "\n".join(lines)
  winners = [name for name in scores if name != "sahd" and delta_ci[name][0] > 0
             and seconds[name] <= 2 * seconds[("sahd", 1)]]
  verdict = (f"Variants whose paired τ gain over SAHD has a 95 % interval above 0 at ≤ 2× "
             f"SAHD's cost: {', '.join(winners) if winners else 'none'}.")
  print(table)
  print(verdict)
  command = "python " + " ".join([os.path.relpath(__file__)] + sys.argv[1:])
  section = f"""

## Score variants on the development table (`benchmarks/score_variants_bench.py`)

`{command}` on commit {_commit()}, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC,
{jax.local_device_count()} XLA:{jax.default_backend().upper()} devices. {n} cells of
`{os.path.basename(a.table)}`, op set `{a.ops}`, width {a.width}, T {a.timesteps}, B {a.batch_size},
R {a.repeats}, seed {a.seed}, `{a.dataset}`; params = this project's pruned count at that width.
Intervals: {a.resamples} bootstrap resamples of the rows (seed {a.seed}), 95 % percentile
intervals; τ − τ(SAHD) is paired (same resamples). Cost: run time per candidate of each variant
alone on {len(cost_rows)} rows spread over the table (compile excluded; noisy on a shared
machine), over SAHD's; an ensemble's is the sum of its members' (an upper bound). Ensembles of the best
variants were picked on this same table (selection bias: read them as optimistic).

{table}

{verdict}
"""
  if a.results:
    with open(a.results, "a") as f:
      f.write(section)
    print(f"appended the section to {a.results}")


if __name__ == "__main__":
  main()
