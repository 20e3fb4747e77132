"""Tests of snnax_nas.data: loaders, errors, augmentation, score batches,
DVS framing and per-host epoch sharding. Offline: tfds via mock_data, local
formats on tiny generated data."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from snnax_nas import data

SHARED_TRAIN = os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                            "datasets", "cifar10", "train10k.npz")


# ------------------------------------------------------------------ helpers


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


def _events(n, w=16, h=12, t_max=1_000_000, seed=0):
  rng = np.random.default_rng(seed)
  dt = np.dtype([("x", np.int16), ("y", np.int16), ("p", bool),
                 ("t", np.int64)])
  ev = np.zeros(n, dt)
  ev["x"] = rng.integers(0, w, n)
  ev["y"] = rng.integers(0, h, n)
  ev["p"] = rng.integers(0, 2, n).astype(bool)
  ev["t"] = np.sort(rng.integers(0, t_max, n))
  return ev


# ------------------------------------------------------------------ import


def test_import_is_lazy():
  code = ("import sys, snnax_nas.data; "
          "print(any(m.split('.')[0] in ('tensorflow_datasets', 'tonic', "
          "'jax', 'tensorflow', 'torch') for m in sys.modules))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, check=True,
                       cwd=os.path.join(os.path.dirname(__file__), ".."))
  assert out.stdout.strip() == "False"


# ------------------------------------------------------------------ registry


def test_registry():
  assert set(data.DATASETS) >= {"cifar10", "cifar100", "tinyimagenet",
                                "dvs128_gesture", "cifar10_sample"}
  c10 = data.DATASETS["cifar10"]
  assert c10.image_shape == (32, 32, 3) and c10.num_classes == 10
  assert c10.mean == (0.4913, 0.4821, 0.4465)
  assert c10.std == (0.2470, 0.2434, 0.2615)
  c100 = data.DATASETS["cifar100"]
  assert c100.num_classes == 100 and c100.mean == (0.5071, 0.4867, 0.4408)
  assert c100.std == (0.2673, 0.2564, 0.2762)
  tiny = data.DATASETS["tinyimagenet"]
  assert tiny.image_shape == (64, 64, 3) and tiny.crop_pad == 8
  assert tiny.mean == (0.485, 0.456, 0.406)
  sample = data.DATASETS["cifar10_sample"]
  assert (sample.mean, sample.std) == (c10.mean, c10.std)
  dvs = data.DATASETS["dvs128_gesture"]
  assert dvs.num_classes == 11 and dvs.is_event and not c10.is_event
  assert dvs.timesteps_native == 16 and c10.timesteps_native is None
  assert data.get_info("dvs128_gesture", size=32,
                       n_time_bins=8).image_shape == (32, 32, 2)
  with pytest.raises(Exception):
    c10.num_classes = 3  # frozen


def test_unknown_name():
  with pytest.raises(ValueError, match="no_such_set"):
    data.load_arrays("no_such_set", "train")
  with pytest.raises(ValueError, match="no_such_set"):
    data.get_info("no_such_set")


# ------------------------------------------------------------------ sample


def test_bundled_sample():
  assert os.path.getsize(data.SAMPLE_PATH) <= 4 * 2**20
  images, labels = data.load_arrays("cifar10_sample", "train")
  assert images.shape == (1024, 32, 32, 3) and images.dtype == np.uint8
  assert labels.shape == (1024,) and labels.dtype == np.int32
  assert labels.min() == 0 and labels.max() == 9
  assert len(np.unique(labels)) == 10
  assert 60 < images.mean() < 200  # real images, not blank
  with pytest.raises(ValueError, match="train"):
    data.load_arrays("cifar10_sample", "test")
  if os.path.exists(SHARED_TRAIN):
    with np.load(SHARED_TRAIN) as f:
      np.testing.assert_array_equal(images, f["image"][:1024])
      np.testing.assert_array_equal(labels, f["label"][:1024])


# ------------------------------------------------------------------ tfds


@pytest.mark.parametrize("name,classes", [("cifar10", 10), ("cifar100", 100)])
def test_tfds_mock(name, classes):
  import tensorflow_datasets as tfds
  with tfds.testing.mock_data(num_examples=5):
    images, labels = data.load_arrays(name, "train")
    test_images, _ = data.load_arrays(name, "test")
    batches = data.score_batches(name, 2, 3, seed=0)
  assert images.shape == (5, 32, 32, 3) and images.dtype == np.uint8
  assert test_images.shape == (5, 32, 32, 3)
  assert labels.shape == (5,) and labels.dtype == np.int32
  assert labels.min() >= 0 and labels.max() < classes
  assert batches.shape == (2, 3, 32, 32, 3) and batches.dtype == np.float32
  # The random-access path never imports TensorFlow.
  assert "tensorflow" not in sys.modules


def test_tfds_missing(tmp_path):
  with pytest.raises(FileNotFoundError) as err:
    data.load_arrays("cifar10", "train", data_dir=str(tmp_path))
  msg = str(err.value)
  assert "tfds build cifar10" in msg and "array_record" in msg
  assert "data_dir" in msg and str(tmp_path) in msg


# ------------------------------------------------------------------ npz


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


# ------------------------------------------------------------------ folders


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


def test_tinyimagenet_missing(tmp_path):
  with pytest.raises(FileNotFoundError) as err:
    data.load_arrays("tinyimagenet", "train", data_dir=str(tmp_path))
  assert "tiny-imagenet-200" in str(err.value)
  assert "data_dir" in str(err.value)


# ------------------------------------------------------------------ normalise


def test_normalize():
  info = data.DATASETS["cifar10"]
  x = np.zeros((2, 4, 4, 3), np.uint8)
  x[1] = 255
  out = data.normalize(x, info)
  assert out.dtype == np.float32 and out.shape == x.shape
  mean, std = np.asarray(info.mean), np.asarray(info.std)
  np.testing.assert_allclose(out[0, 0, 0], -mean / std, rtol=1e-5)
  np.testing.assert_allclose(out[1, 0, 0], (1 - mean) / std, rtol=1e-5)
  import jax.numpy as jnp
  out_j = data.normalize(jnp.asarray(x), info)
  assert out_j.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(out_j), out, rtol=1e-6)
  frames = np.arange(6, dtype=np.float32).reshape(1, 1, 1, 3, 2)
  np.testing.assert_array_equal(
      data.normalize(frames, data.DATASETS["dvs128_gesture"]), frames)


# ------------------------------------------------------------------ augment


def _images(b=6, h=5, w=7, c=2, seed=0):
  return np.random.default_rng(seed).integers(1, 256, (b, h, w, c)).astype(
      np.uint8)


def _reference_crop(img, oy, ox, flip, pad):
  padded = np.pad(img, ((pad, pad), (pad, pad), (0, 0)))
  crop = padded[oy:oy + img.shape[0], ox:ox + img.shape[1]]
  return crop[:, ::-1] if flip else crop


@pytest.mark.parametrize("use_jax", [False, True])
def test_crop_and_flip(use_jax):
  import jax
  fn = data.crop_and_flip_jax if use_jax else data.crop_and_flip
  x = _images()
  b, pad = len(x), 2
  same = fn(x, np.full(b, pad), np.full(b, pad), np.zeros(b, bool), pad)
  np.testing.assert_array_equal(np.asarray(same), x)
  flipped = fn(x, np.full(b, pad), np.full(b, pad), np.ones(b, bool), pad)
  np.testing.assert_array_equal(np.asarray(flipped), x[:, :, ::-1])
  rng = np.random.default_rng(1)
  oy, ox = rng.integers(0, 2 * pad + 1, b), rng.integers(0, 2 * pad + 1, b)
  fl = rng.random(b) < 0.5
  if use_jax:
    out = jax.jit(fn, static_argnums=4)(x, oy, ox, fl, pad)
  else:
    out = fn(x, oy, ox, fl, pad)
  out = np.asarray(out)
  assert out.shape == x.shape and out.dtype == x.dtype
  for i in range(b):
    np.testing.assert_array_equal(out[i],
                                  _reference_crop(x[i], oy[i], ox[i], fl[i],
                                                  pad))
  # Per-channel fill (e.g. -mean/std for normalised images).
  xf = x.astype(np.float32)
  filled = np.asarray(fn(xf, np.zeros(b, int), np.zeros(b, int),
                         np.zeros(b, bool), pad, np.array([-1.0, -2.0])))
  np.testing.assert_array_equal(filled[:, 0, 0], np.tile([-1.0, -2.0], (b, 1)))
  np.testing.assert_array_equal(filled[:, pad:, pad:], xf[:, :-pad, :-pad])


def _is_valid_augmentation(out, img, pad):
  return any(
      np.array_equal(out, _reference_crop(img, oy, ox, fl, pad))
      for oy in range(2 * pad + 1) for ox in range(2 * pad + 1)
      for fl in (False, True))


def test_augment_batch_numpy():
  x = _images(b=32)
  out = data.augment_batch(np.random.default_rng(0), x, pad=2)
  assert out.shape == x.shape and out.dtype == x.dtype
  assert all(_is_valid_augmentation(out[i], x[i], 2) for i in range(len(x)))
  again = data.augment_batch(np.random.default_rng(0), x, pad=2)
  np.testing.assert_array_equal(out, again)
  assert not np.array_equal(out, x)  # 32 images: some crop/flip happened
  # pad=0: only flips.
  flips = data.augment_batch(np.random.default_rng(0), x, pad=0)
  assert all(np.array_equal(f, i) or np.array_equal(f, i[:, ::-1])
             for f, i in zip(flips, x))


def test_augment_batch_jax():
  import jax
  x = _images(b=32)
  aug = jax.jit(data.augment_batch_jax, static_argnums=2)
  out = np.asarray(aug(jax.random.key(0), x, 2))
  assert out.shape == x.shape and out.dtype == x.dtype
  assert all(_is_valid_augmentation(out[i], x[i], 2) for i in range(len(x)))
  np.testing.assert_array_equal(out, np.asarray(aug(jax.random.key(0), x, 2)))
  assert not np.array_equal(out, np.asarray(aug(jax.random.key(1), x, 2)))


def test_augment_batch_speed():
  import time
  x = np.zeros((256, 32, 32, 3), np.uint8)
  t = time.perf_counter()
  data.augment_batch(np.random.default_rng(0), x, pad=4)
  assert time.perf_counter() - t < 1.0


# ------------------------------------------------------------------ score


def test_score_batches_sample():
  a = data.score_batches("cifar10_sample", 2, 16, seed=0)
  assert a.shape == (2, 16, 32, 32, 3) and a.dtype == np.float32
  np.testing.assert_array_equal(a, data.score_batches("cifar10_sample", 2, 16,
                                                      seed=0))
  assert not np.array_equal(a, data.score_batches("cifar10_sample", 2, 16,
                                                  seed=1))
  # Without augmentation the batches are distinct normalised train images.
  plain = data.score_batches("cifar10_sample", 2, 16, seed=0, augment=False)
  images, _ = data.load_arrays("cifar10_sample", "train")
  info = data.get_info("cifar10_sample")
  ref = data.normalize(images, info).reshape(len(images), -1)
  flat = plain.reshape(32, -1)
  hits = [np.flatnonzero((ref == row).all(1)) for row in flat]
  assert all(len(h) >= 1 for h in hits)
  assert len({int(h[0]) for h in hits}) == 32


def test_score_batches_wraps(tmp_path):
  n = 10
  images = (np.arange(n, dtype=np.uint8)[:, None, None, None] *
            np.ones((1, 4, 4, 3), np.uint8))
  np.savez(tmp_path / "tiny.npz", image=images, label=np.zeros(n, int))
  spec = f"npz:{tmp_path}/tiny.npz"
  info = data.get_info(spec)
  out = data.score_batches(spec, 3, 4, seed=5, augment=False)
  assert out.shape == (3, 4, 4, 4, 3)
  pixel = out[..., 0, 0, 0].reshape(-1) * info.std[0] + info.mean[0]
  ids = np.rint(pixel * 255).astype(int)
  assert sorted(ids[:n].tolist()) == list(range(n))  # first pass: a perm
  assert set(ids[n:].tolist()) <= set(range(n))


# ------------------------------------------------------------------ DVS


@pytest.mark.parametrize("split_by", ["number", "time"])
def test_events_to_frames_counts(split_by):
  ev = _events(1003)
  frames = data.events_to_frames(ev, (16, 12, 2), 5, split_by=split_by)
  assert frames.shape == (5, 12, 16, 2) and frames.dtype == np.float32
  assert frames.sum() == len(ev)
  for pol in (0, 1):
    assert frames[..., pol].sum() == np.sum(ev["p"] == pol)
  # A single event lands at (row y, column x, channel p).
  one = data.events_to_frames(ev[:1], (16, 12, 2), 5, split_by=split_by)
  assert one[:, ev["y"][0], ev["x"][0], int(ev["p"][0])].sum() == 1
  if split_by == "number":  # 1003 // 5 = 200 per frame, remainder last
    assert frames.sum(axis=(1, 2, 3)).tolist() == [200, 200, 200, 200, 203]
  empty = data.events_to_frames(ev[:0], (16, 12, 2), 5, split_by=split_by)
  assert empty.shape == (5, 12, 16, 2) and not empty.any()


def test_events_to_frames_matches_tonic():
  import tonic
  ev = _events(2000, seed=3)
  t_bins = 7
  mine = data.events_to_frames(ev, (16, 12, 2), t_bins, split_by="time")
  ref = tonic.transforms.ToFrame(sensor_size=(16, 12, 2),
                                 n_time_bins=t_bins)(ev.copy())
  ref = np.moveaxis(ref, 1, -1)  # tonic: [T, P, H, W]
  assert ref.shape == mine.shape
  np.testing.assert_array_equal(mine[:-1], ref[:-1])
  # tonic drops the events at t >= t0 + T*w (always the last one); ours keeps
  # them in the last frame.
  width = (ev["t"][-1] - ev["t"][0]) // t_bins
  dropped = ev[ev["t"] >= ev["t"][0] + t_bins * width]
  assert len(dropped) >= 1
  extra = data.events_to_frames(dropped, (16, 12, 2), 1, split_by="time")[0]
  np.testing.assert_array_equal(mine[-1], ref[-1] + extra)
  # Spatial downsampling agrees with tonic's Downsample.
  down = tonic.transforms.Compose([
      tonic.transforms.Downsample(spatial_factor=0.25),
      tonic.transforms.ToFrame(sensor_size=(4, 3, 2), n_time_bins=t_bins)])
  ref_d = np.moveaxis(down(ev.copy()), 1, -1)
  mine_d = data.events_to_frames(ev, (16, 12, 2), t_bins, split_by="time",
                                 target_size=(4, 3))
  assert mine_d.shape == (t_bins, 3, 4, 2)
  np.testing.assert_array_equal(mine_d[:-1], ref_d[:-1])
  assert mine_d.sum() == len(ev)


def test_dvs_missing(tmp_path):
  with pytest.raises(FileNotFoundError) as err:
    data.load_arrays("dvs128_gesture", "train", data_dir=str(tmp_path))
  msg = str(err.value)
  assert "DVSGesture" in msg and "ibmGestureTrain" in msg and "data_dir" in msg


def test_dvs_loader_fake_tonic_layout(tmp_path):
  """tonic's on-disk layout (inferred from tonic 1.7's DVSGesture code):
  DVSGesture/ibmGestureTrain.tar.gz + ibmGestureTrain/userNN_light/<label>.npy
  with int rows (x, y, p, t_ms)."""
  loc = tmp_path / "DVSGesture"
  loc.mkdir()
  (loc / "ibmGestureTrain.tar.gz").write_bytes(b"")
  rng = np.random.default_rng(0)
  counts = {}
  for user in range(1, 11):
    d = loc / "ibmGestureTrain" / f"user{user:02d}_led"
    d.mkdir(parents=True)
    for label in range(11):
      n = int(rng.integers(20, 60))
      ev = np.stack([rng.integers(0, 128, n), rng.integers(0, 128, n),
                     rng.integers(0, 2, n), np.sort(rng.integers(0, 6000, n))],
                    axis=1).astype(np.int64)
      np.save(d / f"{label}.npy", ev)
      counts[(user, label)] = n
  frames, labels = data.load_arrays("dvs128_gesture", "train",
                                    data_dir=str(tmp_path), n_time_bins=4,
                                    size=32)
  assert frames.shape == (110, 4, 32, 32, 2) and frames.dtype == np.float32
  assert labels.dtype == np.int32 and sorted(set(labels.tolist())) == list(
      range(11))
  assert sorted(frames.sum(axis=(1, 2, 3, 4)).astype(int).tolist()) == sorted(
      counts.values())
  sb = data.score_batches("dvs128_gesture", 2, 3, seed=0,
                          data_dir=str(tmp_path), n_time_bins=4, size=32)
  assert sb.shape == (2, 3, 4, 32, 32, 2)
  with pytest.raises(FileNotFoundError):  # test split not there
    data.load_arrays("dvs128_gesture", "test", data_dir=str(tmp_path))


# ------------------------------------------------------------------ batches


def _union(n, batch, count, seed, epoch, drop):
  x = np.arange(n)
  seen, per_process = [], []
  for p in range(count):
    got = [b["image"] for b in data.iterate_batches(
        x, x, batch, seed=seed, epoch=epoch, drop_remainder=drop,
        process_index=p, process_count=count)]
    per_process.append(got)
    seen += [int(v) for b in got for v in b]
  return seen, per_process


def test_iterate_batches_sharding():
  n, batch = 50, 8
  seen, per_process = _union(n, batch, 2, seed=1, epoch=0, drop=True)
  assert len(seen) == len(set(seen)) == (n // batch) * batch
  assert all(len(b) == batch // 2 for got in per_process for b in got)
  order = data.Batches(np.arange(n), np.arange(n), batch, seed=1,
                       process_index=0, process_count=2).epoch_order(0)
  assert set(seen) == set(order[:48].tolist())
  seen_all, _ = _union(n, batch, 2, seed=1, epoch=0, drop=False)
  assert sorted(seen_all) == list(range(n))  # whole epoch exactly once
  # Deterministic in (seed, epoch); epochs differ.
  assert _union(n, batch, 2, 1, 0, True)[0] == seen
  assert _union(n, batch, 2, 1, 1, True)[0] != seen
  # Labels travel with images.
  x = np.arange(n)
  for b in data.iterate_batches(x * 10, x, batch, process_index=1,
                                process_count=2):
    np.testing.assert_array_equal(b["image"], b["label"] * 10)


def test_batches_resume_and_defaults():
  n = 40
  x = np.arange(n)
  b = data.Batches(x, x, 8, seed=3)  # jax.process_index()/count() = 0/1
  assert (b.process_index, b.process_count, b.local_batch_size) == (0, 1, 8)
  assert len(b) == 5
  full = [v["label"] for v in b.epoch(2)]
  resumed = [v["label"] for v in b.epoch(2, start_step=3)]
  assert len(resumed) == 2
  for u, v in zip(full[3:], resumed):
    np.testing.assert_array_equal(u, v)
  ordered = [v["label"] for v in data.iterate_batches(x, x, 8, shuffle=False,
                                                      process_index=0,
                                                      process_count=1)]
  np.testing.assert_array_equal(np.concatenate(ordered), x)
  with pytest.raises(ValueError, match="multiple"):
    data.Batches(x, x, 7, process_index=0, process_count=2)
