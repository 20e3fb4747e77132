"""Tests of snnax_nas.data.tfds: offline through tfds' mock_data, and the
message when the ArrayRecord files are missing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from snnax_nas import data


@pytest.mark.parametrize("name,classes", [("cifar10", 10), ("cifar100", 100)])
def test_tfds_mock(name, classes):
  import tensorflow_datasets as tfds
  with tfds.testing.mock_data(num_examples=5):
    images, labels = data.load_arrays(name, "train")
    test_images, _ = data.load_arrays(name, "test")
    batches = data.score_batches(name, 2, 3, seed=0)
  assert images.shape == (5, 32, 32, 3) and images.dtype == np.uint8
  assert test_images.shape == (5, 32, 32, 3)
  assert labels.shape == (5,) and labels.dtype == np.int32
  assert labels.min() >= 0 and labels.max() < classes
  assert batches.shape == (2, 3, 32, 32, 3) and batches.dtype == np.float32
  # The random-access path never imports TensorFlow.
  assert "tensorflow" not in sys.modules


def test_tfds_missing(tmp_path):
  with pytest.raises(FileNotFoundError) as err:
    data.load_arrays("cifar10", "train", data_dir=str(tmp_path))
  msg = str(err.value)
  assert "tfds build cifar10" in msg and "array_record" in msg
  assert "data_dir" in msg and str(tmp_path) in msg
