"""Multi-process helpers: start-up and splitting candidate lists by process.

Scoring is embarrassingly parallel over candidates: each process scores its
own share on its local devices (the candidate axis of every chunk is sharded
over those devices with ``jax.sharding``), writes its own results, and only
the final merge waits for everyone. No cross-host collective sits in the hot
path, so a slow or restarted host never stalls the others.
"""

from __future__ import annotations

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
