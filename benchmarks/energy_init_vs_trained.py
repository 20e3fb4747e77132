r"""Does the SOP count at initialisation rank trained networks' SOP counts?

  python benchmarks/energy_init_vs_trained.py --out=runs/sops \
      --dataset='npz:/path/to/cifar10/{split}10k.npz' --networks=10 --epochs=2

For ``--networks`` cells drawn (seed ``--seed``) from the spikenas space
(skip / conv3x3, forward; one cell for all four cells), in the ``small``
preset's network (width 16, hidden 128, ``second_pool`` 4, two cells per
stage; ``--timesteps``), this

1. counts the operations at initialisation as the search job reports them
   (:func:`snnax_nas.energy.initialisation_estimate`: weights from
   ``key(seed)``, the first ``--init_images`` training images, BN with batch
   statistics);
2. trains the network with the train job (``--epochs`` epochs on the first
   ``--max_train_examples`` training images, batch 64, lr 0.1, the fan-in
   classifier init so that the classifier fires from the first step);
3. evaluates it (float weights) on the first ``--eval_examples`` test images
   and reads the operations per inference from the evaluation.

Then Kendall tau (95 % bootstrap interval over the networks) of the
initialisation SOPs against the trained SOPs, of the initialisation energy
against the trained energy, and, as the baseline an estimate must beat, of
the analytic ANN-equivalent MACs (no spikes, no weights) against the trained
SOPs. Every stage is resumable (the train job resumes its workdir; finished
networks keep ``OUT/g<i>/energy.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from snnax_nas import allocator  # noqa: E402

allocator.keep_freed_memory()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from snnax_nas import configs  # noqa: E402
from snnax_nas import correlation  # noqa: E402
from snnax_nas import data as data_lib  # noqa: E402
from snnax_nas import energy  # noqa: E402
from snnax_nas import evaluate  # noqa: E402
from snnax_nas import genotype as genotype_lib  # noqa: E402
from snnax_nas import ops as ops_lib  # noqa: E402
from snnax_nas.jobs import train as train_job  # noqa: E402
from snnax_nas.search import common as search_common  # noqa: E402


def one_network(args, i: int, genotype: str, info, init_images) -> dict:
  """Init estimate, training and evaluation of one network (resumable)."""
  where = os.path.join(args.out, f"g{i}")
  done = os.path.join(where, "energy.json")
  if os.path.exists(done):
    with open(done) as f:
      return json.load(f)
  t0 = time.perf_counter()
  config = configs.get_config("train")
  config.genotype, config.dataset, config.seed = genotype, args.dataset, args.seed
  config.network.update(ops="spikenas", timesteps=args.timesteps, linear_init="fan_in")
  config.training.update(epochs=args.epochs, max_train_examples=args.max_train_examples,
                         max_test_examples=args.eval_examples, eval_every=args.epochs,
                         log_every=0)
  train_job.run(config, where)
  cfg = configs.network_from_job_config(config.network, info)
  init = energy.initialisation_estimate(cfg, genotype, init_images, jax.random.key(args.seed))
  ev = evaluate.evaluate_run(where, split="test", max_examples=args.eval_examples,
                             batch_size=100)
  out = dict(genotype=genotype, accuracy=ev.accuracy, sar=ev.sar,
             init_sops=init["sops"], init_energy_pj=init["energy_pj"],
             trained_sops=ev.operations["sops"], trained_energy_pj=ev.operations["energy_pj"],
             ann_macs=ev.operations["ann_macs"], seconds=time.perf_counter() - t0)
  with open(done, "w") as f:
    json.dump(out, f, indent=1)
  return out


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--out", required=True)
  p.add_argument("--dataset", required=True, help="a dataset spec, e.g. npz:DIR/{split}10k.npz")
  p.add_argument("--networks", type=int, default=10)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--timesteps", type=int, default=5)
  p.add_argument("--epochs", type=int, default=2)
  p.add_argument("--max_train_examples", type=int, default=4096)
  p.add_argument("--eval_examples", type=int, default=1000)
  p.add_argument("--init_images", type=int, default=256)
  args = p.parse_args()
  os.makedirs(args.out, exist_ok=True)
  space = search_common.search_space(ops_lib.op_set("spikenas"), False)
  rng = np.random.default_rng(args.seed)
  picks = rng.choice(len(space), size=min(args.networks, len(space)), replace=False)
  genotypes = [genotype_lib.format_genotype(space[k]) for k in sorted(picks)]
  info = data_lib.get_info(args.dataset)
  images, _ = data_lib.load_arrays(args.dataset, "train")
  init_images = data_lib.normalize(images[:args.init_images], info)
  rows = []
  for i, g in enumerate(genotypes):
    rows.append(one_network(args, i, g, info, init_images))
    r = rows[-1]
    print(f"{i:>2} {g}  acc {100 * r['accuracy']:5.1f}%  SAR {r['sar']:.3f}  init SOPs "
          f"{r['init_sops']:>13,.0f}  trained SOPs {r['trained_sops']:>13,.0f}  "
          f"({r['seconds']:.0f} s)", flush=True)
  col = lambda k: np.array([r[k] for r in rows], np.float64)  # noqa: E731
  print(f"\n{len(rows)} networks, {args.epochs} epochs on {args.max_train_examples} images, "
        f"T {args.timesteps}; Kendall tau [95 % bootstrap interval]:")
  for name, score, truth in (("init SOPs vs trained SOPs", "init_sops", "trained_sops"),
                             ("init energy vs trained energy", "init_energy_pj",
                              "trained_energy_pj"),
                             ("ANN MACs (analytic) vs trained SOPs", "ann_macs", "trained_sops")):
    rep = correlation.correlation_report(col(score), col(truth), ks=(3,), resamples=2000)
    lo, hi = rep["kendall_tau_ci"]
    print(f"  {name:<38} tau {rep['kendall_tau']:+.3f} [{lo:+.3f}, {hi:+.3f}]  "
          f"rho {rep['spearman_rho']:+.3f}")
  with open(os.path.join(args.out, "rows.json"), "w") as f:
    json.dump(rows, f, indent=1)


if __name__ == "__main__":
  main()
