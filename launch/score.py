r"""Scores candidate architectures with the SAHD kernel log-determinant.

  python -m launch.score --workdir=runs/score
  python -m launch.score --config.genotypes=cells.txt --config.network.backward \
      --workdir=runs/score
  python -m launch.score --config.genotypes=big.txt --workdir=w --num_processes=2 \
      --process_id=0 --coordinator_address=host0:1234   # and process_id=1 on host1

The job is :func:`snnax_nas.jobs.score.run` (its docstring: kernels, layouts,
the files written, several processes, resuming); the config is
``snnax_nas/configs/score.py``.
"""

from __future__ import annotations

from absl import app
from absl import flags

from launch import common
from snnax_nas.jobs import score as job

FLAGS = flags.FLAGS
common.define_config_flags("score")
common.define_distributed_flags()


@common.exits_cleanly_on_interrupt
def main(argv):
  common.check_no_args(argv, "a genotype file: --config.genotypes=FILE")
  common.use_cpu_cores()
  common.start_processes()
  common.run_job(job, FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags)
