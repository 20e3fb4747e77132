"""Flags and helpers shared by the launch scripts (thin absl front ends).

Each launcher takes ``--config`` (its job's ``snnax_nas/configs/<job>.py``, a preset
after a colon, any field overridden by its dotted name:
``--config.network.width=32``) and ``--workdir``, a plain flag.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from typing import Optional

from absl import flags
from absl import logging
from ml_collections import config_flags

from snnax_nas import configs
from snnax_nas import distributed
from snnax_nas import genotype as genotype_lib
from snnax_nas import score
from snnax_nas import workdir as workdir_lib

FLAGS = flags.FLAGS


def define_config_flags(job: str, workdir_default: Optional[str] = None):
  """``--config`` (default: the job's file in the installed ``configs``
  package, so the launcher runs from any directory) and ``--workdir``."""
  try:  # config_flags reads the overrides of sys.argv here
    config_flags.DEFINE_config_file(
        "config", configs.path(job),
        f"Job config: a file with get_config(preset) (default snnax_nas/configs/{job}.py), "
        "':PRESET' after it picks a preset (small, reference); override any field with "
        "--config.DOTTED.NAME=VALUE.")
  except (AttributeError, KeyError) as e:  # an unknown --config.FIELD
    _bad_override(e)
  flags.DEFINE_string("workdir", workdir_default, "Output directory.")


def parse_flags(argv: list[str]) -> list[str]:
  """``app.run``'s flag parser: a bad flag or an unknown ``--config.FIELD``
  exits with one line instead of a traceback."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    fail(str(e))
  except (AttributeError, KeyError) as e:  # config_flags on an unknown field
    _bad_override(e)


def _bad_override(e: Exception):
  # ConfigDict nests the KeyError's repr: "'\\'widht\\'\\nDid you mean ...'".
  text = str(e).replace("\\n", " ").replace("\\", "").replace("'", "")
  fail(f"unknown --config field: {' '.join(text.split())}")


def overridden() -> set[str]:
  """Dotted names of the config fields given on the command line."""
  return set(config_flags.get_override_values(FLAGS["config"]))


def check_positive(config, *dotted: str):
  """Exits with one line unless each named config field is >= 1."""
  for name in dotted:
    value = config
    for part in name.split("."):
      value = value[part]
    if value is None or value < 1:
      fail(f"--config.{name}={value} must be >= 1")


def input_files(config) -> dict[str, str]:
  """``{label: path}`` of the local input files of a job config (a genotype
  file, an npz dataset): their sha256 goes into the workdir record."""
  files = workdir_lib.dataset_files(config.dataset)
  if config.get("genotypes"):
    files["genotypes"] = config.genotypes
  return files


def ensure_workdir(path: str | None) -> str:
  """Creates ``path`` (required) and checks it is writable (launchers that
  keep no record; the others :func:`claim_workdir`)."""
  if not path:
    fail("--workdir is required")
  try:
    os.makedirs(path, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path):
      pass
  except OSError as e:
    fail(f"workdir {path!r} is not writable: {e.strerror}")
  return path


def claim_workdir(job: str, config, network, write: bool = True) -> bool:
  """Claims ``--workdir`` for this run (:func:`snnax_nas.workdir.claim`);
  exits with one line when it holds another run. Returns True when new."""
  try:
    record = workdir_lib.make_record(job, config, network, input_files(config))
    return workdir_lib.claim(FLAGS.workdir, record, write=write)
  except (ValueError, OSError) as e:
    fail(str(e))


def read_genotype_file(path: str, ops, backward: bool) -> list[str]:
  """Genotype strings of a file, one per line (``|`` between per-cell
  genotypes; blank lines and ``#`` comments skipped).

  Args:
    path: the file (``--config.genotypes``).
    ops: the op set the digits index.
    backward: whether the network has backward cells
      (``--config.network.backward``).

  Raises:
    ValueError: the file cannot be read, holds no genotype, holds a malformed
      genotype, or (``backward`` False) a genotype with a backward edge: the
      message names the line.
  """
  try:
    with open(path) as f:
      lines = [ln.split("#")[0].strip() for ln in f]
  except OSError as e:
    raise ValueError(f"cannot read --config.genotypes {path!r}: {e.strerror}") from None
  numbered = [(n, ln) for n, ln in enumerate(lines, 1) if ln]
  if not numbered:
    raise ValueError(f"--config.genotypes {path!r} holds no genotype")
  # Malformed lines first: they are wrong whatever the network.
  for allow_backward in (True, backward):
    for n, text in numbered:
      try:
        check_direction(text, ops, allow_backward)
      except ValueError as e:
        raise ValueError(f"--config.genotypes {path!r} line {n}: {e}") from None
  return [text for _, text in numbered]


def check_direction(text: str, ops, backward: bool) -> None:
  """Checks a genotype string (``|`` between per-cell genotypes): each cell
  parses, and without backward cells none has a backward edge.

  A backward edge needs backward cells, and backward cells change the
  network (and the score) of every genotype, so they are never switched on
  behind the user's back: ``--config.network.backward=true`` says so.

  Raises:
    ValueError: a malformed cell, or a backward edge while ``backward`` is
      False; the message names the genotype and the way out.
  """
  for cell in text.split("|"):
    g = genotype_lib.parse_genotype(cell, ops)  # raises naming the bad string
    if not backward and genotype_lib.has_backward(g).any():
      raise ValueError(
          f"{text!r} has a backward edge (a non-zero digit below the diagonal), which needs "
          "backward cells; add --config.network.backward=true (every genotype is then built "
          "with backward cells) or remove it")


def dataset_options(config, timesteps: int) -> dict:
  """Dataset options of a job config: for ``dvs128_gesture``, the events are
  binned into ``n_time_bins`` frames (the config's ``dvs.frames`` when it has
  a ``dvs`` section, else ``timesteps``, the network's T) at ``dvs.size``;
  no options for other datasets.

  A network of T timesteps is fed exactly T frames: frames loaded at another
  count are summed into T groups (:func:`snnax_nas.data.bin_frames`), never
  cut.
  """
  if config.dataset != "dvs128_gesture":
    return {}
  dvs = config.get("dvs")
  if dvs is None:
    return {"n_time_bins": int(timesteps)}
  return {"n_time_bins": dvs.frames, "size": dvs.size}


def warn(message: str):
  """One ``warning:`` line on stderr (a fact the user must see, e.g. a test
  accuracy measured on training data)."""
  print(f"warning: {message}", file=sys.stderr)


def exits_cleanly_on_interrupt(main):
  """Wraps a launcher's ``main``: Ctrl-C (``KeyboardInterrupt``) prints one
  line instead of a traceback and exits with status 130. Every launcher
  resumes when rerun with the same command."""

  @functools.wraps(main)
  def wrapped(argv):
    try:
      return main(argv)
    except KeyboardInterrupt:
      print("interrupted; rerun the same command to resume", file=sys.stderr)
      sys.exit(130)

  return wrapped


def define_distributed_flags():
  """Flags of a multi-process job (see :func:`start_processes`)."""
  flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process).")
  flags.DEFINE_integer("num_processes", None, "Processes sharing the job (0: auto-detect a "
                       "managed cluster).")
  flags.DEFINE_integer("process_id", None, "This process's id in [0, num_processes).")


def start_processes():
  """Starts ``jax.distributed`` as the flags of :func:`define_distributed_flags`
  ask (nothing for a single process); exits with one line on bad values."""
  try:
    distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  except ValueError as e:
    fail(str(e))


def use_cpu_cores():
  """On the CPU backend, one XLA device per core (see
  :func:`snnax_nas.score.use_cpu_cores`); call first thing in ``main``.

  Candidates (scoring) and batches (training) are sharded over the local
  devices, so each core runs its own single-stream kernels. Left alone when
  ``XLA_FLAGS`` already forces a host device count.
  """
  if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    score.use_cpu_cores()


def check_training(training, *positive: str):
  """Exits with one line unless the named fields of a config's ``training``
  section are >= 1, ``lr`` is > 0 and ``loss`` is a known loss."""
  from snnax_nas import train  # not every launcher needs the training stack
  for name in positive:
    value = training[name]
    if value is None or value < 1:
      fail(f"--config.training.{name}={value} must be >= 1")
  if not training.lr > 0:
    fail(f"--config.training.lr={training.lr} must be > 0")
  if training.loss not in train.LOSSES:
    fail(f"unknown --config.training.loss {training.loss!r}; choose from "
         f"{', '.join(train.LOSSES)}")


def fail(message: str):
  """Exits with status 2 after one clear line on stderr."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


class Progress:
  """Periodic progress lines with rate and ETA for ``score_candidates``."""

  def __init__(self, what: str, every_seconds: float = 10.0, warm: bool = False):
    """``warm``: the scorer is already compiled (a later search step), so the
    first chunk is timed like any other instead of being reported apart."""
    import time
    self._time = time.perf_counter
    self.what, self.every = what, every_seconds
    self.start = self.last = self._time()
    self.first_done = None
    if warm:
      self.first_done, self.t_first = 0, self.start

  def __call__(self, done: int, total: int):
    now = self._time()
    if self.first_done is None:  # the first chunk includes compilation
      self.first_done, self.t_first = done, now
      logging.info("%s: %d/%d (first chunk incl. compile: %.1fs)", self.what, done, total,
                   now - self.start)
      return
    if now - self.last < self.every and done < total:
      return
    self.last = now
    rate = (done - self.first_done) / max(now - self.t_first, 1e-9)
    eta = (total - done) / rate if rate > 0 else float("inf")
    logging.info("%s: %d/%d  %.2f cand/s  ETA %.0fs", self.what, done, total, rate, eta)


def check_example_limits(training) -> None:
  """Raises ValueError naming ``training.max_{train,test}_examples`` unless
  each is None (all) or >= 1; called before any data is loaded."""
  from snnax_nas import data as data_lib  # noqa: PLC0415 (only the training jobs need it)
  for split in ("train", "test"):
    n = training[f"max_{split}_examples"]
    try:
      data_lib.first_examples([], [], n)
    except ValueError as e:
      raise ValueError(f"--config.training.max_{split}_examples={n}: {e}") from None
