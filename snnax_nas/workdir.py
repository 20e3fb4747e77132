"""Workdirs: what produced a run's directory, and loading a run back.

Every launcher *claims* its workdir before writing anything into it
(:func:`claim`): the first run writes ``config.json`` (the job kind, the
resolved job config, the :class:`~snnax_nas.configs.NetworkConfig` it built
and the sha256 of each input file); a later run into the same workdir must
match that record, so a rerun of the same command resumes and anything else
(another job, another config, a changed genotype or dataset file) is refused
with one line naming the fields that differ.

:func:`load_run` reads a workdir back in one call, e.g. the network and the
genotype a search found::

  run = snnax_nas.workdir.load_run("runs/search")
  run.network        # NetworkConfig
  run.genotypes[0]   # the genotype string the search chose

Every job config has a ``network`` section whose keys are
:class:`NetworkConfig` fields other than the dataset-derived ones;
:func:`snnax_nas.configs.network_from_job_config` is the one function that
turns it (and the dataset) into a ``NetworkConfig``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
from typing import Any
from typing import Iterator
from typing import Mapping
from typing import Optional

from ml_collections import config_dict

from snnax_nas import configs
from snnax_nas import files

RECORD_NAME = "config.json"
# Files a job writes into its workdir: a workdir holding one of them but no
# record is not a run of this library's, and is not overwritten.
_RUN_OUTPUTS = ("summary.json", "scores.csv", "results.sqlite", "metrics.jsonl",
                "ops_significance.csv")


@dataclasses.dataclass(frozen=True)
class Run:
  """A workdir read back by :func:`load_run`.

  Attributes:
    workdir: the directory.
    job: ``"search"``, ``"score"``, ``"train"`` or ``"analyze_ops"``.
    config: the resolved job config (a ``FrozenConfigDict``).
    network: the :class:`NetworkConfig` the job built.
    genotypes: the architecture(s) the run settled on: the chosen genotype
      of a finished search, the trained genotype of a train run, else empty.
      Each is a string (``|`` between per-cell genotypes).
    summary: the run's ``summary.json`` (None while it has not finished).
  """

  workdir: str
  job: str
  config: config_dict.ConfigDict
  network: configs.NetworkConfig
  genotypes: tuple[str, ...]
  summary: Optional[dict]

  def job_config(self) -> config_dict.ConfigDict:
    """A mutable copy of the run's job config: the way to derive a new run
    from this one (``c = run.job_config(); c.network.width = 32;
    snnax_nas.jobs.search.run(c, "runs/wider")``). A search's config is the
    resolved one (each field the method filled is explicit)."""
    return self.config.as_configdict()


def sha256_of(path: str) -> str:
  """Hex sha256 of a file's bytes."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def dataset_files(name: str) -> dict[str, str]:
  """``{label: path}`` of the local files a dataset spec reads, to be hashed
  into the record: the file(s) of ``npz:PATH`` (each split's file when PATH
  holds ``{split}``); empty for named and folder datasets."""
  if not name.startswith("npz:"):
    return {}
  path = os.path.expanduser(name[len("npz:"):])
  if "{split}" not in path:
    return {"dataset": path}
  out = {}
  for split in ("train", "test"):
    p = path.replace("{split}", split)
    if os.path.isfile(p):
      out[f"dataset.{split}"] = p
  return out


def json_ready(obj: Any) -> Any:
  """``obj`` with every non-finite float (inf, NaN) replaced by None, so it
  is standard JSON (Python's ``json`` would write ``Infinity``, which other
  readers reject). A None budget means no budget, as an infinite one does,
  and a non-finite score is no score. Mappings and sequences are copied
  (tuples become lists)."""
  if isinstance(obj, float):
    return obj if math.isfinite(obj) else None
  if isinstance(obj, Mapping):
    return {k: json_ready(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [json_ready(v) for v in obj]
  return obj


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
  if isinstance(obj, Mapping):
    out = {}
    for k, v in obj.items():
      out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out
  return {prefix: obj}


def _short(value: Any) -> str:
  text = json.dumps(value) if not isinstance(value, str) else value
  if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
    return value[:12]  # a sha256: the first characters tell them apart
  return text


def make_record(job: str, config: Any, network: configs.NetworkConfig,
                inputs: Mapping[str, str]) -> dict:
  """The record :func:`claim` writes: job kind, resolved config (a
  ``ConfigDict`` or dict), network and ``{input label: sha256}`` of the
  files ``inputs`` names (``{label: path}``)."""
  if job not in configs.JOBS:
    raise ValueError(f"unknown job {job!r}; jobs: {', '.join(configs.JOBS)}")
  config = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  # Through JSON, so that a record read back compares equal (tuples -> lists).
  return json.loads(json.dumps(json_ready({
      "job": job, "config": config, "network": configs.network_to_json(network),
      "inputs": {label: sha256_of(path) for label, path in sorted(inputs.items())}}),
      allow_nan=False))


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
  """``"dotted.name old -> new"`` for each field that differs between two
  records (a field only one has shows ``<none>`` on the other side)."""
  a, b = _flatten(old), _flatten(new)
  out = []
  for key in sorted(set(a) | set(b)):
    if a.get(key, "<none>") != b.get(key, "<none>"):
      va = _short(a[key]) if key in a else "<none>"
      vb = _short(b[key]) if key in b else "<none>"
      out.append(f"{key} {va} -> {vb}")
  return out


def claim(workdir: str, record: Mapping[str, Any], *, write: bool = True) -> bool:
  """Makes ``workdir`` this run's: creates it and writes ``config.json``, or
  checks that the record already there is this run's (a resume).

  Args:
    workdir: the directory (created with its parents).
    record: :func:`make_record`'s output.
    write: False on the non-lead processes of a multi-process job: they only
      compare against a record that already exists.

  Returns:
    True when the workdir was new to this record (the caller may
    :func:`release` it if the job then refuses to start), False on a resume.

  Raises:
    ValueError: the workdir cannot be created or written, or holds another
      run: the one-line message names the differing fields (dotted names,
      old -> new) and says to use another ``--workdir``.
  """
  if not workdir:
    raise ValueError("--workdir is required")
  path = os.path.join(workdir, RECORD_NAME)
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise ValueError(f"workdir {workdir!r} cannot be created: {e.strerror}") from None
  if os.path.exists(path):
    try:
      old = files.read_json(path)
    except ValueError as e:
      raise ValueError(f"workdir {workdir!r}: {e}; use another --workdir") from None
    if old.get("job") != record.get("job"):
      raise ValueError(f"workdir {workdir!r} holds a {old.get('job')} run, not a "
                       f"{record.get('job')} run (job {old.get('job')} -> {record.get('job')}); "
                       "use another --workdir")
    diffs = differences(old, record)
    if diffs:
      raise ValueError(f"workdir {workdir!r} holds a {old.get('job')} run made with other "
                       f"flags ({'; '.join(diffs)}); use another --workdir, or the same "
                       "config to resume")
    return False
  outputs = [n for n in _RUN_OUTPUTS if os.path.exists(os.path.join(workdir, n))]
  if outputs:
    raise ValueError(f"workdir {workdir!r} holds {outputs[0]} of a run without "
                     f"{RECORD_NAME}; use another --workdir")
  if write:
    try:
      files.write_json(path, dict(record))
    except OSError as e:
      raise ValueError(f"workdir {workdir!r} is not writable: {e.strerror}") from None
  return True


LOCK_NAME = ".lock"


@contextlib.contextmanager
def lock(workdir: str) -> Iterator[None]:
  """Holds ``workdir`` for this process while the block runs: a second job
  started on the same workdir is refused at once instead of interleaving its
  writes with the first one's (two trainings saving one checkpoint folder).

  The lock is ``fcntl.flock`` on ``WORKDIR/.lock``: the kernel drops it when
  the process ends, even by ``kill -9``, so a crashed job never leaves the
  workdir locked. A workdir this call created and the job left empty is
  removed again.

  Raises:
    ValueError: another process holds the workdir, or it cannot be created.
  """
  import fcntl  # noqa: PLC0415 - POSIX only; imported where it is used
  created = not os.path.exists(workdir)
  try:
    os.makedirs(workdir, exist_ok=True)
    fd = os.open(os.path.join(workdir, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
  except OSError as e:
    raise ValueError(f"workdir {workdir!r} cannot be used: {e.strerror}") from None
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    os.close(fd)
    raise ValueError(f"workdir {workdir!r} is in use by another running job; wait for it to "
                     "finish (it resumes where it stopped if killed) or use another "
                     "--workdir") from None
  try:
    yield
  finally:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    if created and os.listdir(workdir) == [LOCK_NAME]:  # a job that refused to start
      os.remove(os.path.join(workdir, LOCK_NAME))
      os.rmdir(workdir)


def release(workdir: str) -> None:
  """Removes the record :func:`claim` wrote, for a job that refused to start
  in a new workdir (so that a corrected command may use it)."""
  path = os.path.join(workdir, RECORD_NAME)
  if os.path.exists(path):
    os.remove(path)


def load_run(workdir: str) -> Run:
  """Reads a workdir of ``launch.search``, ``launch.score``, ``launch.train``
  or ``launch.analyze_ops`` back.

  The job, config and network come from ``config.json``; the genotype(s)
  from ``summary.json`` (search) or the config (train).

  Args:
    workdir: the run's ``--workdir``.

  Returns:
    A :class:`Run` (``job``, ``config``, ``network``, ``genotypes``,
    ``summary``).

  Raises:
    ValueError: ``workdir`` holds no run, or its files cannot be read.
  """
  record = files.read_json(os.path.join(workdir, RECORD_NAME))
  summary = files.read_json(os.path.join(workdir, "summary.json"))
  if record is None:
    raise ValueError(f"{workdir!r} holds no run ({RECORD_NAME} not found); give the "
                     "--workdir of a launcher")
  job, config = record["job"], record["config"]
  if "network" not in record:  # a compare study: its stages are the runs
    raise ValueError(f"{workdir!r} holds a {job} study, not one run; load one of its "
                     "stages' workdirs (search/..., train/...)")
  network = configs.network_from_json(record["network"])
  genotypes: tuple[str, ...] = ()
  if job == "search" and summary is not None:
    text = summary.get("genotype")
    if isinstance(text, str):
      genotypes = (text,)
  elif job == "train" and config.get("genotype"):
    genotypes = (config["genotype"],)
  frozen = config_dict.FrozenConfigDict(config)
  return Run(workdir=workdir, job=job, config=frozen, network=network, genotypes=genotypes,
             summary=summary)
