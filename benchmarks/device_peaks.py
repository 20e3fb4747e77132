"""Timing helpers of the scorer benchmarks: this process's peak memory, the
median of repeated timed calls, and the dense conv / matmul peak of the
machine (the roofline the scorer's FLOP rate is read against)."""

from __future__ import annotations

import pathlib
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np


def _maxrss_mib() -> float:
  """Peak resident set size of this process so far, MiB.

  Reads ``VmHWM`` (the high-water mark of this process image) where there is
  one: Linux's ``getrusage`` maxrss survives fork + exec, so a child process
  would report its parent's peak when that is higher.
  """
  try:
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
      if line.startswith("VmHWM:"):
        return int(line.split()[1]) / 1024.0
  except OSError:
    pass
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _median_time(fn, reps):
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return float(np.median(times)), float(np.min(times))



def measure_peaks(reps: int = 10):
  """Dense conv and matmul GFLOP/s (median, best) of large jitted f32 ops.

  Each op is timed in two arrangements and the faster one is the peak: on one
  XLA device (its intra-op threads share the cores) and on every local
  device at once, each running its own copy (one device per core is how the
  scorer runs; there a conv reaches about twice the one-device figure).
  """
  from jax.sharding import Mesh  # pylint: disable=g-import-not-at-top
  from jax.sharding import PartitionSpec  # pylint: disable=g-import-not-at-top
  conv = lambda x, k: jax.lax.conv_general_dilated(
      x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  mm = lambda a, b: a @ b
  ops = {
      "conv": (conv, ((64, 32, 32, 64), (3, 3, 64, 64)), 2 * 9 * 64 * 64 * 32 * 32 * 64,
               "conv NHWC 64x32x32x64 -> 64, 3x3"),
      "matmul": (mm, ((2048, 2048), (2048, 2048)), 2 * 2048 ** 3, "matmul 2048x2048 @ 2048x2048"),
  }
  devices = jax.local_devices()
  mesh = Mesh(np.array(devices), ("d",))
  spec = PartitionSpec("d")
  out = {}
  for name, (fn, shapes, fl, desc) in ops.items():
    x, k = (jax.random.normal(jax.random.key(i), s) for i, s in enumerate(shapes))
    one = jax.jit(fn)
    med1, best1 = _median_time(lambda: one(x, k), reps + 1)
    # shard_map, not vmap: vmapping per-device weights would make one grouped conv.
    each = jax.jit(jax.shard_map(lambda a, b: fn(a[0], b[0])[None], mesh=mesh,
                                 in_specs=(spec, spec), out_specs=spec))
    xs, ks = (jnp.broadcast_to(v, (len(devices),) + v.shape) for v in (x, k))
    xs, ks = (jax.device_put(v, jax.sharding.NamedSharding(mesh, spec)) for v in (xs, ks))
    medn, bestn = _median_time(lambda: each(xs, ks), reps + 1)
    n = len(devices)
    cands = {"one device": (fl / med1, fl / best1),
             f"{n} devices, one op each": (n * fl / medn, n * fl / bestn)}
    where = max(cands, key=lambda c: cands[c][1])
    out[name] = {"desc": f"{desc}, f32, {where}",
                 "gflops_median": cands[where][0] / 1e9, "gflops_best": cands[where][1] / 1e9,
                 "arrangements": {c: v[1] / 1e9 for c, v in cands.items()}}
  return out
