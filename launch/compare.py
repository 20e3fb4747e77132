r"""The accuracy-vs-memory table: SpikeNAS vs SNASNet random search vs LightSNN.

  python -m launch.compare --workdir=runs/compare      # :small, budgets 0.25/0.5/0.75
  python -m launch.compare --config.budget.fraction=0.25,0.5 --config.num_seeds=3 \
      --config.dataset='npz:/data/cifar10/{split}10k.npz' --config.training.epochs=2 \
      --workdir=runs/compare
  python -m launch.compare --config=snnax_nas/configs/compare.py:reference --workdir=runs/compare_ref

The study is :func:`snnax_nas.studies.compare.run` and its stages
:mod:`snnax_nas.studies.compare.study` (its docstring: the methods, the files written,
resuming); the config is ``snnax_nas/configs/compare.py``. Kill it at any
point (even ``kill -9``) and rerun the same command: finished stages are not
rerun and keep their measured times.
"""

from __future__ import annotations

from absl import app
from absl import flags

from launch import common
from snnax_nas.studies import compare as job
from snnax_nas.studies.compare import stages

FLAGS = flags.FLAGS
common.define_config_flags("compare", workdir_default="runs/compare")


@common.exits_cleanly_on_interrupt
def main(argv):
  common.check_no_args(argv, "--config.budget.fraction=0.25,0.5")
  common.use_cpu_cores()
  common.run_job(job, FLAGS.config, FLAGS.workdir, errors=(stages.StageError,))


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags)
