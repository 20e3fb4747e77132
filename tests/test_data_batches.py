"""Tests of snnax_nas.data.batches: score batches, example limits and
per-host epoch sharding."""

from __future__ import annotations

import numpy as np
import pytest

from snnax_nas import data

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


@pytest.mark.parametrize("r,b", [(0, 4), (2, 0), (-1, 4)])
def test_score_batches_counts(r, b):
  with pytest.raises(ValueError, match="must be >= 1"):
    data.score_batches("cifar10_sample", r, b, seed=0)


# ------------------------------------------------------------------ limits


def test_first_examples():
  x, y = np.arange(10) * 10, np.arange(10)
  assert data.first_examples(x, y, None)[1].tolist() == list(range(10))
  xs, ys = data.first_examples(x, y, 3)
  assert xs.tolist() == [0, 10, 20] and ys.tolist() == [0, 1, 2]
  assert len(data.first_examples(x, y, 50)[0]) == 10
  for bad in (0, -1, 2.5):
    with pytest.raises(ValueError, match=">= 1"):
      data.first_examples(x, y, bad)


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


def test_batches_bad_arguments():
  x = np.arange(10)
  with pytest.raises(ValueError, match="start_step"):
    data.Batches(x, x, 2, process_index=0, process_count=1).epoch(0, start_step=-1)
  with pytest.raises(ValueError, match="start_step"):  # raised at the call, not at next()
    data.iterate_batches(x, x, 2, process_index=0, process_count=1, start_step=-2)
  with pytest.raises(ValueError, match="10 images but 9 labels"):
    data.Batches(x, x[:9], 2, process_index=0, process_count=1)
  with pytest.raises(ValueError, match="process_index"):
    data.Batches(x, x, 2, process_index=2, process_count=2)
