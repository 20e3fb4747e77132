"""Image-folder datasets (``folder:PATH``): ``PATH/<split>/<label>/**/*.png|jpg``
decoded with PIL, plus the decoding shared with :mod:`.tinyimagenet`.

``tfds.folder_dataset.ImageFolder`` is not used: in tensorflow-datasets 4.9.10
it lists folders with ``tf.io.gfile`` and fails without TensorFlow. Every image
is fully decoded (``Image.load``), so a corrupt or truncated file is reported by
name instead of surfacing as a PIL traceback or a half-grey image.
"""

from __future__ import annotations

import os
import pathlib
from typing import List
from typing import Optional
from typing import Sequence
from typing import Tuple

import numpy as np

from snnax_nas.data.source import Source

__all__ = ["IMAGE_EXTENSIONS", "decode_image", "file_source", "folder_source", "list_images"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

# PIL signals an unreadable file with UnidentifiedImageError (an OSError), a
# truncated one with OSError("image file is truncated") or SyntaxError (broken
# PNG chunks), a corrupt stream with ValueError/EOFError.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)


def _bad_image(path: str, error: BaseException) -> ValueError:
  return ValueError(
      f"cannot decode image {path} ({type(error).__name__}: {error}); the file is corrupt or "
      "truncated: replace it or delete it from the dataset folder")


def decode_image(path: str, channels: int) -> np.ndarray:
  """One image file as uint8 ``[H, W, channels]`` (RGB for 3, grey for 1).

  Raises:
    ValueError: the file is not a readable image or is truncated (names ``path``).
  """
  from PIL import Image  # lazy

  try:
    with Image.open(path) as im:
      im.load()  # decode every byte now: a truncated file fails here, not later
      arr = np.asarray(im.convert("RGB" if channels == 3 else "L"), dtype=np.uint8)
  except _DECODE_ERRORS as e:
    raise _bad_image(path, e) from None
  return arr if arr.ndim == 3 else arr[..., None]


def _channels_of(path: str) -> int:
  from PIL import Image  # lazy

  try:
    with Image.open(path) as im:
      return 1 if im.mode in ("L", "1", "I", "I;16", "F") else 3
  except _DECODE_ERRORS as e:
    raise _bad_image(path, e) from None


def file_source(paths: Sequence[str], labels: Sequence[int],
                channels: Optional[int] = None) -> Source:
  """A :class:`Source` that decodes ``paths[i]`` on demand.

  Args:
    paths: image files, all the same size.
    labels: int ``[N]``, one per path.
    channels: 3 (RGB) or 1 (grey); ``None`` follows the mode of the first file.

  Returns:
    Samples uint8 ``[H, W, channels]`` with int32 labels.
  """
  paths = list(paths)
  labels_arr = np.asarray(labels, dtype=np.int32)
  if channels is None and paths:
    channels = _channels_of(paths[0])

  def getter(idx: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    if idx.size == 0:
      return np.zeros((0, 0, 0, channels or 3), np.uint8), labels_arr[idx]
    first = decode_image(paths[idx[0]], channels)
    out = np.empty((idx.size,) + first.shape, np.uint8)
    out[0] = first
    for k, i in enumerate(idx[1:], start=1):
      img = decode_image(paths[i], channels)
      if img.shape != first.shape:
        raise ValueError(f"{paths[i]} has shape {img.shape}, expected {first.shape} (all "
                         "images must be the same size: resize them first)")
      out[k] = img
    return out, labels_arr[idx]

  return Source(len(paths), getter)


def list_images(folder: pathlib.Path) -> List[str]:
  """Sorted paths of the ``.png``/``.jpg``/``.jpeg`` files under ``folder`` (recursive)."""
  return sorted(str(p) for p in folder.rglob("*")
                if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def _layout_help(root: str) -> str:
  return (f"expected an image tree {root}/<split>/<label>/**/*.png|jpg|jpeg, "
          "e.g. train/cat/0001.png; class indices follow the sorted label "
          "folder names of train/")


def folder_source(root: str, split: str) -> Source:
  """The split ``split`` of the image tree ``root/<split>/<label>/**/*``.

  Class indices follow the sorted label-folder names of ``root/train`` (or of
  ``root/<split>`` when there is no ``train`` folder).

  Raises:
    FileNotFoundError: no split folder, no label folders or no images.
    ValueError: a label folder of ``split`` that ``train`` does not have.
  """
  root_p = pathlib.Path(os.path.expanduser(root))
  split_dir = root_p / split
  if not split_dir.is_dir():
    raise FileNotFoundError(f"folder dataset: {split_dir} not found; " + _layout_help(str(root_p)))
  class_root = root_p / "train" if (root_p / "train").is_dir() else split_dir
  classes = sorted(d.name for d in class_root.iterdir() if d.is_dir())
  if not classes:
    raise FileNotFoundError(f"folder dataset: no label folders in {class_root}; "
                            + _layout_help(str(root_p)))
  paths, labels = [], []
  for label_dir in sorted(d for d in split_dir.iterdir() if d.is_dir()):
    if label_dir.name not in classes:
      raise ValueError(f"{label_dir}: label {label_dir.name!r} is not a class of {class_root}")
    files = list_images(label_dir)
    paths += files
    labels += [classes.index(label_dir.name)] * len(files)
  if not paths:
    raise FileNotFoundError(f"folder dataset: no images under {split_dir}; "
                            + _layout_help(str(root_p)))
  return file_source(paths, labels)
