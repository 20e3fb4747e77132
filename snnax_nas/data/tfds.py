"""tfds datasets (``cifar10``, ``cifar100``) read with ``tfds.data_source``.

``tfds.data_source`` gives random access to ArrayRecord files as NumPy records
and needs no TensorFlow (``tfds.load`` would build a ``tf.data`` pipeline and
import it, and this project does not depend on TensorFlow). *Preparing* the
files once (``tfds build ... --file_format array_record``) needs TensorFlow on
the machine that prepares them; reading does not.
"""

from __future__ import annotations

import os
from typing import Optional
from typing import Tuple

import numpy as np

from snnax_nas.data.source import Source

__all__ = ["tfds_data_dir", "tfds_source"]


def tfds_data_dir(data_dir: Optional[str]) -> str:
  """The folder tfds searches: ``data_dir``, else ``$TFDS_DATA_DIR``, else
  ``~/tensorflow_datasets``."""
  return data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"


def _howto(name: str, data_dir: Optional[str]) -> str:
  return (
      f"To get it: on a machine with internet access and TensorFlow (needed "
      f"once to prepare the files, not to read them) run `pip install "
      f"tensorflow tensorflow-datasets && tfds build {name} --data_dir DIR "
      f"--file_format array_record`, copy DIR here and pass data_dir=DIR "
      f"(launchers: --config.data_dir=DIR) or set TFDS_DATA_DIR=DIR. A copy prepared in the "
      f"default TFRecord format cannot be read without TensorFlow: rebuild it "
      f"with --file_format array_record. (searched: "
      f"{tfds_data_dir(data_dir)})")


def tfds_source(name: str, split: str, data_dir: Optional[str],
                image_shape: Tuple[int, int, int]) -> Source:
  """Random access to a prepared tfds image dataset.

  Args:
    name: tfds name (``"cifar10"``).
    split: tfds split string; slicing such as ``"train[:90%]"`` works.
    data_dir: tfds data dir; ``None`` -> tfds' default (see :func:`tfds_data_dir`).
    image_shape: ``(H, W, C)``, the shape of an empty read.

  Returns:
    Samples uint8 ``[H, W, C]`` with int32 labels.

  Raises:
    FileNotFoundError: not prepared as ArrayRecord (the message says how).
    ValueError: prepared, but the split cannot be opened.
  """
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
          f"tfds dataset {name!r} is prepared in {tfds_data_dir(data_dir)} "
          f"but split {split!r} cannot be opened as a random-access "
          f"(ArrayRecord) source: {detail}. " + _howto(name, data_dir)) from e
    raise FileNotFoundError(
        f"tfds dataset {name!r} (split {split!r}) not found as ArrayRecord "
        f"files: {detail}. " + _howto(name, data_dir)) from e

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
      return np.zeros((0,) + tuple(image_shape), np.uint8), np.zeros((0,), np.int32)
    images = np.stack([np.asarray(r["image"], np.uint8) for r in records])
    labels = np.asarray([int(r["label"]) for r in records], np.int32)
    return images, labels

  return Source(len(ds), getter)
