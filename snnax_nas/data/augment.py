"""Pixel preprocessing: per-channel normalisation and the reference random
crop + horizontal flip, in NumPy (host) and JAX (device, jit-safe) twins.

Augmentation runs on raw pixels before :func:`normalize`, so its padding is
black (``fill=0``); event frames are never augmented or normalised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from snnax_nas.data.source import is_jax_array

if TYPE_CHECKING:
  from snnax_nas.data.registry import DatasetInfo

__all__ = ["augment_batch", "augment_batch_jax", "crop_and_flip", "crop_and_flip_jax",
           "normalize"]


def normalize(images: Any, info: DatasetInfo) -> Any:
  """Per-channel normalisation ``(x / 255 - mean) / std``.

  Args:
    images: ``uint8`` (or float in ``[0, 255]``) ``[..., H, W, C]``; a NumPy
      or a JAX array (a JAX array gives a JAX result, usable under ``jit``).
    info: supplies ``mean`` and ``std`` (C floats each, of ``x / 255``).

  Returns:
    ``float32`` array of the same shape. Event data (``info.is_event``) are
    counts, not pixel values: they are only cast to ``float32``.
  """
  if is_jax_array(images):
    import jax.numpy as xp  # lazy
  else:
    xp = np
  x = xp.asarray(images).astype(xp.float32)
  if info.is_event:
    return x
  mean = xp.asarray(info.mean, xp.float32)
  std = xp.asarray(info.std, xp.float32)
  return (x * np.float32(1.0 / 255.0) - mean) / std


def crop_and_flip(images: np.ndarray, offset_y: np.ndarray,
                  offset_x: np.ndarray, flip: np.ndarray, pad: int,
                  fill: Any = 0) -> np.ndarray:
  """Deterministic padded crop + horizontal flip, vectorised NumPy.

  Output image ``b`` is the ``H x W`` window at ``(offset_y[b], offset_x[b])``
  of ``images[b]`` padded by ``pad`` pixels of value ``fill`` on each side,
  mirrored left-right where ``flip[b]``. Offsets ``pad`` and no flip give the
  input back.

  Args:
    images: ``[B, H, W, C]``, any dtype.
    offset_y, offset_x: int ``[B]`` in ``[0, 2*pad]``.
    flip: bool ``[B]``.
    pad: padding in pixels.
    fill: padding value, scalar or per-channel ``[C]`` (``0`` = black for raw
      pixels; ``-mean/std`` for already-normalised images).

  Returns:
    ``[B, H, W, C]`` of ``images.dtype``.
  """
  images = np.asarray(images)
  b, h, w, c = images.shape
  oy = np.asarray(offset_y, np.int64).reshape(b, 1)
  ox = np.asarray(offset_x, np.int64).reshape(b, 1)
  fl = np.asarray(flip, bool).reshape(b, 1)
  rows = oy - pad + np.arange(h)  # [B, H] source rows
  j = np.arange(w)
  cols = ox - pad + np.where(fl, w - 1 - j, j)  # [B, W] source columns
  valid = ((rows >= 0) & (rows < h))[:, :, None] & (
      (cols >= 0) & (cols < w))[:, None, :]
  out = images[np.arange(b)[:, None, None], np.clip(rows, 0, h - 1)[:, :, None],
               np.clip(cols, 0, w - 1)[:, None, :]]
  if valid.all():
    return out
  fill_arr = np.broadcast_to(np.asarray(fill, images.dtype), (c,))
  return np.where(valid[..., None], out, fill_arr).astype(images.dtype,
                                                          copy=False)


def augment_batch(rng: np.random.Generator, images: np.ndarray, pad: int = 4,
                  fill: Any = 0) -> np.ndarray:
  """Random crop with ``pad``-pixel padding + random horizontal flip (NumPy).

  The reference recipe: ``RandomCrop(32, padding=4)`` (``padding=8`` for 64x64
  TinyImageNet) then ``RandomHorizontalFlip()``, applied to raw pixels before
  normalisation (so the padding is black: ``fill=0``). Offsets are uniform in
  ``[0, 2*pad]`` per image, flips have probability 1/2. One gather for the
  whole batch, no Python loop.

  Args:
    rng: NumPy generator (advanced by 3 draws of size ``B``).
    images: ``[B, H, W, C]``, any dtype (uint8 pixels or float).
    pad: padding in pixels; ``0`` leaves only the flip.
    fill: padding value, scalar or per-channel (see :func:`crop_and_flip`).

  Returns:
    ``[B, H, W, C]``, same dtype.
  """
  b = len(images)
  oy = rng.integers(0, 2 * pad + 1, size=b)
  ox = rng.integers(0, 2 * pad + 1, size=b)
  flip = rng.random(b) < 0.5
  return crop_and_flip(images, oy, ox, flip, pad, fill)


def crop_and_flip_jax(images: Any, offset_y: Any, offset_x: Any, flip: Any,
                      pad: int, fill: Any = 0) -> Any:
  """JAX twin of :func:`crop_and_flip` (jit/vmap-safe; ``pad`` static).

  Args:
    images: ``[B, H, W, C]`` JAX array.
    offset_y, offset_x: int32 ``[B]`` in ``[0, 2*pad]``.
    flip: bool ``[B]``.
    pad: static padding in pixels.
    fill: scalar or per-channel ``[C]`` padding value.

  Returns:
    ``[B, H, W, C]``, same dtype.
  """
  import jax  # lazy
  import jax.numpy as jnp

  images = jnp.asarray(images)
  b, h, w, c = images.shape
  fill_c = jnp.broadcast_to(jnp.asarray(fill, images.dtype), (c,))
  padded = jnp.broadcast_to(fill_c, (b, h + 2 * pad, w + 2 * pad, c))
  padded = padded.at[:, pad:pad + h, pad:pad + w, :].set(images)

  def one(img, oy, ox):
    return jax.lax.dynamic_slice(img, (oy, ox, 0), (h, w, c))

  crops = jax.vmap(one)(padded, jnp.asarray(offset_y, jnp.int32),
                        jnp.asarray(offset_x, jnp.int32))
  return jnp.where(jnp.asarray(flip, bool)[:, None, None, None],
                   crops[:, :, ::-1, :], crops)


def augment_batch_jax(key: Any, images: Any, pad: int = 4,
                      fill: Any = 0) -> Any:
  """Random padded crop + horizontal flip on device (jit-safe; ``pad`` static).

  Same distribution as :func:`augment_batch`, drawn from ``key``.

  Args:
    key: ``jax.random`` key.
    images: ``[B, H, W, C]`` JAX array (uint8 pixels or float).
    pad: padding in pixels (static).
    fill: scalar or per-channel padding value.

  Returns:
    ``[B, H, W, C]``, same dtype.
  """
  import jax  # lazy

  b = images.shape[0]
  k_y, k_x, k_f = jax.random.split(key, 3)
  oy = jax.random.randint(k_y, (b,), 0, 2 * pad + 1)
  ox = jax.random.randint(k_x, (b,), 0, 2 * pad + 1)
  flip = jax.random.bernoulli(k_f, 0.5, (b,))
  return crop_and_flip_jax(images, oy, ox, flip, pad, fill)
