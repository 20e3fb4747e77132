r"""Training-free architecture search: SpikeNAS (default), SNASNet random, LightSNN.

  python -m launch.search --workdir=runs/search             # SpikeNAS, a few minutes on CPU
  python -m launch.search --config.budget.mb=0.8 --config.budget.weight_bits=8   # memory-aware
  python -m launch.search --config.method=random --config.num_candidates=5000 --workdir=runs/random
  python -m launch.search --config.method=lightsnn --workdir=runs/lightsnn
  python -m launch.search --config=snnax_nas/configs/search.py:reference --workdir=runs/cifar10
  python -m launch.search --config.method=random --num_processes=2 --process_id=0 \
      --coordinator_address=host0:1234 --workdir=w    # and --process_id=1 on host1

The job is :func:`snnax_nas.jobs.search.run` (its docstring: the method
defaults, the files written, several processes, resuming); the config is
``snnax_nas/configs/search.py``. Kill it at any point (even ``kill -9``) and
rerun the same command: it resumes.
"""

from __future__ import annotations

from absl import app
from absl import flags

from launch import common
from snnax_nas.jobs import search as job

FLAGS = flags.FLAGS
common.define_config_flags("search", workdir_default="runs/search")
common.define_distributed_flags()


@common.exits_cleanly_on_interrupt
def main(argv):
  common.check_no_args(argv, "a genotype file: --config.genotypes=FILE")
  common.use_cpu_cores()
  common.start_processes()
  common.run_job(job, FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags)
