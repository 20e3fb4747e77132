"""Tests of snnax_nas.data.augment: normalisation and the reference crop +
flip, NumPy and JAX twins."""

from __future__ import annotations

import numpy as np
import pytest

from snnax_nas import data


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


def _images(b=6, h=5, w=7, c=2, seed=0):
  return np.random.default_rng(seed).integers(1, 256, (b, h, w, c)).astype(
      np.uint8)


def _reference_crop(img, oy, ox, flip, pad):
  padded = np.pad(img, ((pad, pad), (pad, pad), (0, 0)))
  crop = padded[oy:oy + img.shape[0], ox:ox + img.shape[1]]
  return crop[:, ::-1] if flip else crop


@pytest.mark.slow
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


def test_augment_batch_is_one_gather():
  """A full CIFAR batch (in place of a wall-clock check): the result equals
  three draws of size B followed by one crop_and_flip of the whole batch,
  offsets and flips cover their range, and the generator advanced by exactly
  those three draws."""
  b, pad = 256, 4
  x = np.random.default_rng(2).integers(0, 256, (b, 32, 32, 3)).astype(np.uint8)
  rng = np.random.default_rng(7)
  out = data.augment_batch(rng, x, pad=pad)
  ref_rng = np.random.default_rng(7)
  oy = ref_rng.integers(0, 2 * pad + 1, size=b)
  ox = ref_rng.integers(0, 2 * pad + 1, size=b)
  flip = ref_rng.random(b) < 0.5
  np.testing.assert_array_equal(out, data.crop_and_flip(x, oy, ox, flip, pad))
  assert set(oy.tolist()) == set(range(2 * pad + 1)) and 0 < flip.sum() < b
  assert rng.random() == ref_rng.random()  # same generator state afterwards


@pytest.mark.slow
def test_augment_batch_jax():
  import jax
  x = _images(b=32)
  aug = jax.jit(data.augment_batch_jax, static_argnums=2)
  out = np.asarray(aug(jax.random.key(0), x, 2))
  assert out.shape == x.shape and out.dtype == x.dtype
  assert all(_is_valid_augmentation(out[i], x[i], 2) for i in range(len(x)))
  np.testing.assert_array_equal(out, np.asarray(aug(jax.random.key(0), x, 2)))
  assert not np.array_equal(out, np.asarray(aug(jax.random.key(1), x, 2)))
