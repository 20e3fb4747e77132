r"""Scores candidate architectures with the SAHD kernel log-determinant.

  python -m launch.score --workdir=runs/score
  python -m launch.score --config.genotypes=cells.txt --config.network.backward \
      --workdir=runs/score

The config is ``snnax_nas/configs/score.py`` (presets ``small``, the default, and
``reference``). ``--config.scoring.kernel`` is any of ``snnax_nas.score.KERNELS``
(sahd, the default and the reference's; hamming, sahd_norm, sahd_time, swap,
membrane), ``--config.scoring.draws=D`` averages D weight draws per candidate,
``--config.scoring.conv_dtype=bfloat16`` runs the cell convs in bf16 (f32
accumulation), and ``scoring.chunk_size`` / ``scoring.map_batch_size`` are
``auto`` (chosen for the backend, its memory and the candidates' FLOPs and
logged; 8 / 1 on CPU) unless given. Writes ``config.json`` (the workdir record:
:mod:`snnax_nas.workdir`) and ``scores.csv`` (genotype, score, singular,
params, memory_bytes, neuron_state_bytes) to ``--workdir``; a workdir of
another job or config (a search's, say) is refused, never overwritten.

Large jobs: results are appended chunk by chunk to ``scores.part<P>.csv``
(one file per process), so a crashed run resumes where it stopped when rerun
with the same config. Several processes split the candidates between them
(``--num_processes``/``--process_id``/``--coordinator_address``, or
``--num_processes=0`` to let ``jax.distributed`` detect a managed cluster);
process 0 merges the parts. A candidate's score depends only on the seed,
its position in the list and its architecture, never on the process layout.

  python -m launch.score --config.genotypes=big.txt --workdir=w --num_processes=2 \
      --process_id=0 --coordinator_address=host0:1234   # and process_id=1 on host1
"""

from __future__ import annotations

import csv
import os

from absl import app
from absl import flags
from absl import logging
import jax
import numpy as np

from launch import common
from snnax_nas import autotune
from snnax_nas import configs
from snnax_nas import data as data_lib
from snnax_nas import distributed
from snnax_nas import flops
from snnax_nas import genotype as genotype_lib
from snnax_nas import io
from snnax_nas import memory
from snnax_nas import score

FLAGS = flags.FLAGS
common.define_config_flags("score")
common.define_distributed_flags()

COLUMNS = ["genotype", "score", "singular", "params", "memory_bytes", "neuron_state_bytes"]


def _load_part(path: str) -> dict[int, list]:
  """Rows already scored by this process: {candidate_id: row}; a torn last
  line from a crash is dropped."""
  done = {}
  if not os.path.exists(path):
    return done
  with open(path, "rb") as f:
    raw = f.read()
  if raw and not raw.endswith(b"\n"):  # torn last line: cut it before appending
    with io.atomic_open(path, "wb") as f:
      f.write(raw[:raw.rfind(b"\n") + 1])
  with open(path, newline="") as f:
    for row in csv.reader(f):
      if len(row) != len(COLUMNS) + 1 or not row[0].isdigit():
        continue
      done[int(row[0])] = row[1:]
  return done


@common.exits_cleanly_on_interrupt
def main(argv):
  if len(argv) > 1:
    common.fail(f"unexpected arguments {' '.join(argv[1:])!r}; every input is a flag (a "
                "genotype file: --config.genotypes=FILE)")
  common.use_cpu_cores()
  common.start_processes()
  config = FLAGS.config
  scoring = config.scoring
  try:
    score_options = autotune.scoring_options(scoring)  # kernel, draws, layout, conv dtype
  except ValueError as e:
    common.fail(f"--config.{e}")
  common.check_positive(config, "num_candidates", "scoring.batch_size", "scoring.repeats")
  if config.weight_bits not in memory.WEIGHT_BITS:
    common.fail(f"--config.weight_bits={config.weight_bits} is not one of "
                f"{', '.join(map(str, memory.WEIGHT_BITS))}")
  try:
    # Event data: binned into exactly the network's T frames.
    options = common.dataset_options(config, config.network.timesteps)
    info = data_lib.get_info(config.dataset, **options)
    cfg = configs.network_from_job_config(config.network, info)
    if config.genotypes:
      texts = common.read_genotype_file(config.genotypes, cfg.ops, cfg.backward)
      genotypes = score.as_genotypes(texts, cfg)
    else:
      g = genotype_lib.sample_genotypes(np.random.default_rng(config.seed),
                                        config.num_candidates, cfg.ops, backward=cfg.backward)
      genotypes = score.as_genotypes(g, cfg)
      texts = [genotype_lib.format_genotype(x[0]) for x in genotypes]
    images = data_lib.score_batches(config.dataset, scoring.repeats, scoring.batch_size,
                                    config.seed, config.data_dir, **options)
    report = memory.memory_report(genotypes, cfg, config.weight_bits)
  except (ValueError, FileNotFoundError) as e:
    common.fail(str(e))
  workdir = FLAGS.workdir
  common.claim_workdir("score", config, cfg, write=jax.process_index() == 0)
  pid, nproc = jax.process_index(), jax.process_count()
  part_path = os.path.join(workdir, f"scores.part{pid}.csv")
  done = _load_part(part_path)
  arch = score.arch_of(genotypes, cfg)
  # Costliest first, then strided shares: processes get equal work and each
  # chunk's devices finish together. Scores do not depend on the order.
  by_cost = flops.costliest_first(arch, cfg, scoring.batch_size, scoring.repeats)
  mine = [int(i) for i in by_cost[distributed.process_share(len(texts))] if int(i) not in done]
  logging.info("process %d/%d: %d candidates to score (%d already done), %s", pid, nproc,
               len(mine), len(done), cfg)
  # One layout for the whole job (one compilation): flags, or chosen for
  # this machine and these candidates.
  layout = autotune.resolve_layout(cfg, scoring.batch_size, scoring.repeats,
                                   chunk_size=score_options.pop("chunk_size"),
                                   map_batch_size=score_options.pop("map_batch_size"),
                                   arch=arch[mine] if mine else None,
                                   draws=score_options["draws"])
  logging.info("scorer layout: %s", layout.reason)
  progress = common.Progress("score")
  key = jax.random.key(config.seed)
  compile_s = run_s = 0.0
  with open(part_path, "a", newline="") as f:
    writer = csv.writer(f)
    for start in range(0, len(mine), layout.chunk_size):
      ids = np.asarray(mine[start:start + layout.chunk_size])
      res = score.score_candidates(None, images, key, cfg, chunk_size=layout.chunk_size,
                                   map_batch_size=layout.map_batch_size, candidate_ids=ids,
                                   arch=arch[ids], **score_options)
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
  io.write_csv(path, COLUMNS, (rows[i] for i in range(len(texts))))
  scores = np.array([float(rows[i][1]) for i in range(len(texts))])
  best = int(np.argmax(scores))
  print(f"scored {len(texts)} candidates ({len(mine)} in this run, compile {compile_s:.1f}s, "
        f"run {run_s:.1f}s); best {texts[best]} score {scores[best]:.3f} "
        f"params {report.params[best]:,}; wrote {path}")


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags)
