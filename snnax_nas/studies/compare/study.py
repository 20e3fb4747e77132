"""The accuracy-vs-memory study of ``launch.compare``: search, train, evaluate, tabulate.

For a list of weight-memory budgets the study compares the three searches
under the same network, data and scorer:

* **SpikeNAS** (``spikenas``): one memory-aware search per budget.
* **SNASNet random search** (``random``): ONE search of ``random_draws``
  draws without a budget, timed once; for each budget the study takes the
  best-scoring draw whose weights fit the budget (first of equal scores by
  candidate id, as :func:`snnax_nas.search.random_search` breaks ties). The
  draws and each draw's weights (``fold_in(key, draw)``) do not depend on the
  budget, so this is the draw a budget-filtered random search of the same
  seed chooses, while the search time is that of scoring all draws, as
  SNASNet does.
* **LightSNN** (``lightsnn``): one pruning run; it takes no budget, so it
  is one row (``budget_mb`` empty) with the budgets its network fits.

Each found network is trained (the train job) and evaluated at every
weight precision (the evaluate job, post-training quantisation). Every
stage calls its job's ``run(config, workdir)`` (:mod:`snnax_nas.jobs`) in
this process, with a config built from the job's default config and the
study's fields, in its own sub-workdir:

  WORKDIR/search/<method>[_<budget>MB]   the search job
  WORKDIR/train/<method>[_<budget>MB]    the train job (+ eval/test_w<B>.json)
  WORKDIR/stages/<stage>.json            when the stage finished, its time, its command
  WORKDIR/logs/<stage>.log               the stage's output (appended on resume)

The jobs resume after ``kill -9``, so the study does too: a stage with its
record in ``stages/`` is not rerun and keeps that record; any other stage
(killed half way, or with an output the study did not make) is run again and
continues from its own checkpoint or store. Every stage's fields (scoring,
training, evaluation) are checked before the first stage runs. Each
stage's record holds the equivalent ``python -m launch.<job>`` command.

Search time is the search's own measurement (``summary.json``
``timing.wall_seconds``: the search call, scorer compilation included;
interpreter start and data loading excluded, the same for every method). The
time ratio of a row is the random search's time over the row's search time,
both measured in the same study. A search that was resumed reports only its
last attempt's time; its row says so (``search_resumed``).
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Callable

from snnax_nas import autotune
from snnax_nas import configs
from snnax_nas import data as data_lib
from snnax_nas import files
from snnax_nas import memory
from snnax_nas import search
from snnax_nas import workdir as workdir_lib
from snnax_nas.jobs import common as job_common
from snnax_nas.studies.compare import stages
from snnax_nas.studies.compare import tables
from snnax_nas.studies.compare.stages import Runner
from snnax_nas.studies.compare.stages import run_in_process

RECORD_JOB = "compare"

def seeds_of(config) -> tuple[int, ...]:
  """The seeds ``seed .. seed + num_seeds - 1`` of a compare config.

  Raises:
    ValueError: ``num_seeds`` < 1.
  """
  n = int(config.get("num_seeds", 1))
  if n < 1:
    raise ValueError(f"num_seeds={n} must be >= 1")
  return tuple(range(int(config.seed), int(config.seed) + n))


# ----------------------------------------------------------------------------
# The whole study.

def check_config(config) -> tuple[tuple[str, ...], tuple[float, ...], tuple[int, ...]]:
  """``(methods, budgets, eval_bits)`` of a compare config.

  Raises:
    ValueError: a bad methods / budgets / bits list, ``network.ops`` or
      ``network.backward`` set, ``budget_bits`` unknown, or a budget below
      the smallest network of a budgeted method's space.
  """
  methods = stages.parse_methods(config.methods)
  eval_bits = stages.parse_bits(config.eval_bits)
  memory.check_weight_bits(config.budget_bits, "budget_bits")
  fractions = config.get("budget", {}).get("fraction")
  if fractions and config.budgets_mb:
    raise ValueError(f"budget.fraction={fractions!r} and budgets_mb={config.budgets_mb!r} "
                     "both set the budgets; give one (--config.budget.fraction= unsets it)")
  budgets = (fraction_budgets(config, methods, fractions)[0] if fractions
             else stages.parse_budgets(config.budgets_mb))
  for key in stages.SEARCH_NETWORK_SKIP:
    if config.network.get(key) is not None:
      raise ValueError(f"network.{key}={config.network[key]!r}: each method searches its own "
                       f"space ({', '.join(stages.METHODS)}); leave network.{key} unset")
  for name in ("random_draws", "spikenas_candidates"):
    if int(config[name]) < 1:
      raise ValueError(f"{name}={config[name]} must be >= 1")
  seeds_of(config)
  _check_budgets_admit_a_network(config, methods, budgets)
  _check_stage_fields(config)
  return methods, budgets, eval_bits


def _check_stage_fields(config) -> None:
  """Checks the scoring, training and evaluation fields the later stages
  take, before the first stage runs: a bad training field found after an
  hour of searches would strand the study (its corrected rerun is another
  config)."""
  try:
    autotune.scoring_options(config.scoring)
  except ValueError as e:
    raise ValueError(f"--config.{e}") from None
  train_config = configs.get_config("train")
  for key, value in config.training.items():
    if value is not None:
      train_config.training[key] = value
  job_common.check_training(train_config.training, "epochs", "batch_size", "eval_every",
                            "keep_checkpoints")
  job_common.check_example_limits(train_config.training)
  if config.eval_max_examples is not None and config.eval_max_examples < 1:
    raise ValueError(f"--config.eval_max_examples={config.eval_max_examples} must be >= 1 "
                     "(or unset: the whole test split)")


def fraction_budgets(config, methods, fractions) -> tuple[tuple[float, ...], str]:
  """Budgets in MB from fractions of the budgeted methods' weight range.

  The range is the smallest to the largest network over the spaces of the
  budgeted methods (:func:`snnax_nas.memory.space_range` at
  ``budget_bits``), and fraction ``f`` is ``min + f * (max - min)`` bytes.

  Args:
    config: the compare config.
    methods: the methods of the study.
    fractions: a comma list (``"0.25,0.5,0.75"``), each in (0, 1].

  Returns:
    ``(budgets in MB ascending, a line stating the range and each budget)``.

  Raises:
    ValueError: a bad fraction, 0 (no network but the smallest), or no
      budgeted method.
  """
  info = data_lib.get_info(config.dataset)
  net = {k: v for k, v in config.network.items() if k not in stages.SEARCH_NETWORK_SKIP}
  ranges = [memory.space_range(configs.network_from_job_config(
      net, info, ops=stages.BUDGETED_OPS[m], backward=False), config.budget_bits)
            for m in methods if m in stages.BUDGETED_OPS]
  if not ranges:
    raise ValueError(f"budget.fraction={fractions!r}: none of {', '.join(methods)} takes "
                     "a budget")
  lo = min(r.min_bytes for r in ranges)
  hi = max(r.max_bytes for r in ranges)
  out = []
  for f in memory.parse_fractions(fractions):
    if f <= 0:
      raise ValueError(f"budget.fraction={fractions!r}: 0 admits only the smallest network; "
                       "give fractions in (0, 1]")
    out.append(round(math.floor(lo + f * (hi - lo)) / 1e6, 6))
  text = (f"weight range of the searched spaces at {config.budget_bits}-bit: {lo / 1e6:.4f}-"
          f"{hi / 1e6:.4f} MB; budgets " + ", ".join(
              f"{f:g} -> {mb:.4f} MB" for f, mb in zip(memory.parse_fractions(fractions), out)))
  return tuple(sorted(out)), text


def _check_budgets_admit_a_network(config, methods, budgets):
  info = data_lib.get_info(config.dataset)
  for method in methods:
    if method == "lightsnn":
      continue
    net = {k: v for k, v in config.network.items() if k not in stages.SEARCH_NETWORK_SKIP}
    cfg = configs.network_from_job_config(
        net, info, ops=stages.BUDGETED_OPS[method], backward=False)
    smallest, params = search.smallest_network(cfg)
    need = memory.weight_bytes(params, config.budget_bits)
    for mb in budgets:
      if not memory.params_within_budget(params, budget_bytes=memory.budget_bytes_from_mb(mb),
                                         weight_bits=config.budget_bits):
        raise ValueError(
            f"budgets_mb: {mb:g} MB is below the smallest {method} network ({smallest}: "
            f"{params:,} params = {need / 1e6:.4f} MB at {config.budget_bits}-bit); give "
            "budgets above it")


def claim(config, workdir: str) -> bool:
  """Claims ``workdir`` for this study (``config.json``: job ``compare`` and
  the config); a rerun with the same config resumes, another is refused.

  Raises:
    ValueError: the workdir holds another run (the fields that differ named).
  """
  record = workdir_lib.json_ready({"job": RECORD_JOB, "config": config.to_dict()})
  return workdir_lib.claim(workdir, json.loads(json.dumps(record)))


def run_one_seed(config, workdir: str, runner: Runner = run_in_process,
                 log: Callable[[str], None] = print) -> tuple[list[dict], str]:
  """Runs (or resumes) the study of one seed (``config.seed``) and writes its table.

  Args:
    config: a :mod:`snnax_nas.configs.compare` config (its ``num_seeds``
      is not read).
    workdir: the study's directory (sub-workdirs, records, logs, table).
    runner: runs one stage (tests pass a fake).
    log: progress lines.

  Returns:
    ``(rows, markdown)``: :func:`tables.table_rows` and the Markdown table.

  Raises:
    ValueError: a bad config (see :func:`check_config`) or a workdir holding
      another run.
    StageError: a stage failed (rerun the same command after fixing it).
  """
  methods, budgets, eval_bits = check_config(config)
  if config.get("budget", {}).get("fraction"):
    log(fraction_budgets(config, methods, config.budget.fraction)[1])
  claim(config, workdir)
  t0 = time.perf_counter()
  # Searches first (they need no trained network); the random search before
  # the rest, since every random row needs it.
  order = [m for m in ("random", "spikenas", "lightsnn") if m in methods]
  for method in order:
    for mb in (budgets if method == "spikenas" else [None]):
      stages.run_stage(stages.search_stage(config, workdir, method, mb), workdir, runner, log)
  found = stages.entries(config, workdir, methods, budgets)
  for e in found:
    stages.run_stage(stages.train_stage(config, workdir, e), workdir, runner, log)
  for e in found:
    for b in eval_bits:
      stages.run_stage(stages.eval_stage(config, workdir, e, b), workdir, runner, log)
  rows = tables.table_rows(config, workdir, found, eval_bits, budgets)
  title = (f"{config.dataset.split('/')[-1]}  width {config.network.width}  "
           f"T {config.network.timesteps}  {config.training.epochs} epochs")
  text = tables.write_table(workdir, rows, eval_bits, budgets, config.budget_bits, title)
  log(f"study finished ({time.perf_counter() - t0:.0f} s in this run); wrote "
      f"{os.path.join(workdir, tables.TABLE_MD)}")
  return rows, text


def run_study(config, workdir: str, runner: Runner = run_in_process,
              log: Callable[[str], None] = print) -> tuple[list[dict], str]:
  """Runs (or resumes) the whole study over its seeds and writes its tables.

  With ``num_seeds`` 1 this is :func:`run_one_seed` in ``workdir``. With
  more, seed ``s`` of ``seed .. seed + num_seeds - 1`` (searches, training
  and sampler all take it) runs as a one-seed study in ``WORKDIR/seed<s>``,
  seed after seed (a stopped study keeps whole seeds), and ``workdir`` gets
  every seed's rows (``results.csv``), the mean and 95 % interval over seeds
  per (method, budget) (``summary.csv``), SpikeNAS - random paired by seed
  (``paired.csv``), the Markdown of both (``results.md``) and the plot with
  error bars (``accuracy_vs_memory.png``).

  Args:
    config: a :mod:`snnax_nas.configs.compare` config.
    workdir: the study's directory.
    runner: runs one stage (tests pass a fake).
    log: progress lines.

  Returns:
    ``(rows, markdown)``: every seed's :func:`tables.table_rows` (with ``seed``)
    and the Markdown (one seed: its table; more: the summary and paired
    tables).

  Raises:
    ValueError: a bad config (see :func:`check_config`) or a workdir holding
      another run.
    StageError: a stage failed (rerun the same command after fixing it).
  """
  seeds = seeds_of(config)
  if len(seeds) == 1:
    return run_one_seed(config, workdir, runner, log)
  methods, budgets, eval_bits = check_config(config)
  if config.get("budget", {}).get("fraction"):
    log(fraction_budgets(config, methods, config.budget.fraction)[1])
  claim(config, workdir)
  rows = []
  for i, seed in enumerate(seeds):
    log(f"seed {seed} ({i + 1} of {len(seeds)})")
    sub = config.copy_and_resolve_references()
    sub.seed, sub.num_seeds = seed, 1
    seed_rows, _ = run_one_seed(sub, os.path.join(workdir, f"seed{seed}"), runner, log)
    rows += [dict(r, seed=seed) for r in seed_rows]
  summary = tables.seed_summary(rows, eval_bits)
  paired = tables.paired_differences(rows, eval_bits)
  files.write_dict_csv(os.path.join(workdir, tables.TABLE_CSV), rows)
  files.write_dict_csv(os.path.join(workdir, tables.SUMMARY_CSV), summary)
  files.write_dict_csv(os.path.join(workdir, tables.PAIRED_CSV), paired)
  text = (tables.summary_markdown(summary, eval_bits, len(seeds)) + "\n"
          + tables.paired_markdown(paired))
  files.write_text(os.path.join(workdir, tables.TABLE_MD), text)
  title = (f"{config.dataset.split('/')[-1]}  width {config.network.width}  "
           f"T {config.network.timesteps}  {config.training.epochs} epochs  "
           f"{len(seeds)} seeds")
  tables.plot_seeds(os.path.join(workdir, tables.PLOT_PNG), rows, summary, eval_bits, budgets,
             config.budget_bits, title)
  log(f"study of {len(seeds)} seeds finished; wrote {os.path.join(workdir, tables.TABLE_MD)}")
  return rows, text
