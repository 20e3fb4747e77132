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

import contextlib
import csv
import dataclasses
import datetime
import json
import logging
import math
import os
import shlex
import time
from typing import Any
from typing import Callable
from typing import Mapping
from typing import Optional
from typing import Sequence

import numpy as np

from snnax_nas import configs
from snnax_nas import io
from snnax_nas import memory
from snnax_nas import workdir as workdir_lib
from snnax_nas.jobs import evaluate as evaluate_job
from snnax_nas.jobs import search as search_job
from snnax_nas.jobs import train as train_job

METHODS = ("spikenas", "random", "lightsnn")
RECORD_JOB = "compare"
STAGES_DIR, LOGS_DIR = "stages", "logs"
TABLE_CSV, TABLE_MD, PLOT_PNG = "results.csv", "results.md", "accuracy_vs_memory.png"
# A study of several seeds: the mean and interval over seeds, the paired differences.
SUMMARY_CSV, PAIRED_CSV = "summary.csv", "paired.csv"
# Network fields a compare config passes to every search; ops and backward
# are each method's own.
_SEARCH_NETWORK_SKIP = ("ops", "backward")
# The op set each budgeted method searches (launch.search's defaults).
_BUDGETED_OPS = {"spikenas": "spikenas", "random": "snasnet"}

# The command line of each job a stage runs (for the stage's record).
LAUNCHERS = {"search": "launch.search", "train": "launch.train",
             "evaluate": "launch.evaluate"}


class StageError(RuntimeError):
  """A stage failed or left no output; the message names the stage, its
  exit status, its log file and the log's last line."""


# ----------------------------------------------------------------------------
# Config values.

def parse_budgets(text: Any) -> tuple[float, ...]:
  """Budgets in MB from ``"8.86,8.94"`` (or a sequence of numbers).

  Returns:
    The budgets, ascending.

  Raises:
    ValueError: empty, not a number, not finite, <= 0, or repeated (the
      message names the value).
  """
  items = text.split(",") if isinstance(text, str) else list(text or ())
  items = [i.strip() if isinstance(i, str) else i for i in items]
  items = [i for i in items if i != ""]
  if not items:
    raise ValueError(f"budgets_mb={text!r} holds no budget; give MB values separated by "
                     "commas, e.g. --config.budgets_mb=0.45,0.6, or fractions of the "
                     "space's range, e.g. --config.budget.fraction=0.25,0.5")
  out = []
  for item in items:
    try:
      mb = float(item)
    except (TypeError, ValueError):
      raise ValueError(f"budgets_mb={text!r}: {item!r} is not a number of MB; give MB values "
                       "separated by commas, e.g. --config.budgets_mb=8.86,8.94") from None
    if not math.isfinite(mb) or mb <= 0:
      raise ValueError(f"budgets_mb={text!r}: {item!r} must be a finite number of MB > 0 "
                       "(LightSNN already gives the row without a budget)")
    out.append(mb)
  if len(set(out)) != len(out):
    raise ValueError(f"budgets_mb={text!r} repeats a budget; give each once")
  return tuple(sorted(out))


def parse_bits(text: Any) -> tuple[int, ...]:
  """Weight precisions from ``"32,8,4"``, in the given order.

  Raises:
    ValueError: empty, repeated, or a precision the memory model lacks.
  """
  items = [i.strip() for i in str(text).split(",") if i.strip()] if isinstance(
      text, str) else [str(i) for i in (text or ())]
  if not items:
    raise ValueError(f"eval_bits={text!r} holds no bit width; e.g. --config.eval_bits=32,8,4")
  out = []
  for item in items:
    if not item.isdigit() or int(item) not in memory.WEIGHT_BITS:
      raise ValueError(f"eval_bits={text!r}: {item!r} is not one of "
                       f"{', '.join(map(str, memory.WEIGHT_BITS))}")
    out.append(int(item))
  if len(set(out)) != len(out):
    raise ValueError(f"eval_bits={text!r} repeats a bit width; give each once")
  return tuple(out)


def parse_methods(text: str) -> tuple[str, ...]:
  """Methods from ``"spikenas,random,lightsnn"`` (any non-empty subset), in
  the canonical order.

  Raises:
    ValueError: empty, or an unknown method.
  """
  items = [i.strip() for i in str(text).split(",") if i.strip()]
  bad = [i for i in items if i not in METHODS]
  if bad or not items:
    raise ValueError(f"methods={text!r}: give some of {', '.join(METHODS)} separated by commas")
  return tuple(m for m in METHODS if m in items)


def budget_label(mb: Optional[float]) -> str:
  """Directory suffix of a budget: ``8.86MB`` (``""`` for no budget)."""
  return "" if mb is None else f"{mb:g}MB"


# ----------------------------------------------------------------------------
# Stages.

@dataclasses.dataclass(frozen=True)
class Stage:
  """One job run of the study.

  Attributes:
    name: ``search/spikenas_8.86MB``, ``train/random_8.86MB``,
      ``eval/lightsnn_w4``: unique; names its record and log.
    job: ``search``, ``train`` or ``evaluate``.
    workdir: the job's workdir.
    overrides: ``(dotted field, value)`` pairs set on the job's default
      config (:func:`snnax_nas.configs.get_config`).
    output: the file whose presence means the stage finished.
  """

  name: str
  job: str
  workdir: str
  overrides: tuple[tuple[str, Any], ...]
  output: str

  def config(self):
    """The job config: the job's ``small`` config with :attr:`overrides`."""
    return configs.set_fields(configs.get_config(self.job), dict(self.overrides))

  def command(self) -> str:
    """The same run as a user types it."""
    flags = [f"--workdir={self.workdir}"] + [_flag(k, v) for k, v in self.overrides]
    return shlex.join(["python", "-m", LAUNCHERS[self.job], *flags])


# runner(stage, log_path) -> exit status (0: done; 2: the job refused, as a
# launcher exits).
Runner = Callable[[Stage, str], int]


def run_in_process(stage: Stage, log_path: str) -> int:
  """Runs ``stage``'s job in this process; its printed report, warnings and
  log records are appended to ``log_path`` (log records also go to the
  console). Returns 0, or 2 after an ``error:`` line in the log when the job
  refused its config or input (a ``ValueError``)."""
  from snnax_nas import jobs  # noqa: PLC0415 (the jobs import the whole library)
  job = jobs.get(stage.job)
  with open(log_path, "a") as log:
    log.write(f"$ {stage.command()}\n")
    log.flush()
    handler = logging.StreamHandler(log)
    logging.getLogger().addHandler(handler)
    try:
      with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
          result = job.run(stage.config(), stage.workdir)
        except (ValueError, FileNotFoundError) as e:
          print(f"error: {e}")
          return 2
        print(job.report(result, stage.workdir))
    finally:
      logging.getLogger().removeHandler(handler)
  return 0


def _record_path(workdir: str, name: str) -> str:
  return os.path.join(workdir, STAGES_DIR, name.replace("/", "__") + ".json")


def _last_line(path: str) -> str:
  with contextlib.suppress(OSError):
    with open(path) as f:
      lines = [ln.strip() for ln in f if ln.strip()]
    return lines[-1] if lines else ""
  return ""


def run_stage(stage: Stage, workdir: str, runner: Runner = run_in_process,
              log: Callable[[str], None] = print) -> dict:
  """Runs ``stage`` unless it finished before; returns its record.

  The record (``WORKDIR/stages/<name>.json``, written atomically once the
  job has returned and left ``stage.output``) holds the equivalent command
  and the job's wall time ``seconds``. A finished stage keeps its first record.
  A stage whose output exists without a record (a job run there by hand, or
  one killed between the two) is run again: the job resumes or overwrites,
  so an evaluation made by hand never lands in the table as the study's.

  Raises:
    StageError: the job failed (status non-zero) or left no output.
  """
  record_path = _record_path(workdir, stage.name)
  os.makedirs(os.path.dirname(record_path), exist_ok=True)
  # Finished means the study's own record says so: an output found without
  # it (a job run by hand, or one killed before its record) is run again (the
  # jobs resume, so a finished one costs little).
  if os.path.exists(stage.output) and os.path.exists(record_path):
    return io.read_json(record_path, required=True)
  record = dict(stage=stage.name, command=stage.command(), seconds=None)
  log_path = os.path.join(workdir, LOGS_DIR, stage.name.replace("/", "__") + ".log")
  os.makedirs(os.path.dirname(log_path), exist_ok=True)
  log(f"[{stage.name}] {stage.command()}  (log {log_path})")
  t0 = time.perf_counter()
  rc = runner(stage, log_path)
  seconds = time.perf_counter() - t0
  if rc != 0 or not os.path.exists(stage.output):
    what = f"exited with status {rc}" if rc != 0 else f"left no {stage.output}"
    raise StageError(f"stage {stage.name} {what}; see {log_path} (last line: "
                     f"{_last_line(log_path)!r}); fix it and rerun the same command to "
                     "resume")
  record["seconds"] = seconds
  log(f"[{stage.name}] done in {seconds:.1f} s")
  record["finished_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec="seconds")
  io.write_json(record_path, record)
  return record


def _flag(name: str, value: Any) -> str:
  if isinstance(value, bool):
    value = "true" if value else "false"
  return f"--config.{name}={value}"


def _common_fields(config) -> list[tuple[str, Any]]:
  out = [("dataset", config.dataset), ("seed", config.seed)]
  if config.data_dir:
    out.append(("data_dir", config.data_dir))
  return out


def search_stage(config, workdir: str, method: str, budget_mb: Optional[float]) -> Stage:
  """The search stage of ``method`` at ``budget_mb`` (None: no budget;
  random and lightsnn)."""
  name = method + (f"_{budget_label(budget_mb)}" if budget_mb is not None else "")
  where = os.path.join(workdir, "search", name)
  fields = [("method", method)] + _common_fields(config)
  for key, value in sorted(config.network.items()):
    if key not in _SEARCH_NETWORK_SKIP and value is not None:
      fields.append((f"network.{key}", value))
  for key, value in sorted(config.scoring.items()):
    fields.append((f"scoring.{key}", value))
  if method == "spikenas":
    fields += [("num_candidates", config.spikenas_candidates), ("budget.mb", budget_mb),
               ("budget.weight_bits", config.budget_bits)]
  elif method == "random":
    fields += [("num_candidates", config.random_draws),
               ("budget.weight_bits", config.budget_bits)]
  else:
    fields.append(("budget.weight_bits", config.budget_bits))
  return Stage(f"search/{name}", "search", where, tuple(fields),
               os.path.join(where, search_job.SUMMARY))


@dataclasses.dataclass(frozen=True)
class Entry:
  """One row of the table: a found network.

  Attributes:
    method: ``spikenas``, ``random`` or ``lightsnn``.
    budget_mb: the budget (MB at ``budget_bits``), None for LightSNN.
    genotype: the found genotype string.
    params: its parameter count.
    search_dir: the search workdir it came from.
    network: the search's ``network`` job-config section (ops resolved).
    draws_within_budget: random only: draws that fit the budget.
  """

  method: str
  budget_mb: Optional[float]
  genotype: str
  params: int
  search_dir: str
  network: Mapping[str, Any]
  draws_within_budget: Optional[int] = None

  @property
  def name(self) -> str:
    """``spikenas_8.86MB``, ``lightsnn``: the row's train directory name."""
    return self.method + (f"_{budget_label(self.budget_mb)}" if self.budget_mb is not None
                          else "")


def _search_network(search_dir: str) -> dict:
  record = io.read_json(os.path.join(search_dir, workdir_lib.RECORD_NAME), required=True)
  return dict(record["config"]["network"])


def best_within_budget(scores_csv: str, budget_mb: float, weight_bits: int) -> tuple[str, int, int]:
  """The random search's best-scoring draw that fits a budget.

  Args:
    scores_csv: the random search's ``scores.csv`` (genotype, score, params,
      candidate_id columns).
    budget_mb: the budget in MB (10^6 bytes) of weights at ``weight_bits``.
    weight_bits: weight precision of the budget.

  Returns:
    ``(genotype, params, draws within the budget)``; of equal scores, the
    lowest candidate id (a singular kernel's empty score counts as -inf).

  Raises:
    ValueError: no draw fits the budget (the message names the cheapest).
  """
  with open(scores_csv, newline="") as f:
    rows = list(csv.DictReader(f))
  if not rows:
    raise ValueError(f"{scores_csv} holds no scored draw")
  ids = np.array([int(r["candidate_id"]) for r in rows], np.int64)
  params = np.array([int(r["params"]) for r in rows], np.int64)
  scores = np.array([float(r["score"]) if r["score"] not in ("", "None") else -np.inf
                     for r in rows], np.float64)
  scores = np.where(np.isnan(scores), -np.inf, scores)
  ok = memory.params_within_budget(params, budget_bytes=memory.budget_bytes_from_mb(budget_mb),
                                   weight_bits=weight_bits)
  if not ok.any():
    cheapest = int(np.argmin(params))
    raise ValueError(f"no random draw fits budget_mb={budget_mb:g} at {weight_bits}-bit; the "
                     f"cheapest draw has {int(params[cheapest]):,} params; raise the budget")
  cand = np.flatnonzero(ok)
  cand = cand[np.lexsort((ids[cand], -scores[cand]))]  # best score, then lowest id
  best = int(cand[0])
  return rows[best]["genotype"], int(params[best]), int(ok.sum())


def entries(config, workdir: str, methods: Sequence[str],
            budgets: Sequence[float]) -> list[Entry]:
  """The rows of the table from the finished searches, budget by budget
  (SpikeNAS, then random), LightSNN last."""
  out = []
  for mb in budgets:
    for method in methods:
      if method == "lightsnn":
        continue
      stage = search_stage(config, workdir, method, mb if method == "spikenas" else None)
      where = os.path.dirname(stage.output)
      if method == "spikenas":
        summary = io.read_json(stage.output, required=True)
        out.append(Entry(method, mb, summary["genotype"], int(summary["params"]), where,
                         _search_network(where)))
      else:
        geno, params, within = best_within_budget(os.path.join(where, "scores.csv"), mb,
                                                  config.budget_bits)
        out.append(Entry(method, mb, geno, params, where, _search_network(where), within))
  if "lightsnn" in methods:
    stage = search_stage(config, workdir, "lightsnn", None)
    summary = io.read_json(stage.output, required=True)
    where = os.path.dirname(stage.output)
    out.append(Entry("lightsnn", None, summary["genotype"], int(summary["params"]), where,
                     _search_network(where)))
  return out


def train_stage(config, workdir: str, entry: Entry) -> Stage:
  """The train stage of a found network: its genotype and its search's
  network section, the study's dataset and training fields."""
  where = os.path.join(workdir, "train", entry.name)
  fields = [("genotype", entry.genotype)] + _common_fields(config)
  for key, value in sorted(entry.network.items()):
    if value is not None:
      fields.append((f"network.{key}", value))
  for key, value in sorted(config.training.items()):
    if value is not None:
      fields.append((f"training.{key}", value))
  return Stage(f"train/{entry.name}", "train", where, tuple(fields),
               os.path.join(where, train_job.SUMMARY))


def eval_path(train_dir: str, bits: int, max_examples: Optional[int] = None) -> str:
  """Where the evaluate job writes the test evaluation at ``bits`` (of the
  first ``max_examples`` examples when set)."""
  return evaluate_job.result_path(train_dir, "test", bits, max_examples)


def eval_stage(config, workdir: str, entry: Entry, bits: int) -> Stage:
  """The evaluate stage of a trained network at ``bits`` (test split; the
  first ``config.eval_max_examples`` examples when set)."""
  where = os.path.join(workdir, "train", entry.name)
  fields = [("weight_bits", bits), ("split", "test")]
  if config.eval_max_examples is not None:
    fields.append(("max_examples", config.eval_max_examples))
  return Stage(f"eval/{entry.name}_w{bits}", "evaluate", where, tuple(fields),
               eval_path(where, bits, config.eval_max_examples))


# ----------------------------------------------------------------------------
# The table.

def _search_time(search_dir: str) -> tuple[float, bool, dict]:
  summary = io.read_json(os.path.join(search_dir, search_job.SUMMARY), required=True)
  timing = summary.get("timing") or {}
  return float(timing["wall_seconds"]), bool(timing.get("loaded_from_store", 0)), summary


def table_rows(config, workdir: str, rows: Sequence[Entry],
               eval_bits: Sequence[int], budgets: Sequence[float]) -> list[dict]:
  """One dict per found network, read from the stage outputs.

  Keys: method, budget_mb, budget_bits, genotype, ops, params,
  ``weight_mb_w<B>`` (exact bytes of the quantised network, from the
  evaluation), evaluations, draws_within_budget, search_s, search_process_s,
  search_resumed, time_ratio_vs_random (random search time / this search
  time), ``test_acc_w<B>`` (fraction), ``sar_w<B>``, sar (at the widest
  precision evaluated), ``energy_uj_w<B>`` (energy per image in µJ at
  ``config.energy``'s pJ per operation, from the evaluation's operation
  counts, :mod:`snnax_nas.energy`; None for an evaluation without them),
  ann_energy_uj (the ANN equivalent's), fits_budgets, train_epochs,
  test_examples.
  """
  from snnax_nas import energy as energy_lib  # noqa: PLC0415
  energies = energy_lib.energies_from_config(config.get("energy") or configs.sections.energy())
  random_s = None
  random_dirs = [e.search_dir for e in rows if e.method == "random"]
  if random_dirs:
    random_s = _search_time(random_dirs[0])[0]
  out = []
  for e in rows:
    seconds, resumed, summary = _search_time(e.search_dir)
    stage = _record_path(workdir, "search/" + os.path.basename(e.search_dir))
    process_s = io.read_json(stage, required=True).get("seconds") if os.path.exists(
        stage) else None
    train_dir = os.path.join(workdir, "train", e.name)
    train_summary = io.read_json(os.path.join(train_dir, train_job.SUMMARY), required=True)
    row = dict(method=e.method, budget_mb=e.budget_mb, budget_bits=config.budget_bits,
               genotype=e.genotype, ops=e.network.get("ops"), params=e.params)
    evals = {b: io.read_json(eval_path(train_dir, b, config.eval_max_examples), required=True)
             for b in eval_bits}
    for b in eval_bits:
      row[f"weight_mb_w{b}"] = evals[b]["weight_bytes"] / 1e6
    row.update(evaluations=int(summary["evaluations"]), draws_within_budget=e.draws_within_budget,
               search_s=seconds, search_process_s=process_s, search_resumed=resumed,
               time_ratio_vs_random=(random_s / seconds if random_s is not None and seconds > 0
                                     else None))
    for b in eval_bits:
      row[f"test_acc_w{b}"] = float(evals[b]["accuracy"])
    for b in eval_bits:
      row[f"sar_w{b}"] = float(evals[b]["sar"])
    row["sar"] = row[f"sar_w{max(eval_bits)}"]
    for b in eval_bits:
      row[f"energy_uj_w{b}"] = _energy_uj(evals[b].get("operations"), energies)
    row["ann_energy_uj"] = _energy_uj(evals[max(eval_bits)].get("operations"), energies, ann=True)
    row["fits_budgets"] = ",".join(
        f"{mb:g}" for mb in budgets
        if memory.params_within_budget(e.params, budget_bytes=memory.budget_bytes_from_mb(mb),
                                       weight_bits=config.budget_bits))
    row.update(train_epochs=train_summary.get("epochs"),
               test_examples=evals[max(eval_bits)].get("num_examples"))
    out.append(row)
  return out


def _energy_uj(ops: Optional[dict], energies, ann: bool = False) -> Optional[float]:
  """µJ per image of an evaluation's operation counts at ``energies``."""
  if not ops:
    return None
  if ann:
    pj = ops["ann_macs"] * energies.mac_pj + ops["ann_adds"] * energies.accumulate_pj
  else:
    pj = (ops["sops"] + ops["adds"]) * energies.accumulate_pj + ops["macs"] * energies.mac_pj
  return pj * 1e-6


def _fmt(value: Any, digits: int) -> str:
  if value is None:
    return "—"
  return f"{value:.{digits}f}"


def markdown(rows: Sequence[dict], eval_bits: Sequence[int]) -> str:
  """The table as GitHub Markdown (accuracy in %, memory in MB, times in s)."""
  head = (["method", "budget (MB)", "genotype", "params"]
          + [f"MB w{b}" for b in eval_bits]
          + ["evaluations", "search (s)", "random / this"]
          + [f"acc w{b} (%)" for b in eval_bits] + ["SAR"]
          + [f"µJ/image w{b}" for b in eval_bits] + ["ANN µJ"])
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for r in rows:
    budget = ("none (LightSNN takes no budget)" if r["budget_mb"] is None
              else f"{r['budget_mb']:g} @ {r['budget_bits']}-bit")
    evals = str(r["evaluations"])
    if r.get("draws_within_budget") is not None:
      evals += f" ({r['draws_within_budget']} fit)"
    seconds = _fmt(r["search_s"], 1) + (" (resumed)" if r["search_resumed"] else "")
    ratio = "—" if r["time_ratio_vs_random"] is None else f"{r['time_ratio_vs_random']:.1f}×"
    cells = ([r["method"], budget, f"`{r['genotype']}`", f"{r['params']:,}"]
             + [_fmt(r[f"weight_mb_w{b}"], 3) for b in eval_bits]
             + [evals, seconds, ratio]
             + [_fmt(100 * r[f"test_acc_w{b}"], 2) for b in eval_bits]
             + [_fmt(r["sar"], 4)]
             + [_fmt(r.get(f"energy_uj_w{b}"), 3) for b in eval_bits]
             + [_fmt(r.get("ann_energy_uj"), 3)])
    lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
  return "\n".join(lines) + "\n"


def plot(path: str, rows: Sequence[dict], eval_bits: Sequence[int],
         budgets: Sequence[float], budget_bits: int, title: str = "") -> None:
  """Accuracy vs weight memory, two panels. Left: every network at every
  bit width (marker: method, colour: bit width; log memory axis, the bit
  widths being factors apart). Right, when ``budget_bits`` is evaluated: the
  networks at the budgets' precision on a linear axis, with the budget lines
  (dashed, MB at ``budget_bits``)."""
  plt = io.pyplot()
  markers = {"spikenas": "o", "random": "s", "lightsnn": "^"}
  colors = dict(zip(sorted(eval_bits, reverse=True), ["C0", "C1", "C2", "C3", "C4"]))
  zoom = budget_bits in eval_bits
  with_energy = any(r.get(f"energy_uj_w{b}") is not None for r in rows for b in eval_bits)
  ncols = (2 if zoom else 1) + with_energy
  fig, axes = plt.subplots(1, ncols, figsize=(5.5 * ncols + 1, 4.8), squeeze=False)
  panels = [(axes[0, 0], eval_bits, "log")] + ([(axes[0, 1], [budget_bits], "linear")]
                                              if zoom else [])
  for ax, bits, scale in panels:
    for r in rows:
      for b in bits:
        ax.scatter(r[f"weight_mb_w{b}"], 100 * r[f"test_acc_w{b}"],
                   marker=markers[r["method"]], color=colors[b], s=60, edgecolors="black",
                   linewidths=0.5, zorder=3)
    for mb in budgets:
      ax.axvline(mb, color="red", ls="--", lw=1)
      ax.text(mb, 0.02, f" {mb:g} MB", color="red", fontsize=7, rotation=90, va="bottom",
              transform=ax.get_xaxis_transform())
    ax.set_xscale(scale)
    ax.set_ylabel("test accuracy (%)")
    ax.grid(True, which="both", alpha=0.3)
  for method, m in markers.items():
    if any(r["method"] == method for r in rows):
      axes[0, 0].scatter([], [], marker=m, color="white", edgecolors="black", label=method)
  for b in eval_bits:
    axes[0, 0].scatter([], [], marker="o", color=colors[b], label=f"{b}-bit weights")
  axes[0, 0].legend(fontsize=8, loc="best")
  axes[0, 0].set_xlabel(f"weight memory (MB); budgets (red) at {budget_bits}-bit")
  axes[0, 0].set_title(title or "found networks: accuracy vs weight memory", fontsize=9)
  if zoom:
    axes[0, 1].set_xlabel(f"weight memory at {budget_bits}-bit (MB)")
    axes[0, 1].set_title(f"at the budgets' precision ({budget_bits}-bit)", fontsize=9)
  if with_energy:
    _energy_panel(axes[0, -1], rows, eval_bits, markers, colors)
  fig.tight_layout()
  io.save_figure(fig, path, dpi=110)
  plt.close(fig)


def _energy_panel(ax, rows, eval_bits, markers, colors, summary=None) -> None:
  """Accuracy vs energy per image (µJ, :mod:`snnax_nas.energy`) of every
  network at every bit width; with ``summary``, the seeds' means with 95 %
  interval error bars at the widest precision."""
  for r in rows:
    for b in eval_bits:
      if r.get(f"energy_uj_w{b}") is not None:
        ax.scatter(r[f"energy_uj_w{b}"], 100 * r[f"test_acc_w{b}"], marker=markers[r["method"]],
                   color=colors[b] if summary is None else colors[r["method"]],
                   alpha=1.0 if summary is None else 0.25, s=60 if summary is None else 18,
                   edgecolors="black" if summary is None else None, linewidths=0.5, zorder=3)
  bits = max(eval_bits)
  for r in summary or ():
    e, acc = f"energy_uj_w{bits}", f"test_acc_w{bits}"
    if r[e] is None or math.isnan(r[e]):
      continue
    xerr = None if math.isnan(r[f"{e}_lo"]) else [[r[e] - r[f"{e}_lo"]], [r[f"{e}_hi"] - r[e]]]
    yerr = (None if math.isnan(r[f"{acc}_lo"])
            else [[100 * (r[acc] - r[f"{acc}_lo"])], [100 * (r[f"{acc}_hi"] - r[acc])]])
    ax.errorbar(r[e], 100 * r[acc], xerr=xerr, yerr=yerr, marker=markers[r["method"]],
                color=colors[r["method"]], ms=7, mec="black", mew=0.5, capsize=3, lw=1, zorder=4)
  ax.set_xlabel("energy per image (µJ; SOPs and adds x E_AC + MACs x E_MAC)")
  ax.set_ylabel("test accuracy (%)")
  ax.set_title("accuracy vs energy" + ("" if summary is None else f" ({bits}-bit means)"),
               fontsize=9)
  ax.grid(True, alpha=0.3)


def write_table(workdir: str, rows: Sequence[dict], eval_bits: Sequence[int],
                budgets: Sequence[float], budget_bits: int, title: str = "") -> str:
  """Writes ``results.csv``, ``results.md`` and ``accuracy_vs_memory.png``
  into ``workdir`` (atomically); returns the Markdown."""
  io.write_dict_csv(os.path.join(workdir, TABLE_CSV), rows)
  text = markdown(rows, eval_bits)
  io.write_text(os.path.join(workdir, TABLE_MD), text)
  plot(os.path.join(workdir, PLOT_PNG), rows, eval_bits, budgets, budget_bits, title)
  return text


# ----------------------------------------------------------------------------
# Several seeds: mean and interval over seeds, paired differences.

def seeds_of(config) -> tuple[int, ...]:
  """The seeds ``seed .. seed + num_seeds - 1`` of a compare config.

  Raises:
    ValueError: ``num_seeds`` < 1.
  """
  n = int(config.get("num_seeds", 1))
  if n < 1:
    raise ValueError(f"num_seeds={n} must be >= 1")
  return tuple(range(int(config.seed), int(config.seed) + n))


def mean_interval(values: Sequence[float]) -> dict:
  """Mean with its 95 % Student-t interval over seeds.

  With a handful of seeds the t interval is the honest one (a bootstrap of
  three values is far too narrow); it assumes the per-seed values are
  independent and roughly normal.

  Args:
    values: one value per seed; None and NaN are left out.

  Returns:
    ``{"mean", "lo", "hi", "n"}``; ``lo``/``hi`` are NaN with fewer than two
    values, everything NaN with none.
  """
  from scipy import stats as scipy_stats  # noqa: PLC0415 (jax's own dependency)
  v = np.array([x for x in values if x is not None], np.float64)
  v = v[~np.isnan(v)]
  if not len(v):
    return dict(mean=math.nan, lo=math.nan, hi=math.nan, n=0)
  if len(v) < 2:
    return dict(mean=float(v[0]), lo=math.nan, hi=math.nan, n=1)
  half = float(scipy_stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
  return dict(mean=float(v.mean()), lo=float(v.mean() - half), hi=float(v.mean() + half),
              n=int(len(v)))


def _metrics(eval_bits: Sequence[int]) -> list[str]:
  return ([f"test_acc_w{b}" for b in eval_bits] + [f"weight_mb_w{b}" for b in eval_bits]
          + ["sar", "search_s", "evaluations", "time_ratio_vs_random"]
          + [f"energy_uj_w{b}" for b in eval_bits])


def seed_summary(rows: Sequence[dict], eval_bits: Sequence[int]) -> list[dict]:
  """Per (method, budget): each metric's :func:`mean_interval` over seeds.

  Args:
    rows: :func:`table_rows` of every seed, each with its ``seed``.
    eval_bits: the evaluated weight precisions.

  Returns:
    One dict per (method, budget) in the rows' order: method, budget_mb,
    seeds, and ``<metric>``, ``<metric>_lo``, ``<metric>_hi`` for test
    accuracy and weight MB per bit width, SAR, search time, evaluations and
    the time ratio to random search; ``genotypes``: distinct genotypes found.
  """
  groups: dict = {}
  for r in rows:
    groups.setdefault((r["method"], r["budget_mb"]), []).append(r)
  out = []
  for (method, mb), group in groups.items():
    row = dict(method=method, budget_mb=mb, seeds=len(group),
               genotypes=len({r["genotype"] for r in group}))
    for metric in _metrics(eval_bits):
      ci = mean_interval([r.get(metric) for r in group])
      row.update({metric: ci["mean"], f"{metric}_lo": ci["lo"], f"{metric}_hi": ci["hi"]})
    out.append(row)
  return out


def paired_differences(rows: Sequence[dict], eval_bits: Sequence[int],
                       a: str = "spikenas", b: str = "random") -> list[dict]:
  """Per budget and bit width, test accuracy of ``a`` minus ``b`` paired by
  seed (same seed, same budget), as :func:`mean_interval` in points.

  Pairing removes what a seed does to both (its training batches and the
  test split are shared), so it separates smaller gaps than two unpaired
  intervals.

  Returns:
    One dict per (budget, bits): budget_mb, bits, a, b, mean, lo, hi, n
    (seeds with both rows), wins (seeds where ``a`` is more accurate).
  """
  out = []
  for mb in dict.fromkeys(r["budget_mb"] for r in rows if r["budget_mb"] is not None):
    by = {(r["method"], r["seed"]): r for r in rows if r["budget_mb"] == mb}
    seeds = sorted({s for m, s in by if m == a} & {s for m, s in by if m == b})
    if not seeds:
      continue
    for bits in eval_bits:
      key = f"test_acc_w{bits}"
      diffs = [100 * (by[a, s][key] - by[b, s][key]) for s in seeds]
      out.append(dict(budget_mb=mb, bits=bits, a=a, b=b, **mean_interval(diffs),
                      wins=int(sum(d > 0 for d in diffs))))
  return out


def _ci(row: dict, metric: str, digits: int, scale: float = 1.0) -> str:
  mean, lo, hi = (row[metric], row[f"{metric}_lo"], row[f"{metric}_hi"])
  if mean is None or math.isnan(mean):
    return "—"
  if math.isnan(lo):
    return f"{scale * mean:.{digits}f}"
  return f"{scale * mean:.{digits}f} [{scale * lo:.{digits}f}, {scale * hi:.{digits}f}]"


def summary_markdown(summary: Sequence[dict], eval_bits: Sequence[int], num_seeds: int) -> str:
  """:func:`seed_summary` as Markdown: mean [95 % interval] over seeds
  (accuracy in %, memory in MB, search time in s)."""
  head = (["method", "budget (MB)", "seeds", "genotypes", "MB w" + str(max(eval_bits))]
          + [f"acc w{b} (%)" for b in eval_bits]
          + ["SAR", "evaluations", "search (s)", "random / this"]
          + [f"µJ/image w{b}" for b in eval_bits])
  lines = [f"Mean [95 % t interval] over {num_seeds} seeds (search and training seeds both "
           "vary).", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for r in summary:
    budget = ("none (LightSNN takes no budget)" if r["budget_mb"] is None
              else f"{r['budget_mb']:g}")
    cells = ([r["method"], budget, str(r["seeds"]), str(r["genotypes"]),
              _ci(r, f"weight_mb_w{max(eval_bits)}", 3)]
             + [_ci(r, f"test_acc_w{b}", 2, 100) for b in eval_bits]
             + [_ci(r, "sar", 4), _ci(r, "evaluations", 0), _ci(r, "search_s", 1),
                _ci(r, "time_ratio_vs_random", 1)]
             + [_ci(r, f"energy_uj_w{b}", 3) for b in eval_bits])
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def paired_markdown(paired: Sequence[dict]) -> str:
  """:func:`paired_differences` as Markdown (points of test accuracy)."""
  lines = ["| budget (MB) | bits | difference | mean [95 % t interval] (points) | seeds | "
           "wins |", "|---|---|---|---|---|---|"]
  for r in paired:
    interval = ("" if math.isnan(r["lo"]) else f" [{r['lo']:+.2f}, {r['hi']:+.2f}]")
    lines.append(f"| {r['budget_mb']:g} | {r['bits']} | {r['a']} − {r['b']} | "
                 f"{r['mean']:+.2f}{interval} | {r['n']} | {r['wins']} of {r['n']} |")
  return "\n".join(lines) + "\n"


def plot_seeds(path: str, rows: Sequence[dict], summary: Sequence[dict],
               eval_bits: Sequence[int], budgets: Sequence[float], budget_bits: int,
               title: str = "") -> None:
  """Accuracy vs weight MB over seeds: one panel per bit width, each
  (method, budget) at its mean with 95 % interval error bars on both axes,
  each seed's network as a faint dot; the budget lines (MB at
  ``budget_bits``) on that precision's panel."""
  import matplotlib  # noqa: PLC0415
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415
  markers = {"spikenas": "o", "random": "s", "lightsnn": "^"}
  colors = {"spikenas": "C0", "random": "C1", "lightsnn": "C2"}
  with_energy = any(r.get(f"energy_uj_w{b}") is not None for r in rows for b in eval_bits)
  ncols = len(eval_bits) + with_energy
  fig, axes = plt.subplots(1, ncols, figsize=(5.2 * ncols, 4.6), squeeze=False)
  if with_energy:
    _energy_panel(axes[0, -1], rows, eval_bits, markers, colors, summary)
  for ax, bits in zip(axes[0], eval_bits):
    acc, mb = f"test_acc_w{bits}", f"weight_mb_w{bits}"
    for r in rows:
      ax.scatter(r[mb], 100 * r[acc], marker=markers[r["method"]], color=colors[r["method"]],
                 alpha=0.25, s=18, zorder=2)
    for r in summary:
      def err(metric, scale=1.0, r=r):
        if math.isnan(r[f"{metric}_lo"]):
          return None
        return [[scale * (r[metric] - r[f"{metric}_lo"])], [scale * (r[f"{metric}_hi"] - r[metric])]]
      ax.errorbar(r[mb], 100 * r[acc], xerr=err(mb), yerr=err(acc, 100),
                  marker=markers[r["method"]], color=colors[r["method"]], ms=7,
                  mec="black", mew=0.5, capsize=3, lw=1, zorder=3)
    if bits == budget_bits:
      for budget in budgets:
        ax.axvline(budget, color="red", ls="--", lw=1)
        ax.text(budget, 0.02, f" {budget:g} MB", color="red", fontsize=7, rotation=90,
                va="bottom", transform=ax.get_xaxis_transform())
    ax.set_xlabel(f"weight memory at {bits}-bit (MB)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{bits}-bit weights" + (" (budgets in red)" if bits == budget_bits else ""),
                 fontsize=9)
    ax.grid(True, alpha=0.3)
  for method, m in markers.items():
    if any(r["method"] == method for r in rows):
      axes[0, 0].errorbar([], [], marker=m, color=colors[method], label=method)
  axes[0, 0].legend(fontsize=8, loc="best")
  fig.suptitle((title + ": " if title else "") + "mean and 95 % interval over seeds",
               fontsize=9)
  fig.tight_layout()
  io.save_figure(fig, path, dpi=110)
  plt.close(fig)


# ----------------------------------------------------------------------------
# The whole study.

def check_config(config) -> tuple[tuple[str, ...], tuple[float, ...], tuple[int, ...]]:
  """``(methods, budgets, eval_bits)`` of a compare config.

  Raises:
    ValueError: a bad methods / budgets / bits list, ``network.ops`` or
      ``network.backward`` set, ``budget_bits`` unknown, or a budget below
      the smallest network of a budgeted method's space.
  """
  methods = parse_methods(config.methods)
  eval_bits = parse_bits(config.eval_bits)
  memory.check_weight_bits(config.budget_bits, "budget_bits")
  fractions = config.get("budget", {}).get("fraction")
  if fractions and config.budgets_mb:
    raise ValueError(f"budget.fraction={fractions!r} and budgets_mb={config.budgets_mb!r} "
                     "both set the budgets; give one (--config.budget.fraction= unsets it)")
  budgets = (fraction_budgets(config, methods, fractions)[0] if fractions
             else parse_budgets(config.budgets_mb))
  for key in _SEARCH_NETWORK_SKIP:
    if config.network.get(key) is not None:
      raise ValueError(f"network.{key}={config.network[key]!r}: each method searches its own "
                       f"space ({', '.join(METHODS)}); leave network.{key} unset")
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
  from snnax_nas import autotune  # noqa: PLC0415
  from snnax_nas import energy as energy_lib  # noqa: PLC0415
  from snnax_nas.jobs import common as job_common  # noqa: PLC0415
  try:
    autotune.scoring_options(config.scoring)
  except ValueError as e:
    raise ValueError(f"--config.{e}") from None
  energy_lib.energies_from_config(config.get("energy") or configs.sections.energy())
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
  from snnax_nas import data as data_lib  # noqa: PLC0415 (the dataset gives shapes, classes)
  info = data_lib.get_info(config.dataset)
  net = {k: v for k, v in config.network.items() if k not in _SEARCH_NETWORK_SKIP}
  ranges = [memory.space_range(configs.network_from_job_config(
      net, info, ops=_BUDGETED_OPS[m], backward=False), config.budget_bits)
            for m in methods if m in _BUDGETED_OPS]
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
  from snnax_nas import data as data_lib  # the dataset gives input shape and classes
  from snnax_nas import search
  info = data_lib.get_info(config.dataset)
  for method in methods:
    if method == "lightsnn":
      continue
    net = {k: v for k, v in config.network.items() if k not in _SEARCH_NETWORK_SKIP}
    cfg = configs.network_from_job_config(
        net, info, ops=_BUDGETED_OPS[method], backward=False)
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
    ``(rows, markdown)``: :func:`table_rows` and the Markdown table.

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
      run_stage(search_stage(config, workdir, method, mb), workdir, runner, log)
  found = entries(config, workdir, methods, budgets)
  for e in found:
    run_stage(train_stage(config, workdir, e), workdir, runner, log)
  for e in found:
    for b in eval_bits:
      run_stage(eval_stage(config, workdir, e, b), workdir, runner, log)
  rows = table_rows(config, workdir, found, eval_bits, budgets)
  title = (f"{config.dataset.split('/')[-1]}  width {config.network.width}  "
           f"T {config.network.timesteps}  {config.training.epochs} epochs")
  text = write_table(workdir, rows, eval_bits, budgets, config.budget_bits, title)
  log(f"study finished ({time.perf_counter() - t0:.0f} s in this run); wrote "
      f"{os.path.join(workdir, TABLE_MD)}")
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
    ``(rows, markdown)``: every seed's :func:`table_rows` (with ``seed``)
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
  summary = seed_summary(rows, eval_bits)
  paired = paired_differences(rows, eval_bits)
  io.write_dict_csv(os.path.join(workdir, TABLE_CSV), rows)
  io.write_dict_csv(os.path.join(workdir, SUMMARY_CSV), summary)
  io.write_dict_csv(os.path.join(workdir, PAIRED_CSV), paired)
  text = (summary_markdown(summary, eval_bits, len(seeds)) + "\n"
          + paired_markdown(paired))
  io.write_text(os.path.join(workdir, TABLE_MD), text)
  title = (f"{config.dataset.split('/')[-1]}  width {config.network.width}  "
           f"T {config.network.timesteps}  {config.training.epochs} epochs  "
           f"{len(seeds)} seeds")
  plot_seeds(os.path.join(workdir, PLOT_PNG), rows, summary, eval_bits, budgets,
             config.budget_bits, title)
  log(f"study of {len(seeds)} seeds finished; wrote {os.path.join(workdir, TABLE_MD)}")
  return rows, text
