r"""Evaluates a trained run's checkpoint at a weight precision (post-training quantisation).

  python -m launch.evaluate --workdir=runs/train
  python -m launch.evaluate --workdir=runs/train --config.weight_bits=8 --config.split=test

``--workdir`` is a ``launch.train`` workdir. The job is
:func:`snnax_nas.jobs.evaluate.run`: it prints the accuracy, the SAR, the
firing rate of each LIF layer and the weight memory at that precision, and
writes them to ``WORKDIR/eval/{split}_w{bits}.json``. Bad values exit with
status 2 and one line.
"""

from __future__ import annotations

from absl import app
from absl import flags

from launch import common
from snnax_nas.jobs import evaluate as job

FLAGS = flags.FLAGS
common.define_config_flags("evaluate")


@common.exits_cleanly_on_interrupt
def main(argv):
  common.check_no_args(argv, "--workdir=RUN --config.weight_bits=8")
  if not FLAGS.workdir:
    common.fail("--workdir is required: the launch.train workdir to evaluate")
  common.use_cpu_cores()
  common.run_job(job, FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags)
