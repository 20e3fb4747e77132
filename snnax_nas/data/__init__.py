"""Datasets for training-free search and for training: loaders, normalisation,
augmentation, score batches and per-host epoch iterators.

Modules: :mod:`.registry` (names, :class:`DatasetInfo`, :func:`load_arrays`),
the formats :mod:`.tfds`, :mod:`.folders`, :mod:`.npz`, :mod:`.tinyimagenet`
and :mod:`.dvs`, :mod:`.augment` and :mod:`.batches`. Importing this package
imports neither tfds, tonic, JAX nor TensorFlow.
"""

from snnax_nas.data.augment import (
  augment_batch,
  augment_batch_jax,
  crop_and_flip,
  crop_and_flip_jax,
  normalize,
)
from snnax_nas.data.batches import Batches, first_examples, iterate_batches, score_batches
from snnax_nas.data.dvs import (
  DVS_DEFAULT_TIMESTEPS,
  DVS_SENSOR_SIZE,
  MissingTonicError,
  bin_frames,
  events_to_frames,
  load_dvs128_gesture,
)
from snnax_nas.data.npz import SAMPLE_PATH
from snnax_nas.data.registry import (
  CIFAR10_CLASSES,
  CIFAR10_MEAN,
  CIFAR10_STD,
  CIFAR100_MEAN,
  CIFAR100_STD,
  DATASETS,
  DVS_GESTURE_CLASSES,
  IMAGENET_MEAN,
  IMAGENET_STD,
  DatasetInfo,
  get_info,
  has_separate_splits,
  load_arrays,
  open_source,
)
from snnax_nas.data.source import Source, default_data_dir

__all__ = [
  "CIFAR10_CLASSES",
  "CIFAR10_MEAN",
  "CIFAR10_STD",
  "CIFAR100_MEAN",
  "CIFAR100_STD",
  "DATASETS",
  "DVS_DEFAULT_TIMESTEPS",
  "DVS_GESTURE_CLASSES",
  "DVS_SENSOR_SIZE",
  "IMAGENET_MEAN",
  "IMAGENET_STD",
  "SAMPLE_PATH",
  "Batches",
  "DatasetInfo",
  "MissingTonicError",
  "Source",
  "augment_batch",
  "augment_batch_jax",
  "bin_frames",
  "crop_and_flip",
  "crop_and_flip_jax",
  "default_data_dir",
  "events_to_frames",
  "first_examples",
  "get_info",
  "has_separate_splits",
  "iterate_batches",
  "load_arrays",
  "load_dvs128_gesture",
  "normalize",
  "open_source",
  "score_batches",
]
