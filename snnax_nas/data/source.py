"""Random access to ``(image, label)`` samples by index, and the checks every
loaded array passes before it reaches a network.

Each dataset format (:mod:`.tfds`, :mod:`.folders`, :mod:`.npz`,
:mod:`.tinyimagenet`, :mod:`.dvs`) opens a :class:`Source`; only the samples
asked for are read or decoded.
"""

from __future__ import annotations

import os
from typing import Any
from typing import Callable
from typing import Tuple

import numpy as np

__all__ = ["Source", "array_source", "check_finite", "check_images", "check_labels",
           "default_data_dir", "is_jax_array"]

_INT32_MAX = int(np.iinfo(np.int32).max)


def default_data_dir() -> str:
  """Root folder of the non-tfds datasets: ``$SNNAX_NAS_DATA_DIR`` or
  ``~/snnax_nas_data`` (expanded)."""
  return os.path.expanduser(os.environ.get("SNNAX_NAS_DATA_DIR", "~/snnax_nas_data"))


class Source:
  """Random-access dataset: ``len(src)`` samples, ``src.get(indices)`` reads some.

  Args:
    n: number of samples ``N``.
    getter: maps int64 indices ``[K]`` (each in ``[0, N)``) to ``(images [K, ...],
      labels int32 [K])``.
  """

  def __init__(self, n: int, getter: Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]):
    self._n = int(n)
    self._getter = getter

  def __len__(self) -> int:
    return self._n

  def get(self, indices: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``(images [K, ...], labels int32 [K])`` of the int ``indices [K]``.

    Raises:
      IndexError: an index outside ``[0, N)``.
    """
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= self._n):
      raise IndexError(f"indices out of range [0, {self._n})")
    return self._getter(indices)


def is_jax_array(x: Any) -> bool:
  """True for a JAX array (or tracer): callers then compute with ``jax.numpy``."""
  return type(x).__module__.split(".")[0] in ("jax", "jaxlib")


def check_finite(array: np.ndarray, origin: str) -> None:
  """Rejects NaN and inf values (a float array only; integer arrays pass).

  Args:
    array: any shape.
    origin: what the array is, for the message (``"/data/train.npz 'image'"``).

  Raises:
    ValueError: naming ``origin``, how many values are not finite and the index
      of the first one.
  """
  array = np.asarray(array)
  if not np.issubdtype(array.dtype, np.inexact):
    return
  bad = ~np.isfinite(array)
  if not bad.any():
    return
  first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), array.shape))
  raise ValueError(
      f"{origin}: {int(bad.sum())} non-finite values (NaN or inf) of {array.size}, the first "
      f"at index {first}; replace or drop those samples (e.g. np.nan_to_num, or keep "
      f"np.isfinite(x).all(axis=(1, 2, 3))) before writing the file")


def check_labels(labels: np.ndarray, origin: str) -> np.ndarray:
  """Labels as ``int32 [N]``, after checking they are class indices.

  A float label array is accepted when every value is a whole number (a cast
  would otherwise silently round ``2.7`` to ``2`` or turn NaN into garbage).

  Args:
    labels: ``[N]`` integer (or whole-valued float) class indices.
    origin: what the array is, for the message.

  Returns:
    ``int32 [N]``.

  Raises:
    ValueError: not one-dimensional, not finite, not whole numbers or negative.
  """
  labels = np.asarray(labels)
  if labels.ndim != 1:
    raise ValueError(f"{origin}: labels must be [N], got shape {labels.shape}")
  if np.issubdtype(labels.dtype, np.inexact):
    check_finite(labels, origin)
    fractional = labels != np.round(labels)
    if fractional.any():
      i = int(np.argmax(fractional))
      raise ValueError(f"{origin}: label {labels[i]!r} at index {i} is not a whole number; "
                       "labels must be class indices 0 .. num_classes - 1")
  elif not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
    raise ValueError(f"{origin}: labels must be integers, got dtype {labels.dtype}")
  if labels.size and labels.min() < 0:
    i = int(np.argmin(labels))
    raise ValueError(f"{origin}: label {labels[i]} at index {i} is negative; labels must be "
                     "class indices 0 .. num_classes - 1")
  if labels.size and labels.max() > _INT32_MAX:
    # The int32 cast below would wrap 2**32 + 3 to 3: a silently wrong class.
    i = int(np.argmax(labels))
    raise ValueError(f"{origin}: label {labels[i]} at index {i} is larger than any class index "
                     f"can be (int32 max {_INT32_MAX}); labels must be class indices "
                     "0 .. num_classes - 1")
  return labels.astype(np.int32)


def check_images(images: np.ndarray, origin: str) -> np.ndarray:
  """Static images as ``uint8`` (or float in ``[0, 255]``), after checking
  their value range matches what :func:`snnax_nas.data.normalize` assumes.

  ``normalize`` divides by 255, so an image array must hold pixel values in
  ``[0, 255]``. Integer arrays whose values all lie in ``[0, 255]`` (int64,
  uint16 copies of uint8 data) are converted to ``uint8`` losslessly; any
  other integer range (16-bit sensors, say) and float arrays that look scaled
  to ``[0, 1]`` or already normalised (negative values) are refused, since
  dividing them by 255 silently gives a near-constant input (and a network
  that never fires). Event frames (rank 5, counts) are not checked here.

  Args:
    images: ``[N, H, W, C]``.
    origin: what the array is, for the message.

  Returns:
    ``images`` (``uint8`` or float, unchanged) or its lossless ``uint8`` copy.

  Raises:
    ValueError: naming ``origin``, the dtype and the value range found.
  """
  images = np.asarray(images)
  if images.dtype == np.uint8 or images.size == 0:
    return images
  lo, hi = images.min(), images.max()
  if images.dtype == bool or not (np.issubdtype(images.dtype, np.integer)
                                  or np.issubdtype(images.dtype, np.floating)):
    raise ValueError(f"{origin}: images must be uint8 pixel values in [0, 255], got dtype "
                     f"{images.dtype}")
  if np.issubdtype(images.dtype, np.integer):
    if lo >= 0 and hi <= 255:
      return images.astype(np.uint8)
    raise ValueError(
        f"{origin}: {images.dtype} images hold values {lo} .. {hi}, outside the uint8 pixel "
        "range [0, 255] that normalisation (x / 255) assumes; rescale them to uint8 first")
  if lo < 0 or hi > 255:
    raise ValueError(
        f"{origin}: {images.dtype} images hold values {lo:g} .. {hi:g}; static images must be "
        "pixel values in [0, 255] (uint8 preferred): negative values look already "
        "normalised, so store the raw pixels")
  if hi <= 1.0:
    raise ValueError(
        f"{origin}: {images.dtype} images hold values {lo:g} .. {hi:g}, which looks scaled to "
        "[0, 1]; normalisation divides by 255, so store uint8 pixels (np.round(x * 255)"
        ".astype(np.uint8))")
  return images


def array_source(images: np.ndarray, labels: np.ndarray, origin: str) -> Source:
  """A :class:`Source` over in-memory arrays, checked once.

  Args:
    images: ``[N, ...]``; a float array must be finite.
    labels: ``[N]`` class indices (see :func:`check_labels`).
    origin: where the arrays come from (a file name), for error messages.

  Raises:
    ValueError: no samples, lengths differ, non-finite images, static images
      outside the pixel range (:func:`check_images`), bad labels.
  """
  if len(images) == 0 and len(labels) == 0:
    raise ValueError(f"{origin}: the dataset is empty (0 images, 0 labels)")
  labels = check_labels(labels, f"{origin} 'label'")
  if len(images) != len(labels):
    raise ValueError(f"{origin}: {len(images)} images but {len(labels)} labels")
  check_finite(images, f"{origin} 'image'")
  if np.ndim(images) == 4:
    images = check_images(images, f"{origin} 'image'")
  return Source(len(images), lambda idx: (images[idx], labels[idx]))
