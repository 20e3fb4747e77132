r"""SpikeNAS step 1: how much each operation matters to accuracy.

  python -m launch.analyze_ops --config.network.ops=snasnet --config.training.epochs=5 \
      --config.training.seeds=3 --workdir=runs/analyze_ops

The study is :func:`snnax_nas.studies.analyze_ops.run` (its docstring: the variants,
the files written, resuming); the config is ``snnax_nas/configs/analyze_ops.py``.
"""

from __future__ import annotations

from absl import app
from absl import flags

from launch import common
from snnax_nas.studies import analyze_ops as job

FLAGS = flags.FLAGS
common.define_config_flags("analyze_ops", workdir_default="runs/analyze_ops")


@common.exits_cleanly_on_interrupt
def main(argv):
  common.check_no_args(argv, "--config.FIELD=VALUE")
  common.use_cpu_cores()
  common.run_job(job, FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags)
