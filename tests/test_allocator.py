"""snnax_nas.allocator: glibc keeps freed memory, and only when it can."""

import os
import subprocess
import sys
import textwrap

import numpy as np  # noqa: F401  (imported before the call below, on purpose)
import pytest

from snnax_nas import allocator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
glibc_linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")

# A fresh process: malloc a 256 MiB block, write it, free it, and count the
# page faults of writing a second one (the allocator set first when asked).
# ctypes, not numpy: numpy asks for huge pages, which hides the faults.
_SECOND_BLOCK_FAULTS = textwrap.dedent("""
    import ctypes, resource, sys
    if sys.argv[1] == "keep":
      from snnax_nas import allocator
      print(allocator.keep_freed_memory(), allocator.status, file=sys.stderr)
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    def write_block():
      p = libc.malloc(256 << 20)
      ctypes.memset(p, 1, 256 << 20)
      libc.free(p)
    write_block()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    write_block()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _env(**extra):
  env = {k: v for k, v in os.environ.items()
         if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
  env.update({"JAX_PLATFORMS": "cpu", "PYTHONPATH": ROOT, **extra})
  return env


def _second_block_faults(mode: str, **env) -> int:
  out = subprocess.run([sys.executable, "-c", _SECOND_BLOCK_FAULTS, mode], env=_env(**env),
                       capture_output=True, text=True, check=True, timeout=600)
  return int(out.stdout.strip())


@glibc_linux
def test_freed_block_is_reused_without_page_faults():
  # 256 MiB is 65,536 pages: with glibc's defaults the second block is a
  # fresh mapping and faults every page; kept, it reuses the first's pages.
  default = _second_block_faults("default")
  kept = _second_block_faults("keep")
  assert default > 50_000, default
  assert kept < 2_000, kept


@glibc_linux
def test_user_malloc_settings_opt_out():
  assert _second_block_faults("keep", MALLOC_ARENA_MAX="8") > 50_000


def test_refuses_after_numpy_is_imported():
  # This process imported numpy above: its threads may hold arenas already.
  assert allocator.keep_freed_memory() is False
  assert "numpy" in allocator.status


@glibc_linux
def test_refuses_when_an_accelerator_platform_is_chosen():
  code = ("from snnax_nas import allocator; "
          "print(allocator.keep_freed_memory(), allocator.status)")
  out = subprocess.run([sys.executable, "-c", code], env=_env(JAX_PLATFORMS="cuda"),
                       capture_output=True, text=True, check=True, timeout=600).stdout
  assert out.startswith("False") and "accelerator" in out, out


@glibc_linux
@pytest.mark.parametrize("module,kept", [("launch.train", True), ("launch.compare", True),
                                         ("launch.analyze_ops", True), ("launch.search", False)])
def test_training_launchers_set_it_and_scoring_launchers_do_not(module, kept):
  # What `python -m MODULE` looks like while it imports the `launch` package:
  # sys.argv[0] is "-m" and sys.orig_argv names the module.
  code = (f"import sys; sys.argv[:1] = ['-m']; sys.orig_argv = ['python', '-m', {module!r}]; "
          "import launch; from snnax_nas import allocator; print(allocator.status)")
  out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True,
                       text=True, check=True, timeout=600).stdout
  assert out.startswith("glibc keeps freed memory" if kept else "glibc's defaults"), out


def test_a_script_importing_launch_leaves_it_alone():
  code = "import launch; from snnax_nas import allocator; print(allocator.status)"
  out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True,
                       text=True, check=True, timeout=600).stdout
  assert out.startswith("glibc's defaults"), out
