"""Flags and helpers shared by the launch scripts (thin absl front ends).

Each launcher takes ``--config`` (its job's ``snnax_nas/configs/<job>.py``, a
preset after a colon, any field overridden by its dotted name:
``--config.network.width=32``) and ``--workdir``, a plain flag; it parses
them, calls the job's ``run(config, workdir)`` (:mod:`snnax_nas.jobs`, :mod:`snnax_nas.studies`) through
:func:`run_job` and prints the job's report. ``--help`` lists the config's
fields with their defaults.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from typing import Optional

from absl import flags
import jax
from ml_collections import config_flags

from snnax_nas import configs
from snnax_nas import distributed
from snnax_nas import workdir as workdir_lib

FLAGS = flags.FLAGS


def config_fields(config, prefix: str = "") -> list[str]:
  """``name = default`` lines of every field of a job config, dotted."""
  lines = []
  for key, value in config.items():
    name = f"{prefix}{key}"
    if hasattr(value, "items"):
      lines += config_fields(value, name + ".")
    else:
      lines.append(f"  {name} = {value!r}")
  return lines


def define_config_flags(job: str, workdir_default: Optional[str] = None):
  """``--config`` (default: the job's file in the installed
  ``snnax_nas.configs`` package, so the launcher runs from any directory)
  and ``--workdir``, key flags of the launcher (``--help`` lists them, and
  the config's fields with their defaults)."""
  fields = "\n".join(config_fields(configs.get_config(job)))
  try:  # config_flags reads the overrides of sys.argv here
    config_flags.DEFINE_config_file(
        "config", configs.path(job),
        f"Job config: a file with get_config(preset) (default snnax_nas/configs/{job}.py); "
        "':PRESET' after it picks a preset (small, the default, or reference); override any "
        f"field with --config.DOTTED.NAME=VALUE. The fields and their defaults:\n{fields}")
  except (AttributeError, KeyError) as e:  # an unknown --config.FIELD
    _bad_override(e)
  flags.DEFINE_string("workdir", workdir_default, "Output directory.")
  # absl's --help lists the key flags of the module it names by sys.argv[0].
  for name in ("config", "workdir"):
    FLAGS.register_key_flag_for_module(sys.argv[0], FLAGS[name])


def parse_flags(argv: list[str]) -> list[str]:
  """``app.run``'s flag parser: a bad flag or an unknown ``--config.FIELD``
  exits with one line instead of a traceback."""
  try:
    rest = FLAGS(argv)
  except flags.Error as e:
    text = str(e).strip()
    if "Traceback" in text:  # a config file's get_config raised: keep its last line
      where = text.splitlines()[0].split(": Error whilst")[0]
      fail(f"{where}: {text.splitlines()[-1]}")
    fail(text)
  except SyntaxError as e:  # the config file itself does not parse
    fail(f"--config file {e.filename} line {e.lineno}: {e.msg}")
  except (AttributeError, KeyError) as e:  # config_flags on an unknown field
    _bad_override(e)
  if "config" in FLAGS:
    try:
      FLAGS.config.get("workdir")  # config_flags reports a missing file only on first use
    except OSError as e:
      fail(f"--config: cannot load the config file: {str(e).strip().splitlines()[-1].strip()}")
  return rest


def _bad_override(e: Exception):
  # ConfigDict nests the KeyError's repr: "'\\'widht\\'\\nDid you mean ...'".
  text = str(e).replace("\\n", " ").replace("\\", "").replace("'", "")
  fail(f"unknown --config field: {' '.join(text.split())}")


def overridden() -> set[str]:
  """Dotted names of the config fields given on the command line."""
  return set(config_flags.get_override_values(FLAGS["config"]))


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
      exit_now(130)

  return wrapped


def exit_now(status: int):
  """Ends the process at once with ``status``, without interpreter teardown.

  A Ctrl-C that lands while XLA compiles leaves its compiler threads running;
  tearing the interpreter down under them segfaulted (exit -11 after the
  one-line message, every time). Every job is safe to kill (its outputs are
  written atomically and resume), so skipping teardown loses nothing; the
  standard streams are flushed first. Tests that run a launcher in-process
  replace this with ``sys.exit``.
  """
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(status)


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
  :func:`snnax_nas.distributed.use_cpu_cores`); call first thing in ``main``.

  Candidates (scoring) and batches (training) are sharded over the local
  devices, so each core runs its own single-stream kernels. Left alone when
  ``XLA_FLAGS`` already forces a host device count.
  """
  if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    distributed.use_cpu_cores()


def check_no_args(argv, example: str) -> None:
  """Exits with one line on positional arguments (every input is a flag;
  ``example`` shows the right form)."""
  if len(argv) > 1:
    fail(f"unexpected arguments {' '.join(argv[1:])!r}; every input is a flag ({example})")


def run_job(job, config, workdir: Optional[str], errors: tuple = (), **kwargs):
  """Calls ``job.run(config, workdir, **kwargs)`` and prints
  ``job.report(result, workdir)``; a ``ValueError``, ``FileNotFoundError``,
  another ``OSError`` (a full disk, a read-only folder) or one of ``errors``
  exits with one line (status 2). Returns the result."""
  try:
    # Process 0 holds the workdir: a second job started there is refused.
    held = workdir_lib.lock(workdir) if workdir and jax.process_index() == 0 else (
        contextlib.nullcontext())
    with held:
      result = job.run(config, workdir, **kwargs)
  except (ValueError, FileNotFoundError, *errors) as e:
    fail(str(e))
  except OSError as e:  # a full disk, a read-only folder: the system's reason, in one line
    where = f" ({e.filename})" if e.filename else ""
    fail(f"{e.strerror or e}{where}; fix it and rerun the same command to resume")
  text = job.report(result, workdir)
  if text:
    print(text)
  return result


def fail(message: str):
  """Exits with status 2 after one clear line on stderr."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)
