r"""Training-free architecture search: SpikeNAS (default), SNASNet random, LightSNN.

  python -m launch.search                                   # SpikeNAS, a few minutes on CPU
  python -m launch.search --budget_mb=0.8 --weight_bits=8   # memory-aware
  python -m launch.search --method=random --num_candidates=5000 --workdir=runs/random
  python -m launch.search --method=lightsnn --workdir=runs/lightsnn

Method defaults when the flag is not given: ``--ops`` spikenas / snasnet /
lightsnn, ``--num_candidates`` 64 (spikenas) / 5000 (random), ``--backward``
True for lightsnn (as the paper). ``--budget_mb`` is in 10^6 bytes of weights
at ``--weight_bits``.

Writes to ``--workdir``: ``results.sqlite`` (every scored candidate, committed
per chunk), ``summary.json``, ``scores.csv`` (launch.score's columns plus
step, candidate_id) and ``search.png`` (score vs weight memory, budget line,
chosen one marked). All but the store are written via temp file + rename.

Several processes (``--num_processes``/``--process_id``/``--coordinator_address``,
or ``--num_processes=0`` on a managed cluster) split every group of chunks
between them and all-gather the scores, so each takes the same decisions;
process 0 keeps the store and writes the outputs. The result equals the
single-process one.

  python -m launch.search --method=random --num_processes=2 --process_id=0 \
      --coordinator_address=host0:1234 --workdir=w    # and --process_id=1 on host1

Resumable: kill it at any point (even ``kill -9``) and rerun the same command.
Stored candidates are loaded, not rescored, and the final result is exactly
that of an uninterrupted run. A workdir holding another configuration is
refused with an error naming it.
"""

from __future__ import annotations

import json
import os

from absl import app
from absl import flags
from absl import logging
import jax
import numpy as np

from launch import common
from snnax_nas import data as data_lib
from snnax_nas import genotype as genotype_lib
from snnax_nas import memory
from snnax_nas import results
from snnax_nas import score
from snnax_nas import search

FLAGS = flags.FLAGS
common.define_network_flags()
FLAGS.set_default("workdir", "runs/search")
flags.DEFINE_string("method", "spikenas", "Search method: spikenas, random or lightsnn.")
flags.DEFINE_integer("num_candidates", None, "spikenas: most distinct cells per step "
                     "(default 64); random: draws (default 5000).")
flags.DEFINE_integer("budget_params", None, "Parameter budget of the whole network.")
flags.DEFINE_float("budget_mb", None, "Weight-memory budget in MB (10^6 bytes) at "
                   "--weight_bits.")
flags.DEFINE_integer("weight_bits", 32, "Weight precision of the memory model: 32, 16, 8, 4.")
flags.DEFINE_string("kernel", "sahd", "Kernel: sahd or hamming (NASWOT-style).")
common.define_distributed_flags()
flags.DEFINE_string("genotypes", None, "random only: file of genotype strings to score "
                    "instead of sampling (one per line, '|' between per-cell genotypes).")

DEFAULT_OPS = {"spikenas": "spikenas", "random": "snasnet", "lightsnn": "lightsnn"}
DEFAULT_NUM_CANDIDATES = {"spikenas": 64, "random": 5000}
# launch.score's columns first, so tools reading its CSV read this one too.
COLUMNS = ["genotype", "score", "singular", "params", "memory_bytes", "neuron_state_bytes",
           "step", "candidate_id"]
TOP_K = 5


class _StepProgress:
  """Adapts ``progress(label, done, total)`` to one common.Progress per step."""

  def __init__(self):
    self.bars = {}

  def __call__(self, label: str, done: int, total: int):
    if done == 0:
      logging.info("%s: %d evaluations to score", label, total)
      # Only the first step that scores anything compiles the scorer.
      self.bars[label] = common.Progress(label, warm=bool(self.bars))
      return
    self.bars[label](done, total)


def _atomic_write_text(path: str, text: str):
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)


def _write_csv(path: str, result: search.SearchResult, cfg):
  records = result.records
  # Neuron-state memory is defined for genotypes; LightSNN's supernet masks
  # get an empty cell.
  is_geno = [not r.genotype.startswith("mask:") for r in records]
  neuron = {}
  texts = [r.genotype for r, g in zip(records, is_geno) if g]
  if texts:
    counts = memory.neuron_count(score.as_genotypes(texts, cfg), cfg) * 4
    neuron = dict(zip(texts, counts.tolist()))
  rows = [[r.genotype, repr(float(r.score)), int(r.singular), r.params, r.weight_bytes,
           neuron.get(r.genotype, "") if g else "", r.step, r.candidate_id]
          for r, g in zip(records, is_geno)]
  common.write_csv_atomic(path, COLUMNS, rows)


def _plot(path: str, result: search.SearchResult):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  recs = [r for r in result.records if np.isfinite(r.score)]
  fig, ax = plt.subplots(figsize=(7, 4.5))
  word = "round" if result.method == "lightsnn" else "step"
  steps = sorted({r.step for r in recs})
  for s in steps:
    pts = [r for r in recs if r.step == s]
    ax.scatter([r.weight_bytes / 1e6 for r in pts], [r.score for r in pts], s=10, alpha=0.7,
               label=f"{word} {s}" if len(steps) > 1 else None)
  bits = result.weight_bits
  if result.budget_bytes is not None:
    ax.axvline(result.budget_bytes / 1e6, color="red", ls="--",
               label=f"budget {result.budget_bytes / 1e6:.4g} MB")
  if result.budget_params is not None:
    ax.axvline(result.budget_params * bits / 8 / 1e6, color="orange", ls=":",
               label=f"budget {result.budget_params:,} params")
  if np.isfinite(result.score):
    ax.scatter([result.weight_bytes / 1e6], [result.score], marker="*", s=250, c="red",
               edgecolors="black", zorder=5, label=f"chosen {result.genotype}")
  ax.set_xlabel(f"weight memory (MB at {bits}-bit)")
  ax.set_ylabel("SAHD score (log|det K|)")
  ax.set_title(f"{result.method}: {len(result.records)} evaluations")
  if ax.get_legend_handles_labels()[0]:
    ax.legend(fontsize=7, loc="lower right")
  fig.tight_layout()
  tmp = path + ".tmp"
  fig.savefig(tmp, dpi=100, format="png")
  plt.close(fig)
  os.replace(tmp, path)


def _print_report(result: search.SearchResult, workdir: str):
  order = sorted(result.records, key=lambda r: -r.score if np.isfinite(r.score) else np.inf)
  print(f"top {min(TOP_K, len(order))} of {len(order)} evaluations:")
  print(f"  {'step':>4} {'id':>8} {'score':>10} {'params':>11} {'MB':>9}  genotype")
  for r in order[:TOP_K]:
    print(f"  {r.step:>4} {r.candidate_id:>8} {r.score:>10.3f} {r.params:>11,} "
          f"{r.weight_bytes / 1e6:>9.4f}  {r.genotype}")
  budget = []
  if result.budget_params is not None:
    budget.append(f"{result.budget_params:,} params")
  if result.budget_bytes is not None:
    budget.append(f"{result.budget_bytes / 1e6:.4g} MB")
  within = f" within budget {' and '.join(budget)}" if budget else ""
  extra = (f" + {result.extra_evaluations} to score the final network"
           if result.extra_evaluations else "")
  print(f"{result.method} found {result.genotype}: score {result.score:.3f}, "
        f"{result.params:,} params = {result.weight_bytes / 1e6:.4f} MB at "
        f"{result.weight_bits}-bit{within}; {result.candidates_scored} candidates scored, "
        f"{result.candidates_skipped} skipped by the budget, {result.evaluations} evaluations"
        f"{extra} ({result.loaded_from_store} loaded from the store); compile "
        f"{result.compile_seconds:.1f}s, run {result.run_seconds:.1f}s; wrote "
        f"{os.path.join(workdir, 'summary.json')}")


def main(argv):
  if len(argv) > 1:
    common.fail(f"unexpected arguments {' '.join(argv[1:])!r}")
  common.use_cpu_cores()
  common.start_processes()
  method = FLAGS.method
  if method not in search.METHODS:
    common.fail(f"unknown --method {method!r}; choose from {', '.join(search.METHODS)}")
  if not FLAGS["ops"].present:
    FLAGS.ops = DEFAULT_OPS[method]
  backward = FLAGS.backward if FLAGS["backward"].present or method != "lightsnn" else True
  num_candidates = FLAGS.num_candidates
  if num_candidates is None and method in DEFAULT_NUM_CANDIDATES:
    num_candidates = DEFAULT_NUM_CANDIDATES[method]
  if method == "lightsnn" and FLAGS.num_candidates is not None:
    logging.warning("--num_candidates is not used by --method=lightsnn")
  if FLAGS.genotypes and method != "random":
    common.fail(f"--genotypes is for --method=random, not {method!r}")
  if method == "lightsnn" and (FLAGS.budget_params is not None or FLAGS.budget_mb is not None):
    common.fail("--method=lightsnn prunes without a memory budget; drop --budget_params/"
                "--budget_mb (or use --method=spikenas)")
  if FLAGS.weight_bits not in memory.WEIGHT_BITS:
    common.fail(f"--weight_bits={FLAGS.weight_bits} is not one of "
                f"{', '.join(map(str, memory.WEIGHT_BITS))}")
  if FLAGS.budget_params is not None and FLAGS.budget_params <= 0:
    common.fail(f"--budget_params={FLAGS.budget_params} must be > 0")
  if FLAGS.budget_mb is not None and not FLAGS.budget_mb > 0:
    common.fail(f"--budget_mb={FLAGS.budget_mb} must be > 0")
  if num_candidates is not None and num_candidates < 1:
    common.fail(f"--num_candidates={num_candidates} must be >= 1")
  if FLAGS.kernel not in score.KERNELS:
    common.fail(f"unknown --kernel {FLAGS.kernel!r}; choose from {', '.join(score.KERNELS)}")
  if FLAGS.chunk_size < 1:
    common.fail(f"--chunk_size={FLAGS.chunk_size} must be >= 1")
  budget_bytes = None if FLAGS.budget_mb is None else int(round(FLAGS.budget_mb * 1e6))
  if budget_bytes == 0:
    common.fail(f"--budget_mb={FLAGS.budget_mb} is below one byte")
  if method == "spikenas" and num_candidates >= search.ID_STRIDE - 1:
    common.fail(f"--num_candidates={num_candidates} must be < {search.ID_STRIDE - 1} for spikenas")
  budget = dict(budget_params=FLAGS.budget_params, budget_bytes=budget_bytes,
                weight_bits=FLAGS.weight_bits)
  try:
    cfg = common.network_config_from_flags(backward=backward)
    genotypes = None
    if FLAGS.genotypes:
      genotypes = common.read_genotype_file(FLAGS.genotypes, cfg.ops)
      # As launch.score: a file with feedback edges needs backward cells.
      if not cfg.backward and any(
          genotype_lib.has_backward(genotype_lib.parse_genotype(c, cfg.ops)).any()
          for t in genotypes for c in t.split("|")):
        cfg = common.network_config_from_flags(backward=True)
      score.as_genotypes(genotypes, cfg)  # e.g. a wrong number of cells
    if method != "lightsnn" and genotypes is None:
      search.check_budget(cfg, **budget)  # before anything touches the workdir
    images = data_lib.score_batches(FLAGS.dataset, FLAGS.repeats, FLAGS.batch_size, FLAGS.seed,
                                    FLAGS.data_dir)
  except (ValueError, FileNotFoundError) as e:
    common.fail(str(e))
  workdir = common.ensure_workdir(FLAGS.workdir)
  logging.info("%s search, %s, images %s, workdir %s", method, cfg, images.shape, workdir)
  key = jax.random.key(FLAGS.seed)
  args = dict(kernel=FLAGS.kernel, chunk_size=FLAGS.chunk_size,
              map_batch_size=FLAGS.map_batch_size, progress=_StepProgress())
  store_path = os.path.join(workdir, results.STORE_NAME)
  fresh = not os.path.exists(store_path)
  lead = jax.process_index() == 0
  try:
    # Several processes: process 0's store is the record; the search
    # broadcasts what it holds (snnax_nas.search._StoreScorer).
    store = results.open_store(workdir) if lead else results.ResultsStore()
  except ValueError as e:
    common.fail(str(e))
  try:
    if method == "random":
      result = search.random_search(images, key, cfg, num_candidates=num_candidates,
                                    seed=FLAGS.seed, genotypes=genotypes, store=store,
                                    **budget, **args)
    elif method == "spikenas":
      result = search.spikenas_search(images, key, cfg, num_candidates=num_candidates,
                                      seed=FLAGS.seed, store=store, **budget, **args)
    else:
      result = search.lightsnn_prune(images, key, cfg, weight_bits=FLAGS.weight_bits,
                                     store=store, **args)
  except ValueError as e:
    empty = store.count() == 0
    store.close()
    if lead and fresh and empty:  # the search refused to start: leave no store behind
      for suffix in ("", "-wal", "-shm"):
        if os.path.exists(store_path + suffix):
          os.remove(store_path + suffix)
    common.fail(str(e))
  store.close()
  if not lead:
    return

  summary = result.summary()
  summary["config"] = {
      "dataset": FLAGS.dataset, "ops": str(cfg.ops), "backward": cfg.backward,
      "cells_per_stage": cfg.cells_per_stage, "width": cfg.width, "timesteps": cfg.timesteps,
      "hidden": cfg.hidden, "batch_size": FLAGS.batch_size, "repeats": FLAGS.repeats,
      "num_candidates": num_candidates, "seed": FLAGS.seed, "kernel": FLAGS.kernel}
  _write_csv(os.path.join(workdir, "scores.csv"), result, cfg)
  _plot(os.path.join(workdir, "search.png"), result)
  # summary.json last: its presence means the run finished.
  _atomic_write_text(os.path.join(workdir, "summary.json"),
                     json.dumps(summary, indent=2) + "\n")
  for s in result.steps:
    logging.info("step %s", s)
  _print_report(result, workdir)


if __name__ == "__main__":
  app.run(main)
