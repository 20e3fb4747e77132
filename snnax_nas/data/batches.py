"""Batches: the fixed image batches a training-free score consumes
(:func:`score_batches`) and per-host epoch iterators for training and
evaluation (:class:`Batches`, :func:`iterate_batches`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any
from typing import Dict
from typing import Iterator
from typing import Optional
from typing import Tuple

import numpy as np

from snnax_nas.data.augment import augment_batch
from snnax_nas.data.augment import normalize
from snnax_nas.data.registry import get_info
from snnax_nas.data.registry import open_source

__all__ = ["Batches", "first_examples", "iterate_batches", "score_batches"]


def score_batches(name: str, num_batches: int, batch_size: int, seed: int,
                  data_dir: Optional[str] = None, augment: bool = True,
                  **options: Any) -> np.ndarray:
  """The image batches a training-free score consumes.

  ``num_batches * batch_size`` train-split samples are drawn without
  replacement by a permutation seeded with ``seed`` (when that is more than
  the split holds, a fresh permutation follows the first, and so on). Static
  images are then augmented (reference crop/flip, ``info.crop_pad``) on raw
  pixels when ``augment`` and normalised with :func:`normalize`. Only the
  drawn samples are decoded (tfds and image folders are random-access).
  Deterministic in ``seed``.

  Args:
    name: dataset name or spec (see :func:`load_arrays`).
    num_batches: ``R`` (SNASNet: 2).
    batch_size: ``B`` (SNASNet: 256; LightSNN: 64).
    seed: integer seed of the permutation and of the augmentation.
    data_dir: as in :func:`load_arrays`.
    augment: apply random crop + flip.
    **options: dataset options (``dvs128_gesture`` only: pass
      ``n_time_bins=T``, the network's timesteps, to get exactly ``T`` frames).

  Returns:
    ``float32 [R, B, H, W, C]`` normalised images, or for event data
    ``float32 [R, B, T, H, W, C]`` count frames (never augmented).

  Raises:
    ValueError: ``num_batches`` or ``batch_size`` below 1, an empty split, and
      the errors of :func:`load_arrays`.
  """
  r, b = int(num_batches), int(batch_size)
  if r < 1 or b < 1:
    raise ValueError(f"num_batches ({num_batches}) and batch_size ({batch_size}) must be >= 1")
  info = get_info(name, **options)
  src = open_source(name, "train", data_dir, **options)
  n = len(src)
  if n == 0:
    raise ValueError(f"{name}: empty train split")
  perm_seq, aug_seq = np.random.SeedSequence(int(seed)).spawn(2)
  perm_rng = np.random.default_rng(perm_seq)
  total = r * b
  perms = [perm_rng.permutation(n) for _ in range(math.ceil(total / n))]
  idx = np.concatenate(perms)[:total]
  images, _ = src.get(idx)
  if info.is_event:
    return images.astype(np.float32).reshape((r, b) + images.shape[1:])
  if augment:
    images = augment_batch(np.random.default_rng(aug_seq), images,
                           pad=info.crop_pad)
  x = normalize(images, info)
  return x.reshape((r, b) + x.shape[1:])


def first_examples(images: Any, labels: Any, max_examples: Optional[int]
                   ) -> Tuple[Any, Any]:
  """The first ``max_examples`` samples (``--max_train_examples`` style limits).

  Args:
    images: ``[N, ...]``.
    labels: ``[N]``.
    max_examples: how many to keep, ``>= 1``; ``None`` keeps all. More than
      ``N`` keeps all.

  Returns:
    ``(images[:n], labels[:n])``.

  Raises:
    ValueError: ``max_examples < 1`` (``0`` would give an empty split and a
      negative value would silently drop samples from the end).
  """
  if max_examples is None:
    return images, labels
  if int(max_examples) != max_examples or max_examples < 1:
    raise ValueError(f"max_examples must be a whole number >= 1, or None for all samples; "
                     f"got {max_examples!r}")
  n = int(max_examples)
  return images[:n], labels[:n]


# Epoch iterators with per-host sharding.


def _process_defaults(process_index: Optional[int],
                      process_count: Optional[int]) -> Tuple[int, int]:
  if process_index is None or process_count is None:
    import jax  # lazy
    if process_index is None:
      process_index = jax.process_index()
    if process_count is None:
      process_count = jax.process_count()
  return int(process_index), int(process_count)


@dataclasses.dataclass(frozen=True, eq=False)
class Batches:
  """Epoch iterator over in-memory arrays, sharded per host.

  Epoch ``e`` visits the samples in the order ``epoch_order(e)`` (a
  permutation seeded by ``(seed, e)`` when ``shuffle``, else ``0..N-1``), cut
  into global batches of ``batch_size``. Process ``process_index`` of
  ``process_count`` gets the ``process_index``-th of ``process_count`` equal
  slices of every global batch, ``local_batch_size = batch_size //
  process_count`` samples, and gathers only those. The order depends only on
  ``(seed, epoch)``, so a resumed run (``start_step``) sees the same batches.

  Attributes:
    images: ``[N, ...]`` array (any dtype; not copied).
    labels: ``[N]`` array.
    batch_size: global batch size (all processes together); must be
      divisible by ``process_count``.
    seed: shuffle seed.
    shuffle: permute each epoch.
    drop_remainder: drop the last partial global batch. If ``False`` it is
      split among the processes as evenly as possible (sizes may then differ
      by one between processes).
    process_index, process_count: this host's slice; ``None`` ->
      ``jax.process_index()`` / ``jax.process_count()``.
  """

  images: Any
  labels: Any
  batch_size: int
  seed: int = 0
  shuffle: bool = True
  drop_remainder: bool = True
  process_index: Optional[int] = None
  process_count: Optional[int] = None

  def __post_init__(self):
    index, count = _process_defaults(self.process_index, self.process_count)
    object.__setattr__(self, "process_index", index)
    object.__setattr__(self, "process_count", count)
    if len(self.images) != len(self.labels):
      raise ValueError(f"{len(self.images)} images but {len(self.labels)} "
                       "labels")
    if not 0 <= index < count:
      raise ValueError(f"process_index {index} not in [0, {count})")
    if self.batch_size < 1 or self.batch_size % count:
      raise ValueError(f"batch_size {self.batch_size} must be a positive "
                       f"multiple of process_count {count}")

  @property
  def num_examples(self) -> int:
    """``N``, samples in the arrays."""
    return len(self.labels)

  @property
  def local_batch_size(self) -> int:
    """Samples per step on this process: ``batch_size // process_count``."""
    return self.batch_size // self.process_count

  @property
  def steps_per_epoch(self) -> int:
    """Global steps in one epoch."""
    if self.drop_remainder:
      return self.num_examples // self.batch_size
    return math.ceil(self.num_examples / self.batch_size)

  def __len__(self) -> int:
    return self.steps_per_epoch

  def epoch_order(self, epoch: int) -> np.ndarray:
    """int64 ``[N]``: the global sample order of ``epoch``."""
    n = self.num_examples
    if not self.shuffle:
      return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng([int(self.seed), int(epoch)])
    return rng.permutation(n).astype(np.int64)

  def local_indices(self, epoch: int, step: int,
                    order: Optional[np.ndarray] = None) -> np.ndarray:
    """int64 indices this process reads at ``step`` of ``epoch``."""
    if order is None:
      order = self.epoch_order(epoch)
    glob = order[step * self.batch_size:(step + 1) * self.batch_size]
    if len(glob) == self.batch_size:
      lb = self.local_batch_size
      return glob[self.process_index * lb:(self.process_index + 1) * lb]
    return np.array_split(glob, self.process_count)[self.process_index]

  def epoch(self, epoch: int, start_step: int = 0
            ) -> Iterator[Dict[str, np.ndarray]]:
    """Yields ``{'image': images[idx], 'label': labels[idx]}`` for the steps
    ``start_step .. steps_per_epoch - 1`` of ``epoch`` (this process's slice:
    ``local_batch_size`` samples, the leading dim).

    Raises:
      ValueError: ``start_step < 0`` (checked now, not at the first ``next``).
    """
    if int(start_step) < 0:
      raise ValueError(f"start_step must be >= 0 (steps already done in this epoch), got "
                       f"{start_step}")
    order = self.epoch_order(epoch)

    def steps() -> Iterator[Dict[str, np.ndarray]]:
      for step in range(int(start_step), self.steps_per_epoch):
        idx = self.local_indices(epoch, step, order)
        yield {"image": self.images[idx], "label": self.labels[idx]}

    return steps()

  def __iter__(self) -> Iterator[Dict[str, np.ndarray]]:
    return self.epoch(0)


def iterate_batches(images: Any, labels: Any, batch_size: int, seed: int = 0,
                    epoch: int = 0, shuffle: bool = True,
                    drop_remainder: bool = True,
                    process_index: Optional[int] = None,
                    process_count: Optional[int] = None,
                    start_step: int = 0) -> Iterator[Dict[str, np.ndarray]]:
  """One epoch of per-host batches; see :class:`Batches`.

  Args:
    images: ``[N, ...]`` array (e.g. uint8 ``[N, H, W, C]``).
    labels: ``[N]`` array.
    batch_size: global batch size; each process yields ``batch_size //
      process_count`` samples per step.
    seed, epoch: the order is a function of these only.
    shuffle, drop_remainder: see :class:`Batches`.
    process_index, process_count: default ``jax.process_index()`` /
      ``jax.process_count()``.
    start_step: skip the first steps (resuming mid-epoch).

  Returns:
    Iterator of ``{'image': [b, ...], 'label': [b]}`` dicts (same dtypes as
    the inputs).
  """
  return Batches(images, labels, batch_size, seed, shuffle, drop_remainder,
                 process_index, process_count).epoch(epoch, start_step)
