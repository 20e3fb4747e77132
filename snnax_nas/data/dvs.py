"""Event data (DVS128 Gesture): events -> count frames, frame binning to the
network's timesteps, and tonic's on-disk dataset.

Frames are ``float32 [T, H, W, P]`` event counts per (time bin, pixel,
polarity), channels last, polarity 0 (OFF) in channel 0 and 1 (ON) in
channel 1. They are not normalised.

A network simulated for ``T`` timesteps consumes exactly ``T`` frames. Either
bin the events straight into ``T`` frames (``n_time_bins=T`` of
:func:`load_dvs128_gesture` / ``load_arrays``), or sum already-loaded frames
into ``T`` groups with :func:`bin_frames`. Never drop the frames past ``T``:
that throws away the end of every gesture.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any
from typing import Optional
from typing import Tuple

import numpy as np

from snnax_nas.data.source import Source
from snnax_nas.data.source import default_data_dir
from snnax_nas.data.source import is_jax_array

__all__ = ["DVS_DEFAULT_TIMESTEPS", "DVS_SENSOR_SIZE", "MissingTonicError", "TONIC_INSTALL",
           "bin_frames", "dvs_source", "events_to_frames", "import_tonic", "load_dvs128_gesture"]

# DVS128 Gesture: LightSNN (the only SNN-NAS reference with DVS) uses T = 16
# frames from the 128x128 sensor, 2 polarities, 11 classes.
DVS_SENSOR_SIZE = (128, 128, 2)  # (W, H, P), tonic's convention.
DVS_DEFAULT_TIMESTEPS = 16

TONIC_INSTALL = "pip install tonic  (or: pip install 'snnax_nas[dvs]')"


class MissingTonicError(ImportError, ValueError):
  """tonic is not installed. Both an ``ImportError`` (what it is) and a
  ``ValueError`` (so launchers that report bad input cleanly report it too)."""


def import_tonic() -> Any:
  """The ``tonic`` module.

  Raises:
    MissingTonicError: tonic is not installed; the message is the install command.
  """
  try:
    import tonic  # lazy: ~2 s (imports torch when installed)
  except ImportError as e:
    raise MissingTonicError(
        f"dvs128_gesture needs the tonic package ({e}): {TONIC_INSTALL}") from None
  return tonic


def events_to_frames(events: np.ndarray,
                     sensor_size: Tuple[int, int, int] = DVS_SENSOR_SIZE,
                     n_time_bins: int = DVS_DEFAULT_TIMESTEPS,
                     *, split_by: str = "number",
                     target_size: Optional[Tuple[int, int]] = None,
                     dtype: Any = np.float32) -> np.ndarray:
  """Accumulates an event stream into ``n_time_bins`` count frames.

  Every event is counted exactly once, so ``frames.sum() == len(events)``.

  Args:
    events: structured array ``[N]`` with integer fields ``x`` (column,
      ``0 <= x < W``), ``y`` (row), ``t`` (timestamp, any integer unit, e.g.
      microseconds) and ``p`` (polarity, bool or 0/1), in recording (time)
      order.
    sensor_size: ``(W, H, P)`` of the sensor, tonic's convention
      (DVS128: ``(128, 128, 2)``). With ``P == 1`` all events go to channel 0.
    n_time_bins: number of frames ``T``.
    split_by: ``"number"``: frame ``i`` holds events ``[i*d, (i+1)*d)`` with
      ``d = N // T`` and the last frame also the remainder (SpikingJelly's
      ``split_by='number'``, which LightSNN's DVS128 pipeline uses).
      ``"time"``: frames of equal duration ``w = (t_max - t_min) // T`` from
      ``t_min``, as ``tonic.transforms.ToFrame(n_time_bins=T)``, except that
      the events tonic drops at the end (``t >= t_min + T*w``, always including
      the last event) are counted in the last frame.
    target_size: optional ``(W', H')`` spatial downsampling: an event at
      ``(x, y)`` lands in ``(x*W'//W, y*H'//H)`` (sum pooling of counts; equal
      to ``tonic.transforms.Downsample(spatial_factor=W'/W)`` when the factor
      is exact in floating point, e.g. 128 -> 64 or 32).
    dtype: dtype of the result.

  Returns:
    ``[T, H', W', P]`` event counts (channels last), ``dtype``.

  Raises:
    ValueError: ``n_time_bins < 1``, events outside the sensor, bad ``split_by``.
  """
  w_s, h_s, p_s = (int(v) for v in sensor_size)
  t_bins = int(n_time_bins)
  if t_bins < 1:
    raise ValueError(f"n_time_bins must be >= 1, got {n_time_bins}")
  w_o, h_o = (w_s, h_s) if target_size is None else (int(target_size[0]), int(target_size[1]))
  frames_shape = (t_bins, h_o, w_o, p_s)
  n = len(events)
  if n == 0:
    return np.zeros(frames_shape, dtype)
  x = np.asarray(events["x"], np.int64)
  y = np.asarray(events["y"], np.int64)
  t = np.asarray(events["t"], np.int64)
  p = np.asarray(events["p"], np.int64)
  if x.min() < 0 or x.max() >= w_s or y.min() < 0 or y.max() >= h_s:
    raise ValueError(f"event coordinates outside sensor (W, H) = {(w_s, h_s)}")
  if p_s == 1:
    p = np.zeros_like(p)
  elif p.min() < 0 or p.max() >= p_s:
    raise ValueError(f"polarities must be in [0, {p_s})")
  if target_size is not None:
    x = x * w_o // w_s
    y = y * h_o // h_s
  if split_by == "number":
    per = n // t_bins
    if per > 0:
      b = np.minimum(np.arange(n, dtype=np.int64) // per, t_bins - 1)
    else:  # fewer events than frames: SpikingJelly puts all in the last one
      b = np.full(n, t_bins - 1, np.int64)
  elif split_by == "time":
    t0 = t.min()
    width = max((int(t.max()) - int(t0)) // t_bins, 1)
    b = np.minimum((t - t0) // width, t_bins - 1)
  else:
    raise ValueError(f"split_by must be 'number' or 'time', got {split_by!r}")
  flat = ((b * h_o + y) * w_o + x) * p_s + p
  counts = np.bincount(flat, minlength=t_bins * h_o * w_o * p_s)
  return counts.reshape(frames_shape).astype(dtype)


def bin_frames(frames: Any, timesteps: int) -> Any:
  """Sums ``F`` consecutive frames into ``T = timesteps`` frames; drops none.

  Frames are event counts, so a group of frames is merged by SUMMING them (the
  counts of the longer time bin), not averaging. When ``F`` is a multiple of
  ``T`` every group is ``F // T`` frames; otherwise group ``g`` is frames
  ``[g*F//T, (g+1)*F//T)``, ``T`` consecutive groups whose sizes differ by at
  most one. ``bin_frames(x, F)`` returns ``x``. Total counts are preserved:
  ``bin_frames(x, T).sum() == x.sum()``.

  Args:
    frames: ``[B, F, H, W, C]`` (any trailing dims), NumPy or JAX (a JAX input
      gives a JAX result; jit-safe, ``timesteps`` static).
    timesteps: ``T``, ``1 <= T <= F``.

  Returns:
    ``[B, T, H, W, C]``; float inputs keep their dtype, integer and bool inputs
    are summed in at least int32 (uint8 counts would overflow).

  Raises:
    ValueError: ``T < 1``, or ``F < T`` (fewer frames than timesteps: reload the
      events with ``n_time_bins=T`` instead of repeating frames).
  """
  t = int(timesteps)
  if frames.ndim < 2:
    raise ValueError(f"frames must be [B, F, ...], got shape {tuple(frames.shape)}")
  f = int(frames.shape[1])
  if t < 1:
    raise ValueError(f"timesteps must be >= 1, got {timesteps}")
  if f < t:
    raise ValueError(
        f"{f} frames cannot fill {t} timesteps; bin the events into at least {t} frames: "
        f"--config.dvs.frames={t} for a launcher, or load_arrays('dvs128_gesture', ..., "
        f"n_time_bins={t}) from Python")
  if f == t:
    return frames
  starts = (np.arange(t) * f) // t  # first frame of each group
  if is_jax_array(frames):
    import jax  # lazy
    import jax.numpy as jnp

    group = np.searchsorted(starts, np.arange(f), side="right") - 1  # [F] -> group
    x = frames if jnp.issubdtype(frames.dtype, jnp.floating) else frames.astype(jnp.int32)
    out = jax.ops.segment_sum(jnp.moveaxis(x, 1, 0), jnp.asarray(group), num_segments=t,
                              indices_are_sorted=True)
    return jnp.moveaxis(out, 0, 1)
  frames = np.asarray(frames)
  if not np.issubdtype(frames.dtype, np.floating):
    frames = frames.astype(np.result_type(frames.dtype, np.int32))
  return np.add.reduceat(frames, starts, axis=1)


_DVS_HELP = (
    "tonic cannot download offline. On a machine with internet run "
    "`python -c \"import tonic; tonic.datasets.DVSGesture(save_to='DIR', "
    "train=True); tonic.datasets.DVSGesture(save_to='DIR', train=False)\"` "
    "(or fetch tonic's ibmGestureTrain.tar.gz / ibmGestureTest.tar.gz from "
    "tonic.datasets.DVSGesture.train_url / test_url), then copy DIR/DVSGesture "
    "here so that DIR/DVSGesture/ibmGestureTrain.tar.gz and the extracted "
    "DIR/DVSGesture/ibmGestureTrain/user01_fluorescent/0.npy ... exist (same "
    "for ibmGestureTest; tonic checks that the archive file is present), and "
    "pass data_dir=DIR (launchers: --config.data_dir=DIR) or set SNNAX_NAS_DATA_DIR=DIR.")


def dvs_source(split: str, data_dir: Optional[str],
               n_time_bins: int = DVS_DEFAULT_TIMESTEPS,
               size: Optional[int] = None, split_by: str = "number",
               dtype: Any = np.float32) -> Source:
  """DVS128 Gesture recordings, each framed on read; see :func:`load_dvs128_gesture`.

  Raises:
    ValueError: bad split, ``n_time_bins`` or ``size`` below 1.
    FileNotFoundError: data missing (the message says where to put it).
    MissingTonicError: tonic is not installed (the message is the install command).
  """
  if split not in ("train", "test"):
    raise ValueError(f"dvs128_gesture: split must be 'train' or 'test', got {split!r}")
  if int(n_time_bins) < 1:
    raise ValueError(f"dvs128_gesture: n_time_bins must be >= 1 (frames per recording, "
                     f"usually the network's timesteps T), got {n_time_bins}")
  if size is not None and int(size) < 1:
    raise ValueError(f"dvs128_gesture: size must be >= 1 (frame side, e.g. 32) or None "
                     f"for the full 128, got {size}")
  root = os.path.expanduser(data_dir or default_data_dir())
  train = split == "train"
  folder = "ibmGestureTrain" if train else "ibmGestureTest"
  loc = pathlib.Path(root) / "DVSGesture"
  archive = loc / f"{folder}.tar.gz"
  n_npy = len(list((loc / folder).glob("**/*.npy"))) if (loc / folder).is_dir() else 0
  if not archive.is_file() or n_npy < 100:
    raise FileNotFoundError(
        f"DVS128 Gesture ({split}) not found under {loc} (archive present: "
        f"{archive.is_file()}, extracted .npy files: {n_npy}). " + _DVS_HELP)
  tonic = import_tonic()

  ds = tonic.datasets.DVSGesture(save_to=root, train=train)
  sensor = tuple(int(v) for v in ds.sensor_size)
  target = None if size is None else (int(size), int(size))
  labels = np.asarray(ds.targets, np.int32)

  def getter(idx: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    h, w = (sensor[1], sensor[0]) if target is None else (target[1], target[0])
    out = np.empty((idx.size, int(n_time_bins), h, w, sensor[2]), dtype)
    for k, i in enumerate(idx):
      events, _ = ds[int(i)]
      out[k] = events_to_frames(events, sensor, n_time_bins, split_by=split_by,
                                target_size=target, dtype=dtype)
    return out, labels[idx]

  return Source(len(ds), getter)


def load_dvs128_gesture(split: str = "train", data_dir: Optional[str] = None,
                        n_time_bins: int = DVS_DEFAULT_TIMESTEPS,
                        size: Optional[int] = None, split_by: str = "number",
                        dtype: Any = np.float32) -> Tuple[np.ndarray, np.ndarray]:
  """Loads DVS128 Gesture as count frames.

  Reads events with ``tonic.datasets.DVSGesture(save_to=data_dir,
  train=split == "train")`` (tonic's preprocessed release, timestamps in
  microseconds at millisecond precision) and frames each recording with
  :func:`events_to_frames`. For a network of ``T`` timesteps pass
  ``n_time_bins=T``: each recording is then binned straight into ``T`` frames.

  Args:
    split: ``"train"`` (1,077 recordings) or ``"test"`` (264).
    data_dir: folder holding tonic's ``DVSGesture/``; ``None`` ->
      :func:`default_data_dir`.
    n_time_bins: frames per recording ``T`` (LightSNN: 16).
    size: optional output side length (e.g. 32 or 64): spatial sum-pooling
      of the 128x128 sensor (see ``target_size`` of :func:`events_to_frames`).
    split_by: ``"number"`` (SpikingJelly/LightSNN) or ``"time"`` (tonic
      ``ToFrame(n_time_bins=T)``).
    dtype: frame dtype. Memory: train at 128x128, T=16, float32 is ~2.3 GB.

  Returns:
    ``(frames dtype [N, T, H, W, 2], labels int32 [N])``, 11 classes.

  Raises:
    FileNotFoundError: data missing (message says where to put it).
    MissingTonicError: tonic is not installed (message: ``pip install tonic``).
  """
  src = dvs_source(split, data_dir, n_time_bins=n_time_bins, size=size,
                   split_by=split_by, dtype=dtype)
  return src.get(np.arange(len(src)))
