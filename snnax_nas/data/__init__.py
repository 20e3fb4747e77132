"""Datasets for training-free search and for training: loaders, normalisation,
augmentation, score batches and per-host epoch iterators.

Modules: :mod:`.registry` (names, :class:`DatasetInfo`, :func:`load_arrays`),
the formats :mod:`.tfds`, :mod:`.folders`, :mod:`.npz`, :mod:`.tinyimagenet`
and :mod:`.dvs`, :mod:`.augment` and :mod:`.batches`. Importing this package
imports neither tfds, tonic, JAX nor TensorFlow.
"""

from snnax_nas.data.augment import augment_batch
from snnax_nas.data.augment import augment_batch_jax
from snnax_nas.data.augment import crop_and_flip
from snnax_nas.data.augment import crop_and_flip_jax
from snnax_nas.data.augment import normalize
from snnax_nas.data.batches import Batches
from snnax_nas.data.batches import first_examples
from snnax_nas.data.batches import iterate_batches
from snnax_nas.data.batches import score_batches
from snnax_nas.data.dvs import DVS_DEFAULT_TIMESTEPS
from snnax_nas.data.dvs import DVS_SENSOR_SIZE
from snnax_nas.data.dvs import MissingTonicError
from snnax_nas.data.dvs import bin_frames
from snnax_nas.data.dvs import events_to_frames
from snnax_nas.data.dvs import load_dvs128_gesture
from snnax_nas.data.npz import SAMPLE_PATH
from snnax_nas.data.npz import SAMPLE_TEST_PATH
from snnax_nas.data.registry import CIFAR10_CLASSES
from snnax_nas.data.registry import CIFAR10_MEAN
from snnax_nas.data.registry import CIFAR10_STD
from snnax_nas.data.registry import CIFAR100_MEAN
from snnax_nas.data.registry import CIFAR100_STD
from snnax_nas.data.registry import DATASETS
from snnax_nas.data.registry import DVS_GESTURE_CLASSES
from snnax_nas.data.registry import IMAGENET_MEAN
from snnax_nas.data.registry import IMAGENET_STD
from snnax_nas.data.registry import DatasetInfo
from snnax_nas.data.registry import get_info
from snnax_nas.data.registry import has_separate_splits
from snnax_nas.data.registry import load_arrays
from snnax_nas.data.registry import open_source
from snnax_nas.data.source import Source
from snnax_nas.data.source import default_data_dir

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
  "SAMPLE_TEST_PATH",
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
