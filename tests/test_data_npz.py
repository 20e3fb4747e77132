"""Tests of snnax_nas.data.npz and snnax_nas.data.source: the bundled sample
(provenance by checksum), ``npz:`` specs, and the refusal of NaN/inf pixels,
bad labels and single-file train/test specs."""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import pytest

from snnax_nas import data

# sha256 of the bundled sample's raw arrays (``image`` uint8 [1024, 32, 32, 3]
# and ``label`` uint8 [1024], C order). They equal the checksums of the first
# 1,024 images and labels of the project's CIFAR-10 train10k.npz (a seed-0
# subset of the CIFAR-10 training split), checked when the sample was made.
SAMPLE_IMAGE_SHA256 = "a052620b5e3849f9ba52471ee1e6d1c426582f423eb03ef66fa14ccef1a290db"
SAMPLE_LABEL_SHA256 = "ac4b58209dd148cd1a4551e3a62d8e692001efad1ce9dbbe72bbf39fad707c4c"
# The test split: the first 50 images of each class of the shuffled CIFAR-10
# test split (snnax_nas/data/README.md).
SAMPLE_TEST_IMAGE_SHA256 = "048db30e3da4befdda6a19cca5d565aab1de4333a473431a27f9bbaa62d8b18d"
SAMPLE_TEST_LABEL_SHA256 = "a0e661bed094d65d0ea5c2f949021b50b935d6fd9fcbd1cf25c52fb73643a366"
# Per-class counts stated in snnax_nas/data/README.md.
SAMPLE_CLASS_COUNTS = [97, 104, 103, 107, 102, 133, 90, 86, 107, 95]


def test_bundled_sample():
  assert data.SAMPLE_PATH.stat().st_size <= 4 * 2**20
  images, labels = data.load_arrays("cifar10_sample", "train")
  assert images.shape == (1024, 32, 32, 3) and images.dtype == np.uint8
  assert labels.shape == (1024,) and labels.dtype == np.int32
  assert labels.min() == 0 and labels.max() == 9
  assert len(np.unique(labels)) == 10
  assert 60 < images.mean() < 200  # real images, not blank
  assert np.bincount(labels).tolist() == SAMPLE_CLASS_COUNTS
  with pytest.raises(ValueError, match="'train'.*'test'.*not 'val'"):
    data.load_arrays("cifar10_sample", "val")


def test_bundled_sample_test_split():
  assert data.SAMPLE_TEST_PATH.stat().st_size <= 2 * 2**20
  images, labels = data.load_arrays("cifar10_sample", "test")
  assert images.shape == (500, 32, 32, 3) and images.dtype == np.uint8
  assert labels.dtype == np.int32 and np.bincount(labels).tolist() == [50] * 10
  assert 60 < images.mean() < 200
  with np.load(data.SAMPLE_TEST_PATH) as f:
    image, label = f["image"], f["label"]
  assert hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest() == \
      SAMPLE_TEST_IMAGE_SHA256
  assert hashlib.sha256(np.ascontiguousarray(label).tobytes()).hexdigest() == \
      SAMPLE_TEST_LABEL_SHA256
  # No test image is a training image of the sample (a search scores those).
  train, _ = data.load_arrays("cifar10_sample", "train")
  train_keys = {bytes(x) for x in train.reshape(len(train), -1)}
  assert not train_keys & {bytes(x) for x in images.reshape(len(images), -1)}


def test_bundled_sample_provenance():
  with np.load(data.SAMPLE_PATH) as f:
    image, label = f["image"], f["label"]
  assert image.dtype == np.uint8 and label.dtype == np.uint8
  assert hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest() == SAMPLE_IMAGE_SHA256
  assert hashlib.sha256(np.ascontiguousarray(label).tobytes()).hexdigest() == SAMPLE_LABEL_SHA256


def test_npz_loader(tmp_path):
  rng = np.random.default_rng(0)
  for split, n in (("train", 6), ("test", 4)):
    np.savez(tmp_path / f"{split}.npz",
             image=rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8),
             label=np.arange(n) % 3)
  spec = f"npz:{tmp_path}/{{split}}.npz"
  x, y = data.load_arrays(spec, "train")
  assert x.shape == (6, 8, 8, 3) and x.dtype == np.uint8
  assert y.dtype == np.int32 and y.tolist() == [0, 1, 2, 0, 1, 2]
  assert data.load_arrays(spec, "test")[0].shape == (4, 8, 8, 3)
  info = data.get_info(spec)
  assert info.image_shape == (8, 8, 3) and info.num_classes == 3
  np.testing.assert_allclose(info.mean, (x / 255.0).reshape(-1, 3).mean(0),
                             rtol=1e-6)
  np.testing.assert_allclose(info.std, (x / 255.0).reshape(-1, 3).std(0),
                             rtol=1e-5)
  with pytest.raises(FileNotFoundError, match="savez"):
    data.load_arrays(f"npz:{tmp_path}/nope.npz", "train")
  np.savez(tmp_path / "bad.npz", x=np.zeros(3))
  with pytest.raises(ValueError, match="missing keys"):
    data.load_arrays(f"npz:{tmp_path}/bad.npz", "train")
  np.savez(tmp_path / "rank.npz", image=np.zeros((2, 8, 8), np.uint8), label=np.zeros(2))
  with pytest.raises(ValueError, match=r"\[N,H,W,C\]"):
    data.load_arrays(f"npz:{tmp_path}/rank.npz", "train")
  np.savez(tmp_path / "len.npz", image=np.zeros((3, 2, 2, 1), np.uint8), label=np.zeros(2))
  with pytest.raises(ValueError, match="3 images but 2 labels"):
    data.load_arrays(f"npz:{tmp_path}/len.npz", "train")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_npz_non_finite_pixels(tmp_path, bad):
  frames = np.ones((3, 2, 4, 4, 2), np.float32)
  frames[1, 0, 2, 3, 1] = bad
  frames[2, 1, 0, 0, 0] = bad
  path = tmp_path / "frames.npz"
  np.savez(path, image=frames, label=np.array([0, 1, 0]))
  with pytest.raises(ValueError) as err:
    data.load_arrays(f"npz:{path}", "train")
  msg = str(err.value)
  assert str(path) in msg and "2 non-finite" in msg
  assert "(1, 0, 2, 3, 1)" in msg  # the first bad value
  with pytest.raises(ValueError, match="non-finite"):  # score batches load the same way
    data.score_batches(f"npz:{path}", 1, 2, seed=0)


@pytest.mark.parametrize("labels,match", [
    (np.array([0.0, np.nan, 1.0]), "1 non-finite"),
    (np.array([0.0, 1.5, 1.0]), "not a whole number"),
    (np.array([0, -1, 1]), "negative"),
    (np.array([[0], [1], [1]]), "labels must be"),
])
def test_npz_bad_labels(tmp_path, labels, match):
  path = tmp_path / "lab.npz"
  np.savez(path, image=np.zeros((3, 2, 2, 1), np.uint8), label=labels)
  with pytest.raises(ValueError, match=match) as err:
    data.load_arrays(f"npz:{path}", "train")
  assert str(path) in str(err.value)


def test_whole_float_labels_accepted(tmp_path):
  path = tmp_path / "lab.npz"
  np.savez(path, image=np.zeros((3, 2, 2, 1), np.uint8), label=np.array([0.0, 2.0, 1.0]))
  _, y = data.load_arrays(f"npz:{path}", "train")
  assert y.dtype == np.int32 and y.tolist() == [0, 2, 1]


def test_single_file_spec_warns(tmp_path, caplog):
  path = tmp_path / "one.npz"
  np.savez(path, image=np.zeros((2, 2, 2, 1), np.uint8), label=np.array([0, 1]))
  spec = f"npz:{path}"
  assert not data.has_separate_splits(spec)
  with caplog.at_level(logging.WARNING):
    data.load_arrays(spec, "train")
    assert "same file" not in caplog.text  # reading train is fine
    x, _ = data.load_arrays(spec, "test")  # still returns the one file ...
  assert len(x) == 2
  assert "train and test are the same file" in caplog.text  # ... but says so
  assert str(path) in caplog.text


def _write(path, image, label):
  np.savez(path, image=image, label=label)
  return f"npz:{path}"


def test_empty_dataset_named(tmp_path):
  spec = _write(tmp_path / "e.npz", np.zeros((0, 8, 8, 3), np.uint8), np.zeros((0,), np.int64))
  with pytest.raises(ValueError, match="the dataset is empty"):
    data.load_arrays(spec, "train")


def test_labels_beyond_int32_refused(tmp_path):
  label = np.array([0, 2**32 + 3], np.int64)  # an int32 cast would read class 3
  spec = _write(tmp_path / "l.npz", np.zeros((2, 8, 8, 3), np.uint8), label)
  with pytest.raises(ValueError, match=r"label 4294967299 at index 1"):
    data.load_arrays(spec, "train")


def test_integer_images_in_pixel_range_become_uint8(tmp_path):
  image = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3)).astype(np.int64)
  spec = _write(tmp_path / "i.npz", image, np.arange(3))
  images, _ = data.load_arrays(spec, "train")
  assert images.dtype == np.uint8
  np.testing.assert_array_equal(images, image)


@pytest.mark.parametrize("image, words", [
    (np.full((2, 4, 4, 3), 4000, np.uint16), r"uint16 images hold values 4000 \.\. 4000"),
    (np.full((2, 4, 4, 3), 0.5, np.float32), r"looks scaled to \[0, 1\]"),
    (np.full((2, 4, 4, 3), -1.2, np.float32), "already normalised"),
    (np.zeros((2, 4, 4, 3), bool), "dtype bool"),
])
def test_images_outside_pixel_range_refused(tmp_path, image, words):
  spec = _write(tmp_path / "p.npz", image, np.arange(2))
  with pytest.raises(ValueError, match=words):
    data.load_arrays(spec, "train")


def test_float_pixels_in_0_255_accepted(tmp_path):
  image = np.linspace(0, 255, 2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
  spec = _write(tmp_path / "f.npz", image, np.arange(2))
  np.testing.assert_array_equal(data.load_arrays(spec, "train")[0], image)


def test_not_an_npz_file_named(tmp_path):
  (tmp_path / "text.npz").write_text("not an archive")
  with pytest.raises(ValueError, match=r"text\.npz.*not a readable NumPy \.npz"):
    data.load_arrays(f"npz:{tmp_path / 'text.npz'}", "train")
  np.save(tmp_path / "one.npy", np.zeros(3))
  with pytest.raises(ValueError, match=r"one\.npy.*single array"):
    data.load_arrays(f"npz:{tmp_path / 'one.npy'}", "train")


def test_split_of_another_shape_refused_when_opened(tmp_path):
  _write(tmp_path / "train.npz", np.zeros((2, 32, 32, 3), np.uint8), np.arange(2))
  _write(tmp_path / "test.npz", np.zeros((2, 64, 64, 3), np.uint8), np.arange(2))
  spec = f"npz:{tmp_path}/{{split}}.npz"
  with pytest.raises(ValueError, match=r"split 'test' holds samples of shape \(64, 64, 3\) but "
                     r"split 'train' holds \(32, 32, 3\)"):
    data.load_arrays(spec, "test")


def test_inferred_class_count_with_gaps_warned(tmp_path, caplog):
  spec = _write(tmp_path / "c.npz", np.zeros((3, 8, 8, 3), np.uint8), np.array([0, 1, 11]))
  with caplog.at_level(logging.WARNING):
    assert data.get_info(spec).num_classes == 12
  assert "12 classes inferred" in caplog.text and "[2, 3, 4" in caplog.text
