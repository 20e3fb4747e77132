"""glibc's allocator told to keep the memory it frees, for XLA:CPU training.

XLA:CPU allocates a compiled step's temporary buffer (hundreds of MiB for a
training step) afresh on every call. With glibc's defaults a block that size
is mapped for the call and unmapped after it, so each of its pages is faulted
in and zeroed by the kernel on every step: at width 16, T 3, batch 64 about
61,000 faults and a quarter to a third of the step's time
(``benchmarks/RESULTS.md``). :func:`keep_freed_memory` makes the process allocate from one
heap that is never given back, so a step reuses the previous step's pages.

It must run before any thread allocates: the arena limit is read when the
first thread arena is made, and numpy, jax and torch start threads when
imported. Call it first thing in a script::

  from snnax_nas import allocator
  allocator.keep_freed_memory()    # before importing numpy / jax
  import jax

The launchers that train (``python -m launch.train``, ``launch.compare``,
``launch.analyze_ops``) call it themselves; the scoring launchers do not (a
search ran 8 % slower with it, at up to 1.7x the peak memory: two XLA:CPU
devices then allocate from one arena). Standard library only, so importing
it starts no threads.

The cost is memory: the process keeps its peak heap until it exits, and a
fragmented heap can hold more than the run needs at once (the quick-start
search: 0.96-1.39 GB peak against 0.77-0.80 GB with glibc's defaults).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import os
import sys

# mallopt(3) parameter numbers (glibc's malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -2, -4, -8
_KEEP = ((_M_ARENA_MAX, 1),          # one heap, so that big blocks can live in it
         (_M_MMAP_MAX, 0),           # big blocks from the heap, not fresh mappings
         (_M_TRIM_THRESHOLD, 2**31 - 1),  # never give the heap's top back
         (_M_TOP_PAD, 256 << 20))    # grow the heap in 256 MiB steps

#: What the last :func:`keep_freed_memory` call did, in words (for logs).
status = "glibc's defaults (keep_freed_memory not called)"


def _accelerator_installed() -> bool:
  """Whether a JAX accelerator plugin is installed (found without importing it)."""
  platforms = os.environ.get("JAX_PLATFORMS", "")
  if platforms:
    return platforms.split(",")[0].strip() != "cpu"
  if importlib.util.find_spec("libtpu") or importlib.util.find_spec("jax_plugins"):
    return True
  return bool(importlib.metadata.entry_points(group="jax_plugins"))


def keep_freed_memory() -> bool:
  """Tells glibc's malloc to keep freed memory for reuse; returns whether it did.

  Left alone (returns False, and says why in :data:`status`) when:
  - the C library is not glibc (macOS, musl);
  - any ``MALLOC_*`` variable or ``GLIBC_TUNABLES`` is set: the user tunes the
    allocator (``MALLOC_ARENA_MAX=8`` is a way to opt out);
  - numpy, jax or torch is already imported: their threads hold arenas, and
    a partial setting gains nothing (measured);
  - a JAX accelerator plugin is installed, or ``JAX_PLATFORMS`` names an
    accelerator first: device steps do not allocate their buffers from glibc,
    and the effect on a GPU host's input threads is not measured.
  """
  global status
  if not sys.platform.startswith("linux"):
    status = f"left alone: {sys.platform} has no glibc"
    return False
  if any(k.startswith("MALLOC_") for k in os.environ) or "GLIBC_TUNABLES" in os.environ:
    status = "left alone: the environment sets MALLOC_* / GLIBC_TUNABLES"
    return False
  early = [m for m in ("numpy", "jax", "torch") if m in sys.modules]
  if early:
    status = f"left alone: {', '.join(early)} already imported (call it before them)"
    return False
  if _accelerator_installed():
    status = "left alone: a JAX accelerator plugin or platform is configured"
    return False
  try:
    libc = ctypes.CDLL(None)
    libc.gnu_get_libc_version  # pylint: disable=pointless-statement
  except (OSError, AttributeError):
    status = "left alone: the C library is not glibc"
    return False
  done = [libc.mallopt(param, value) for param, value in _KEEP]
  status = ("glibc keeps freed memory (one arena, no mmap, no trim)" if all(done) else
            f"mallopt refused a setting ({done}); allocator partly set")
  return all(done)
