r"""Trains a searched architecture (SNASNet recipe) and reports accuracy and spikes.

  python -m launch.train --genotype=0303/0030/2002/0200 --dataset=cifar10 --workdir=runs/train
  python -m launch.train --from_search=runs/search --epochs=300 --workdir=runs/train
  python -m launch.train --genotype='0303/0030/0003/0000' \
      --dataset='npz:/data/cifar10/{split}10k.npz' --width=16 --timesteps=3 \
      --epochs=10 --workdir=runs/cifar10 --checkpoint_dir=runs/ckpt

``--genotype`` takes the string launch.search prints: one genotype for every
cell, or per-cell genotypes joined with ``|``. ``--from_search=WORKDIR`` reads
the genotype from ``WORKDIR/summary.json`` (key ``best_genotype`` or
``genotype``) and the network flags (ops, backward, cells, width, timesteps,
hidden, dataset; ``cifar10_sample`` becomes ``cifar10``) from its ``config``;
flags given on the command line win.

Writes to ``--workdir``: ``metrics.jsonl`` and ``metrics.csv`` (one row per
epoch: train/test loss and accuracy, SAR, per-layer firing rates, epoch time,
images/s, peak memory), TensorBoard event files under ``tb/`` (tensorboardX,
no TensorFlow), ``accuracy.png`` and, at the end, ``summary.json``.
Checkpoints (every epoch, the last ``--keep_checkpoints``) go to
``--checkpoint_dir`` (default ``WORKDIR/checkpoints``). Resumable: a killed
run (even ``kill -9``) rerun with the same command continues from its last
checkpoint, and the metrics files hold every epoch exactly once.
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app
from absl import flags
from absl import logging
import jax
import numpy as np

from launch import common
from snnax_nas import data as data_lib
from snnax_nas import genotype as genotype_lib
from snnax_nas import network
from snnax_nas import score
from snnax_nas import train

FLAGS = flags.FLAGS
flags.DEFINE_string("genotype", None, "Architecture: '0303/0030/2002/0200', or per-cell "
                    "genotypes joined with '|'.")
flags.DEFINE_string("from_search", None, "A launch.search workdir: take the genotype and the "
                    "network flags from its summary.json.")
flags.DEFINE_string("dataset", "cifar10", "cifar10, cifar100, tinyimagenet, dvs128_gesture, "
                    "cifar10_sample (train only), npz:PATH ('{split}' -> train/test) or "
                    "folder:PATH.")
flags.DEFINE_string("data_dir", None, "Where the dataset lives (tfds data_dir or folder).")
flags.DEFINE_integer("batch_size", 64, "Global batch size (reference 64); a multiple of the "
                     "device count.")
flags.DEFINE_integer("epochs", 300, "Epochs (reference 300).")
flags.DEFINE_float("lr", 0.1, "Initial learning rate; cosine decay to 1% of it.")
flags.DEFINE_float("momentum", 0.9, "SGD momentum.")
flags.DEFINE_float("weight_decay", 5e-4, "Weight decay (applied as decay; see "
                   "snnax_nas.train.make_optimizer).")
flags.DEFINE_boolean("per_epoch_schedule", False, "Step the cosine once per epoch, as the "
                     "reference; default: every step.")
flags.DEFINE_string("ops", "snasnet", "Op set the genotype digits refer to (a preset or a "
                    "comma list).")
flags.DEFINE_integer("width", 16, "Stem / stage-1 width C (reference: 256 CIFAR10, 128).")
flags.DEFINE_integer("cells", 1, "Cells per stage.")
flags.DEFINE_integer("timesteps", 5, "Timesteps T.")
flags.DEFINE_integer("hidden", 1024, "Classifier hidden width.")
flags.DEFINE_integer("second_pool", 2, "Avg-pool size s2 after the last LIF (reference "
                     "CIFAR10 checkpoint: 4).")
flags.DEFINE_float("dropout", 0.5, "Dropout before the classifier.")
flags.DEFINE_boolean("backward", False, "Backward cells (implied by a genotype with "
                     "feedback edges).")
flags.DEFINE_string("loss", "ce", "ce: cross-entropy (SNASNet); mse: MSE to "
                  "one-hot (LightSNN DVS).")
flags.DEFINE_boolean("augment", True, "Random crop + flip of training images.")
flags.DEFINE_integer("eval_every", 1, "Evaluate the test split every N epochs (and last).")
flags.DEFINE_integer("max_train_examples", None, "Use only the first N training examples.")
flags.DEFINE_integer("max_test_examples", None, "Use only the first N test examples.")
flags.DEFINE_integer("dvs_frames", 16, "dvs128_gesture: frames per recording.")
flags.DEFINE_integer("dvs_size", 32, "dvs128_gesture: frame side (sum-pooled from 128).")
flags.DEFINE_string("workdir", None, "Output directory (required).")
flags.DEFINE_string("checkpoint_dir", None, "Checkpoint directory (default WORKDIR/"
                    "checkpoints).")
flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints kept.")
flags.DEFINE_integer("log_every", 50, "Progress line every N steps (0: per epoch only).")
flags.DEFINE_integer("seed", 0, "Seed of weights, data order, dropout and augmentation.")

# summary.json config key of launch.search -> flag name here.
_SEARCH_CONFIG = {"dataset": "dataset", "ops": "ops", "backward": "backward",
                  "cells_per_stage": "cells", "width": "width", "timesteps": "timesteps",
                  "hidden": "hidden", "second_pool": "second_pool"}


def read_search_summary(workdir: str) -> tuple[str, dict]:
  """``(genotype string, config dict)`` from a launch.search workdir.

  Raises:
    ValueError: no summary, unreadable, or no genotype in it.
  """
  path = os.path.join(workdir, "summary.json")
  if not os.path.isfile(path):
    raise ValueError(f"--from_search: {path} not found (has the search finished?)")
  try:
    with open(path) as f:
      summary = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(f"--from_search: cannot read {path}: {e}") from None
  text = summary.get("best_genotype") or summary.get("genotype")
  if not isinstance(text, str):
    raise ValueError(f"--from_search: {path} has no 'best_genotype' or 'genotype'")
  return text, dict(summary.get("config") or {})


def _apply_search_config(config: dict):
  """Network flags from a search's config, unless given on the command line.

  A search on ``cifar10_sample`` (1,024 CIFAR-10 training images, no test
  split) trains on ``cifar10``.
  """
  for key, name in _SEARCH_CONFIG.items():
    if key in config and not FLAGS[name].present:
      value = config[key]
      if key == "dataset" and value == "cifar10_sample":
        value = "cifar10"
      FLAGS[name].value = value


def dataset_options() -> dict:
  return ({"n_time_bins": FLAGS.dvs_frames, "size": FLAGS.dvs_size}
          if FLAGS.dataset == "dvs128_gesture" else {})


def build_config(info: data_lib.DatasetInfo, ops: str, backward: bool) -> network.NetworkConfig:
  """The network of the flags for a dataset (as launch.common: vote groups of 5
  past 10 classes, stem stride 2 from 64x64 inputs)."""
  return network.network_config(
      None, input_shape=info.image_shape, num_classes=info.num_classes, width=FLAGS.width,
      cells_per_stage=FLAGS.cells, timesteps=FLAGS.timesteps, hidden=FLAGS.hidden,
      vote_group=5 if info.num_classes > 10 else 10, second_pool=FLAGS.second_pool,
      stem_stride=2 if info.image_shape[0] >= 64 else 1, ops=ops, backward=backward,
      dropout=FLAGS.dropout)


def parse_architecture(text: str, info, ops: str) -> tuple[network.NetworkConfig, np.ndarray]:
  """``(cfg, genotypes [L, 4, 4])``; backward cells when the genotype has
  feedback edges."""
  cells = [genotype_lib.parse_genotype(c, ops) for c in text.split("|")]
  backward = FLAGS.backward or any(genotype_lib.has_backward(c).any() for c in cells)
  cfg = build_config(info, ops, backward)
  return cfg, score.as_genotypes([text], cfg)[0]


def load_data(name: str, data_dir, info, **options):
  """Train and test arrays, cut to ``--max_*_examples``."""
  train_x, train_y = data_lib.load_arrays(name, "train", data_dir, **options)
  test_x, test_y = data_lib.load_arrays(name, train.default_test_split(name), data_dir, **options)
  if FLAGS.max_train_examples:
    train_x, train_y = train_x[:FLAGS.max_train_examples], train_y[:FLAGS.max_train_examples]
  if FLAGS.max_test_examples:
    test_x, test_y = test_x[:FLAGS.max_test_examples], test_y[:FLAGS.max_test_examples]
  for split, y in (("train", train_y), ("test", test_y)):
    if not len(y):
      raise ValueError(f"{name}: the {split} split is empty")
    if y.min() < 0 or y.max() >= info.num_classes:
      raise ValueError(f"{name} {split}: labels outside 0..{info.num_classes - 1}")
  return (train_x, np.asarray(train_y, np.int32)), (test_x, np.asarray(test_y, np.int32))


def main(argv):
  if len(argv) > 1:
    common.fail(f"unexpected arguments {argv[1:]}")
  t0 = time.perf_counter()
  common.use_cpu_cores()
  if bool(FLAGS.genotype) == bool(FLAGS.from_search):
    common.fail("give exactly one of --genotype and --from_search")
  common.check_training_flags("epochs", "batch_size", "eval_every", "keep_checkpoints")
  try:
    text = FLAGS.genotype
    if FLAGS.from_search:
      text, config = read_search_summary(FLAGS.from_search)
      _apply_search_config(config)
    options = dataset_options()
    info = data_lib.get_info(FLAGS.dataset, FLAGS.data_dir, **options)
    cfg, genotypes = parse_architecture(text, info, FLAGS.ops)
    if FLAGS.dataset == "cifar10_sample":
      raise ValueError("cifar10_sample has no test split; use cifar10 or npz:PATH")
    train_data, test_data = load_data(FLAGS.dataset, FLAGS.data_dir, info, **options)
    if FLAGS.batch_size % jax.device_count():
      raise ValueError(f"--batch_size={FLAGS.batch_size} is not a multiple of the "
                       f"{jax.device_count()} devices")
    if len(train_data[1]) < FLAGS.batch_size:
      raise ValueError(f"{len(train_data[1])} training examples is fewer than one batch of "
                       f"{FLAGS.batch_size}")
  except (ValueError, FileNotFoundError) as e:
    common.fail(str(e))
  workdir = common.ensure_workdir(FLAGS.workdir)
  fingerprint = {"dataset": FLAGS.dataset, "genotype": text, "cfg": repr(cfg),
                 "loss": FLAGS.loss, "augment": FLAGS.augment, "momentum": FLAGS.momentum,
                 "weight_decay": FLAGS.weight_decay, "train_examples": len(train_data[1]),
                 "per_epoch_schedule": FLAGS.per_epoch_schedule}
  logging.info("training %s on %s (%d train / %d test), %s", text, FLAGS.dataset,
               len(train_data[1]), len(test_data[1]), cfg)
  title = (f"{text}  {FLAGS.dataset}  width {cfg.width}  T {cfg.timesteps}  "
           f"batch {FLAGS.batch_size}  lr {FLAGS.lr}")
  try:
    result = train.train_and_evaluate(
        cfg, genotypes, info, train_data, test_data, epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size, lr=FLAGS.lr, momentum=FLAGS.momentum,
        weight_decay=FLAGS.weight_decay, loss=FLAGS.loss, augment=FLAGS.augment,
        seed=FLAGS.seed, eval_every=FLAGS.eval_every, workdir=workdir,
        checkpoint_dir=FLAGS.checkpoint_dir, keep_checkpoints=FLAGS.keep_checkpoints,
        log_every=FLAGS.log_every, fingerprint=fingerprint, plot_title=title,
        per_epoch_schedule=FLAGS.per_epoch_schedule)
  except ValueError as e:
    common.fail(str(e))
  if jax.process_index() != 0:
    return
  summary = dict(result.summary)
  summary.update(
      genotype=text, dataset=FLAGS.dataset, train_examples=len(train_data[1]),
      test_examples=len(test_data[1]), batch_size=FLAGS.batch_size, lr=FLAGS.lr,
      loss=FLAGS.loss, seed=FLAGS.seed, wall_time_s=time.perf_counter() - t0,
      config={"ops": str(cfg.ops), "backward": cfg.backward,
              "cells_per_stage": cfg.cells_per_stage, "width": cfg.width,
              "timesteps": cfg.timesteps, "hidden": cfg.hidden,
              "second_pool": cfg.second_pool, "dropout": cfg.dropout,
              "vote_group": cfg.vote_group, "input_shape": list(cfg.input_shape)},
      command=" ".join([os.path.basename(sys.executable), "-m", "launch.train"] + sys.argv[1:]))
  path = os.path.join(workdir, "summary.json")
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(summary, f, indent=2)
    f.write("\n")
  os.replace(tmp, path)
  acc = summary["final_test_accuracy"]
  print(f"trained {text}: {summary['epochs']} epochs, test accuracy "
        f"{100 * acc:.2f}%, SAR {summary['sar']:.4f}, {summary['params']:,} params "
        f"({summary['weight_bytes'] / 1e6:.2f} MB), {summary['images_per_sec']:.1f} img/s; "
        f"wrote {path}")


if __name__ == "__main__":
  app.run(main)
