"""Times the code Gram matmul ``x x^T`` of the SAHD score in each input dtype.

  python benchmarks/gram_bench.py            # B = 64, the score's LIF sizes at width 16

Prints the median time of ``snnax_nas.kernels.code_gram`` on 0/1 codes [B, N] for
int8 (-> int32), bfloat16 (-> float32) and float32 inputs, compile time apart,
and checks that all three give the same exact integers.
"""

import argparse
import time

import jax
import numpy as np

from snnax_nas import kernels


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--sizes", default="16384,8192,1024",
                 help="code lengths N (width 16: 32x32x16 cell 1, 16x16x32 cell 2, hidden)")
  p.add_argument("--reps", type=int, default=50)
  args = p.parse_args()
  rng = np.random.default_rng(0)
  print(f"jax {jax.__version__} ({jax.default_backend()}), B = {args.batch}, "
        f"median of {args.reps} calls")
  for n in [int(s) for s in args.sizes.split(",")]:
    codes = jax.numpy.asarray(rng.random((args.batch, n)) < 0.1)
    times, grams = {}, {}
    for dtype in ("int8", "bfloat16", "float32"):
      fn = jax.jit(lambda x, d=dtype: kernels.code_gram(x, d))
      t0 = time.perf_counter()
      grams[dtype] = np.asarray(fn(codes))
      compile_s = time.perf_counter() - t0
      ts = []
      for _ in range(args.reps):
        t0 = time.perf_counter()
        fn(codes).block_until_ready()
        ts.append(time.perf_counter() - t0)
      times[dtype] = float(np.median(ts))
      print(f"N {n:6d}  {dtype:8s}: {1e6 * times[dtype]:8.1f} us  "
            f"(first call incl. compile {compile_s:.2f} s)")
    same = all(np.array_equal(grams["float32"], g) for g in grams.values())
    print(f"N {n:6d}  float32 / int8 time = {times['float32'] / times['int8']:.2f}x; "
          f"identical results: {same}")


if __name__ == "__main__":
  main()
