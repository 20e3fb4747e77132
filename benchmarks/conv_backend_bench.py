"""Conv throughput of XLA:CPU at the scorer's conv shapes, per conv backend.

  python benchmarks/conv_backend_bench.py                 # default, oneDNN, XNNPACK, no YNN convs
  python benchmarks/conv_backend_bench.py --flags ''      # JAX's default backend only

Why: the batch scorer's useful work is convolutions (plus int8 Gram matmuls),
so the fastest conv this machine runs bounds candidates/s. For each
``XLA_FLAGS`` setting (a child process each: the flags are read when the
backend starts) it prints the median GFLOP/s of one ``lax.conv`` (NHWC/HWIO,
'same' padding, f32) at the default benchmark config's shapes (batch 64 per
timestep, width 16), the same at batch 320 (the T = 5 timesteps of a layer
batched into one call), and a 2048^2 f32 matmul, the machine's
fused-multiply-add peak in practice. A conv counts 2 * k * k * Cin * Cout * H * W * B
FLOPs. Two timings per shape: on one XLA device (its intra-op threads use
every core) and on one device per core, each running its own conv, which is
how the scorer runs (``snnax_nas.distributed.use_cpu_cores``).
"""

import argparse
import json
import os
import subprocess
import sys
import time

# (name, B, H, W, Cin, Cout, k) at width 16, batch 64.
SHAPES = (
    ("stem 3->16", 64, 32, 32, 3, 16, 3),
    ("cell-1 conv3x3", 64, 32, 32, 16, 16, 3),
    ("cell-1 conv1x1", 64, 32, 32, 16, 16, 1),
    ("reduction 16->32", 64, 32, 32, 16, 32, 3),
    ("cell-2 conv3x3", 64, 16, 16, 32, 32, 3),
    ("cell-1 conv3x3, B 320", 320, 32, 32, 16, 16, 3),
    ("cell-2 conv3x3, B 320", 320, 16, 16, 32, 32, 3),
    ("peak shape 64->64", 64, 32, 32, 64, 64, 3),
)
# The last: no convolution alone in a YNNPACK fusion (what
# snnax_nas.train.compiler_options sets for training steps): YNNPACK runs
# each conv on one thread, so on one device it leaves the other cores idle.
FLAG_SETS = ("", "--xla_cpu_use_onednn=true", "--xla_cpu_use_xnnpack=true",
             "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution")


def _median_s(fn, args, reps):
  fn(*args).block_until_ready()  # compile
  ts = []
  for _ in range(reps):
    t0 = time.perf_counter()
    fn(*args).block_until_ready()
    ts.append(time.perf_counter() - t0)
  ts.sort()
  return ts[len(ts) // 2]


def _child(reps: int):
  """Measures in this process (XLA_FLAGS already set); prints one JSON line."""
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_num_cpu_devices", len(os.sched_getaffinity(0)))
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jax.sharding import Mesh  # pylint: disable=g-import-not-at-top
  from jax.sharding import NamedSharding  # pylint: disable=g-import-not-at-top
  from jax.sharding import PartitionSpec as P  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  def conv(x, w):
    pad = w.shape[0] // 2
    return jax.lax.conv_general_dilated(x, w, (1, 1), [(pad, pad)] * 2,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

  devices = jax.devices()
  mesh = Mesh(np.array(devices), ("d",))
  # shard_map, not vmap: a vmapped conv with per-slice weights becomes one
  # grouped conv, which XLA:CPU runs far slower than plain ones.
  per_device = jax.jit(jax.shard_map(lambda x, w: conv(x[0], w[0])[None], mesh=mesh,
                                     in_specs=(P("d"), P("d")), out_specs=P("d")))
  one_device = jax.jit(conv)
  rng = np.random.default_rng(0)
  out = {"devices": len(devices), "shapes": {}}
  for name, b, h, w, ci, co, k in SHAPES:
    # Spike-like 0/1 inputs, as the cells' convs see.
    x = (rng.random((b, h, w, ci)) < 0.15).astype(np.float32)
    wt = rng.standard_normal((k, k, ci, co)).astype(np.float32)
    flops = 2 * k * k * ci * co * h * w * b
    t1 = _median_s(one_device, (jnp.asarray(x), jnp.asarray(wt)), reps)
    n = len(devices)
    xs = jax.device_put(np.broadcast_to(x, (n,) + x.shape), NamedSharding(mesh, P("d")))
    ws = jax.device_put(np.broadcast_to(wt, (n,) + wt.shape), NamedSharding(mesh, P("d")))
    tn = _median_s(per_device, (xs, ws), reps)
    out["shapes"][name] = {"one_device": flops / t1 / 1e9, "per_core": n * flops / tn / 1e9}
  a = jnp.asarray(rng.standard_normal((2048, 2048)).astype(np.float32))
  t = _median_s(jax.jit(lambda a: a @ a), (a,), reps)
  out["matmul_2048"] = 2 * 2048 ** 3 / t / 1e9
  print(json.dumps(out))


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--flags", default=None,
                 help="one XLA_FLAGS setting to time (default: all of FLAG_SETS)")
  p.add_argument("--reps", type=int, default=15)
  p.add_argument("--json", default=None, help="write the results to this file")
  p.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
  args = p.parse_args()
  if args._child:
    _child(args.reps)
    return
  flag_sets = FLAG_SETS if args.flags is None else (args.flags,)
  results = {}
  for flags in flag_sets:
    env = dict(os.environ, XLA_FLAGS=flags)
    proc = subprocess.run([sys.executable, __file__, "--_child", "--reps", str(args.reps)],
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
      sys.exit(f"child with XLA_FLAGS={flags!r} failed:\n{proc.stderr[-2000:]}")
    results[flags or "(default)"] = json.loads(proc.stdout.strip().splitlines()[-1])
  print(f"median of {args.reps} calls, GFLOP/s; 'one dev': one XLA device, "
        f"'per core': one device per core, each its own conv")
  for flags, r in results.items():
    print(f"\nXLA_FLAGS={flags}  ({r['devices']} devices)   "
          f"matmul 2048^2 f32: {r['matmul_2048']:.1f}")
    print(f"  {'shape':24s} {'one dev':>8s} {'per core':>9s}")
    for name, g in r["shapes"].items():
      print(f"  {name:24s} {g['one_device']:8.1f} {g['per_core']:9.1f}")
  best = max(max(max(g.values()) for g in r["shapes"].values()) for r in results.values())
  mm = max(r["matmul_2048"] for r in results.values())
  print(f"\nfastest conv seen: {best:.1f} GFLOP/s; fastest matmul: {mm:.1f} GFLOP/s")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(results, f, indent=1)


if __name__ == "__main__":
  main()
