"""The scorer benchmark's network config and image batches (scale presets,
flag overrides, the bundled sample or an npz of 32x32 images)."""

from __future__ import annotations

import numpy as np

from snnax_nas import data
from snnax_nas import network


def make_config(args, ops: str) -> network.NetworkConfig:
  """The benchmark's network config for op-set preset ``ops``."""
  if args.scale == "cifar10":
    base = dict(network.PRESETS["cifar10"])  # width 256, hidden 1024, s2 = 4
    batch = 256
  else:
    base = dict(input_shape=(32, 32, 3), width=16, hidden=256, second_pool=2)
    batch = 64
  base.update(num_classes=args.num_classes, vote_group=args.vote,
              timesteps=args.timesteps, ops=ops, backward=args.backward)
  for flag, field in (("width", "width"), ("hidden", "hidden"), ("s2", "second_pool")):
    if getattr(args, flag) is not None:
      base[field] = getattr(args, flag)
  return network.network_config(None, **base), (args.batch or batch)


def load_images(args, batch: int) -> np.ndarray:
  """Normalised image batches float32 [R, B, 32, 32, 3]."""
  if args.images is None:
    return data.score_batches("cifar10_sample", args.repeats, batch, args.seed)
  raw = np.load(args.images)["image"]
  if raw.ndim != 4 or raw.shape[1:] != (32, 32, 3):
    raise ValueError(f"{args.images}: 'image' has shape {raw.shape}, expected [N, 32, 32, 3]")
  need = args.repeats * batch
  rng = np.random.default_rng(args.seed)
  idx = rng.permutation(len(raw))
  idx = np.resize(idx, need)  # wraps around if the file holds fewer images
  x = data.normalize(raw[idx], data.get_info("cifar10"))
  return x.reshape((args.repeats, batch) + x.shape[1:]).astype(np.float32)
