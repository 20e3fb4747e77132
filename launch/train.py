r"""Trains a searched architecture (SNASNet recipe) and reports accuracy and spikes.

  python -m launch.train --config.genotype=0303/0030/2002/0200 --workdir=runs/train
  python -m launch.train --config.from_search=runs/search --config.training.epochs=300 \
      --workdir=runs/train
  python -m launch.train --config.genotype='0303/0030/0003/0000' \
      --config.dataset='npz:/data/cifar10/{split}10k.npz' --config.network.width=16 \
      --config.network.timesteps=3 --config.training.epochs=10 --workdir=runs/cifar10 \
      --checkpoint_dir=runs/ckpt
  python -m launch.train --config.genotype=0303/0030/2002/0200 --config.network.backward=true \
      --config.network.linear_init=fan_in --config.training.weight_bits=8 --workdir=runs/qat8

The job is :func:`snnax_nas.jobs.train.run` (its docstring: ``from_search``,
the files written, QAT, resuming); the config is ``snnax_nas/configs/train.py``.
With ``--config.from_search`` the fields given on the command line win over
the search's.
"""

from __future__ import annotations

import os
import sys

from absl import app
from absl import flags

from launch import common
from snnax_nas.jobs import train as job

FLAGS = flags.FLAGS
common.define_config_flags("train")
flags.DEFINE_string("checkpoint_dir", None, "Checkpoint directory (default WORKDIR/"
                    "checkpoints).")


@common.exits_cleanly_on_interrupt
def main(argv):
  common.check_no_args(argv, "--config.genotype=GENOTYPE")
  common.use_cpu_cores()
  command = " ".join([os.path.basename(sys.executable), "-m", "launch.train"] + sys.argv[1:])
  common.run_job(job, FLAGS.config, FLAGS.workdir, given=common.overridden(),
                 checkpoint_dir=FLAGS.checkpoint_dir, command=command)


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags)
