"""NumPy-archive datasets: ``npz:PATH`` specs and the bundled CIFAR-10 sample.

A spec ``npz:/data/{split}10k.npz`` names one file per split (``{split}`` is
replaced by the split name). A spec without ``{split}`` names ONE file that
every split reads, so evaluating on its "test" split evaluates on the training
data: :func:`has_split_placeholder` tells callers, and opening such a file for
a split other than ``train`` logs a warning.
"""

from __future__ import annotations

import functools
import os
import pathlib
from typing import Tuple
import zipfile

from absl import logging
import numpy as np

from snnax_nas.data.source import Source
from snnax_nas.data.source import array_source

__all__ = ["SAMPLE_PATH", "SAMPLE_TEST_PATH", "SPLIT_PLACEHOLDER", "has_split_placeholder", "npz_source",
           "sample_source"]

SAMPLE_PATH = pathlib.Path(__file__).resolve().parent / "cifar10_sample.npz"
"""The bundled 1,024 CIFAR-10 training images (see ``README.md`` beside it)."""

SAMPLE_TEST_PATH = pathlib.Path(__file__).resolve().parent / "cifar10_sample_test.npz"
"""The bundled 500 CIFAR-10 test images, 50 per class (``README.md`` beside it)."""

SAMPLE_SPLITS = {"train": SAMPLE_PATH, "test": SAMPLE_TEST_PATH}

SPLIT_PLACEHOLDER = "{split}"


def has_split_placeholder(path: str) -> bool:
  """True when an ``npz:`` path names one file per split (contains ``{split}``)."""
  return SPLIT_PLACEHOLDER in path


@functools.lru_cache(maxsize=2)
def _bundled_sample(split: str) -> Tuple[np.ndarray, np.ndarray]:
  with np.load(SAMPLE_SPLITS[split]) as f:
    images, labels = f["image"], f["label"].astype(np.int32)
  images.setflags(write=False)
  labels.setflags(write=False)
  return images, labels


def sample_source(split: str) -> Source:
  """The bundled sample (``cifar10_sample``): uint8 ``[1024, 32, 32, 3]``
  CIFAR-10 training images (``"train"``) or ``[500, 32, 32, 3]`` test images
  (``"test"``), labels int32.

  Raises:
    ValueError: ``split`` is neither ``"train"`` nor ``"test"``.
  """
  if split not in SAMPLE_SPLITS:
    raise ValueError(
        f"cifar10_sample has the splits 'train' (1,024 CIFAR-10 training images) and 'test' "
        f"(500 CIFAR-10 test images), not {split!r}")
  return array_source(*_bundled_sample(split), origin=str(SAMPLE_SPLITS[split]))


_warned_single_file: set = set()


def npz_source(path: str, split: str) -> Source:
  """A NumPy archive with keys ``image`` and ``label``.

  Args:
    path: file name; ``{split}`` in it is replaced by ``split``; ``~`` expands.
    split: split name.

  Returns:
    A :class:`Source` of ``image`` (uint8 ``[N, H, W, C]`` or float frames
    ``[N, T, H, W, C]``) and ``label`` (int32 ``[N]``).

  Raises:
    FileNotFoundError: no such file (the message says how to write one).
    ValueError: missing keys, wrong rank, NaN/inf values, bad labels.
  """
  if not has_split_placeholder(path) and split != "train" and path not in _warned_single_file:
    _warned_single_file.add(path)
    logging.warning(
        "npz:%s has no '{split}' in its path, so split %r reads the same file as 'train': "
        "train and test are the same file and test accuracy measures training data. Write "
        "one file per split and use npz:/dir/{split}.npz.", path, split)
  path = os.path.expanduser(path.replace(SPLIT_PLACEHOLDER, split))
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"npz dataset file {path!r} not found: write it with "
        "np.savez(path, image=uint8 [N,H,W,C] (or float frames), "
        "label=int [N]); a '{split}' in the spec is replaced by the split name")
  try:
    archive = np.load(path)
  except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
    # np.load's own message ("Cannot load file containing pickled data ...",
    # "Failed to interpret file ...") does not always name the file.
    raise ValueError(f"npz dataset file {path!r} is not a readable NumPy .npz archive "
                     f"({type(e).__name__}: {e})") from None
  if not isinstance(archive, np.lib.npyio.NpzFile):
    raise ValueError(f"npz dataset file {path!r} holds a single array, not an .npz archive "
                     "with keys 'image' and 'label' (write it with np.savez)")
  with archive as f:
    missing = {"image", "label"} - set(f.files)
    if missing:
      raise ValueError(f"{path}: missing keys {sorted(missing)} (has {sorted(f.files)})")
    try:
      images, labels = f["image"], f["label"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
      raise ValueError(f"npz dataset file {path!r} is truncated or corrupt "
                       f"({type(e).__name__}: {e})") from None
  if images.ndim not in (4, 5):
    raise ValueError(f"{path}: image must be [N,H,W,C] or [N,T,H,W,C], got shape {images.shape}")
  return array_source(images, labels, origin=path)
