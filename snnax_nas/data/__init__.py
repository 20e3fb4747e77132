"""Datasets for training-free search and for training: loaders, normalisation,
augmentation, score batches and per-host epoch iterators.

Conventions
-----------
* Static images are NHWC ``uint8`` in ``[0, 255]`` as loaded; :func:`normalize`
  turns them into ``float32`` ``(x / 255 - mean) / std`` per channel.
* Event data (DVS128 Gesture) are frames ``float32 [N, T, H, W, 2]``: event
  counts per (time bin, pixel, polarity), channels last, polarity 0 (OFF) in
  channel 0 and 1 (ON) in channel 1. They are not normalised.
* Labels are ``int32 [N]``.

Dataset names (see :data:`DATASETS` and :func:`get_info`)
----------------------------------------------------------
``cifar10``, ``cifar100``
    Read with ``tfds.data_source`` (ArrayRecord, random access, NumPy records).
    This path needs no TensorFlow: ``tfds.load`` would return a ``tf.data``
    pipeline and import TensorFlow, which this project does not depend on.
    *Preparing* the files once (``tfds build ... --file_format array_record``)
    needs TensorFlow on the machine that prepares them; reading does not.
``tinyimagenet``
    The standard ``tiny-imagenet-200`` folder (``train/<wnid>/images/*.JPEG``,
    ``val/images`` + ``val/val_annotations.txt`` or ``val/<wnid>/...``), decoded
    with PIL. ``tfds.folder_dataset.ImageFolder`` is not used: in
    tensorflow-datasets 4.9.10 it lists folders with ``tf.io.gfile`` and fails
    without TensorFlow.
``dvs128_gesture``
    tonic's preprocessed DVS128 Gesture (``tonic.datasets.DVSGesture``), framed
    by :func:`events_to_frames`.
``cifar10_sample``
    1,024 real CIFAR-10 *training* images bundled with the package (see
    ``README.md`` beside this file); split ``train`` only.
``npz:PATH``
    A NumPy archive with keys ``image`` and ``label``. If ``PATH`` contains the
    text ``{split}`` it is formatted with the split name
    (``npz:/data/{split}10k.npz``); otherwise the one file is returned for every
    split.
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
import math
import os
import pathlib
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "DatasetInfo",
    "DATASETS",
    "SAMPLE_PATH",
    "Batches",
    "augment_batch",
    "augment_batch_jax",
    "crop_and_flip",
    "crop_and_flip_jax",
    "default_data_dir",
    "events_to_frames",
    "get_info",
    "iterate_batches",
    "load_arrays",
    "load_dvs128_gesture",
    "normalize",
    "score_batches",
]

SAMPLE_PATH = pathlib.Path(__file__).resolve().parent / "cifar10_sample.npz"

_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


# --------------------------------------------------------------------------
# Dataset descriptions
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """Static description of a dataset.

  Attributes:
    name: dataset name or spec (``"cifar10"``, ``"npz:/path/{split}.npz"``).
    image_shape: ``(H, W, C)`` of one image, or of one frame for event data.
    num_classes: number of labels; labels are ``0 .. num_classes - 1``.
    mean: per-channel mean of ``x / 255`` (C floats) used by :func:`normalize`.
    std: per-channel standard deviation of ``x / 255`` (C floats).
    timesteps_native: ``None`` for static images; for event data the number of
      frames ``T`` per sample the loader produces by default.
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

# DVS128 Gesture: LightSNN (the only SNN-NAS reference with DVS) uses T = 16
# frames from the 128x128 sensor, 2 polarities, 11 classes.
DVS_SENSOR_SIZE = (128, 128, 2)  # (W, H, P), tonic's convention.
DVS_DEFAULT_TIMESTEPS = 16

DATASETS: Dict[str, DatasetInfo] = {
    "cifar10": DatasetInfo("cifar10", (32, 32, 3), 10, CIFAR10_MEAN,
                           CIFAR10_STD, None, 4, CIFAR10_CLASSES),
    "cifar100": DatasetInfo("cifar100", (32, 32, 3), 100, CIFAR100_MEAN,
                            CIFAR100_STD, None, 4),
    "tinyimagenet": DatasetInfo("tinyimagenet", (64, 64, 3), 200,
                                IMAGENET_MEAN, IMAGENET_STD, None, 8),
    "dvs128_gesture": DatasetInfo("dvs128_gesture", (128, 128, 2), 11,
                                  (0.0, 0.0), (1.0, 1.0),
                                  DVS_DEFAULT_TIMESTEPS, 0,
                                  DVS_GESTURE_CLASSES),
    "cifar10_sample": DatasetInfo("cifar10_sample", (32, 32, 3), 10,
                                  CIFAR10_MEAN, CIFAR10_STD, None, 4,
                                  CIFAR10_CLASSES),
}
"""Registry of the named datasets. ``npz:PATH`` and ``folder:PATH`` specs are
not listed; :func:`get_info` derives their info from the data."""


def default_data_dir() -> str:
  """Root folder of the non-tfds datasets: ``$SNNAX_NAS_DATA_DIR`` or
  ``~/snnax_nas_data`` (expanded)."""
  return os.path.expanduser(
      os.environ.get("SNNAX_NAS_DATA_DIR", "~/snnax_nas_data"))


def _unknown(name: str) -> ValueError:
  return ValueError(
      f"unknown dataset {name!r}; known names: {sorted(DATASETS)}, or a local "
      "spec 'npz:PATH' (keys image/label) or 'folder:PATH' "
      "(PATH/<split>/<label>/*.png|jpg)")


def get_info(name: str, data_dir: Optional[str] = None,
             **options: Any) -> DatasetInfo:
  """The :class:`DatasetInfo` of ``name``.

  Args:
    name: a key of :data:`DATASETS` or a ``npz:PATH`` / ``folder:PATH`` spec.
      For specs, shape and class count come from the ``train`` split and mean
      and std are computed from it (per channel, of ``x / 255``).
    data_dir: unused for named datasets; kept for a uniform signature.
    **options: for ``dvs128_gesture``, ``n_time_bins`` and ``size`` (as in
      :func:`load_dvs128_gesture`) change ``timesteps_native`` and
      ``image_shape``.

  Raises:
    ValueError: unknown name.
  """
  del data_dir
  if name in DATASETS:
    info = DATASETS[name]
    if name == "dvs128_gesture":
      t = options.get("n_time_bins") or info.timesteps_native
      s = options.get("size") or info.image_shape[0]
      info = dataclasses.replace(info, timesteps_native=int(t),
                                 image_shape=(int(s), int(s), 2))
    return info
  if name.startswith("npz:") or name.startswith("folder:"):
    return _spec_info(name)
  raise _unknown(name)


@functools.lru_cache(maxsize=16)
def _spec_info(name: str) -> DatasetInfo:
  src = _open_source(name, "train", None)
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
  pad = 0 if timesteps is not None else max(shape[0] // 8, 0)
  return DatasetInfo(name, shape, num_classes, mean_t, std_t, timesteps, pad)


# --------------------------------------------------------------------------
# Sources: random access to (image, label) by index
# --------------------------------------------------------------------------


class _Source:
  """Random-access dataset: ``len(src)`` and ``src.get(indices)``."""

  def __init__(self, n: int,
               getter: Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]):
    self._n = int(n)
    self._getter = getter

  def __len__(self) -> int:
    return self._n

  def get(self, indices: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= self._n):
      raise IndexError(f"indices out of range [0, {self._n})")
    return self._getter(indices)


def _array_source(images: np.ndarray, labels: np.ndarray) -> _Source:
  labels = np.asarray(labels).astype(np.int32)
  if len(images) != len(labels):
    raise ValueError(f"{len(images)} images but {len(labels)} labels")
  return _Source(len(images), lambda idx: (images[idx], labels[idx]))


@functools.lru_cache(maxsize=1)
def _bundled_sample() -> Tuple[np.ndarray, np.ndarray]:
  with np.load(SAMPLE_PATH) as f:
    images, labels = f["image"], f["label"].astype(np.int32)
  images.setflags(write=False)
  labels.setflags(write=False)
  return images, labels


def _sample_source(split: str) -> _Source:
  if split != "train":
    raise ValueError(
        f"cifar10_sample has only the split 'train' (1,024 CIFAR-10 training "
        f"images), not {split!r}; use 'cifar10' or 'npz:PATH' for test data")
  return _array_source(*_bundled_sample())


def _npz_source(path: str, split: str) -> _Source:
  path = os.path.expanduser(path.replace("{split}", split))
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"npz dataset file {path!r} not found: write it with "
        "np.savez(path, image=uint8 [N,H,W,C] (or float frames), "
        "label=int [N]); a '{split}' in the spec is replaced by the split name")
  with np.load(path) as f:
    missing = {"image", "label"} - set(f.files)
    if missing:
      raise ValueError(f"{path}: missing keys {sorted(missing)} "
                       f"(has {sorted(f.files)})")
    images, labels = f["image"], f["label"]
  if images.ndim not in (4, 5):
    raise ValueError(f"{path}: image must be [N,H,W,C] or [N,T,H,W,C], "
                     f"got shape {images.shape}")
  return _array_source(images, labels)


def _decode_image(path: str, channels: int) -> np.ndarray:
  from PIL import Image  # lazy
  with Image.open(path) as im:
    im = im.convert("RGB" if channels == 3 else "L")
    arr = np.asarray(im, dtype=np.uint8)
  return arr if arr.ndim == 3 else arr[..., None]


def _file_source(paths: Sequence[str], labels: Sequence[int],
                 channels: Optional[int] = None) -> _Source:
  paths = list(paths)
  labels_arr = np.asarray(labels, dtype=np.int32)
  if channels is None and paths:
    from PIL import Image  # lazy
    with Image.open(paths[0]) as im:
      channels = 1 if im.mode in ("L", "1", "I", "I;16", "F") else 3

  def getter(idx: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    if idx.size == 0:
      return np.zeros((0, 0, 0, channels or 3), np.uint8), labels_arr[idx]
    first = _decode_image(paths[idx[0]], channels)
    out = np.empty((idx.size,) + first.shape, np.uint8)
    out[0] = first
    for k, i in enumerate(idx[1:], start=1):
      img = _decode_image(paths[i], channels)
      if img.shape != first.shape:
        raise ValueError(f"{paths[i]} has shape {img.shape}, expected "
                         f"{first.shape} (all images must be the same size)")
      out[k] = img
    return out, labels_arr[idx]

  return _Source(len(paths), getter)


def _list_images(folder: pathlib.Path) -> list:
  return sorted(str(p) for p in folder.rglob("*")
                if p.suffix.lower() in _IMAGE_EXTENSIONS and p.is_file())


def _folder_layout_help(root: str) -> str:
  return (f"expected an image tree {root}/<split>/<label>/**/*.png|jpg|jpeg, "
          "e.g. train/cat/0001.png; class indices follow the sorted label "
          "folder names of train/")


def _folder_source(root: str, split: str) -> _Source:
  root_p = pathlib.Path(os.path.expanduser(root))
  split_dir = root_p / split
  if not split_dir.is_dir():
    raise FileNotFoundError(f"folder dataset: {split_dir} not found; "
                            + _folder_layout_help(str(root_p)))
  class_root = root_p / "train" if (root_p / "train").is_dir() else split_dir
  classes = sorted(d.name for d in class_root.iterdir() if d.is_dir())
  if not classes:
    raise FileNotFoundError(f"folder dataset: no label folders in {class_root}; "
                            + _folder_layout_help(str(root_p)))
  paths, labels = [], []
  for label_dir in sorted(d for d in split_dir.iterdir() if d.is_dir()):
    if label_dir.name not in classes:
      raise ValueError(f"{label_dir}: label {label_dir.name!r} is not a class "
                       f"of {class_root}")
    files = _list_images(label_dir)
    paths += files
    labels += [classes.index(label_dir.name)] * len(files)
  if not paths:
    raise FileNotFoundError(f"folder dataset: no images under {split_dir}; "
                            + _folder_layout_help(str(root_p)))
  return _file_source(paths, labels)


_TINY_HELP = (
    "Get Tiny ImageNet (tiny-imagenet-200.zip, the Stanford CS231n release) "
    "and unzip it so that DATA_DIR/tiny-imagenet-200/train/<wnid>/images/"
    "*.JPEG and DATA_DIR/tiny-imagenet-200/val/images/*.JPEG with "
    "val/val_annotations.txt exist (a val/<wnid>/... class-folder layout also "
    "works); then pass data_dir=DATA_DIR (--data_dir) or set "
    "SNNAX_NAS_DATA_DIR. Any other 64x64 tree PATH/<split>/<label>/*.jpg can "
    "be read as 'folder:PATH'.")


def _tiny_root(data_dir: Optional[str]) -> pathlib.Path:
  base = pathlib.Path(os.path.expanduser(data_dir or default_data_dir()))
  for cand in (base / "tiny-imagenet-200", base):
    if (cand / "train").is_dir():
      return cand
  raise FileNotFoundError(
      f"Tiny ImageNet not found under {base} (no tiny-imagenet-200/train). "
      + _TINY_HELP)


def _tinyimagenet_source(split: str, data_dir: Optional[str]) -> _Source:
  if split not in ("train", "val", "validation"):
    raise ValueError(
        f"tinyimagenet: split must be 'train' or 'val' (the test split has no "
        f"labels), got {split!r}")
  root = _tiny_root(data_dir)
  classes = sorted(d.name for d in (root / "train").iterdir() if d.is_dir())
  index = {c: i for i, c in enumerate(classes)}
  paths, labels = [], []
  if split == "train":
    for c in classes:
      files = _list_images(root / "train" / c)
      paths += files
      labels += [index[c]] * len(files)
  else:
    val = root / "val"
    ann = val / "val_annotations.txt"
    if ann.is_file() and (val / "images").is_dir():
      for line in ann.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[1] in index:
          paths.append(str(val / "images" / parts[0]))
          labels.append(index[parts[1]])
    elif val.is_dir():
      for c in sorted(d.name for d in val.iterdir() if d.is_dir()):
        if c in index:
          files = _list_images(val / c)
          paths += files
          labels += [index[c]] * len(files)
  if not paths:
    raise FileNotFoundError(f"Tiny ImageNet {split}: no images under {root}. "
                            + _TINY_HELP)
  return _file_source(paths, labels, channels=3)


def _tfds_data_dir(data_dir: Optional[str]) -> str:
  return data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"


def _tfds_howto(name: str, data_dir: Optional[str]) -> str:
  return (
      f"To get it: on a machine with internet access and TensorFlow (needed "
      f"once to prepare the files, not to read them) run `pip install "
      f"tensorflow tensorflow-datasets && tfds build {name} --data_dir DIR "
      f"--file_format array_record`, copy DIR here and pass data_dir=DIR "
      f"(--data_dir DIR) or set TFDS_DATA_DIR=DIR. A copy prepared in the "
      f"default TFRecord format cannot be read without TensorFlow: rebuild it "
      f"with --file_format array_record. (searched: "
      f"{_tfds_data_dir(data_dir)})")


def _tfds_source(name: str, split: str, data_dir: Optional[str]) -> _Source:
  import tensorflow_datasets as tfds  # lazy: ~0.5 s

  try:
    ds = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  except Exception as e:  # tfds raises NotImplementedError/KeyError/... here
    prepared = False
    try:
      prepared = tfds.builder(name, data_dir=data_dir).is_prepared()
    except Exception:  # pylint: disable=broad-except
      pass
    detail = f"{type(e).__name__}: {e}"
    if prepared:
      raise ValueError(
          f"tfds dataset {name!r} is prepared in {_tfds_data_dir(data_dir)} "
          f"but split {split!r} cannot be opened as a random-access "
          f"(ArrayRecord) source: {detail}. " + _tfds_howto(name, data_dir)
      ) from e
    raise FileNotFoundError(
        f"tfds dataset {name!r} (split {split!r}) not found as ArrayRecord "
        f"files: {detail}. " + _tfds_howto(name, data_dir)) from e

  def getter(idx: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    records = []
    for start in range(0, idx.size, 1024):
      keys = [int(i) for i in idx[start:start + 1024]]
      try:
        records += list(ds.__getitems__(keys))
      except TypeError:
        # tfds.testing.mock_data (4.9.10) installs a __getitems__ that cannot
        # be called; read one record at a time there.
        records += [ds[k] for k in keys]
    if not records:
      info = DATASETS[name]
      return (np.zeros((0,) + info.image_shape, np.uint8),
              np.zeros((0,), np.int32))
    images = np.stack([np.asarray(r["image"], np.uint8) for r in records])
    labels = np.asarray([int(r["label"]) for r in records], np.int32)
    return images, labels

  return _Source(len(ds), getter)


def _open_source(name: str, split: str, data_dir: Optional[str],
                 **options: Any) -> _Source:
  if name in ("cifar10", "cifar100"):
    return _tfds_source(name, split, data_dir)
  if name == "cifar10_sample":
    return _sample_source(split)
  if name == "tinyimagenet":
    return _tinyimagenet_source(split, data_dir)
  if name == "dvs128_gesture":
    return _dvs_source(split, data_dir, **options)
  if name.startswith("npz:"):
    return _npz_source(name[len("npz:"):], split)
  if name.startswith("folder:"):
    return _folder_source(name[len("folder:"):], split)
  raise _unknown(name)


def load_arrays(name: str, split: str, data_dir: Optional[str] = None,
                **options: Any) -> Tuple[np.ndarray, np.ndarray]:
  """Loads a whole split into memory.

  ``cifar10``/``cifar100`` are read with ``tfds.data_source(name, split=split,
  data_dir=data_dir, download=False)``: random-access ArrayRecord records as
  NumPy, no TensorFlow import (``tfds.load`` would build a ``tf.data``
  pipeline and need TensorFlow). Split strings may use tfds slicing
  (``"train[:90%]"``). ``tinyimagenet`` and ``folder:PATH`` are decoded with
  PIL (``tfds.folder_dataset.ImageFolder`` needs TensorFlow in tfds 4.9.10).

  Args:
    name: a key of :data:`DATASETS`, ``npz:PATH`` or ``folder:PATH``.
    split: ``"train"``, ``"test"`` (CIFAR, DVS), ``"val"`` (TinyImageNet) or
      the split folder name (``folder:``).
    data_dir: where the data lives (tfds data dir for CIFAR; the folder that
      holds ``tiny-imagenet-200`` / tonic's ``DVSGesture``); ``None`` uses the
      defaults described in the module docstring.
    **options: passed to :func:`load_dvs128_gesture` for ``dvs128_gesture``.

  Returns:
    ``(images, labels)``: images ``uint8 [N, H, W, C]`` (static images) or
    ``float32 [N, T, H, W, 2]`` event-count frames (``dvs128_gesture``), and
    labels ``int32 [N]``.

  Raises:
    FileNotFoundError: the data is missing; the message says how to get it.
    ValueError: unknown name or split.
  """
  src = _open_source(name, split, data_dir, **options)
  return src.get(np.arange(len(src)))


# --------------------------------------------------------------------------
# DVS128 Gesture
# --------------------------------------------------------------------------


def events_to_frames(events: np.ndarray,
                     sensor_size: Tuple[int, int, int] = DVS_SENSOR_SIZE,
                     n_time_bins: int = DVS_DEFAULT_TIMESTEPS,
                     *, split_by: str = "number",
                     target_size: Optional[Tuple[int, int]] = None,
                     dtype: Any = np.float32) -> np.ndarray:
  """Accumulates an event stream into ``n_time_bins`` count frames.

  Every event is counted exactly once, so ``frames.sum() == len(events)``.

  Args:
    events: structured array ``[N]`` with integer fields ``x`` (column,
      ``0 <= x < W``), ``y`` (row), ``t`` (timestamp, any integer unit, e.g.
      microseconds) and ``p`` (polarity, bool or 0/1), in recording (time)
      order.
    sensor_size: ``(W, H, P)`` of the sensor, tonic's convention
      (DVS128: ``(128, 128, 2)``). With ``P == 1`` all events go to channel 0.
    n_time_bins: number of frames ``T``.
    split_by: ``"number"``: frame ``i`` holds events ``[i*d, (i+1)*d)`` with
      ``d = N // T`` and the last frame also the remainder (SpikingJelly's
      ``split_by='number'``, which LightSNN's DVS128 pipeline uses).
      ``"time"``: frames of equal duration ``w = (t_max - t_min) // T`` from
      ``t_min``, as ``tonic.transforms.ToFrame(n_time_bins=T)``, except that
      the events tonic drops at the end (``t >= t_min + T*w``, always including
      the last event) are counted in the last frame.
    target_size: optional ``(W', H')`` spatial downsampling: an event at
      ``(x, y)`` lands in ``(x*W'//W, y*H'//H)`` (sum pooling of counts; equal
      to ``tonic.transforms.Downsample(spatial_factor=W'/W)`` when the factor
      is exact in floating point, e.g. 128 -> 64 or 32).
    dtype: dtype of the result.

  Returns:
    ``[T, H', W', P]`` event counts (channels last), ``dtype``.
  """
  w_s, h_s, p_s = (int(v) for v in sensor_size)
  t_bins = int(n_time_bins)
  if t_bins < 1:
    raise ValueError(f"n_time_bins must be >= 1, got {n_time_bins}")
  w_o, h_o = (w_s, h_s) if target_size is None else (int(target_size[0]),
                                                       int(target_size[1]))
  frames_shape = (t_bins, h_o, w_o, p_s)
  n = len(events)
  if n == 0:
    return np.zeros(frames_shape, dtype)
  x = np.asarray(events["x"], np.int64)
  y = np.asarray(events["y"], np.int64)
  t = np.asarray(events["t"], np.int64)
  p = np.asarray(events["p"], np.int64)
  if x.min() < 0 or x.max() >= w_s or y.min() < 0 or y.max() >= h_s:
    raise ValueError(f"event coordinates outside sensor (W, H) = "
                     f"{(w_s, h_s)}")
  if p_s == 1:
    p = np.zeros_like(p)
  elif p.min() < 0 or p.max() >= p_s:
    raise ValueError(f"polarities must be in [0, {p_s})")
  if target_size is not None:
    x = x * w_o // w_s
    y = y * h_o // h_s
  if split_by == "number":
    per = n // t_bins
    if per > 0:
      b = np.minimum(np.arange(n, dtype=np.int64) // per, t_bins - 1)
    else:  # fewer events than frames: SpikingJelly puts all in the last one
      b = np.full(n, t_bins - 1, np.int64)
  elif split_by == "time":
    t0 = t.min()
    width = max((int(t.max()) - int(t0)) // t_bins, 1)
    b = np.minimum((t - t0) // width, t_bins - 1)
  else:
    raise ValueError(f"split_by must be 'number' or 'time', got {split_by!r}")
  flat = ((b * h_o + y) * w_o + x) * p_s + p
  counts = np.bincount(flat, minlength=t_bins * h_o * w_o * p_s)
  return counts.reshape(frames_shape).astype(dtype)


_DVS_HELP = (
    "tonic cannot download offline. On a machine with internet run "
    "`python -c \"import tonic; tonic.datasets.DVSGesture(save_to='DIR', "
    "train=True); tonic.datasets.DVSGesture(save_to='DIR', train=False)\"` "
    "(or fetch tonic's ibmGestureTrain.tar.gz / ibmGestureTest.tar.gz from "
    "tonic.datasets.DVSGesture.train_url / test_url), then copy DIR/DVSGesture "
    "here so that DIR/DVSGesture/ibmGestureTrain.tar.gz and the extracted "
    "DIR/DVSGesture/ibmGestureTrain/user01_fluorescent/0.npy ... exist (same "
    "for ibmGestureTest; tonic checks that the archive file is present), and "
    "pass data_dir=DIR (--data_dir) or set SNNAX_NAS_DATA_DIR=DIR.")


def _dvs_source(split: str, data_dir: Optional[str],
                n_time_bins: int = DVS_DEFAULT_TIMESTEPS,
                size: Optional[int] = None, split_by: str = "number",
                dtype: Any = np.float32) -> _Source:
  if split not in ("train", "test"):
    raise ValueError(f"dvs128_gesture: split must be 'train' or 'test', "
                     f"got {split!r}")
  root = os.path.expanduser(data_dir or default_data_dir())
  train = split == "train"
  folder = "ibmGestureTrain" if train else "ibmGestureTest"
  loc = pathlib.Path(root) / "DVSGesture"
  archive = loc / f"{folder}.tar.gz"
  n_npy = (len(list((loc / folder).glob("**/*.npy")))
           if (loc / folder).is_dir() else 0)
  if not archive.is_file() or n_npy < 100:
    raise FileNotFoundError(
        f"DVS128 Gesture ({split}) not found under {loc} (archive present: "
        f"{archive.is_file()}, extracted .npy files: {n_npy}). " + _DVS_HELP)
  import tonic  # lazy: ~2 s (imports torch when installed)

  ds = tonic.datasets.DVSGesture(save_to=root, train=train)
  sensor = tuple(int(v) for v in ds.sensor_size)
  target = None if size is None else (int(size), int(size))
  labels = np.asarray(ds.targets, np.int32)

  def getter(idx: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    h, w = (sensor[1], sensor[0]) if target is None else (target[1], target[0])
    out = np.empty((idx.size, int(n_time_bins), h, w, sensor[2]), dtype)
    for k, i in enumerate(idx):
      events, _ = ds[int(i)]
      out[k] = events_to_frames(events, sensor, n_time_bins,
                                split_by=split_by, target_size=target,
                                dtype=dtype)
    return out, labels[idx]

  return _Source(len(ds), getter)


def load_dvs128_gesture(split: str = "train", data_dir: Optional[str] = None,
                        n_time_bins: int = DVS_DEFAULT_TIMESTEPS,
                        size: Optional[int] = None, split_by: str = "number",
                        dtype: Any = np.float32
                        ) -> Tuple[np.ndarray, np.ndarray]:
  """Loads DVS128 Gesture as count frames.

  Reads events with ``tonic.datasets.DVSGesture(save_to=data_dir,
  train=split == "train")`` (tonic's preprocessed release, timestamps in
  microseconds at millisecond precision) and frames each recording with
  :func:`events_to_frames`.

  Args:
    split: ``"train"`` (1,077 recordings) or ``"test"`` (264).
    data_dir: folder holding tonic's ``DVSGesture/``; ``None`` ->
      :func:`default_data_dir`.
    n_time_bins: frames per recording ``T`` (LightSNN: 16).
    size: optional output side length (e.g. 32 or 64): spatial sum-pooling
      of the 128x128 sensor (see ``target_size`` of :func:`events_to_frames`).
    split_by: ``"number"`` (SpikingJelly/LightSNN) or ``"time"`` (tonic
      ``ToFrame(n_time_bins=T)``).
    dtype: frame dtype. Memory: train at 128x128, T=16, float32 is ~2.3 GB.

  Returns:
    ``(frames dtype [N, T, H, W, 2], labels int32 [N])``, 11 classes.

  Raises:
    FileNotFoundError: data missing (message says where to put it).
  """
  return load_arrays("dvs128_gesture", split, data_dir,
                     n_time_bins=n_time_bins, size=size, split_by=split_by,
                     dtype=dtype)


# --------------------------------------------------------------------------
# Normalisation and augmentation
# --------------------------------------------------------------------------


def _is_jax(x: Any) -> bool:
  return type(x).__module__.split(".")[0] in ("jax", "jaxlib")


def normalize(images: Any, info: DatasetInfo) -> Any:
  """Per-channel normalisation ``(x / 255 - mean) / std``.

  Args:
    images: ``uint8`` (or float in ``[0, 255]``) ``[..., H, W, C]``; a NumPy
      or a JAX array (a JAX array gives a JAX result, usable under ``jit``).
    info: supplies ``mean`` and ``std`` (C floats each, of ``x / 255``).

  Returns:
    ``float32`` array of the same shape. Event data (``info.is_event``) are
    counts, not pixel values: they are only cast to ``float32``.
  """
  if _is_jax(images):
    import jax.numpy as xp  # lazy
  else:
    xp = np
  x = xp.asarray(images).astype(xp.float32)
  if info.is_event:
    return x
  mean = xp.asarray(info.mean, xp.float32)
  std = xp.asarray(info.std, xp.float32)
  return (x * np.float32(1.0 / 255.0) - mean) / std


def crop_and_flip(images: np.ndarray, offset_y: np.ndarray,
                  offset_x: np.ndarray, flip: np.ndarray, pad: int,
                  fill: Any = 0) -> np.ndarray:
  """Deterministic padded crop + horizontal flip, vectorised NumPy.

  Output image ``b`` is the ``H x W`` window at ``(offset_y[b], offset_x[b])``
  of ``images[b]`` padded by ``pad`` pixels of value ``fill`` on each side,
  mirrored left-right where ``flip[b]``. Offsets ``pad`` and no flip give the
  input back.

  Args:
    images: ``[B, H, W, C]``, any dtype.
    offset_y, offset_x: int ``[B]`` in ``[0, 2*pad]``.
    flip: bool ``[B]``.
    pad: padding in pixels.
    fill: padding value, scalar or per-channel ``[C]`` (``0`` = black for raw
      pixels; ``-mean/std`` for already-normalised images).

  Returns:
    ``[B, H, W, C]`` of ``images.dtype``.
  """
  images = np.asarray(images)
  b, h, w, c = images.shape
  oy = np.asarray(offset_y, np.int64).reshape(b, 1)
  ox = np.asarray(offset_x, np.int64).reshape(b, 1)
  fl = np.asarray(flip, bool).reshape(b, 1)
  rows = oy - pad + np.arange(h)  # [B, H] source rows
  j = np.arange(w)
  cols = ox - pad + np.where(fl, w - 1 - j, j)  # [B, W] source columns
  valid = ((rows >= 0) & (rows < h))[:, :, None] & (
      (cols >= 0) & (cols < w))[:, None, :]
  out = images[np.arange(b)[:, None, None], np.clip(rows, 0, h - 1)[:, :, None],
               np.clip(cols, 0, w - 1)[:, None, :]]
  if valid.all():
    return out
  fill_arr = np.broadcast_to(np.asarray(fill, images.dtype), (c,))
  return np.where(valid[..., None], out, fill_arr).astype(images.dtype,
                                                          copy=False)


def augment_batch(rng: np.random.Generator, images: np.ndarray, pad: int = 4,
                  fill: Any = 0) -> np.ndarray:
  """Random crop with ``pad``-pixel padding + random horizontal flip (NumPy).

  The reference recipe: ``RandomCrop(32, padding=4)`` (``padding=8`` for 64x64
  TinyImageNet) then ``RandomHorizontalFlip()``, applied to raw pixels before
  normalisation (so the padding is black: ``fill=0``). Offsets are uniform in
  ``[0, 2*pad]`` per image, flips have probability 1/2. One gather for the
  whole batch, no Python loop.

  Args:
    rng: NumPy generator (advanced by 3 draws of size ``B``).
    images: ``[B, H, W, C]``, any dtype (uint8 pixels or float).
    pad: padding in pixels; ``0`` leaves only the flip.
    fill: padding value, scalar or per-channel (see :func:`crop_and_flip`).

  Returns:
    ``[B, H, W, C]``, same dtype.
  """
  b = len(images)
  oy = rng.integers(0, 2 * pad + 1, size=b)
  ox = rng.integers(0, 2 * pad + 1, size=b)
  flip = rng.random(b) < 0.5
  return crop_and_flip(images, oy, ox, flip, pad, fill)


def crop_and_flip_jax(images: Any, offset_y: Any, offset_x: Any, flip: Any,
                      pad: int, fill: Any = 0) -> Any:
  """JAX twin of :func:`crop_and_flip` (jit/vmap-safe; ``pad`` static).

  Args:
    images: ``[B, H, W, C]`` JAX array.
    offset_y, offset_x: int32 ``[B]`` in ``[0, 2*pad]``.
    flip: bool ``[B]``.
    pad: static padding in pixels.
    fill: scalar or per-channel ``[C]`` padding value.

  Returns:
    ``[B, H, W, C]``, same dtype.
  """
  import jax  # lazy
  import jax.numpy as jnp

  images = jnp.asarray(images)
  b, h, w, c = images.shape
  fill_c = jnp.broadcast_to(jnp.asarray(fill, images.dtype), (c,))
  padded = jnp.broadcast_to(fill_c, (b, h + 2 * pad, w + 2 * pad, c))
  padded = padded.at[:, pad:pad + h, pad:pad + w, :].set(images)

  def one(img, oy, ox):
    return jax.lax.dynamic_slice(img, (oy, ox, 0), (h, w, c))

  crops = jax.vmap(one)(padded, jnp.asarray(offset_y, jnp.int32),
                        jnp.asarray(offset_x, jnp.int32))
  return jnp.where(jnp.asarray(flip, bool)[:, None, None, None],
                   crops[:, :, ::-1, :], crops)


def augment_batch_jax(key: Any, images: Any, pad: int = 4,
                      fill: Any = 0) -> Any:
  """Random padded crop + horizontal flip on device (jit-safe; ``pad`` static).

  Same distribution as :func:`augment_batch`, drawn from ``key``.

  Args:
    key: ``jax.random`` key.
    images: ``[B, H, W, C]`` JAX array (uint8 pixels or float).
    pad: padding in pixels (static).
    fill: scalar or per-channel padding value.

  Returns:
    ``[B, H, W, C]``, same dtype.
  """
  import jax  # lazy

  b = images.shape[0]
  k_y, k_x, k_f = jax.random.split(key, 3)
  oy = jax.random.randint(k_y, (b,), 0, 2 * pad + 1)
  ox = jax.random.randint(k_x, (b,), 0, 2 * pad + 1)
  flip = jax.random.bernoulli(k_f, 0.5, (b,))
  return crop_and_flip_jax(images, oy, ox, flip, pad, fill)


# --------------------------------------------------------------------------
# Score batches
# --------------------------------------------------------------------------


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
    **options: dataset options (``dvs128_gesture``: see
      :func:`load_dvs128_gesture`).

  Returns:
    ``float32 [R, B, H, W, C]`` normalised images, or for event data
    ``float32 [R, B, T, H, W, C]`` count frames (never augmented).
  """
  r, b = int(num_batches), int(batch_size)
  if r < 1 or b < 1:
    raise ValueError("num_batches and batch_size must be >= 1")
  info = get_info(name, data_dir, **options)
  src = _open_source(name, "train", data_dir, **options)
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


# --------------------------------------------------------------------------
# Epoch iterators with per-host sharding
# --------------------------------------------------------------------------


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
    ``local_batch_size`` samples, the leading dim)."""
    order = self.epoch_order(epoch)
    for step in range(int(start_step), self.steps_per_epoch):
      idx = self.local_indices(epoch, step, order)
      yield {"image": self.images[idx], "label": self.labels[idx]}

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
