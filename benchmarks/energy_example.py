r"""Operations and energy per inference of the ``small`` preset's networks at
initialisation, on the bundled CIFAR-10 sample.

  python benchmarks/energy_example.py                       # three cells of the spikenas space
  python benchmarks/energy_example.py --genotypes=0212/0021/0002/0000 --draws=5
  python benchmarks/energy_example.py --from_search=runs/search   # a search's pick

The network is the search job's ``small`` preset (width 16, hidden 128,
``second_pool`` 4, two cells per stage, T 5, CIFAR-10 shapes). For each
genotype and each of ``--draws`` weight draws (``key(d)``) it initialises
the network and counts, on the first ``--images`` images of the sample
(normalised, not augmented; BN with batch statistics as the training-free
scorer runs it, :func:`snnax_nas.energy.initialisation_estimate`), the
synaptic operations, MACs and additions per inference and their energy at
0.9 pJ per accumulate and 4.6 pJ per MAC (45 nm, 32-bit float; Horowitz,
ISSCC 2014), beside the ANN equivalent. The figures are an initialisation
estimate, not those of a trained network. Prints the totals per genotype
(mean and range over the draws) and the first draw's per-layer table of the
first genotype.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from snnax_nas import distributed  # noqa: E402

distributed.use_cpu_cores()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from snnax_nas import configs  # noqa: E402
from snnax_nas import data as data_lib  # noqa: E402
from snnax_nas import energy  # noqa: E402
from snnax_nas import workdir as workdir_lib  # noqa: E402

# The spikenas space's smallest cell (all skip), its largest (all conv3x3) and one between.
GENOTYPES = "0111/0011/0001/0000,0212/0021/0002/0000,0222/0022/0002/0000"


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--genotypes", default=GENOTYPES, help="comma-separated genotype strings")
  p.add_argument("--from_search", default=None, help="a search workdir: its pick and network")
  p.add_argument("--images", type=int, default=256, help="images of the sample counted on")
  p.add_argument("--draws", type=int, default=3, help="weight draws per genotype")
  p.add_argument("--accumulate_pj", type=float, default=energy.DEFAULT_ACCUMULATE_PJ)
  p.add_argument("--mac_pj", type=float, default=energy.DEFAULT_MAC_PJ)
  args = p.parse_args()
  if args.images < 1 or args.draws < 1:
    raise SystemExit(f"--images={args.images} and --draws={args.draws} must be >= 1")
  energies = energy.OperationEnergies(args.accumulate_pj, args.mac_pj)
  info = data_lib.get_info("cifar10_sample")
  if args.from_search:
    run = workdir_lib.load_run(args.from_search)
    cfg, genotypes = run.network, list(run.genotypes)
  else:
    cfg = configs.network_from_job_config(configs.get_config("search").network, info,
                                          ops="spikenas")
    genotypes = [g.strip() for g in args.genotypes.split(",") if g.strip()]
  images, _ = data_lib.load_arrays("cifar10_sample", "train")
  x = data_lib.normalize(images[:args.images], info)
  print(f"network: width {cfg.width}, hidden {cfg.hidden}, second_pool {cfg.second_pool}, "
        f"{cfg.num_cells} cells, T {cfg.timesteps}, ops {cfg.ops}; {len(x)} images of "
        f"cifar10_sample; {args.draws} weight draws; {energies.accumulate_pj:g} pJ/AC, "
        f"{energies.mac_pj:g} pJ/MAC; initialisation estimate (untrained)")
  print(f"{'genotype':<42} {'SOPs':>22} {'MACs':>11} {'adds':>11} {'uJ':>20} {'ANN uJ':>8} "
        f"{'SNN/ANN':>7}  s")
  first = None
  for g in genotypes:
    t0 = time.perf_counter()
    runs = [energy.initialisation_estimate(cfg, g, x, jax.random.key(d), energies)
            for d in range(args.draws)]
    first = first or runs[0]
    sops = np.array([r["sops"] for r in runs])
    uj = np.array([r["energy_pj"] for r in runs]) * 1e-6
    ann = runs[0]["ann_energy_pj"] * 1e-6
    print(f"{g:<42} {sops.mean():>10,.0f} [{sops.min():,.0f}-{sops.max():,.0f}] "
          f"{runs[0]['macs']:>11,.0f} {runs[0]['adds']:>11,.0f} "
          f"{uj.mean():>7.3f} [{uj.min():.3f}-{uj.max():.3f}] {ann:>8.3f} {uj.mean() / ann:>7.3f}"
          f"  {time.perf_counter() - t0:.0f}")
  print(f"\nper layer, {genotypes[0]}, draw 0:")
  print("\n".join(energy.summary_lines(first)))


if __name__ == "__main__":
  main()
