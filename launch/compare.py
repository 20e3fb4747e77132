r"""The accuracy-vs-memory table: SpikeNAS vs SNASNet random search vs LightSNN.

  python -m launch.compare --workdir=runs/compare      # :small, width 16, two budgets
  python -m launch.compare --config.budgets_mb=8.86,8.94 --config.network.timesteps=3 \
      --config.dataset='npz:/data/cifar10/{split}10k.npz' --config.training.epochs=2 \
      --workdir=runs/compare
  python -m launch.compare --config=snnax_nas/configs/compare.py:reference --workdir=runs/compare_ref

For every memory budget (``budgets_mb``, MB of weights at ``budget_bits``)
it runs the SpikeNAS memory-aware search, takes the best draw within the
budget of one SNASNet random search (``random_draws``, 5000, timed once) and
runs LightSNN pruning once (no budget); trains each found network
(``launch.train``) and evaluates it at each ``eval_bits`` precision
(``launch.evaluate``). The config is ``snnax_nas/configs/compare.py``; the stage logic
is :mod:`snnax_nas.study`.

Writes to ``--workdir``: ``config.json`` (the study's config), ``search/``,
``train/`` (each stage's own workdir), ``stages/`` (when each stage finished
and its process time), ``logs/`` (each stage's output), ``results.csv``,
``results.md`` (method, budget, genotype, params, weight MB per bit width,
evaluations, search time, random-search time over this search's time, test
accuracy per bit width, SAR) and ``accuracy_vs_memory.png`` (with the
budget lines).

Resumable: kill it at any point (even ``kill -9``; the running stage dies
with it) and rerun the same command: finished stages are not rerun and keep
their measured times, the interrupted one resumes from its own store or
checkpoint.
"""

from __future__ import annotations

from absl import app
from absl import flags

from launch import common
from snnax_nas import study

FLAGS = flags.FLAGS
common.define_config_flags("compare", workdir_default="runs/compare")


@common.exits_cleanly_on_interrupt
def main(argv):
  if len(argv) > 1:
    common.fail(f"unexpected arguments {' '.join(argv[1:])!r}; every input is a flag "
                "(--config.budgets_mb=8.86,8.94)")
  if not FLAGS.workdir:
    common.fail("--workdir is required")
  try:
    _, text = study.run_study(FLAGS.config, FLAGS.workdir)
  except (ValueError, FileNotFoundError, study.StageError) as e:
    common.fail(str(e))
  print(text, end="")


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags)
