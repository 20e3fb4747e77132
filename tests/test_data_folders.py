"""Tests of snnax_nas.data.folders and snnax_nas.data.tinyimagenet: image trees
decoded with PIL, and corrupt or truncated files reported by name."""

from __future__ import annotations

import numpy as np
import pytest

from snnax_nas import data


def _write_png_tree(root, splits=("train", "test"), classes=("cat", "dog"),
                    per_class=3, size=(8, 6)):
  """Writes root/<split>/<class>/<i>.png RGB images of (W, H) = size."""
  from PIL import Image
  rng = np.random.default_rng(0)
  expected = {}
  for split in splits:
    imgs, labels = [], []
    for ci, c in enumerate(classes):
      d = root / split / c
      d.mkdir(parents=True)
      for i in range(per_class):
        arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(arr).save(d / f"{i:03d}.png")
        imgs.append(arr)
        labels.append(ci)
    expected[split] = (np.stack(imgs), np.asarray(labels))
  return expected


def test_folder_loader(tmp_path):
  expected = _write_png_tree(tmp_path / "tree")
  spec = f"folder:{tmp_path / 'tree'}"
  for split in ("train", "test"):
    x, y = data.load_arrays(spec, split)
    assert x.shape == (6, 6, 8, 3) and x.dtype == np.uint8  # H=6, W=8
    np.testing.assert_array_equal(x, expected[split][0])
    np.testing.assert_array_equal(y, expected[split][1])
    assert y.dtype == np.int32
  info = data.get_info(spec)
  assert info.num_classes == 2 and info.image_shape == (6, 8, 3)
  out = data.score_batches(spec, 2, 2, seed=3)
  assert out.shape == (2, 2, 6, 8, 3) and out.dtype == np.float32
  with pytest.raises(FileNotFoundError, match="<split>/<label>"):
    data.load_arrays(spec, "val")


def _truncate(path):
  raw = path.read_bytes()
  path.write_bytes(raw[:len(raw) // 2])


@pytest.mark.parametrize("damage", ["garbage", "truncated_png", "truncated_jpeg"])
@pytest.mark.parametrize("which", ["first", "later"])
def test_folder_corrupt_image(tmp_path, damage, which):
  from PIL import Image
  _write_png_tree(tmp_path / "tree")
  # The first file is also opened to probe the colour mode; a later one only on decode.
  bad = tmp_path / "tree" / "train" / ("cat/000.png" if which == "first" else "dog/002.png")
  if damage == "garbage":
    bad.write_bytes(b"this is not an image")
  elif damage == "truncated_png":
    _truncate(bad)
  else:
    bad.unlink()
    bad = bad.with_suffix(".jpg")
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).save(bad, quality=95)
    _truncate(bad)
  with pytest.raises(ValueError) as err:
    data.load_arrays(f"folder:{tmp_path / 'tree'}", "train")
  msg = str(err.value)
  assert str(bad) in msg and "corrupt or truncated" in msg
  with pytest.raises(ValueError, match="corrupt or truncated"):
    data.score_batches(f"folder:{tmp_path / 'tree'}", 1, 6, seed=0)


def test_folder_sizes_differ(tmp_path):
  from PIL import Image
  _write_png_tree(tmp_path / "tree")
  odd = tmp_path / "tree" / "train" / "dog" / "001.png"
  Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(odd)
  with pytest.raises(ValueError, match="same size") as err:
    data.load_arrays(f"folder:{tmp_path / 'tree'}", "train")
  assert str(odd) in str(err.value)


def test_tinyimagenet_layout(tmp_path):
  from PIL import Image
  root = tmp_path / "tiny-imagenet-200"
  wnids = ["n02", "n01"]  # class index follows sorted order: n01 -> 0
  for w in wnids:
    d = root / "train" / w / "images"
    d.mkdir(parents=True)
    for i in range(2):
      Image.fromarray(np.full((64, 64, 3), 10 * i, np.uint8)).save(
          d / f"{w}_{i}.JPEG")
  (root / "val" / "images").mkdir(parents=True)
  Image.fromarray(np.zeros((64, 64), np.uint8)).save(  # grayscale -> RGB
      root / "val" / "images" / "val_0.JPEG")
  Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(
      root / "val" / "images" / "val_1.JPEG")
  (root / "val" / "val_annotations.txt").write_text(
      "val_0.JPEG\tn02\t0\t0\t10\t10\nval_1.JPEG\tn01\t0\t0\t10\t10\n")
  x, y = data.load_arrays("tinyimagenet", "train", data_dir=str(tmp_path))
  assert x.shape == (4, 64, 64, 3) and y.tolist() == [0, 0, 1, 1]
  xv, yv = data.load_arrays("tinyimagenet", "val", data_dir=str(tmp_path))
  assert xv.shape == (2, 64, 64, 3) and yv.tolist() == [1, 0]
  with pytest.raises(ValueError, match="test"):
    data.load_arrays("tinyimagenet", "test", data_dir=str(tmp_path))
  # A truncated file is named here too (same decoder).
  bad = root / "val" / "images" / "val_1.JPEG"
  _truncate(bad)
  with pytest.raises(ValueError, match="corrupt or truncated") as err:
    data.load_arrays("tinyimagenet", "val", data_dir=str(tmp_path))
  assert str(bad) in str(err.value)


def test_tinyimagenet_missing(tmp_path):
  with pytest.raises(FileNotFoundError) as err:
    data.load_arrays("tinyimagenet", "train", data_dir=str(tmp_path))
  assert "tiny-imagenet-200" in str(err.value)
  assert "data_dir" in str(err.value)
