"""Time of one data-parallel training step against the number of timesteps T.

  python benchmarks/train_step_bench.py                       # T = 3 and 5, unrolled
  python benchmarks/train_step_bench.py --timesteps 3 --rolled

The step (forward, BPTT backward, SGD update) of ``snnax_nas.train.make_steps``
for one cell at width 16 (the ``cifar10`` preset otherwise), a batch of 64
random 32x32 images, one XLA device per core. Prints the first call
(compilation included) and the median of ``--reps`` steps. Work grows
linearly in T; the step time on XLA:CPU does not (see benchmarks/RESULTS.md).
"""

import argparse
import os
import time

import jax
import numpy as np


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--timesteps", default="3,5", help="comma list of T")
  p.add_argument("--genotype", default="0201/0001/0000/0000")
  p.add_argument("--ops", default="spikenas")
  p.add_argument("--width", type=int, default=16)
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--reps", type=int, default=8)
  p.add_argument("--rolled", action="store_true",
                 help="keep the time loop a rolled lax.scan (unroll_time=False)")
  args = p.parse_args()
  jax.config.update("jax_num_cpu_devices", len(os.sched_getaffinity(0)))
  from snnax_nas import data  # pylint: disable=g-import-not-at-top
  from snnax_nas import genotype  # pylint: disable=g-import-not-at-top
  from snnax_nas import network  # pylint: disable=g-import-not-at-top
  from snnax_nas import train  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  batch = {"image": rng.integers(0, 255, (args.batch, 32, 32, 3), dtype=np.uint8),
           "label": rng.integers(0, 10, args.batch).astype(np.int32)}
  print(f"jax {jax.__version__}, {jax.local_device_count()} devices, batch {args.batch}, "
        f"width {args.width}, {args.genotype} ({args.ops}), "
        f"time loop {'rolled' if args.rolled else 'unrolled'}")
  base = None
  for t in [int(s) for s in args.timesteps.split(",")]:
    cfg = network.network_config("cifar10", width=args.width, timesteps=t, ops=args.ops)
    g = genotype.parse_genotype(args.genotype, cfg.ops)
    opt = train.make_optimizer(0.1, 1, 100)
    steps = train.make_steps(cfg, g, opt, data.get_info("cifar10"),
                             forward=train.standalone_forward_fn(cfg, g, unroll_time=not args.rolled))
    state = jax.device_put(train.create_train_state(jax.random.PRNGKey(0), cfg, g, opt),
                           steps.state_sharding)
    times = []
    for _ in range(args.reps + 1):
      b = train.put_batch(batch, steps.batch_sharding)
      t0 = time.perf_counter()
      state, metrics = steps.train(state, b)
      jax.block_until_ready(metrics)
      times.append(time.perf_counter() - t0)
    med = float(np.median(times[1:]))
    base = base or (t, med)
    print(f"T {t}: first call {times[0]:.1f} s, step median {1e3 * med:.0f} ms "
          f"({args.batch / med:.0f} img/s); time / T{base[0]} time = {med / base[1]:.2f} "
          f"(work ratio {t / base[0]:.2f})")


if __name__ == "__main__":
  main()
