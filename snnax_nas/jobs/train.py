r"""The train job: a searched architecture trained (SNASNet recipe), as
``run(config, workdir)``; ``launch.train`` is its command line (examples in
its docstring).

The config is :mod:`snnax_nas.configs.train` (presets ``small``, the default, and
``reference``). ``config.genotype`` takes the string launch.search prints:
one genotype for every cell, or per-cell genotypes joined with ``|``.
``config.from_search=WORKDIR`` reads the search back
(:func:`snnax_nas.workdir.load_run`): its genotype, its ``network`` section
and its dataset (``cifar10_sample`` becomes ``cifar10``); fields given on the
command line win (``run``'s ``given``).

Writes to ``workdir``: ``config.json`` (the workdir record:
:mod:`snnax_nas.workdir`), ``metrics.jsonl`` and ``metrics.csv`` (one row per
epoch: train/test loss and accuracy, SAR, per-layer firing rates, epoch time,
images/s, peak memory), TensorBoard event files under ``tb/`` (tensorboardX,
no TensorFlow), ``accuracy.png`` and, at the end, ``summary.json`` (its
``config`` is the full network). Checkpoints (every epoch, the last
``training.keep_checkpoints``) go to ``--checkpoint_dir`` (default
``WORKDIR/checkpoints``; summary.json records where). The network is the
flax Module :class:`snnax_nas.models.SpikingNetwork` and the checkpoints hold
its variables. ``training.weight_bits`` below 32 trains quantisation-aware
(every kernel fake-quantised per output channel in the forward, straight-through
gradient; the test metrics are the quantised network's); evaluate any run at
any precision with ``launch.evaluate``. ``network.linear_init=fan_in`` draws
the classifier so that it fires at initialisation at small widths (the
default ``reference`` is SNASNet's N(0, 0.01²)). Resumable: a killed run (even ``kill -9``) rerun
with the same command continues from its last checkpoint, and the metrics
files hold every epoch exactly once.
"""

from __future__ import annotations

import os
import time
from typing import Iterable
from typing import Optional

from absl import logging
import jax
import numpy as np

from snnax_nas import configs
from snnax_nas import data as data_lib
from snnax_nas import evaluate
from snnax_nas import files
from snnax_nas import genotype as genotype_lib
from snnax_nas import memory
from snnax_nas import network
from snnax_nas import quant
from snnax_nas import train
from snnax_nas import workdir as workdir_lib
from snnax_nas.jobs import common

SUMMARY = "summary.json"


def apply_search(config, given: Iterable[str] = ()) -> None:
  """Takes the genotype, the network section and the dataset of the search
  workdir ``config.from_search`` (in place) for every field not in
  ``given`` (dotted names the user set: a launcher's command-line
  overrides). A search on ``cifar10_sample`` (1,024 CIFAR-10 training
  images, no test split) trains on ``cifar10``.

  Raises:
    ValueError: not a search workdir, or the search has not finished.
  """
  given = set(given)
  where = config.from_search
  try:
    run_ = workdir_lib.load_run(where)
  except ValueError as e:
    raise ValueError(f"--config.from_search: {e}") from None
  if run_.job != "search":
    raise ValueError(f"--config.from_search: {where!r} holds a {run_.job} run, not a search")
  if not run_.genotypes:
    raise ValueError(f"--config.from_search: {where!r} has no genotype (has the search "
                     "finished?)")
  config.genotype = run_.genotypes[0]
  for key, value in run_.config["network"].items():
    if f"network.{key}" not in given and key in config.network and value is not None:
      config.network[key] = value
  if "dataset" not in given and run_.config.get("dataset"):
    dataset = run_.config["dataset"]
    config.dataset = "cifar10" if dataset == "cifar10_sample" else dataset
    if dataset == "cifar10_sample":
      common.warn("--config.from_search: the search scored the bundled cifar10_sample (1,024 "
                  "training images, no test split), so this run trains on cifar10 (the tfds "
                  "dataset: its files under --config.data_dir or TFDS_DATA_DIR); give "
                  "--config.dataset=npz:... or folder:... to train on other data")


def parse_architecture(config, info) -> tuple[network.NetworkConfig, np.ndarray]:
  """``(cfg, genotypes [L, 4, 4])`` of ``config.genotype``.

  Raises:
    ValueError: a malformed genotype, or a backward edge without
      ``network.backward`` (the message names the genotype).
  """
  cfg = configs.network_from_job_config(config.network, info)
  common.check_direction(config.genotype, cfg.ops, cfg.backward)
  return cfg, genotype_lib.as_genotypes([config.genotype], cfg)[0]


def load_data(name: str, data_dir, info, training, timesteps: int, **options):
  """Train and test arrays, cut to ``training.max_*_examples``; event frames
  are summed into ``timesteps`` frames (:func:`snnax_nas.data.bin_frames`:
  all frames used, none cut).

  Raises:
    ValueError: a limit below 1, an empty split, labels outside the classes,
      fewer frames than timesteps, and the loaders' errors.
  """
  common.check_example_limits(training)
  train_x, train_y = data_lib.first_examples(
      *data_lib.load_arrays(name, "train", data_dir, **options), training.max_train_examples)
  test_x, test_y = data_lib.first_examples(
      *data_lib.load_arrays(name, train.default_test_split(name), data_dir, **options),
      training.max_test_examples)
  if info.is_event:
    train_x, test_x = data_lib.bin_frames(train_x, timesteps), data_lib.bin_frames(test_x,
                                                                                   timesteps)
  for split, y in (("train", train_y), ("test", test_y)):
    if not len(y):
      raise ValueError(f"{name}: the {split} split is empty")
    if y.min() < 0 or y.max() >= info.num_classes:
      raise ValueError(f"{name} {split}: labels outside 0..{info.num_classes - 1}")
  return (train_x, np.asarray(train_y, np.int32)), (test_x, np.asarray(test_y, np.int32))


def report(summary: Optional[dict], workdir: str) -> str:
  """The line ``launch.train`` prints."""
  if summary is None:
    return ""
  acc = summary["final_test_accuracy"]
  measured = ("accuracy on the TRAINING data" if summary["test_is_train"]
              else "test accuracy")
  bits = summary["weight_bits"]
  bits = "" if bits == 32 else f" ({bits}-bit weights, QAT)"
  classes = summary.get("num_classes")
  inferred = " inferred from the labels" if summary.get("classes_inferred") else ""
  classes = f", {classes} classes{inferred}" if classes else ""
  return (f"trained {summary['genotype']}{bits}: {summary['epochs']} epochs, {measured} "
          f"{100 * acc:.2f}%{classes}, SAR {summary['sar']:.4f}, {summary['params']:,} params "
          f"({summary['weight_bytes'] / 1e6:.2f} MB), {summary['images_per_sec']:.1f} img/s; "
          f"wrote {os.path.join(workdir, SUMMARY)}")


def _check_same_checkpoints(workdir: str, checkpoint_dir: Optional[str], new: bool) -> None:
  """Refuses to resume a run whose checkpoints were written elsewhere: with
  another ``--checkpoint_dir`` it would find none and train again from
  scratch over the finished run's metrics."""
  summary = files.read_json(os.path.join(workdir, SUMMARY)) if not new else None
  if not summary or "checkpoint_dir" not in summary:
    return
  recorded = evaluate.checkpoint_dir_of(workdir, summary)
  now = checkpoint_dir or os.path.join(workdir, "checkpoints")
  if os.path.abspath(recorded) != os.path.abspath(now):
    raise ValueError(f"workdir {workdir!r} was trained with its checkpoints in {recorded}, not "
                     f"{now}; rerun with --checkpoint_dir={recorded} to resume it, or use "
                     "another --workdir")


def run(config, workdir: str, *, given: Iterable[str] = (), checkpoint_dir: Optional[str] = None,
        command: Optional[str] = None) -> Optional[dict]:
  """Trains (or resumes training) ``config.genotype`` and writes the run's
  metrics, checkpoints and ``summary.json`` into ``workdir``.

  Args:
    config: a :mod:`snnax_nas.configs.train` config: exactly one of
      ``genotype`` and ``from_search``.
    workdir: the run's directory (claimed: see :mod:`snnax_nas.workdir`).
    given: with ``from_search``, dotted names of fields the search must not
      replace (``launch.train`` passes its command-line overrides).
    checkpoint_dir: where checkpoints go (default ``WORKDIR/checkpoints``).
    command: the command line to record in ``summary.json``.

  Returns:
    The ``summary.json`` written (None on a process other than 0).

  Raises:
    ValueError: a bad config value, an unreadable dataset or search, a
      workdir holding another run (one line naming the field).
  """
  t0 = time.perf_counter()
  config = common.own_config(config)
  tr = config.training
  if bool(config.genotype) == bool(config.from_search):
    raise ValueError("give exactly one of --config.genotype and --config.from_search")
  common.check_training(tr, "epochs", "batch_size", "eval_every", "keep_checkpoints")
  quant.check_weight_bits(tr.weight_bits, "--config.training.weight_bits")
  if config.from_search:
    apply_search(config, given)
  text = config.genotype
  options = common.dataset_options(config, config.network.timesteps)
  info = data_lib.get_info(config.dataset, **options)
  cfg, genotypes = parse_architecture(config, info)
  if config.dataset == "cifar10_sample":
    raise ValueError("cifar10_sample has no test split; use cifar10 or npz:PATH")
  train_data, test_data = load_data(config.dataset, config.data_dir, info, tr, cfg.timesteps,
                                    **options)
  if tr.batch_size % jax.device_count():
    raise ValueError(f"--config.training.batch_size={tr.batch_size} is not a multiple of "
                     f"the {jax.device_count()} devices")
  if len(train_data[1]) < tr.batch_size:
    raise ValueError(f"{len(train_data[1])} training examples is fewer than one batch of "
                     f"{tr.batch_size}")
  # One file for every split (npz:FILE without {split}): the "test" accuracy
  # is measured on training data. Allowed (a quick check that a network can
  # fit), but said up front and recorded in summary.json.
  test_is_train = not data_lib.has_separate_splits(config.dataset)
  if test_is_train:
    common.warn(f"--config.dataset={config.dataset} is one file for every split: the test "
                "accuracy is measured on the TRAINING data (put '{split}' in the path for "
                "separate train/test files)")
  if checkpoint_dir is not None and os.path.exists(checkpoint_dir) and not os.path.isdir(
      checkpoint_dir):
    raise ValueError(f"--checkpoint_dir={checkpoint_dir!r} is a file, not a directory")
  new = common.claim_workdir("train", config, cfg, workdir, write=jax.process_index() == 0)
  _check_same_checkpoints(workdir, checkpoint_dir, new)
  fingerprint = {"dataset": config.dataset, "genotype": text, "cfg": repr(cfg),
                 "loss": tr.loss, "augment": tr.augment, "momentum": tr.momentum,
                 "weight_decay": tr.weight_decay, "train_examples": len(train_data[1]),
                 "per_epoch_schedule": tr.per_epoch_schedule, "weight_bits": tr.weight_bits}
  logging.info("training %s on %s (%d train / %d test), %s", text, config.dataset,
               len(train_data[1]), len(test_data[1]), cfg)
  title = (f"{text}  {config.dataset}  width {cfg.width}  T {cfg.timesteps}  "
           f"batch {tr.batch_size}  lr {tr.lr}")
  result = train.train_and_evaluate(
      cfg, genotypes, info, train_data, test_data, epochs=tr.epochs,
      batch_size=tr.batch_size, lr=tr.lr, momentum=tr.momentum,
      weight_decay=tr.weight_decay, loss=tr.loss, augment=tr.augment,
      seed=config.seed, eval_every=tr.eval_every, workdir=workdir,
      checkpoint_dir=checkpoint_dir, keep_checkpoints=tr.keep_checkpoints,
      log_every=tr.log_every, fingerprint=fingerprint, plot_title=title,
      per_epoch_schedule=tr.per_epoch_schedule, weight_bits=tr.weight_bits)
  if jax.process_index() != 0:
    return None
  summary = dict(result.summary)
  summary.update(
      genotype=text, dataset=config.dataset, train_examples=len(train_data[1]),
      test_examples=len(test_data[1]), batch_size=tr.batch_size, lr=tr.lr,
      loss=tr.loss, seed=config.seed, wall_time_s=time.perf_counter() - t0,
      test_is_train=test_is_train, config=configs.network_to_json(cfg),
      # A spec's class count is the largest label + 1: say so (labels 0..11
      # in a 10-class-looking file make a 12-class network).
      num_classes=info.num_classes, classes_inferred=config.dataset not in data_lib.DATASETS,
      weight_bits=tr.weight_bits, linear_init=cfg.linear_init,
      weight_bytes_at_bits=int(memory.quantized_weight_bytes(genotypes[None], cfg,
                                                             tr.weight_bits)[0]),
      # Relative unless given: a copied run owns (and evaluates) its own copy.
      checkpoint_dir=os.path.abspath(checkpoint_dir) if checkpoint_dir else "checkpoints")
  if command is not None:
    summary["command"] = command
  summary = workdir_lib.json_ready(summary)
  files.write_json(os.path.join(workdir, SUMMARY), summary)
  return summary
