"""Multi-process helpers: start-up, splitting work by process, exchanging results.

Scoring is embarrassingly parallel over candidates: each process scores its
own share on its local devices (the candidate axis of every chunk is sharded
over those devices with ``jax.sharding``). ``launch.score`` writes each
process's results apart and only the final merge waits for everyone. A search
needs every score to take its next decision, so it all-gathers each group of
shares (:func:`gather_shares`): one small host collective per group of
chunks, never inside the compiled scorer.
"""

from __future__ import annotations

import os
from typing import Optional

import jax
import numpy as np


def initialize(coordinator_address: Optional[str] = None,
               num_processes: Optional[int] = None,
               process_id: Optional[int] = None) -> None:
  """Starts ``jax.distributed`` when more than one process is requested.

  With all arguments None nothing happens unless the environment is a managed
  cluster (SLURM, TPU pods, ...) that ``jax.distributed.initialize()`` detects
  by itself; pass ``num_processes=0`` to force auto-detection.

  Raises:
    ValueError: an inconsistent process id / count.
  """
  if num_processes is None or num_processes == 1:
    return
  if num_processes and not 0 <= (process_id if process_id is not None else -1) < num_processes:
    raise ValueError(f"process_id {process_id} must be in [0, {num_processes})")
  # CPU collectives (used only by the final barrier) need an implementation;
  # the option does not affect accelerator backends. Must precede backend init.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if num_processes == 0:
    jax.distributed.initialize()
  else:
    jax.distributed.initialize(coordinator_address, num_processes=num_processes,
                               process_id=process_id)


def process_share(num_items: int, process_index: Optional[int] = None,
                  process_count: Optional[int] = None) -> np.ndarray:
  """Indices of the items this process handles: ``i % count == index``.

  Strided rather than contiguous, so equal-cost shares stay balanced when the
  list is ordered by size.
  """
  index = jax.process_index() if process_index is None else process_index
  count = jax.process_count() if process_count is None else process_count
  if not 0 <= index < count:
    raise ValueError(f"process index {index} not in [0, {count})")
  return np.arange(index, num_items, count)


def barrier(name: str) -> None:
  """Blocks until every process reaches the barrier ``name`` (no-op alone)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


def broadcast_from_first(tree):
  """Process 0's value of ``tree`` (numpy arrays) on every process.

  Every process must call it with arrays of the same shapes and dtypes.
  """
  if jax.process_count() == 1:
    return tree
  from jax.experimental import multihost_utils
  return jax.tree.map(np.asarray, multihost_utils.broadcast_one_to_all(tree))


def gather_shares(values: np.ndarray, num_items: int) -> np.ndarray:
  """All processes' :func:`process_share` results, in item order.

  Args:
    values: this process's results [len(process_share(num_items)), ...], in
      the order of its share.
    num_items: the length of the whole list.

  Returns:
    [num_items, ...] on every process (``values`` itself alone).
  """
  count = jax.process_count()
  if count == 1:
    return np.asarray(values)
  from jax.experimental import multihost_utils
  values = np.asarray(values)
  width = -(-num_items // count)
  padded = np.zeros((width,) + values.shape[1:], values.dtype)
  padded[:len(values)] = values
  stacked = np.asarray(multihost_utils.process_allgather(padded))  # [count, width, ...]
  out = np.empty((num_items,) + values.shape[1:], values.dtype)
  for p in range(count):
    share = process_share(num_items, p, count)
    out[share] = stacked[p, :len(share)]
  return out


def use_cpu_cores(num_devices: Optional[int] = None) -> int:
  """Exposes one XLA:CPU device per core; call right after ``import jax``.

  :func:`score_candidates` shards each chunk over the local devices, so with
  one device per core every core scores its own candidates with plain
  single-stream kernels; on one device the cores would instead split every
  small op between them, which measured slower (figures in
  benchmarks/RESULTS.md). Only affects the CPU backend; accelerators keep
  their own devices.

  Args:
    num_devices: devices to create (default: the cores this process may use).

  Returns:
    The number requested, or the current local device count when JAX's
    backends are already initialised (then nothing changes).
  """
  n = num_devices or len(os.sched_getaffinity(0))
  try:
    jax.config.update("jax_num_cpu_devices", n)
  except RuntimeError:  # backends already up: too late to change
    return jax.local_device_count()
  return n
