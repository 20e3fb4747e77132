r"""The score job: candidate architectures scored with the SAHD kernel log-determinant,
as ``run(config, workdir)``; ``launch.score`` is its command line.

  python -m launch.score --workdir=runs/score
  python -m launch.score --config.genotypes=cells.txt --config.network.backward \
      --workdir=runs/score

The config is :mod:`snnax_nas.configs.score` (presets ``small``, the default, and
``reference``). ``--config.scoring.kernel`` is any of ``snnax_nas.kernels.KERNELS``
(sahd, the default and the reference's; the variants of spike codes, the
gradient proxies and the exact size baselines), ``--config.scoring.draws=D`` averages D weight draws per candidate,
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
import dataclasses
import os
from typing import Optional

from absl import logging
import jax
import numpy as np

from snnax_nas import autotune
from snnax_nas import configs
from snnax_nas import data as data_lib
from snnax_nas import distributed
from snnax_nas import files
from snnax_nas import flops
from snnax_nas import genotype as genotype_lib
from snnax_nas import genotype_space
from snnax_nas import memory
from snnax_nas import score
from snnax_nas import stats
from snnax_nas.jobs import common

COLUMNS = ["genotype", "score", "singular", "params", "memory_bytes", "neuron_state_bytes"]
SCORES_CSV = "scores.csv"


@dataclasses.dataclass(frozen=True)
class Scored:
  """What :func:`run` returns (process 0).

  Attributes:
    genotypes: the genotype strings, in the order of ``scores.csv``.
    scores: float64 [N] scores (-inf: singular kernel).
    params: int [N] parameter counts.
    scored_now: candidates scored by this run (the rest were on disk).
    compile_seconds, run_seconds: the first chunk (compilation included)
      and the rest.
    path: the ``scores.csv`` written.
    duplicates: rows whose cells equal an earlier row's in canonical form,
      given that row's score instead of their own (0 with
      ``config.score_duplicates``).
  """

  genotypes: list
  scores: np.ndarray
  params: np.ndarray
  scored_now: int
  compile_seconds: float
  run_seconds: float
  path: str
  duplicates: int = 0


def part_path(workdir: str, process: int) -> str:
  """The per-process file of rows scored so far."""
  return os.path.join(workdir, f"scores.part{process}.csv")


def _load_part(path: str) -> dict[int, list]:
  """Rows already scored by this process: {candidate_id: row}; a torn last
  line from a crash is dropped."""
  done = {}
  if not os.path.exists(path):
    return done
  with open(path, "rb") as f:
    raw = f.read()
  if raw and not raw.endswith(b"\n"):  # torn last line: cut it before appending
    with files.atomic_open(path, "wb") as f:
      f.write(raw[:raw.rfind(b"\n") + 1])
  dropped = 0
  with open(path, newline="") as f:
    for row in csv.reader(f):
      if len(row) != len(COLUMNS) + 1 or not row[0].isdigit() or not _numeric(row):
        dropped += row != []
        continue
      done[int(row[0])] = row[1:]
  if dropped:
    logging.warning("%s: %d malformed row(s) skipped; those candidates are scored again",
                    path, dropped)
  return done


def _numeric(row: list) -> bool:
  """Whether a part row's score, singular flag and byte counts parse (a row
  corrupted on disk is rescored, never merged into ``scores.csv``)."""
  try:
    float(row[2])
    return row[3] in ("0", "1") and all(int(x) >= 0 for x in row[4:])
  except ValueError:
    return False


def report(result: Optional[Scored], workdir: str) -> str:
  """The line ``launch.score`` prints."""
  if result is None:
    return (f"process {jax.process_index()}: scored its candidates; process 0 merges")
  best = stats.best_index(result.scores)
  same = (f"; {result.duplicates} row(s) repeat an earlier cell (canonical form) and share its "
          "score (--config.score_duplicates=true scores each)" if result.duplicates else "")
  return (f"scored {len(result.genotypes)} candidates{same} ({result.scored_now} in this run, "
          f"compile {result.compile_seconds:.1f}s, run {result.run_seconds:.1f}s); best "
          f"{result.genotypes[best]} score {result.scores[best]:.3f} "
          f"params {result.params[best]:,}; wrote {result.path}")


def run(config, workdir: str) -> Optional[Scored]:
  """Scores a genotype file (``config.genotypes``) or ``num_candidates``
  sampled genotypes, resuming from the parts on disk, and writes
  ``scores.csv``.

  Args:
    config: a :mod:`snnax_nas.configs.score` config.
    workdir: the run's directory (claimed: see :mod:`snnax_nas.workdir`).

  Returns:
    :class:`Scored` (None on a process other than 0).

  Raises:
    ValueError: a bad config value, an unreadable input or a workdir holding
      another run (one line naming the field).
  """
  config = common.own_config(config)
  scoring = config.scoring
  try:
    autotune.scoring_options(scoring)  # kernel, draws, layout, conv dtype: before any data
  except ValueError as e:
    raise ValueError(f"--config.{e}") from None
  common.check_positive(config, "num_candidates", "scoring.batch_size", "scoring.repeats")
  common.refuse_unread_network_fields(config, "score")
  memory.check_weight_bits(config.weight_bits, "--config.weight_bits")
  # Event data: binned into exactly the network's T frames.
  options = common.dataset_options(config, config.network.timesteps)
  info = data_lib.get_info(config.dataset, **options)
  cfg = configs.network_from_job_config(config.network, info)
  if config.genotypes:
    texts = common.read_genotype_file(config.genotypes, cfg.ops, cfg.backward)
    genotypes = genotype_lib.as_genotypes(texts, cfg)
  else:
    g = genotype_space.sample_genotypes(np.random.default_rng(config.seed),
                                      config.num_candidates, cfg.ops, backward=cfg.backward)
    genotypes = genotype_lib.as_genotypes(g, cfg)
    texts = [genotype_lib.format_genotype(x[0]) for x in genotypes]
  images = data_lib.score_batches(config.dataset, scoring.repeats, scoring.batch_size,
                                  config.seed, config.data_dir, **options)
  score.check_images(images, cfg)  # before the workdir is claimed: a fixed rerun stays possible
  mem = memory.memory_report(genotypes, cfg, config.weight_bits)
  common.claim_workdir("score", config, cfg, workdir, write=jax.process_index() == 0)
  pid, nproc = jax.process_index(), jax.process_count()
  mine_path = part_path(workdir, pid)
  done = _load_part(mine_path)
  arch = genotype_lib.arch_of(genotypes, cfg)
  # Each row's first canonical equal: only those are scored.
  first = (np.arange(len(texts)) if config.score_duplicates
           else genotype_lib.first_occurrences(genotypes))
  distinct = np.flatnonzero(first == np.arange(len(texts)))
  # Costliest first, then strided shares: processes get equal work and each
  # chunk's devices finish together. Scores do not depend on the order.
  by_cost = distinct[flops.costliest_first(arch[distinct], cfg, scoring.batch_size,
                                           scoring.repeats)]
  mine = [int(i) for i in by_cost[distributed.process_share(len(distinct))] if int(i) not in done]
  logging.info("process %d/%d: %d candidates to score (%d already done), %s", pid, nproc,
               len(mine), len(done), cfg)
  # One layout for the whole job (one compilation): flags, or chosen for
  # this machine and these candidates.
  options = common.scorer_options(scoring, cfg, arch=arch[mine] if mine else None)
  progress = common.Progress("score")
  key = jax.random.key(config.seed)
  compile_s = run_s = 0.0
  with open(mine_path, "a", newline="") as f:
    writer = csv.writer(f)
    for start in range(0, len(mine), options.chunk_size):
      ids = np.asarray(mine[start:start + options.chunk_size])
      res = score.score_candidates(None, images, key, cfg, candidate_ids=ids, arch=arch[ids],
                                   **dataclasses.asdict(options))
      compile_s, run_s = (compile_s + res.compile_seconds, run_s) if start == 0 else (
          compile_s, run_s + res.compile_seconds)
      for j, i in enumerate(ids):
        row = [texts[i], repr(float(res.scores[j])), int(res.singular[j]), mem.params[i],
               mem.weight_bytes[i], mem.neuron_state_bytes[i]]
        writer.writerow([i] + row)
        done[int(i)] = [str(x) for x in row]
      f.flush()
      os.fsync(f.fileno())  # a chunk is either on disk or rescored, never lost
      progress(start + len(ids), len(mine))
  distributed.barrier("scores_written")
  if pid != 0:
    return None
  rows = {}
  for p in range(nproc):
    rows.update(_load_part(part_path(workdir, p)))
  missing = sorted(set(distinct.tolist()) - set(rows))
  if missing:
    raise ValueError(f"{len(missing)} candidates have no score (first id {missing[0]}); rerun")
  rows = {i: [texts[i], *rows[int(first[i])][1:]] for i in range(len(texts))}
  path = os.path.join(workdir, SCORES_CSV)
  files.write_csv(path, COLUMNS, (rows[i] for i in range(len(texts))))
  scores = np.array([float(rows[i][1]) for i in range(len(texts))])
  return Scored(genotypes=texts, scores=scores, params=np.asarray(mem.params),
                scored_now=len(mine), compile_seconds=compile_s, run_seconds=run_s, path=path,
                duplicates=len(texts) - len(distinct))
