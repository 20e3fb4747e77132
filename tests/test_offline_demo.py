"""The quick start's second block, offline: a search on the bundled
``cifar10_sample``, training from the search on the sample's own train and
test splits, and the evaluation at 8 bits with the NIR graph and the spike
raster (the jobs the three launchers call, at tiny sizes)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from snnax_nas import configs
from snnax_nas import jobs
from snnax_nas.jobs import evaluate as evaluate_job

pytest.importorskip("nir")


@pytest.mark.slow
def test_search_train_evaluate_on_the_bundled_sample(tmp_path):
  search_dir, train_dir = str(tmp_path / "search"), str(tmp_path / "train")
  search = configs.get_config("search")  # dataset: cifar10_sample
  search.update(num_candidates=4)
  search.network.update(width=4, hidden=32, timesteps=2, cells_per_stage=1)
  search.scoring.update(batch_size=8, repeats=1, chunk_size="2")
  found = jobs.search.run(search, search_dir)

  train = configs.get_config("train")
  train.from_search = search_dir
  train.network.linear_init = "fan_in"
  train.training.update(epochs=1, batch_size=16, max_train_examples=64, max_test_examples=32)
  given = {"network.linear_init", "training.epochs", "training.batch_size",
           "training.max_train_examples", "training.max_test_examples"}
  summary = jobs.train.run(train, train_dir, given=given)
  assert summary["genotype"] == found.genotype
  assert summary["dataset"] == "cifar10_sample" and not summary["test_is_train"]
  assert summary["train_examples"] == 64 and summary["test_examples"] == 32

  evaluate = configs.get_config("evaluate")
  evaluate.update(weight_bits=8, nir=True, raster=2)
  ev = jobs.evaluate.run(evaluate, train_dir)
  assert ev.split == "test" and ev.weight_bits == 8
  assert ev.num_examples == 500  # the sample's whole test split
  assert 0.0 <= ev.accuracy <= 1.0 and np.isfinite(ev.loss)
  assert ev.weight_bytes < 4 * ev.params  # quantised
  with open(evaluate_job.result_path(train_dir, "test", 8)) as f:
    assert json.load(f)["accuracy"] == ev.accuracy
  assert os.path.getsize(evaluate_job.nir_path(train_dir, 8)) > 0
  assert os.path.getsize(evaluate_job.raster_path(train_dir, "test", 8)) > 0
