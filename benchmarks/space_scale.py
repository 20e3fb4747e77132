"""Where the weights sit: the search space's weight range against network scale.

  python benchmarks/space_scale.py [--ops=spikenas] [--weight_bits=32]

For each network scale (width, classifier hidden width, ``second_pool``,
cells per stage; CIFAR-10 shapes: 32x32x3 inputs, 10 classes, vote 10) it
prints, from the analytic memory model (:func:`snnax_nas.memory.space_range`,
exact): the smallest and largest network of the forward space, their ratio,
and the share of the largest network's parameters that sit in its cells
rather than the stem, reduction block and classifier, and the FLOPs of
scoring that largest network (B 64, T 5, R 2; :mod:`snnax_nas.flops`), the
cost side of the choice. A budget can only
choose between cells when the ratio is well above 1, i.e. when the cells,
not the classifier, hold most of the weights.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from snnax_nas import flops
from snnax_nas import genotype as genotype_lib
from snnax_nas import memory
from snnax_nas import network


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--ops", default="spikenas")
  parser.add_argument("--weight_bits", type=int, default=32)
  args = parser.parse_args()
  print(f"op set {args.ops}, forward space, weights at {args.weight_bits}-bit\n")
  print("| width | hidden | second_pool | cells/stage | min params | max params | max/min | "
        "min-max MB | cells' share of max | GFLOP to score the max |")
  print("|---|---|---|---|---|---|---|---|---|---|")
  for width, hidden, pool, cells in itertools.product((8, 16, 32), (128, 1024), (2, 4), (1, 2)):
    cfg = network.network_config(None, width=width, hidden=hidden, second_pool=pool,
                                 cells_per_stage=cells, ops=args.ops)
    r = memory.space_range(cfg, args.weight_bits)
    # The largest cell: the costliest op on all 6 forward edges.
    costs = [memory.op_params(op, width) for op in cfg.ops.nonzero_ops]
    top = np.zeros((4, 4), np.int8)
    rows, cols = zip(*genotype_lib.FORWARD_EDGES)
    top[list(rows), list(cols)] = 1 + int(np.argmax(costs))
    arch = genotype_lib.arch_of(genotype_lib.as_genotypes(top[None], cfg), cfg)
    gflop = flops.candidate_flops(arch, cfg, 64, 2).executed[0] / 1e9
    print(f"| {width} | {hidden} | {pool} | {cells} | {r.min_params:,} | {r.max_params:,} | "
          f"{r.max_params / r.min_params:.2f} | {r.min_bytes / 1e6:.3f}-{r.max_bytes / 1e6:.3f} | "
          f"{100 * r.cell_share:.0f} % | {gflop:.1f} |")


if __name__ == "__main__":
  main()
