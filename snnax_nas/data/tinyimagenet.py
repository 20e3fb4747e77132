"""Tiny ImageNet (``tinyimagenet``): the standard ``tiny-imagenet-200`` folder.

Layout: ``train/<wnid>/images/*.JPEG`` and either ``val/images`` with
``val/val_annotations.txt`` or ``val/<wnid>/...``; 200 classes, 64x64 RGB,
class indices follow the sorted wnids of ``train/``. The test split has no
labels and is not read.
"""

from __future__ import annotations

import os
import pathlib
from typing import Optional

from snnax_nas.data.folders import file_source
from snnax_nas.data.folders import list_images
from snnax_nas.data.source import Source
from snnax_nas.data.source import default_data_dir

__all__ = ["tinyimagenet_source"]

_HELP = (
    "Get Tiny ImageNet (tiny-imagenet-200.zip, the Stanford CS231n release) "
    "and unzip it so that DATA_DIR/tiny-imagenet-200/train/<wnid>/images/"
    "*.JPEG and DATA_DIR/tiny-imagenet-200/val/images/*.JPEG with "
    "val/val_annotations.txt exist (a val/<wnid>/... class-folder layout also "
    "works); then pass data_dir=DATA_DIR (launchers: --config.data_dir=DATA_DIR) or set "
    "SNNAX_NAS_DATA_DIR. Any other 64x64 tree PATH/<split>/<label>/*.jpg can "
    "be read as 'folder:PATH'.")


def _root(data_dir: Optional[str]) -> pathlib.Path:
  base = pathlib.Path(os.path.expanduser(data_dir or default_data_dir()))
  for cand in (base / "tiny-imagenet-200", base):
    if (cand / "train").is_dir():
      return cand
  raise FileNotFoundError(
      f"Tiny ImageNet not found under {base} (no tiny-imagenet-200/train). " + _HELP)


def tinyimagenet_source(split: str, data_dir: Optional[str]) -> Source:
  """Tiny ImageNet ``train`` or ``val`` as uint8 ``[64, 64, 3]`` RGB samples.

  Args:
    split: ``"train"``, ``"val"`` or ``"validation"``.
    data_dir: the folder holding ``tiny-imagenet-200`` (or that folder itself);
      ``None`` -> :func:`default_data_dir`.

  Raises:
    ValueError: another split.
    FileNotFoundError: the data is missing (the message says how to get it).
  """
  if split not in ("train", "val", "validation"):
    raise ValueError(
        f"tinyimagenet: split must be 'train' or 'val' (the test split has no "
        f"labels), got {split!r}")
  root = _root(data_dir)
  classes = sorted(d.name for d in (root / "train").iterdir() if d.is_dir())
  index = {c: i for i, c in enumerate(classes)}
  paths, labels = [], []
  if split == "train":
    for c in classes:
      files = list_images(root / "train" / c)
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
          files = list_images(val / c)
          paths += files
          labels += [index[c]] * len(files)
  if not paths:
    raise FileNotFoundError(f"Tiny ImageNet {split}: no images under {root}. " + _HELP)
  return file_source(paths, labels, channels=3)
