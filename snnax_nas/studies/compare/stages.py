"""The stages of the compare study: its config values, one :class:`Stage` per
job run (search, train, evaluate) with its record and log, and the found
networks (:class:`Entry`) read back from the finished searches.

A stage calls its job's ``run(config, workdir)`` (:mod:`snnax_nas.jobs`) in
this process (:func:`run_in_process`), with a config built from the job's
default config and the study's fields, in its own sub-workdir; its record in
``WORKDIR/stages/`` says it finished (:func:`run_stage`).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
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
from snnax_nas import files
from snnax_nas import jobs
from snnax_nas import memory
from snnax_nas import stats
from snnax_nas import workdir as workdir_lib
from snnax_nas.jobs import evaluate as evaluate_job
from snnax_nas.jobs import search as search_job
from snnax_nas.jobs import train as train_job

METHODS = ("spikenas", "random", "lightsnn")
STAGES_DIR, LOGS_DIR = "stages", "logs"
# Network fields a compare config passes to every search; ops and backward
# are each method's own.
SEARCH_NETWORK_SKIP = ("ops", "backward")
# The op set each budgeted method searches (launch.search's defaults).
BUDGETED_OPS = {"spikenas": "spikenas", "random": "snasnet"}

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


def stage_record_path(workdir: str, name: str) -> str:
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
  record_path = stage_record_path(workdir, stage.name)
  os.makedirs(os.path.dirname(record_path), exist_ok=True)
  # Finished means the study's own record says so: an output found without
  # it (a job run by hand, or one killed before its record) is run again (the
  # jobs resume, so a finished one costs little).
  if os.path.exists(stage.output) and os.path.exists(record_path):
    return files.read_json(record_path, required=True)
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
  files.write_json(record_path, record)
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
    if key not in SEARCH_NETWORK_SKIP and value is not None:
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
  record = files.read_json(os.path.join(search_dir, workdir_lib.RECORD_NAME), required=True)
  return dict(record["config"]["network"])


def best_within_budget(scores_csv: str, budget_mb: float, weight_bits: int) -> tuple[str, int, int]:
  """The random search's best-scoring draw that fits a budget.

  Args:
    scores_csv: the random search's ``scores.csv`` (genotype, score, params,
      candidate_id columns).
    budget_mb: the budget in MB (10^6 bytes) of weights at ``weight_bits``.
    weight_bits: weight precision of the budget.

  Returns:
    ``(genotype, params, draws within the budget)``: the best by
    :func:`snnax_nas.stats.best_index` over the draws in candidate-id order
    (of equal scores the lowest id; a singular kernel's empty score counts as
    -inf).

  Raises:
    ValueError: no draw fits the budget (the message names the cheapest).
  """
  with open(scores_csv, newline="") as f:
    rows = list(csv.DictReader(f))
  if not rows:
    raise ValueError(f"{scores_csv} holds no scored draw")
  rows.sort(key=lambda r: int(r["candidate_id"]))  # the first of equal scores: the lowest id
  params = np.array([int(r["params"]) for r in rows], np.int64)
  scores = np.array([float(r["score"]) if r["score"] not in ("", "None") else -np.inf
                     for r in rows], np.float64)
  ok = memory.params_within_budget(params, budget_bytes=memory.budget_bytes_from_mb(budget_mb),
                                   weight_bits=weight_bits)
  if not ok.any():
    cheapest = int(np.argmin(params))
    raise ValueError(f"no random draw fits budget_mb={budget_mb:g} at {weight_bits}-bit; the "
                     f"cheapest draw has {int(params[cheapest]):,} params; raise the budget")
  cand = np.flatnonzero(ok)
  best = int(cand[stats.best_index(scores[cand])])
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
        summary = files.read_json(stage.output, required=True)
        out.append(Entry(method, mb, summary["genotype"], int(summary["params"]), where,
                         _search_network(where)))
      else:
        geno, params, within = best_within_budget(os.path.join(where, "scores.csv"), mb,
                                                  config.budget_bits)
        out.append(Entry(method, mb, geno, params, where, _search_network(where), within))
  if "lightsnn" in methods:
    stage = search_stage(config, workdir, "lightsnn", None)
    summary = files.read_json(stage.output, required=True)
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
