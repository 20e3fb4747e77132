"""Shared settings of the training tests (tests/test_train_*.py).

Tiny settings throughout (width 4, hidden 32, T 2, 16x16 images): compile
time dominates, so in-process tests share one config and subprocess tests
share a persistent JAX compilation cache.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np

from snnax_nas import configs
from snnax_nas import data as data_lib
from snnax_nas import network

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
# Small architectures compile fast: one conv3x3 edge (0->3) per cell for the
# training tests, four (0->1, 0->3, 1->2, 2->3) for the spike-count check.
GENOTYPE = "0003/0000/0000/0000"
G = np.array([[0, 0, 0, 3], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
G4 = np.array([[0, 3, 0, 3], [0, 0, 3, 0], [0, 0, 0, 3], [0, 0, 0, 0]])
CFG = network.network_config(None, input_shape=(16, 16, 3), num_classes=2, width=4, hidden=32,
                             timesteps=2, vote_group=2)
CFG1 = dataclasses.replace(CFG, timesteps=1)  # compiles faster where T does not matter
INFO = data_lib.DatasetInfo("synthetic", (16, 16, 3), 2, (0.5,) * 3, (0.25,) * 3, None, 2)
TINY_FLAGS = ["--config.network.width=4", "--config.network.hidden=32", "--config.network.timesteps=2",
              "--config.training.batch_size=16"]


def separable(n: int, seed: int = 0):
  """Two classes: dark vs bright noisy uint8 images [n, 16, 16, 3], balanced."""
  rng = np.random.default_rng(seed)
  labels = (np.arange(n) % 2).astype(np.int32)
  base = np.where(labels == 1, 170, 70).astype(np.uint8)[:, None, None, None]
  images = (base + rng.integers(0, 40, (n, 16, 16, 3))).astype(np.uint8)
  return images, labels


def run_script(script: str, env: dict, devices: int, *args, timeout: int = 300):
  """Runs ``script`` (python source) in a subprocess with ``devices`` host CPU
  devices; ``sys.path`` holds the repository root and tests/."""
  e = dict(env, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
           PYTHONPATH=os.pathsep.join([ROOT, TESTS, env.get("PYTHONPATH", "")]))
  return subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True,
                        text=True, timeout=timeout, env=e, cwd=ROOT)


def launch(module, args, env, timeout=600):
  """Runs ``python -m module args`` from the repository root."""
  return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                        timeout=timeout, env=env, cwd=ROOT)


def write_npz_dataset(directory, n_train: int = 48, n_test: int = 16) -> str:
  """``npz:DIR/{split}.npz`` of separable images (two classes); returns the spec."""
  for split, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
    x, y = separable(n, seed)
    np.savez(os.path.join(directory, f"{split}.npz"), image=x, label=y)
  return f"npz:{directory}/{{split}}.npz"


def train_workdir(workdir: str, dataset: str, *, weight_bits: int = 32, epochs: int = 1,
                  linear_init: str = "fan_in"):
  """A train workdir made in-process by the train job
  (:func:`snnax_nas.jobs.train.run`) for the tiny network of
  :data:`GENOTYPE`; returns ``(summary, history)``: its ``summary.json`` and
  its ``metrics.jsonl`` rows."""
  import json

  from snnax_nas.jobs import train as train_job
  config = configs.get_config("train")
  config.dataset, config.genotype = dataset, GENOTYPE
  config.network.update(width=4, hidden=32, timesteps=2, linear_init=linear_init)
  config.training.update(batch_size=16, epochs=epochs, weight_bits=weight_bits, augment=False,
                         lr=0.5, log_every=0)
  summary = train_job.run(config, workdir)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    history = [json.loads(line) for line in f if line.strip()]
  return summary, history
