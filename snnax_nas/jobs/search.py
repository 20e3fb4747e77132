r"""The search job: SpikeNAS (default), SNASNet random, LightSNN, as ``run(config, workdir)``.

From the command line (``launch.search``):

  python -m launch.search --workdir=runs/search             # SpikeNAS at half the weight range
  python -m launch.search --config.budget.mb=0.8 --config.budget.weight_bits=8   # memory-aware
  python -m launch.search --config.method=random --config.num_candidates=5000 --workdir=runs/random
  python -m launch.search --config.method=lightsnn --workdir=runs/lightsnn
  python -m launch.search --config=snnax_nas/configs/search.py:reference --workdir=runs/cifar10

The config is :mod:`snnax_nas.configs.search` (presets ``small``, the default, and
``reference``); fields left None take the method's default
(``configs.search.resolve``): ``network.ops`` spikenas / snasnet / lightsnn,
``num_candidates`` 64 (spikenas) / 5000 (random), ``network.backward`` True
for lightsnn (as the paper), ``budget.fraction`` 0.5 for spikenas when no
budget is given (``--config.budget.mb=inf`` searches without one).
``budget.mb`` is in 10^6 bytes of weights at ``budget.weight_bits``.

From Python::

  from snnax_nas import configs, jobs
  config = configs.get_config("search")
  config.budget.mb = 9.0
  result = jobs.search.run(config, "runs/search")   # a SearchResult

Writes to ``workdir``: ``config.json`` (job, resolved config, network,
input file hashes: :mod:`snnax_nas.workdir`), ``results.sqlite`` (every
scored candidate, committed per chunk), ``summary.json`` (the result, the
resolved config and the network), ``scores.csv`` (launch.score's columns
plus step, candidate_id) and ``search.png`` (score vs weight memory, budget
line, chosen one marked). All but the store are written atomically.
``snnax_nas.workdir.load_run(WORKDIR)`` reads the found network back; the
file names are this module's constants.

Several processes (``--num_processes``/``--process_id``/``--coordinator_address``,
or ``--num_processes=0`` on a managed cluster) split every group of chunks
between them and all-gather the scores, so each takes the same decisions;
process 0 keeps the store and writes the outputs. The result equals the
single-process one.

  python -m launch.search --config.method=random --num_processes=2 --process_id=0 \
      --coordinator_address=host0:1234 --workdir=w    # and --process_id=1 on host1

Resumable: kill it at any point (even ``kill -9``) and rerun the same command.
Stored candidates are loaded, not rescored, and the final result is exactly
that of an uninterrupted run. A workdir holding another job or config is
refused with one line naming the fields that differ.
"""

from __future__ import annotations

import os
from typing import Optional

from absl import logging
import jax
import numpy as np

from snnax_nas import autotune
from snnax_nas import configs
from snnax_nas import data as data_lib
from snnax_nas import files
from snnax_nas import genotype as genotype_lib
from snnax_nas import memory
from snnax_nas import score_store
from snnax_nas import search
from snnax_nas import workdir as workdir_lib
from snnax_nas.configs import search as search_config
from snnax_nas.jobs import common

# launch.score's columns first, so tools reading its CSV read this one too.
COLUMNS = ["genotype", "score", "singular", "params", "memory_bytes", "neuron_state_bytes",
           "step", "candidate_id"]
SUMMARY, SCORES_CSV, PLOT = "summary.json", "scores.csv", "search.png"
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


def _write_csv(path: str, result: search.SearchResult, cfg):
  records = result.records
  # Neuron-state memory is defined for genotypes; LightSNN's supernet masks
  # get an empty cell.
  is_geno = [not r.genotype.startswith("mask:") for r in records]
  neuron = {}
  texts = [r.genotype for r, g in zip(records, is_geno) if g]
  if texts:
    counts = memory.neuron_count(genotype_lib.as_genotypes(texts, cfg), cfg) * 4
    neuron = dict(zip(texts, counts.tolist()))
  rows = [[r.genotype, repr(float(r.score)), int(r.singular), r.params, r.weight_bytes,
           neuron.get(r.genotype, "") if g else "", r.step, r.candidate_id]
          for r, g in zip(records, is_geno)]
  files.write_csv(path, COLUMNS, rows)


def _plot(path: str, result: search.SearchResult):
  plt = files.pyplot()
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
  files.save_figure(fig, path, dpi=100)
  plt.close(fig)


def report(result: Optional[search.SearchResult], workdir: str) -> str:
  """The lines ``launch.search`` prints: the best evaluations and the choice
  (empty on a process other than 0 of a multi-process search)."""
  if result is None:
    return ""
  order = sorted(result.records, key=lambda r: -r.score if np.isfinite(r.score) else np.inf)
  lines = [f"top {min(TOP_K, len(order))} of {len(order)} evaluations (id: the candidate's weight "
           "draw; one cell under two ids was scored on two draws, see scoring.weights):",
           f"  {'step':>4} {'id':>8} {'score':>10} {'params':>11} {'MB':>9}  genotype"]
  for r in order[:TOP_K]:
    lines.append(f"  {r.step:>4} {r.candidate_id:>8} {r.score:>10.3f} {r.params:>11,} "
                 f"{r.weight_bytes / 1e6:>9.4f}  {r.genotype}")
  budget = []
  if result.budget_params is not None:
    budget.append(f"{result.budget_params:,} params")
  if result.budget_bytes is not None:
    budget.append(f"{result.budget_bytes / 1e6:.4g} MB")
  within = f" within budget {' and '.join(budget)}" if budget else ""
  extra = (f" + {result.extra_evaluations} to score the final network"
           if result.extra_evaluations else "")
  lines.append(
      f"{result.method} found {result.genotype}: score {result.score:.3f}, "
      f"{result.params:,} params = {result.weight_bytes / 1e6:.4f} MB at "
      f"{result.weight_bits}-bit{within}; {result.candidates_scored} candidates scored, "
      f"{result.candidates_skipped} skipped by the budget, {result.evaluations} evaluations"
      f"{extra} ({result.loaded_from_store} loaded from the store); compile "
      f"{result.compile_seconds:.1f}s, run {result.run_seconds:.1f}s; wrote "
      f"{os.path.join(workdir, SUMMARY)}")
  return "\n".join(lines)


def _budget_from_space(cfg, section, budget: dict) -> str:
  """The line stating the space's weight range at the budget's precision and
  the budget in MB; a ``budget.fraction`` becomes ``budget["budget_bytes"]``
  (``min + fraction * (max - min)``, :func:`snnax_nas.memory.space_range`)."""
  r = memory.space_range(cfg, section.weight_bits)
  if section.fraction is not None:
    budget["budget_bytes"] = r.budget_bytes(float(section.fraction))
  line = (f"search space {cfg.ops} ({'backward' if cfg.backward else 'forward'}, "
          f"{cfg.num_cells} cells): {r.min_bytes / 1e6:.4f}-{r.max_bytes / 1e6:.4f} MB of "
          f"weights at {section.weight_bits}-bit ({r.min_params:,}-{r.max_params:,} params, "
          f"cells {100 * r.cell_share:.0f} % of the largest)")
  if budget["budget_bytes"] is not None:
    frac = f"fraction {section.fraction} -> " if section.fraction is not None else ""
    line += f"; budget {frac}{budget['budget_bytes'] / 1e6:.4f} MB"
  if jax.process_index() == 0:  # up front: the user sees where the budget sits before the run
    print(line, flush=True)
  return line


def check_config(config) -> None:
  """Raises ValueError on a config value the search cannot run (``config``
  resolved by :func:`snnax_nas.configs.search.resolve`)."""
  method, budget = config.method, config.budget
  if method not in search.METHODS:
    raise ValueError(f"unknown --config.method {method!r}; choose from "
                     f"{', '.join(search.METHODS)}")
  if config.genotypes and method != "random":
    raise ValueError(f"--config.genotypes is for --config.method=random, not {method!r}")
  if method == "lightsnn" and (budget.params is not None or budget.mb is not None
                              or budget.fraction is not None):
    raise ValueError("--config.method=lightsnn prunes without a memory budget; drop "
                     "--config.budget.params/mb/fraction (or use --config.method=spikenas)")
  if budget.fraction is not None:
    if budget.mb is not None:
      raise ValueError(f"--config.budget.fraction={budget.fraction} and --config.budget.mb="
                       f"{budget.mb} both set a weight budget; give one")
    try:
      memory.parse_fractions(budget.fraction)
    except ValueError as e:
      raise ValueError(f"--config.budget.fraction: {e}") from None
  memory.check_weight_bits(budget.weight_bits, "--config.budget.weight_bits")
  if budget.params is not None and budget.params <= 0:
    raise ValueError(f"--config.budget.params={budget.params} must be > 0")
  try:
    memory.budget_bytes_from_mb(budget.mb)  # inf = no limit; NaN, <= 0 rejected
  except ValueError as e:
    raise ValueError(f"--config.budget.mb: {e}") from None
  if config.num_candidates is not None:
    common.check_positive(config, "num_candidates")
  try:
    autotune.scoring_options(config.scoring)  # kernel, draws, layout, conv dtype
  except ValueError as e:
    raise ValueError(f"--config.{e}") from None
  common.check_positive(config, "scoring.batch_size", "scoring.repeats")
  if method == "spikenas" and config.num_candidates >= search.ID_STRIDE - 1:
    raise ValueError(f"--config.num_candidates={config.num_candidates} must be < "
                     f"{search.ID_STRIDE - 1} for spikenas")


def run(config, workdir: str) -> Optional[search.SearchResult]:
  """Runs (or resumes) a search and writes its outputs into ``workdir``.

  Args:
    config: a :mod:`snnax_nas.configs.search` config (not changed: fields
      left None are resolved on a copy, and the copy is what the workdir
      records).
    workdir: the run's directory (claimed: see :mod:`snnax_nas.workdir`).

  Returns:
    The :class:`snnax_nas.search.SearchResult` (None on a process other
    than 0 of a multi-process search).

  Raises:
    ValueError: a bad config value, an unreadable input, a workdir holding
      another run, or a search that refuses to start (nothing is left in a
      new workdir then); the one-line message names the field.
  """
  config = common.own_config(config)
  search_config.resolve(config)
  check_config(config)
  method, scoring = config.method, config.scoring
  budget = dict(budget_params=config.budget.params,
                budget_bytes=memory.budget_bytes_from_mb(config.budget.mb),
                weight_bits=config.budget.weight_bits)
  # Event data: binned into exactly the network's T frames.
  options = common.dataset_options(config, config.network.timesteps)
  info = data_lib.get_info(config.dataset, **options)
  cfg = configs.network_from_job_config(config.network, info)
  genotypes = None
  if config.genotypes:
    genotypes = common.read_genotype_file(config.genotypes, cfg.ops, cfg.backward)
    genotype_lib.as_genotypes(genotypes, cfg)  # e.g. a wrong number of cells
  space = _budget_from_space(cfg, config.budget, budget) if method != "lightsnn" else None
  if method != "lightsnn" and genotypes is None:
    search.check_budget(cfg, **budget)  # before anything touches the workdir
  images = data_lib.score_batches(config.dataset, scoring.repeats, scoring.batch_size,
                                  config.seed, config.data_dir, **options)
  lead = jax.process_index() == 0
  fresh = common.claim_workdir("search", config, cfg, workdir, write=lead)
  logging.info("%s search, %s, images %s, workdir %s", method, cfg, images.shape, workdir)
  key = jax.random.key(config.seed)
  # Candidates are not known in advance: the layout is chosen for a sample
  # of the space (snnax_nas.autotune.space_sample) unless given.
  args = dict(scorer=common.scorer_options(scoring, cfg), progress=_StepProgress())
  store_path = os.path.join(workdir, score_store.STORE_NAME)
  fresh_store = not os.path.exists(store_path)
  # Several processes: process 0's store is the record; the search
  # broadcasts what it holds (snnax_nas.search.scoring.StoreScorer).
  store = score_store.open_store(workdir) if lead else score_store.ScoreStore()
  try:
    if method == "random":
      result = search.random_search(images, key, cfg, num_candidates=config.num_candidates,
                                    seed=config.seed, genotypes=genotypes, store=store,
                                    **budget, **args)
    elif method == "spikenas":
      result = search.spikenas_search(images, key, cfg, num_candidates=config.num_candidates,
                                      seed=config.seed, store=store, **budget, **args)
    else:
      result = search.lightsnn_prune(images, key, cfg, weight_bits=budget["weight_bits"],
                                     store=store, **args)
  except ValueError:
    empty = store.count() == 0
    store.close()
    if lead and fresh_store and empty:  # the search refused to start: leave nothing behind
      for suffix in ("", "-wal", "-shm"):
        if os.path.exists(store_path + suffix):
          os.remove(store_path + suffix)
      if fresh:
        workdir_lib.release(workdir)
    raise
  store.close()
  if not lead:
    return None

  summary = result.summary()
  # Everything needed to rebuild the network (snnax_nas.workdir.load_run);
  # standard JSON (an infinite budget is written as null: no budget).
  summary["config"] = config.to_dict()
  summary["network"] = configs.network_to_json(cfg)
  summary["space"] = space
  summary = workdir_lib.json_ready(summary)
  _write_csv(os.path.join(workdir, SCORES_CSV), result, cfg)
  _plot(os.path.join(workdir, PLOT), result)
  # summary.json last: its presence means the run finished.
  files.write_json(os.path.join(workdir, SUMMARY), summary)
  for s in result.steps:
    logging.info("step %s", s)
  return result
