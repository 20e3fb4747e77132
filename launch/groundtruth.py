r"""The searches judged on a table of trained architectures, without training.

  python -m launch.groundtruth --config.table=cells_cifar100.csv --workdir=runs/gt_c100
  python -m launch.groundtruth --config.table=cells_tinyimagenet.csv \
      --config.trained.preset=tinyimagenet --config.network.width=8 \
      --config.scoring.batch_size=32 --config.scoring.repeats=1 --workdir=runs/gt_tin

The study is :func:`snnax_nas.studies.groundtruth.run` (its module docstring says
what each method does and how the search time is measured); the config is
``snnax_nas/configs/groundtruth.py``. Prints the table's weight range and
the results table (mean [95 % interval] over seeds per budget and method),
SpikeNAS's accuracy minus each other method's paired by seed, and the
op-significance table; writes ``per_seed.csv``, ``results.csv``,
``results.md``, ``ops.csv`` and ``summary.json``. Kill it and rerun the same
command: finished seeds are loaded, not rescored.
"""

from __future__ import annotations

from absl import app
from absl import flags

from launch import common
from snnax_nas.studies import groundtruth as job

FLAGS = flags.FLAGS
common.define_config_flags("groundtruth", workdir_default="runs/groundtruth")


@common.exits_cleanly_on_interrupt
def main(argv):
  common.check_no_args(argv, "--config.table=CSV")
  common.run_job(job, FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags)
