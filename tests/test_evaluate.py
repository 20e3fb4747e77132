"""Quantisation-aware training, snnax_nas.evaluate (PTQ evaluation of a run)
and the train and evaluate jobs in process."""

from __future__ import annotations

import dataclasses
import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from train_helpers import CFG1
from train_helpers import GENOTYPE
from train_helpers import INFO
from train_helpers import G
from train_helpers import separable
from train_helpers import train_workdir
from train_helpers import write_npz_dataset

from snnax_nas import configs
from snnax_nas import data as data_lib
from snnax_nas import evaluate
from snnax_nas import memory
from snnax_nas import models
from snnax_nas import quant
from snnax_nas import train
from snnax_nas.jobs import evaluate as evaluate_job
from snnax_nas.jobs import train as train_job


@pytest.mark.slow
def test_qat_gradients_flow_straight_through():
  """The QAT forward's gradient is the float forward's gradient taken at the
  fake-quantised weights (STE), and it reaches every kernel."""
  state = train.create_train_state(jax.random.PRNGKey(0), CFG1, G,
                                   train.make_optimizer(0.1, 1, 1))
  params = jax.tree.map(lambda x: x, state.params)
  params["head"]["fc1"]["kernel"] = params["head"]["fc1"]["kernel"] * 30.0
  images, labels = separable(8)
  x = data_lib.normalize(images, INFO)

  def loss(forward, p):
    logits, _ = forward(p, state.batch_stats, x, jax.random.PRNGKey(3), train=True, probe=None)
    return train.loss_value(logits, labels).mean()

  qat = train.module_forward_fn(CFG1, G, weight_bits=4)
  flt = train.module_forward_fn(CFG1, G)
  g_qat = jax.jit(jax.grad(lambda p: loss(qat, p)))(params)
  g_ste = jax.jit(jax.grad(lambda p: loss(flt, p)))(quant.fake_quantize(params, 4))
  for a, b in zip(jax.tree.leaves(g_qat), jax.tree.leaves(g_ste)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  kernels = [g for g in jax.tree.leaves(g_qat) if g.ndim >= 2]
  assert kernels and all(float(jnp.abs(g).sum()) > 0 for g in kernels)
  # The 4-bit forward differs from the float one (the weights are quantised).
  assert float(loss(qat, params)) != float(loss(flt, params))
  with pytest.raises(ValueError, match="weight_bits"):
    train.module_forward_fn(CFG1, G, weight_bits=5)


@pytest.fixture(scope="module")
def qat_run(tmp_path_factory):
  """A 1-epoch run trained quantisation-aware at 8 bits (fan-in classifier)."""
  root = tmp_path_factory.mktemp("qat")
  dataset = write_npz_dataset(str(root))
  work = str(root / "run")
  _, history = train_workdir(work, dataset, weight_bits=8)
  return work, history


@pytest.mark.slow
def test_ptq_evaluation_of_a_qat_run_equals_its_fake_quant_forward(qat_run):
  work, history = qat_run
  ev = evaluate.evaluate_run(work, weight_bits=8, batch_size=16)
  last = history[-1]
  # The run's own evaluation (fake-quantised forward) and the PTQ network agree.
  assert ev.num_examples == 16 and ev.split == "test" and ev.epoch == 1
  assert ev.accuracy == pytest.approx(last["test_accuracy"], abs=1e-9)
  assert ev.loss == pytest.approx(last["test_loss"], rel=1e-5)
  assert ev.sar == pytest.approx(last["sar"], rel=1e-5)
  assert ev.firing_rates == pytest.approx(last["rates"], rel=1e-5)
  # Logit for logit: the QAT eval forward on the float weights is the float
  # forward on the dequantised per-channel codes.
  trained = evaluate.load_trained_run(work)
  assert trained.weight_bits == 8
  x = data_lib.normalize(separable(8, 3)[0], INFO)
  fake, _ = train.module_forward_fn(trained.config, trained.genotypes, weight_bits=8)(
      trained.variables["params"], trained.variables["batch_stats"], x, None, train=False,
      probe=None)
  ptq = evaluate.quantized_variables(trained.variables, 8)
  plain, _ = train.module_forward_fn(trained.config, trained.genotypes)(
      ptq["params"], ptq["batch_stats"], x, None, train=False, probe=None)
  np.testing.assert_allclose(fake, plain, rtol=1e-6, atol=1e-7)
  assert float(jnp.abs(fake).max()) > 0
  # The byte count is the memory model's, equal to the quantised tree's.
  q = quant.quantize_params(trained.variables["params"], 8)
  assert ev.weight_bytes == quant.quantized_bytes(q)
  assert ev.params == int(memory.param_count([GENOTYPE], trained.config)[0])
  assert json.loads(json.dumps(ev.to_json()))["weight_bits"] == 8


@pytest.mark.slow
def test_evaluate_run_at_each_precision_and_bad_inputs(qat_run, tmp_path):
  work, _ = qat_run
  seen = {}
  for bits in (32, 4):
    ev = evaluate.evaluate_run(work, weight_bits=bits, split="train", batch_size=8,
                               max_examples=12)
    assert ev.num_examples == 12 and ev.split == "train" and 0 <= ev.accuracy <= 1
    seen[bits] = ev.weight_bytes
    assert set(ev.firing_rates) >= {"head/fc_lif", "head/lif", "reduction/lif"}
    assert ev.silent_layers == [k for k, r in ev.firing_rates.items() if r == 0.0]
    assert ev.max_examples == 12 and ev.checkpoint_dir == os.path.join(work, "checkpoints")
  assert seen[4] < seen[32]
  with pytest.raises(ValueError, match="weight_bits"):
    evaluate.evaluate_run(work, weight_bits=5)
  with pytest.raises(ValueError, match="split 'dev'"):
    evaluate.evaluate_run(work, split="dev")
  with pytest.raises(ValueError, match="holds no run"):
    evaluate.evaluate_run(str(tmp_path))


def test_evaluate_model_in_memory_is_evaluate_run(qat_run):
  # A model and variables held in memory (one's own training loop) evaluate
  # as the run's checkpoint does.
  work, _ = qat_run
  trained = evaluate.load_trained_run(work)
  by_run = evaluate.evaluate_run(work, weight_bits=4, split="train", batch_size=8,
                                 max_examples=12)
  dataset = trained.run.config["dataset"]
  x, y = data_lib.first_examples(*data_lib.load_arrays(dataset, "train"), 12)
  model = models.SpikingNetwork(trained.config, trained.genotype)
  in_memory = evaluate.evaluate_model(model, trained.variables, x, y, data_lib.get_info(dataset),
                                      weight_bits=4, batch_size=8, split="train",
                                      epoch=trained.epoch)
  # Equal but for where the run's figures came from (its limit and checkpoint).
  assert by_run.max_examples == 12 and by_run.checkpoint_dir.endswith("checkpoints")
  assert in_memory == dataclasses.replace(by_run, max_examples=None, checkpoint_dir=None)
  with pytest.raises(ValueError, match="weight_bits=3"):
    evaluate.evaluate_model(model, trained.variables, x, y, data_lib.get_info(dataset),
                            weight_bits=3)


def test_train_job_qat_then_evaluate_job(tmp_path):
  dataset = write_npz_dataset(str(tmp_path))
  work = str(tmp_path / "run")
  config = configs.get_config("train")
  config.dataset, config.genotype = dataset, GENOTYPE
  config.network.update(width=4, hidden=32, timesteps=2, linear_init="fan_in")
  config.training.update(epochs=1, batch_size=16, weight_bits=8)
  summary = train_job.run(config, work)
  assert summary["weight_bits"] == 8 and summary["linear_init"] == "fan_in"
  with open(os.path.join(work, "summary.json")) as f:
    assert json.load(f) == summary
  assert config.genotype == GENOTYPE and config.from_search is None  # the caller's, unchanged
  ev_config = configs.get_config("evaluate")
  ev_config.update(weight_bits=8, batch_size=16)
  ev_config.energy.update(accumulate_pj=1.0, mac_pj=0.0)  # energy = accumulates alone
  ev = evaluate_job.run(ev_config, work)
  text = evaluate_job.report(ev, work)
  assert "accuracy" in text and "SAR" in text and "head/fc_lif" in text
  assert "operations per inference" in text and "reduction/conv" in text
  ops = ev.operations
  assert ops["sops"] > 0 and ops["macs"] > 0 and ops["accumulate_pj"] == 1.0
  assert ops["energy_pj"] == pytest.approx(ops["sops"] + ops["adds"])
  assert ops["ann_energy_pj"] == pytest.approx(ops["ann_adds"])
  got = evaluate_job.read_result(work, "test", 8)
  assert got == json.loads(json.dumps(ev.to_json()))
  assert got["weight_bits"] == 8 and got["num_examples"] == 16
  assert got["accuracy"] == pytest.approx(summary["final_test_accuracy"], abs=1e-9)
  for field, value, needle in (("weight_bits", 5, "--config.weight_bits=5"),
                               ("split", "dev", "--config.split='dev'"),
                               ("energy.mac_pj", -1.0, "--config.energy.mac_pj=-1.0")):
    bad = configs.get_config("evaluate")
    configs.sections.set_fields(bad, {field: value})
    with pytest.raises(ValueError, match=re.escape(needle)):
      evaluate_job.run(bad, work)
  with pytest.raises(ValueError, match="holds no run"):
    evaluate_job.run(configs.get_config("evaluate"), str(tmp_path))


def test_a_run_owns_its_checkpoints_by_a_relative_path(tmp_path):
  orig, copy, outside = tmp_path / "t1", tmp_path / "t1copy", tmp_path / "ckpt"
  for d in (orig / "checkpoints", copy / "checkpoints", outside):
    d.mkdir(parents=True)
  # As the train job writes it now: relative, so a copy reads its own.
  assert evaluate.checkpoint_dir_of(str(copy), {"checkpoint_dir": "checkpoints"}) == str(
      copy / "checkpoints")
  # A copy of a run that recorded its original's absolute path still reads its own copy.
  assert evaluate.checkpoint_dir_of(
      str(copy), {"checkpoint_dir": str(orig / "checkpoints")}) == str(copy / "checkpoints")
  # An explicit outside --checkpoint_dir is used where the workdir has none of its own.
  assert evaluate.checkpoint_dir_of(str(tmp_path / "t2"),
                                    {"checkpoint_dir": str(outside)}) == str(outside)
  assert evaluate.checkpoint_dir_of(str(orig), None) == str(orig / "checkpoints")


def test_a_partial_evaluation_never_takes_the_whole_splits_name(tmp_path):
  from snnax_nas.jobs import evaluate as evaluate_job
  whole = evaluate_job.result_path(str(tmp_path), "test", 32)
  part = evaluate_job.result_path(str(tmp_path), "test", 32, max_examples=64)
  assert whole.endswith(os.path.join("eval", "test_w32.json"))
  assert part.endswith(os.path.join("eval", "test_w32_first64.json"))


def test_silent_layers_in_evaluation_are_named_with_a_way_out():
  text = train.silent_in_evaluation_message(["head/lif", "head/fc_lif"])
  assert text.startswith("2 LIF layer(s) never fire in evaluation mode: head/lif, head/fc_lif")
  assert "chance" in text and "linear_init=fan_in" in text
