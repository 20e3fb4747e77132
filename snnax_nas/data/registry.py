"""Dataset names, their static descriptions (:class:`DatasetInfo`) and the one
dispatch from a name to its loader.

Conventions
-----------
* Static images are NHWC ``uint8`` in ``[0, 255]`` as loaded;
  :func:`snnax_nas.data.normalize` turns them into ``float32``
  ``(x / 255 - mean) / std`` per channel.
* Event data (DVS128 Gesture) are frames ``float32 [N, T, H, W, 2]`` of event
  counts (see :mod:`snnax_nas.data.dvs`). They are not normalised.
* Labels are ``int32 [N]``.

Dataset names (see :data:`DATASETS` and :func:`get_info`)
----------------------------------------------------------
``cifar10``, ``cifar100``
    Read with ``tfds.data_source`` (:mod:`snnax_nas.data.tfds`), no TensorFlow.
``tinyimagenet``
    The standard ``tiny-imagenet-200`` folder (:mod:`snnax_nas.data.tinyimagenet`).
``dvs128_gesture``
    tonic's preprocessed DVS128 Gesture, framed on read (:mod:`snnax_nas.data.dvs`).
``cifar10_sample``
    Real CIFAR-10 images bundled with the package (see ``README.md`` beside
    this file): split ``train``, 1,024 training images (what searches score),
    and split ``test``, 500 test images (50 per class): offline training and
    evaluation at smoke-test scale.
``npz:PATH``
    A NumPy archive with keys ``image`` and ``label``. If ``PATH`` contains the
    text ``{split}`` it is formatted with the split name
    (``npz:/data/{split}10k.npz``); otherwise the one file is returned for every
    split, so train and test are the same data (:func:`has_separate_splits`).
``folder:PATH``
    An image tree ``PATH/<split>/<label>/**/*.{jpg,jpeg,png}`` decoded with PIL.
    Class indices follow the sorted label-folder names of ``PATH/train`` (or of
    ``PATH/<split>`` when there is no ``train`` folder).

Local datasets that are not in tfds live under ``data_dir``, which defaults to
``$SNNAX_NAS_DATA_DIR`` or ``~/snnax_nas_data``; tfds datasets default to tfds'
own ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any
from typing import Dict
from typing import Optional
from typing import Tuple

from absl import logging
import numpy as np

from snnax_nas.data import dvs
from snnax_nas.data import folders
from snnax_nas.data import npz
from snnax_nas.data import tfds
from snnax_nas.data import tinyimagenet
from snnax_nas.data.source import Source

__all__ = ["CIFAR10_CLASSES", "CIFAR100_MEAN", "CIFAR100_STD", "CIFAR10_MEAN", "CIFAR10_STD",
           "DATASETS", "DVS_GESTURE_CLASSES", "DVS_OPTIONS", "DatasetInfo", "IMAGENET_MEAN",
           "IMAGENET_STD", "get_info", "has_separate_splits", "load_arrays", "open_source"]


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """Static description of a dataset.

  Attributes:
    name: dataset name or spec (``"cifar10"``, ``"npz:/path/{split}.npz"``).
    image_shape: ``(H, W, C)`` of one image, or of one frame for event data.
    num_classes: number of labels; labels are ``0 .. num_classes - 1``.
    mean: per-channel mean of ``x / 255`` (C floats) used by ``normalize``.
    std: per-channel standard deviation of ``x / 255`` (C floats).
    timesteps_native: ``None`` for static images; for event data the number of
      frames ``T`` per sample the loader produces.
    crop_pad: zero padding in pixels of the reference random-crop augmentation
      (4 for 32x32 CIFAR, 8 for 64x64 TinyImageNet, 0 = no crop).
    class_names: optional class names, index = label.
  """

  name: str
  image_shape: Tuple[int, int, int]
  num_classes: int
  mean: Tuple[float, ...]
  std: Tuple[float, ...]
  timesteps_native: Optional[int] = None
  crop_pad: int = 4
  class_names: Optional[Tuple[str, ...]] = None

  @property
  def is_event(self) -> bool:
    """True for event (frame-sequence) data, whose samples are ``[T, H, W, C]``."""
    return self.timesteps_native is not None


CIFAR10_MEAN = (0.4913, 0.4821, 0.4465)
CIFAR10_STD = (0.2470, 0.2434, 0.2615)
CIFAR100_MEAN = (0.5071, 0.4867, 0.4408)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog",
                   "frog", "horse", "ship", "truck")
DVS_GESTURE_CLASSES = (
    "hand clapping", "right hand wave", "left hand wave", "right arm cw",
    "right arm ccw", "left arm cw", "left arm ccw", "arm roll", "air drums",
    "air guitar", "other gestures")

DATASETS: Dict[str, DatasetInfo] = {
    "cifar10": DatasetInfo("cifar10", (32, 32, 3), 10, CIFAR10_MEAN,
                           CIFAR10_STD, None, 4, CIFAR10_CLASSES),
    "cifar100": DatasetInfo("cifar100", (32, 32, 3), 100, CIFAR100_MEAN,
                            CIFAR100_STD, None, 4),
    "tinyimagenet": DatasetInfo("tinyimagenet", (64, 64, 3), 200,
                                IMAGENET_MEAN, IMAGENET_STD, None, 8),
    "dvs128_gesture": DatasetInfo("dvs128_gesture", dvs.DVS_SENSOR_SIZE, 11,
                                  (0.0, 0.0), (1.0, 1.0),
                                  dvs.DVS_DEFAULT_TIMESTEPS, 0,
                                  DVS_GESTURE_CLASSES),
    "cifar10_sample": DatasetInfo("cifar10_sample", (32, 32, 3), 10,
                                  CIFAR10_MEAN, CIFAR10_STD, None, 4,
                                  CIFAR10_CLASSES),
}
"""Registry of the named datasets. ``npz:PATH`` and ``folder:PATH`` specs are
not listed; :func:`get_info` derives their info from the data."""

DVS_OPTIONS = ("n_time_bins", "size", "split_by", "dtype")
"""The options ``dvs128_gesture`` takes (see ``load_dvs128_gesture``); no other
dataset takes any."""


def _unknown(name: str) -> ValueError:
  return ValueError(
      f"unknown dataset {name!r}; known names: {sorted(DATASETS)}, or a local "
      "spec 'npz:PATH' (keys image/label) or 'folder:PATH' "
      "(PATH/<split>/<label>/*.png|jpg)")


def _check_options(name: str, options: Dict[str, Any]) -> None:
  allowed = DVS_OPTIONS if name == "dvs128_gesture" else ()
  unknown = sorted(set(options) - set(allowed))
  if unknown:
    raise ValueError(
        f"dataset {name!r} takes no option {unknown}; options exist only for dvs128_gesture "
        f"({list(DVS_OPTIONS)})")


def get_info(name: str, **options: Any) -> DatasetInfo:
  """The :class:`DatasetInfo` of ``name``.

  Args:
    name: a key of :data:`DATASETS` or a ``npz:PATH`` / ``folder:PATH`` spec.
      For specs, shape and class count come from the ``train`` split and mean
      and std are computed from it (per channel, of ``x / 255``).
    **options: for ``dvs128_gesture``, ``n_time_bins`` and ``size`` (as in
      ``load_dvs128_gesture``; ``None`` = default) change ``timesteps_native``
      and ``image_shape``.

  Raises:
    ValueError: unknown name, an option the dataset does not take, or
      ``n_time_bins`` / ``size`` below 1.
  """
  _check_options(name, options)
  if name in DATASETS:
    info = DATASETS[name]
    if name == "dvs128_gesture":
      t, s = options.get("n_time_bins"), options.get("size")
      t = info.timesteps_native if t is None else int(t)
      s = info.image_shape[0] if s is None else int(s)
      if t < 1 or s < 1:
        raise ValueError(f"dvs128_gesture: n_time_bins ({t}) and size ({s}) must be >= 1")
      info = dataclasses.replace(info, timesteps_native=t, image_shape=(s, s, 2))
    return info
  if name.startswith("npz:") or name.startswith("folder:"):
    return _spec_info(name)
  raise _unknown(name)


def has_separate_splits(name: str) -> bool:
  """False when every split of ``name`` is the same data, so "test" accuracy
  would be measured on training samples.

  That is an ``npz:FILE`` spec without ``{split}`` in ``FILE`` (one file for all
  splits). Launchers check this
  before evaluating and warn or refuse.

  Raises:
    ValueError: unknown name.
  """
  if name.startswith("npz:"):
    return npz.has_split_placeholder(name[len("npz:"):])
  if name in DATASETS or name.startswith("folder:"):
    return True
  raise _unknown(name)


@functools.lru_cache(maxsize=16)
def _spec_info(name: str) -> DatasetInfo:
  src = open_source(name, "train")
  images, labels = src.get(np.arange(len(src)))
  shape = tuple(int(s) for s in images.shape[-3:])
  timesteps = int(images.shape[1]) if images.ndim == 5 else None
  if images.dtype == np.uint8:
    x = images.reshape(-1, shape[-1])
    mean = np.zeros(shape[-1])
    sq = np.zeros(shape[-1])
    for start in range(0, len(x), 1 << 20):  # chunked float64 sums
      c = x[start:start + (1 << 20)].astype(np.float64) / 255.0
      mean += c.sum(0)
      sq += (c * c).sum(0)
    mean /= len(x)
    std = np.sqrt(np.maximum(sq / len(x) - mean * mean, 1e-12))
    mean_t, std_t = tuple(float(m) for m in mean), tuple(float(s) for s in std)
  else:
    mean_t, std_t = (0.0,) * shape[-1], (1.0,) * shape[-1]
  num_classes = int(labels.max()) + 1 if len(labels) else 0
  absent = np.setdiff1d(np.arange(num_classes), labels)
  if absent.size:
    # A label beyond the intended classes (0..11 in a 10-class file) makes a
    # wider classifier without a word; say what was inferred.
    logging.warning("%s: %d classes inferred from the largest training label %d, but classes "
                    "%s have no training sample; check the labels", name, num_classes,
                    num_classes - 1, absent[:10].tolist())
  pad = 0 if timesteps is not None else max(shape[0] // 8, 0)
  return DatasetInfo(name, shape, num_classes, mean_t, std_t, timesteps, pad)


def open_source(name: str, split: str, data_dir: Optional[str] = None,
                **options: Any) -> Source:
  """Random access to one split of ``name`` (only the samples read are decoded).

  Args: as :func:`load_arrays`.

  Raises:
    ValueError: unknown name, or an option the dataset does not take.
  """
  _check_options(name, options)
  if name in ("cifar10", "cifar100"):
    return tfds.tfds_source(name, split, data_dir, DATASETS[name].image_shape)
  if name == "cifar10_sample":
    return npz.sample_source(split)
  if name == "tinyimagenet":
    return tinyimagenet.tinyimagenet_source(split, data_dir)
  if name == "dvs128_gesture":
    return dvs.dvs_source(split, data_dir, **options)
  if name.startswith("npz:"):
    return _check_split_shape(name, split, npz.npz_source(name[len("npz:"):], split))
  if name.startswith("folder:"):
    return _check_split_shape(name, split, folders.folder_source(name[len("folder:"):], split))
  raise _unknown(name)


def _check_split_shape(name: str, split: str, src: Source) -> Source:
  """Refuses a non-train split of a local spec whose samples differ in shape
  from the train split's (64x64 test images beside 32x32 train images), so the
  mismatch is found when the data is opened, not after an epoch of training."""
  if split == "train" or not len(src):
    return src
  try:
    info = _spec_info(name)
  except (FileNotFoundError, ValueError):  # no readable train split to compare with
    return src
  sample = src.get(np.zeros(1, np.int64))[0][0]
  want = ((info.timesteps_native,) if info.is_event else ()) + info.image_shape
  if tuple(sample.shape) != want:
    raise ValueError(
        f"{name}: split {split!r} holds samples of shape {tuple(sample.shape)} but split "
        f"'train' holds {want}; every split must have the train split's sample shape")
  return src


def load_arrays(name: str, split: str, data_dir: Optional[str] = None,
                **options: Any) -> Tuple[np.ndarray, np.ndarray]:
  """Loads a whole split into memory.

  ``cifar10``/``cifar100`` are read with ``tfds.data_source(name, split=split,
  data_dir=data_dir, download=False)``: random-access ArrayRecord records as
  NumPy, no TensorFlow import. Split strings may use tfds slicing
  (``"train[:90%]"``). ``tinyimagenet`` and ``folder:PATH`` are decoded with
  PIL. An ``npz:FILE`` spec without ``{split}`` returns the same file for every
  split (a warning is logged for a split other than ``train``; see
  :func:`has_separate_splits`).

  Args:
    name: a key of :data:`DATASETS`, ``npz:PATH`` or ``folder:PATH``.
    split: ``"train"``, ``"test"`` (CIFAR, DVS), ``"val"`` (TinyImageNet) or
      the split folder name (``folder:``).
    data_dir: where the data lives (tfds data dir for CIFAR; the folder that
      holds ``tiny-imagenet-200`` / tonic's ``DVSGesture``); ``None`` uses the
      defaults described in the module docstring.
    **options: ``dvs128_gesture`` only: ``n_time_bins`` (frames per recording;
      pass the network's timesteps ``T``), ``size``, ``split_by``, ``dtype``.

  Returns:
    ``(images, labels)``: images ``uint8 [N, H, W, C]`` (static images) or
    ``float32 [N, T, H, W, 2]`` event-count frames (``dvs128_gesture``), and
    labels ``int32 [N]``.

  Raises:
    FileNotFoundError: the data is missing; the message says how to get it.
    ValueError: unknown name, split or option; a corrupt image file; NaN/inf
      values or bad labels in an ``npz`` file.
    MissingTonicError: ``dvs128_gesture`` without tonic installed (an
      ``ImportError`` and a ``ValueError``).
  """
  src = open_source(name, split, data_dir, **options)
  return src.get(np.arange(len(src)))
