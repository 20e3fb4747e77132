r"""Rank correlation of a zero-cost score with trained accuracy.

  python -m launch.correlate --scores=runs/score/scores.csv --truth=bench.csv \
      --ops=skip,conv3x3@0.5,conv3x3,conv3x3@1.5 --workdir=runs/correlate

``--scores``: a CSV as written by ``launch.score`` / ``launch.search``
(columns genotype, score[, params]). ``--truth``: a CSV with columns
genotype, accuracy (genotype in the same string form). Genotypes are matched
by canonical form under ``--ops``.

The study is :func:`snnax_nas.studies.correlate.run` (its docstring: the
statistics, the input rules and the files written; config:
``snnax_nas/configs/correlate.py``, its fields set from these flags).
"""

from __future__ import annotations

from absl import app
from absl import flags

from launch import common
from snnax_nas import configs
from snnax_nas import correlation
from snnax_nas.studies import correlate as job

FLAGS = flags.FLAGS
flags.DEFINE_string("scores", None, "Scores CSV (genotype,score[,params]).")
flags.DEFINE_string("truth", None, "Truth CSV (genotype,accuracy).")
flags.DEFINE_string("ops", "snasnet", "Op set the genotype strings use.")
flags.DEFINE_list("top_k", ["10", "50"], "k values (>= 1) for the top-k overlap.")
flags.DEFINE_integer("resamples", correlation.BOOTSTRAP_RESAMPLES,
                     "Bootstrap resamples for the 95 % intervals (0: no intervals).")
flags.DEFINE_integer("bootstrap_seed", correlation.BOOTSTRAP_SEED, "Seed of the resamples.")
flags.DEFINE_string("workdir", "runs/correlate", "Output directory.")


@common.exits_cleanly_on_interrupt
def main(argv):
  common.check_no_args(argv, "--scores=CSV --truth=CSV")
  config = configs.get_config("correlate")
  config.scores, config.truth, config.ops = FLAGS.scores, FLAGS.truth, FLAGS.ops
  config.top_k = ",".join(FLAGS.top_k)
  config.resamples, config.bootstrap_seed = FLAGS.resamples, FLAGS.bootstrap_seed
  common.run_job(job, config, FLAGS.workdir)


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags)
