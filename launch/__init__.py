"""The command-line launchers: ``python -m launch.<job>`` (thin absl wrappers
around :mod:`snnax_nas.jobs`)."""

import sys

# Launchers whose time is mostly training steps. For them glibc's allocator is
# told to keep freed memory (training steps 1.3x faster on XLA:CPU); the
# scoring jobs ran 8 % slower with it, at up to 1.7x the peak memory
# (benchmarks/RESULTS.md), so they are left alone.
_TRAINING_LAUNCHERS = ("launch.train", "launch.compare", "launch.analyze_ops")


def _module_run_by_python_dash_m() -> str:
  """The module of ``python -m MODULE``, while it imports its parent package.

  ``sys.argv[0]`` is ``"-m"`` exactly then, and nothing has started a thread
  yet: the last moment the allocator can still be set.
  """
  if sys.argv[:1] != ["-m"]:
    return ""
  argv = getattr(sys, "orig_argv", [])
  for i, arg in enumerate(argv):
    if arg == "-m" and i + 1 < len(argv):
      return argv[i + 1]
    if arg.startswith("-m") and not arg.startswith("--"):
      return arg[2:]
  return ""


if _module_run_by_python_dash_m() in _TRAINING_LAUNCHERS:
  from snnax_nas import allocator as _allocator
  _allocator.keep_freed_memory()
