r"""Scores candidate architectures with the SAHD kernel log-determinant.

  python -m launch.score --workdir=runs/score
  python -m launch.score --genotypes=cells.txt --backward --workdir=runs/score

Writes ``scores.csv`` (genotype, score, singular, params, memory_bytes,
neuron_state_bytes) to ``--workdir``.

Large jobs: results are appended chunk by chunk to ``scores.part<P>.csv``
(one file per process), so a crashed run resumes where it stopped when rerun
with the same flags. Several processes split the candidates between them
(``--num_processes``/``--process_id``/``--coordinator_address``, or
``--num_processes=0`` to let ``jax.distributed`` detect a managed cluster);
process 0 merges the parts. A candidate's score depends only on the seed,
its position in the list and its architecture, never on the process layout.

  python -m launch.score --genotypes=big.txt --workdir=w --num_processes=2 \
      --process_id=0 --coordinator_address=host0:1234   # and process_id=1 on host1
"""

from __future__ import annotations

import csv
import json
import os

from absl import app
from absl import flags
from absl import logging
import jax
import numpy as np

from launch import common
from snnax_nas import data as data_lib
from snnax_nas import distributed
from snnax_nas import flops
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
common.define_distributed_flags()

COLUMNS = ["genotype", "score", "singular", "params", "memory_bytes", "neuron_state_bytes"]


def _fingerprint() -> str:
  keys = ("dataset", "data_dir", "ops", "width", "cells", "timesteps", "hidden", "second_pool",
          "backward", "batch_size", "repeats", "seed", "genotypes", "num_candidates", "kernel",
          "weight_bits")
  return json.dumps({k: getattr(FLAGS, k) for k in keys}, sort_keys=True)


def _load_part(path: str) -> dict[int, list]:
  """Rows already scored by this process: {candidate_id: row}; a torn last
  line from a crash is dropped."""
  done = {}
  if not os.path.exists(path):
    return done
  with open(path, "rb") as f:
    raw = f.read()
  if raw and not raw.endswith(b"\n"):  # torn last line: cut it before appending
    with open(path, "wb") as f:
      f.write(raw[:raw.rfind(b"\n") + 1])
  with open(path, newline="") as f:
    for row in csv.reader(f):
      if len(row) != len(COLUMNS) + 1 or not row[0].isdigit():
        continue
      done[int(row[0])] = row[1:]
  return done


def _check_meta(workdir: str):
  path = os.path.join(workdir, "scores.meta.json")
  fp = _fingerprint()
  if os.path.exists(path):
    with open(path) as f:
      if f.read() != fp:
        common.fail(f"workdir {workdir!r} holds a run with other flags; use a new --workdir")
  elif jax.process_index() == 0:
    with open(path + ".tmp", "w") as f:
      f.write(fp)
    os.replace(path + ".tmp", path)


def main(argv):
  del argv
  common.use_cpu_cores()
  common.start_processes()
  workdir = common.ensure_workdir(FLAGS.workdir)
  try:
    probe_cfg = common.network_config_from_flags()
    if FLAGS.genotypes:
      texts = common.read_genotype_file(FLAGS.genotypes, probe_cfg.ops)
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
  _check_meta(workdir)
  pid, nproc = jax.process_index(), jax.process_count()
  part_path = os.path.join(workdir, f"scores.part{pid}.csv")
  done = _load_part(part_path)
  arch = score.arch_of(genotypes, cfg)
  # Costliest first, then strided shares: processes get equal work and each
  # chunk's devices finish together. Scores do not depend on the order.
  by_cost = flops.costliest_first(arch, cfg, FLAGS.batch_size, FLAGS.repeats)
  mine = [int(i) for i in by_cost[distributed.process_share(len(texts))] if int(i) not in done]
  logging.info("process %d/%d: %d candidates to score (%d already done), %s", pid, nproc,
               len(mine), len(done), cfg)
  progress = common.Progress("score")
  key = jax.random.key(FLAGS.seed)
  compile_s = run_s = 0.0
  with open(part_path, "a", newline="") as f:
    writer = csv.writer(f)
    for start in range(0, len(mine), FLAGS.chunk_size):
      ids = np.asarray(mine[start:start + FLAGS.chunk_size])
      res = score.score_candidates(None, images, key, cfg, kernel=FLAGS.kernel,
                                   chunk_size=FLAGS.chunk_size,
                                   map_batch_size=FLAGS.map_batch_size, candidate_ids=ids,
                                   arch=arch[ids])
      compile_s, run_s = (compile_s + res.compile_seconds, run_s) if start == 0 else (
          compile_s, run_s + res.compile_seconds)
      for j, i in enumerate(ids):
        row = [texts[i], repr(float(res.scores[j])), int(res.singular[j]), report.params[i],
               report.weight_bytes[i], report.neuron_state_bytes[i]]
        writer.writerow([i] + row)
        done[int(i)] = [str(x) for x in row]
      f.flush()
      os.fsync(f.fileno())  # a chunk is either on disk or rescored, never lost
      progress(start + len(ids), len(mine))
  distributed.barrier("scores_written")
  if pid != 0:
    print(f"process {pid}: scored {len(mine)} candidates; process 0 merges")
    return
  rows = {}
  for p in range(nproc):
    rows.update(_load_part(os.path.join(workdir, f"scores.part{p}.csv")))
  missing = sorted(set(range(len(texts))) - set(rows))
  if missing:
    common.fail(f"{len(missing)} candidates have no score (first id {missing[0]}); rerun")
  path = os.path.join(workdir, "scores.csv")
  common.write_csv_atomic(path, COLUMNS, (rows[i] for i in range(len(texts))))
  scores = np.array([float(rows[i][1]) for i in range(len(texts))])
  best = int(np.argmax(scores))
  print(f"scored {len(texts)} candidates ({len(mine)} in this run, compile {compile_s:.1f}s, "
        f"run {run_s:.1f}s); best {texts[best]} score {scores[best]:.3f} "
        f"params {report.params[best]:,}; wrote {path}")


if __name__ == "__main__":
  app.run(main)
