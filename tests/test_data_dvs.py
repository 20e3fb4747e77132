"""Tests of snnax_nas.data.dvs: event framing (against tonic), frame binning to
the network's timesteps, tonic's on-disk layout, and the missing-tonic and
missing-data messages."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from snnax_nas import data


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


@pytest.fixture(scope="module")
def fake_dvs(tmp_path_factory):
  """tonic's on-disk layout (inferred from tonic 1.7's DVSGesture code):
  DVSGesture/ibmGestureTrain.tar.gz + ibmGestureTrain/userNN_light/<label>.npy
  with int rows (x, y, p, t_ms). Returns (data_dir, {(user, label): events})."""
  root = tmp_path_factory.mktemp("dvs")
  loc = root / "DVSGesture"
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
  return str(root), counts


# ------------------------------------------------------------------ framing


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


def test_events_to_frames_errors():
  ev = _events(10)
  with pytest.raises(ValueError, match="n_time_bins"):
    data.events_to_frames(ev, (16, 12, 2), 0)
  with pytest.raises(ValueError, match="outside sensor"):
    data.events_to_frames(ev, (4, 4, 2), 2)
  with pytest.raises(ValueError, match="split_by"):
    data.events_to_frames(ev, (16, 12, 2), 2, split_by="events")


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


# ------------------------------------------------------------------ bin_frames


def _frames(b=2, f=12, h=3, w=4, c=2, seed=0):
  return np.random.default_rng(seed).integers(0, 5, (b, f, h, w, c)).astype(np.float32)


def test_bin_frames_multiple():
  x = _frames(f=12)
  out = data.bin_frames(x, 4)
  assert out.shape == (2, 4, 3, 4, 2) and out.dtype == np.float32
  np.testing.assert_array_equal(out, x.reshape(2, 4, 3, 3, 4, 2).sum(2))  # sums, not means
  assert data.bin_frames(x, 12) is x  # F == T: nothing to merge
  np.testing.assert_array_equal(data.bin_frames(x, 1), x.sum(1, keepdims=True))


@pytest.mark.parametrize("f,t", [(7, 3), (16, 5), (10, 4), (5, 4), (17, 16)])
def test_bin_frames_uneven(f, t):
  x = _frames(f=f, seed=f)
  out = data.bin_frames(x, t)
  assert out.shape == (2, t, 3, 4, 2)
  edges = [g * f // t for g in range(t + 1)]
  sizes = np.diff(edges)
  assert sizes.min() >= 1 and sizes.max() - sizes.min() <= 1  # nearly equal groups
  for g in range(t):  # consecutive frames, none dropped, none repeated
    np.testing.assert_array_equal(out[:, g], x[:, edges[g]:edges[g + 1]].sum(1))
  np.testing.assert_array_equal(out.sum(1), x.sum(1))  # every count kept


def test_bin_frames_explicit_groups():
  x = np.arange(7, dtype=np.float32).reshape(1, 7, 1, 1, 1)  # frame i holds i
  # 7 frames -> 3 timesteps: groups [0, 1], [2, 3], [4, 5, 6].
  assert data.bin_frames(x, 3).reshape(-1).tolist() == [1.0, 5.0, 15.0]


def test_bin_frames_integer_counts_do_not_overflow():
  x = np.full((1, 4, 1, 1, 1), 200, np.uint8)
  out = data.bin_frames(x, 2)
  assert out.reshape(-1).tolist() == [400, 400] and np.issubdtype(out.dtype, np.integer)


def test_bin_frames_errors():
  x = _frames(f=4)
  with pytest.raises(ValueError, match="n_time_bins=6"):  # never repeats frames
    data.bin_frames(x, 6)
  with pytest.raises(ValueError, match=">= 1"):
    data.bin_frames(x, 0)


def test_bin_frames_jax():
  import jax
  x = _frames(f=10)
  out = jax.jit(data.bin_frames, static_argnums=1)(jax.numpy.asarray(x), 4)
  assert isinstance(out, jax.Array) and out.shape == (2, 4, 3, 4, 2)
  np.testing.assert_array_equal(np.asarray(out), data.bin_frames(x, 4))
  out_int = data.bin_frames(jax.numpy.asarray(x.astype(np.uint8)), 3)
  np.testing.assert_array_equal(np.asarray(out_int), data.bin_frames(x.astype(np.uint8), 3))


# ------------------------------------------------------------------ loader


def test_dvs_missing(tmp_path):
  with pytest.raises(FileNotFoundError) as err:
    data.load_arrays("dvs128_gesture", "train", data_dir=str(tmp_path))
  msg = str(err.value)
  assert "DVSGesture" in msg and "ibmGestureTrain" in msg and "data_dir" in msg


def test_dvs_loader_fake_tonic_layout(fake_dvs):
  data_dir, counts = fake_dvs
  frames, labels = data.load_arrays("dvs128_gesture", "train",
                                    data_dir=data_dir, n_time_bins=4,
                                    size=32)
  assert frames.shape == (110, 4, 32, 32, 2) and frames.dtype == np.float32
  assert labels.dtype == np.int32 and sorted(set(labels.tolist())) == list(
      range(11))
  assert sorted(frames.sum(axis=(1, 2, 3, 4)).astype(int).tolist()) == sorted(
      counts.values())
  sb = data.score_batches("dvs128_gesture", 2, 3, seed=0,
                          data_dir=data_dir, n_time_bins=4, size=32)
  assert sb.shape == (2, 3, 4, 32, 32, 2)
  with pytest.raises(FileNotFoundError):  # test split not there
    data.load_arrays("dvs128_gesture", "test", data_dir=data_dir)


@pytest.mark.parametrize("timesteps", [1, 3, 5])
def test_dvs_loader_gives_exactly_the_network_timesteps(fake_dvs, timesteps):
  """Events are binned straight into T frames: no frame is cut off, every
  event is counted (what a network of T timesteps must be fed)."""
  data_dir, counts = fake_dvs
  info = data.get_info("dvs128_gesture", n_time_bins=timesteps, size=16)
  assert info.timesteps_native == timesteps
  frames, _ = data.load_dvs128_gesture("train", data_dir, n_time_bins=timesteps, size=16)
  assert frames.shape == (110, timesteps, 16, 16, 2)
  assert frames.sum() == sum(counts.values())


def test_dvs_loader_bad_options(fake_dvs):
  data_dir, _ = fake_dvs
  with pytest.raises(ValueError, match="n_time_bins"):
    data.load_arrays("dvs128_gesture", "train", data_dir=data_dir, n_time_bins=0)
  with pytest.raises(ValueError, match="size"):
    data.load_arrays("dvs128_gesture", "train", data_dir=data_dir, size=-1)
  with pytest.raises(ValueError, match="split"):
    data.load_arrays("dvs128_gesture", "val", data_dir=data_dir)


def test_dvs_without_tonic(fake_dvs, monkeypatch):
  data_dir, _ = fake_dvs
  monkeypatch.setitem(sys.modules, "tonic", None)  # `import tonic` now fails
  with pytest.raises(ImportError) as err:
    data.load_arrays("dvs128_gesture", "train", data_dir=data_dir)
  assert "pip install tonic" in str(err.value) and "\n" not in str(err.value)
  assert isinstance(err.value, ValueError)  # launchers report it as bad input
  assert isinstance(err.value, data.MissingTonicError)
  with pytest.raises(ValueError, match="pip install tonic"):
    data.score_batches("dvs128_gesture", 1, 2, seed=0, data_dir=data_dir)
  # Framing needs no tonic.
  assert data.events_to_frames(_events(5), (16, 12, 2), 2).sum() == 5
