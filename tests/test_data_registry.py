"""Tests of snnax_nas.data.registry and the package surface: names, DatasetInfo,
options, which specs have separate splits, lazy imports."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from snnax_nas import data


def test_import_is_lazy():
  code = ("import sys, snnax_nas.data; "
          "print(any(m.split('.')[0] in ('tensorflow_datasets', 'tonic', "
          "'jax', 'tensorflow', 'torch') for m in sys.modules))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, check=True,
                       cwd=os.path.join(os.path.dirname(__file__), ".."))
  assert out.stdout.strip() == "False"


def test_public_names():
  for name in data.__all__:
    assert hasattr(data, name), name
  # Every name callers use as snnax_nas.data.X stays importable.
  for name in ("DatasetInfo", "DATASETS", "SAMPLE_PATH", "Batches", "augment_batch",
               "augment_batch_jax", "crop_and_flip", "crop_and_flip_jax",
               "default_data_dir", "events_to_frames", "get_info", "iterate_batches",
               "load_arrays", "load_dvs128_gesture", "normalize", "score_batches"):
    assert name in data.__all__, name


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
  with pytest.raises(dataclasses.FrozenInstanceError):
    c10.num_classes = 3  # frozen


def test_get_info_dvs_options():
  info = data.get_info("dvs128_gesture", n_time_bins=5, size=None)
  assert info.timesteps_native == 5 and info.image_shape == (128, 128, 2)
  assert data.get_info("dvs128_gesture", n_time_bins=None) == data.DATASETS["dvs128_gesture"]
  for bad in ({"n_time_bins": 0}, {"size": 0}, {"n_time_bins": -3}):
    with pytest.raises(ValueError, match="must be >= 1"):
      data.get_info("dvs128_gesture", **bad)


def test_options_for_a_dataset_without_options():
  with pytest.raises(ValueError, match="n_time_bins"):
    data.get_info("cifar10", n_time_bins=4)
  with pytest.raises(ValueError, match="size"):
    data.load_arrays("cifar10_sample", "train", size=3)
  with pytest.raises(ValueError, match="frames"):
    data.get_info("dvs128_gesture", frames=4)  # a typo of n_time_bins


def test_unknown_name():
  with pytest.raises(ValueError, match="no_such_set"):
    data.load_arrays("no_such_set", "train")
  with pytest.raises(ValueError, match="no_such_set"):
    data.get_info("no_such_set")
  with pytest.raises(ValueError, match="no_such_set"):
    data.has_separate_splits("no_such_set")


def test_has_separate_splits():
  assert data.has_separate_splits("npz:/data/{split}10k.npz")
  assert not data.has_separate_splits("npz:/data/train10k.npz")
  for name in ("cifar10_sample", "cifar10", "cifar100", "tinyimagenet", "dvs128_gesture", "folder:/x"):
    assert data.has_separate_splits(name), name


def test_spec_info_from_data(tmp_path):
  frames = np.zeros((4, 3, 5, 5, 2), np.float32)
  np.savez(tmp_path / "ev.npz", image=frames, label=np.array([0, 1, 2, 1]))
  info = data.get_info(f"npz:{tmp_path}/ev.npz")
  assert info.is_event and info.timesteps_native == 3 and info.image_shape == (5, 5, 2)
  assert info.num_classes == 3 and info.crop_pad == 0
