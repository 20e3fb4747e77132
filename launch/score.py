r"""Scores candidate architectures with the SAHD kernel log-determinant.

  python -m launch.score --workdir=/tmp/score
  python -m launch.score --genotypes=cells.txt --backward --workdir=/tmp/score

Writes ``scores.csv`` (genotype, score, singular, params, memory_bytes,
neuron_state_bytes) to ``--workdir``.
"""

from __future__ import annotations

import os

from absl import app
from absl import flags
from absl import logging
import jax
import numpy as np

from launch import common
from snnax_nas import data as data_lib
from snnax_nas import genotype as genotype_lib
from snnax_nas import memory
from snnax_nas import score

FLAGS = flags.FLAGS
common.define_network_flags()
flags.DEFINE_string("genotypes", None, "File of genotype strings, one per line "
                    "(e.g. 0303/0030/2002/0200); default: a sample from the space.")
flags.DEFINE_integer("num_candidates", 16, "Candidates sampled when --genotypes is absent.")
flags.DEFINE_string("kernel", "sahd", "Kernel: sahd or hamming (NASWOT-style).")
flags.DEFINE_integer("weight_bits", 32, "Weight precision for memory_bytes (32/16/8/4).")


def read_genotype_file(path: str, ops) -> list[str]:
  """Genotype strings of a file (blank lines and '#' comments skipped)."""
  try:
    with open(path) as f:
      lines = [ln.split("#")[0].strip() for ln in f]
  except OSError as e:
    common.fail(f"cannot read --genotypes {path!r}: {e.strerror}")
  texts = [ln for ln in lines if ln]
  for t in texts:
    for cell in t.split("|"):
      genotype_lib.parse_genotype(cell, ops)  # raises ValueError naming the bad string
  return texts


def main(argv):
  del argv
  workdir = common.ensure_workdir(FLAGS.workdir)
  try:
    probe_cfg = common.network_config_from_flags()
    if FLAGS.genotypes:
      texts = read_genotype_file(FLAGS.genotypes, probe_cfg.ops)
      backward = FLAGS.backward or any(
          genotype_lib.has_backward(genotype_lib.parse_genotype(c, probe_cfg.ops)).any()
          for t in texts for c in t.split("|"))
      cfg = common.network_config_from_flags(backward=backward)
      genotypes = score.as_genotypes(texts, cfg)
    else:
      cfg = probe_cfg
      g = genotype_lib.sample_genotypes(np.random.default_rng(FLAGS.seed), FLAGS.num_candidates,
                                        cfg.ops, backward=cfg.backward)
      genotypes = score.as_genotypes(g, cfg)
      texts = [genotype_lib.format_genotype(x[0]) for x in genotypes]
    images = data_lib.score_batches(FLAGS.dataset, FLAGS.repeats, FLAGS.batch_size, FLAGS.seed,
                                    FLAGS.data_dir)
    report = memory.memory_report(genotypes, cfg, FLAGS.weight_bits)
  except (ValueError, FileNotFoundError) as e:
    common.fail(str(e))
  logging.info("scoring %d candidates, %s", len(texts), cfg)
  result = score.score_candidates(
      genotypes, images, jax.random.key(FLAGS.seed), cfg, kernel=FLAGS.kernel,
      chunk_size=FLAGS.chunk_size, map_batch_size=FLAGS.map_batch_size,
      progress=common.Progress("score"))
  path = os.path.join(workdir, "scores.csv")
  common.write_csv_atomic(
      path, ["genotype", "score", "singular", "params", "memory_bytes", "neuron_state_bytes"],
      zip(texts, result.scores, result.singular.astype(int), report.params,
          report.weight_bytes, report.neuron_state_bytes))
  best = int(np.argmax(result.scores))
  print(f"scored {len(texts)} candidates in {result.compile_seconds + result.run_seconds:.1f}s "
        f"(compile {result.compile_seconds:.1f}s); best {texts[best]} "
        f"score {result.scores[best]:.3f} params {report.params[best]:,}; wrote {path}")


if __name__ == "__main__":
  app.run(main)
