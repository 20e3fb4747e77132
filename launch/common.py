"""Flags and helpers shared by the launch scripts (thin absl front ends)."""

from __future__ import annotations

import csv
import os
import sys
import tempfile
from typing import Iterable, Sequence

from absl import flags
from absl import logging

from snnax_nas import data as data_lib
from snnax_nas import distributed
from snnax_nas import genotype as genotype_lib
from snnax_nas import network
from snnax_nas import score

FLAGS = flags.FLAGS


def define_network_flags():
  """Flags that describe the network and the scoring batches."""
  flags.DEFINE_string("dataset", "cifar10_sample",
                      "Dataset name (cifar10_sample, cifar10, cifar100, tinyimagenet, "
                      "npz:PATH, folder:PATH).")
  flags.DEFINE_string("data_dir", None, "Where the dataset lives (tfds data_dir or folder).")
  flags.DEFINE_string("ops", "snasnet", "Op set: a preset (snasnet, spikenas, spikenas3, "
                      "lightsnn) or a comma list such as 'skip,conv3x3@0.5,conv3x3'.")
  flags.DEFINE_integer("width", 16, "Stem / stage-1 width C (stage 2 runs at 2C). "
                       "The reference uses 256 (CIFAR10) or 128.")
  flags.DEFINE_integer("cells", 1, "Searched cells per stage.")
  flags.DEFINE_integer("timesteps", 5, "Simulated timesteps T.")
  flags.DEFINE_integer("hidden", 1024, "Classifier hidden width.")
  flags.DEFINE_integer("second_pool", 2, "Avg-pool size s2 after the last LIF.")
  flags.DEFINE_boolean("backward", False, "Cells with backward (feedback) edges.")
  flags.DEFINE_integer("batch_size", 64, "Images per scoring batch B (reference: 256).")
  flags.DEFINE_integer("repeats", 2, "Scoring batches R averaged per candidate.")
  flags.DEFINE_integer("chunk_size", 8, "Candidates per compiled call.")
  flags.DEFINE_integer("map_batch_size", 1, "Candidates vmapped together inside a chunk "
                       "(1 = sequential lax.map, the fast choice on CPU).")
  flags.DEFINE_integer("seed", 0, "Seed of the candidates, weights and batches.")
  flags.DEFINE_string("workdir", None, "Output directory.")


def read_genotype_file(path: str, ops) -> list[str]:
  """Genotype strings of a file, one per line (``|`` between per-cell
  genotypes; blank lines and ``#`` comments skipped).

  Raises:
    ValueError: the file cannot be read, holds no genotype, or holds a
      malformed genotype (the message names it).
  """
  try:
    with open(path) as f:
      lines = [ln.split("#")[0].strip() for ln in f]
  except OSError as e:
    raise ValueError(f"cannot read --genotypes {path!r}: {e.strerror}") from None
  texts = [ln for ln in lines if ln]
  if not texts:
    raise ValueError(f"--genotypes {path!r} holds no genotype")
  for t in texts:
    for cell in t.split("|"):
      genotype_lib.parse_genotype(cell, ops)  # raises naming the bad string
  return texts


def define_distributed_flags():
  """Flags of a multi-process job (see :func:`start_processes`)."""
  flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process).")
  flags.DEFINE_integer("num_processes", None, "Processes sharing the job (0: auto-detect a "
                       "managed cluster).")
  flags.DEFINE_integer("process_id", None, "This process's id in [0, num_processes).")


def start_processes():
  """Starts ``jax.distributed`` as the flags of :func:`define_distributed_flags`
  ask (nothing for a single process); exits with one line on bad values."""
  try:
    distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  except ValueError as e:
    fail(str(e))


def use_cpu_cores():
  """On the CPU backend, one XLA device per core (see
  :func:`snnax_nas.score.use_cpu_cores`); call first thing in ``main``.

  Candidates (scoring) and batches (training) are sharded over the local
  devices, so each core runs its own single-stream kernels. Left alone when
  ``XLA_FLAGS`` already forces a host device count.
  """
  if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    score.use_cpu_cores()


def check_training_flags(*positive: str):
  """Exits with one line unless the named integer flags are >= 1, ``--lr`` is
  > 0 and ``--loss`` is a known loss."""
  from snnax_nas import train  # not every launcher needs the training stack
  for name in positive:
    if FLAGS[name].value < 1:
      fail(f"--{name}={FLAGS[name].value} must be >= 1")
  if not FLAGS.lr > 0:
    fail(f"--lr={FLAGS.lr} must be > 0")
  if FLAGS.loss not in train.LOSSES:
    fail(f"unknown --loss {FLAGS.loss!r}; choose from {', '.join(train.LOSSES)}")


def fail(message: str):
  """Exits with status 2 after one clear line on stderr."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def network_config_from_flags(backward: bool | None = None) -> network.NetworkConfig:
  """The :class:`NetworkConfig` the flags describe (dataset gives shape/classes)."""
  info = data_lib.get_info(FLAGS.dataset, FLAGS.data_dir)
  vote = 5 if info.num_classes > 10 else 10
  return network.network_config(
      None, input_shape=info.image_shape, num_classes=info.num_classes,
      width=FLAGS.width, cells_per_stage=FLAGS.cells, timesteps=FLAGS.timesteps,
      hidden=FLAGS.hidden, vote_group=vote, second_pool=FLAGS.second_pool,
      stem_stride=2 if info.image_shape[0] >= 64 else 1, ops=FLAGS.ops,
      backward=FLAGS.backward if backward is None else backward)


def ensure_workdir(path: str | None) -> str:
  """Creates ``path`` (required) and checks it is writable."""
  if not path:
    fail("--workdir is required")
  try:
    os.makedirs(path, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path):
      pass
  except OSError as e:
    fail(f"workdir {path!r} is not writable: {e.strerror}")
  return path


def write_csv_atomic(path: str, header: Sequence[str], rows: Iterable[Sequence]):
  """Writes a CSV to ``path`` via a temporary file and rename (no half files)."""
  tmp = path + ".tmp"
  with open(tmp, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(rows)
  os.replace(tmp, path)


class Progress:
  """Periodic progress lines with rate and ETA for ``score_candidates``."""

  def __init__(self, what: str, every_seconds: float = 10.0, warm: bool = False):
    """``warm``: the scorer is already compiled (a later search step), so the
    first chunk is timed like any other instead of being reported apart."""
    import time
    self._time = time.perf_counter
    self.what, self.every = what, every_seconds
    self.start = self.last = self._time()
    self.first_done = None
    if warm:
      self.first_done, self.t_first = 0, self.start

  def __call__(self, done: int, total: int):
    now = self._time()
    if self.first_done is None:  # the first chunk includes compilation
      self.first_done, self.t_first = done, now
      logging.info("%s: %d/%d (first chunk incl. compile: %.1fs)", self.what, done, total,
                   now - self.start)
      return
    if now - self.last < self.every and done < total:
      return
    self.last = now
    rate = (done - self.first_done) / max(now - self.t_first, 1e-9)
    eta = (total - done) / rate if rate > 0 else float("inf")
    logging.info("%s: %d/%d  %.2f cand/s  ETA %.0fs", self.what, done, total, rate, eta)
