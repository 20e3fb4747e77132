r"""The searches judged on a table of trained architectures, without training.

  python -m launch.groundtruth --config.table=cells_cifar100.csv --workdir=runs/gt_c100
  python -m launch.groundtruth --config=$(python -c 'import configs; print(configs.path("groundtruth"))'):fast \
      --config.table=cells_tinyimagenet.csv --config.trained.preset=tinyimagenet \
      --workdir=runs/gt_tin

The config is ``configs/groundtruth.py``; the job is
:func:`snnax_nas.groundtruth.run` (its module docstring says what each
method does and how the search time is measured). Prints the table's weight
range, each budget in MB, and the results table (mean [95 % interval] over
seeds per budget and method), SpikeNAS's accuracy minus each other
method's paired by seed, and the op-significance table; writes
``per_seed.csv``, ``results.csv``, ``results.md``, ``ops.csv`` and
``summary.json``. Kill it and rerun the same command: finished seeds are
loaded, not rescored.
"""

from __future__ import annotations

import os

from absl import app
from absl import logging

from launch import common
from snnax_nas import groundtruth

common.define_config_flags("groundtruth", workdir_default="runs/groundtruth")


@common.exits_cleanly_on_interrupt
def main(argv):
  del argv
  logging.set_verbosity(logging.INFO)
  workdir = common.ensure_workdir(common.FLAGS.workdir)
  try:
    summary = groundtruth.run(common.FLAGS.config, workdir)
  except (ValueError, OSError) as e:
    common.fail(str(e))
  tau = summary["kendall_tau"]
  print(f"{summary['cells']} distinct cells ({summary['merged_rows']} rows merged), "
        f"{summary['min_params']:,}-{summary['max_params']:,} params at the trained network; "
        f"{summary['seeds']} seeds; Kendall tau of the score per seed {tau['mean']:.3f} "
        f"[{tau['lo']:.3f}, {tau['hi']:.3f}]")
  with open(os.path.join(workdir, "results.md")) as f:
    print(f.read())


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags)
