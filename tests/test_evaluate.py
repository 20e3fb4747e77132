"""Quantisation-aware training and snnax_nas.evaluate (PTQ evaluation of a run;
launch.evaluate in a subprocess, marked slow)."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from train_helpers import CFG1
from train_helpers import GENOTYPE
from train_helpers import INFO
from train_helpers import G
from train_helpers import launch
from train_helpers import separable
from train_helpers import train_workdir
from train_helpers import write_npz_dataset

from snnax_nas import data as data_lib
from snnax_nas import evaluate
from snnax_nas import memory
from snnax_nas import quant
from snnax_nas import train


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
  result = train_workdir(work, dataset, weight_bits=8)
  return work, result


@pytest.mark.slow
def test_ptq_evaluation_of_a_qat_run_equals_its_fake_quant_forward(qat_run):
  work, result = qat_run
  ev = evaluate.evaluate_run(work, weight_bits=8, batch_size=16)
  last = result.history[-1]
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
  assert seen[4] < seen[32]
  with pytest.raises(ValueError, match="weight_bits"):
    evaluate.evaluate_run(work, weight_bits=5)
  with pytest.raises(ValueError, match="split 'dev'"):
    evaluate.evaluate_run(work, split="dev")
  with pytest.raises(ValueError, match="holds no run"):
    evaluate.evaluate_run(str(tmp_path))


@pytest.mark.slow
def test_launch_train_qat_then_launch_evaluate(tmp_path, env):
  dataset = write_npz_dataset(str(tmp_path))
  work = str(tmp_path / "run")
  out = launch("launch.train", [f"--config.dataset={dataset}", f"--config.genotype={GENOTYPE}",
                                "--config.network.width=4", "--config.network.hidden=32",
                                "--config.network.timesteps=2", "--config.training.epochs=1",
                                "--config.training.batch_size=16",
                                "--config.network.linear_init=fan_in",
                                "--config.training.weight_bits=8", f"--workdir={work}"], env)
  assert out.returncode == 0, out.stderr[-3000:]
  with open(os.path.join(work, "summary.json")) as f:
    summary = json.load(f)
  assert summary["weight_bits"] == 8 and summary["linear_init"] == "fan_in"
  out = launch("launch.evaluate", [f"--workdir={work}", "--config.weight_bits=8",
                                   "--config.batch_size=16"], env)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "accuracy" in out.stdout and "SAR" in out.stdout and "head/fc_lif" in out.stdout
  with open(os.path.join(work, "eval", "test_w8.json")) as f:
    got = json.load(f)
  assert got["weight_bits"] == 8 and got["num_examples"] == 16
  assert got["accuracy"] == pytest.approx(summary["final_test_accuracy"], abs=1e-9)
  for args, needle in ((["--config.weight_bits=5"], "weight_bits"),
                       (["--config.split=dev"], "split"),
                       ([f"--workdir={tmp_path}"], "holds no run")):
    argv = [f"--workdir={work}", *args] if not args[0].startswith("--workdir") else args
    out = launch("launch.evaluate", argv, env)
    assert out.returncode == 2, (args, out.stderr[-2000:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stderr
