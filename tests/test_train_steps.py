"""snnax_nas.train.steps: optimiser, schedule, losses, steps, data parallelism."""

from __future__ import annotations

import re
import textwrap
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from train_helpers import CFG
from train_helpers import CFG1
from train_helpers import G4
from train_helpers import INFO
from train_helpers import G
from train_helpers import run_script
from train_helpers import separable

from snnax_nas import data as data_lib
from snnax_nas import layers
from snnax_nas import models
from snnax_nas import network
from snnax_nas import train

# ----------------------------------------------------------------------------
# Optimiser and schedule.

def test_weight_decay_is_applied_as_decay():
  params = {"w": jnp.full((3,), 2.0)}
  zero = {"w": jnp.zeros(3)}
  lr, wd = 0.1, 5e-4
  # With momentum, the first step is exactly p * (1 - lr * wd).
  opt = train.make_optimizer(lr, epochs=10, steps_per_epoch=10, weight_decay=wd)
  upd, _ = opt.update(zero, opt.init(params), params)
  np.testing.assert_allclose(optax.apply_updates(params, upd)["w"], 2.0 * (1 - lr * wd),
                             rtol=1e-7)
  # Without momentum, every step shrinks by 1 - lr_t * wd.
  opt = train.make_optimizer(lr, epochs=2, steps_per_epoch=3, momentum=0.0, weight_decay=wd)
  sched = train.lr_schedule(lr, 2, 3)
  state, p, expect = opt.init(params), params, 2.0
  for t in range(6):
    upd, state = opt.update(zero, state, p)
    p = optax.apply_updates(p, upd)
    expect *= 1 - float(sched(t)) * wd
  np.testing.assert_allclose(p["w"], expect, rtol=1e-6)
  # weight_decay=0: a zero gradient leaves the parameter alone.
  opt = train.make_optimizer(lr, 2, 3, weight_decay=0.0)
  upd, _ = opt.update(zero, opt.init(params), params)
  np.testing.assert_array_equal(optax.apply_updates(params, upd)["w"], params["w"])


@pytest.mark.parametrize("per_epoch", [False, True])
def test_cosine_schedule_ends_at_one_percent(per_epoch):
  s = train.lr_schedule(0.1, epochs=4, steps_per_epoch=5, per_epoch=per_epoch)
  assert float(s(0)) == pytest.approx(0.1)
  assert float(s(20)) == pytest.approx(0.001, rel=1e-5)
  values = [float(s(t)) for t in range(21)]
  assert all(a >= b - 1e-9 for a, b in zip(values, values[1:]))  # non-increasing
  if per_epoch:  # constant within an epoch, as CosineAnnealingLR stepped per epoch
    assert values[0] == values[4] and values[5] < values[4]


@pytest.mark.slow
def test_losses():
  logits = jnp.array([[2.0, -1.0], [0.5, 0.5]])
  labels = jnp.array([0, 1])
  ce = train.loss_value(logits, labels, "ce")
  np.testing.assert_allclose(ce, -jax.nn.log_softmax(logits)[jnp.arange(2), labels], rtol=1e-6)
  mse = train.loss_value(logits, labels, "mse")
  np.testing.assert_allclose(mse, [((2 - 1) ** 2 + 1) / 2, (0.25 + 0.25) / 2], rtol=1e-6)
  with pytest.raises(ValueError, match="hinge"):
    train.loss_value(logits, labels, "hinge")


# ----------------------------------------------------------------------------
# Steps.

def _alive_state(opt, g=G, cfg=CFG):
  """A fresh state whose classifier LIF fires.

  With the reference init (Linear N(0, 0.01^2)) and a 128-input classifier,
  the hidden LIF of this tiny network never reaches threshold and the output
  is the bias alone; scaling fc1 makes the tiny problem learnable in a few
  steps (the full-size network has 64x more classifier inputs).
  """
  state = train.create_train_state(jax.random.PRNGKey(0), cfg, g, opt)
  params = jax.tree.map(lambda x: x, state.params)
  params["head"]["fc1"]["kernel"] = params["head"]["fc1"]["kernel"] * 30.0
  return state.replace(params=params)


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_loss_decreases_on_separable_data(loss):
  images, labels = separable(32)
  lr = 0.5 if loss == "ce" else 0.2
  opt = train.make_optimizer(lr, epochs=1, steps_per_epoch=10)
  cfg = CFG if loss == "ce" else CFG1
  steps = train.make_steps(cfg, G, opt, INFO, loss=loss, augment=False)
  state = _alive_state(opt, G, cfg)
  batch = train.put_batch({"image": images, "label": labels}, steps.batch_sharding)
  losses, accs = [], []
  for _ in range(10):
    state, m = steps.train(state, batch)
    losses.append(float(m["loss"]) / 32)
    accs.append(float(m["correct"]) / 32)
  assert int(state.step) == 10
  assert np.mean(losses[-3:]) < 0.8 * losses[0], losses
  assert np.mean(accs[-3:]) > 0.8, accs
  # The batch-norm running statistics moved off their (0, 1) start.
  assert float(jnp.abs(state.batch_stats["stem"]["bn"]["mean"]).max()) > 0


@pytest.mark.slow
def test_forward_is_the_one_injection_point():
  """make_steps runs whatever ``forward`` it is given (here the standalone
  forward wrapped to count its calls and scale the logits)."""
  calls = []
  base = train.standalone_forward_fn(CFG1, G)

  def forward(params, batch_stats, images, key, *, train, probe):
    calls.append(train)
    logits, aux = base(params, batch_stats, images, key, train=train, probe=probe)
    return 0.0 * logits, aux  # uniform logits: loss log(2) whatever the weights

  opt = train.make_optimizer(0.1, 1, 1)
  steps = train.make_steps(CFG1, G, opt, INFO, augment=False, forward=forward)
  state = train.create_train_state(jax.random.PRNGKey(0), CFG1, G, opt)
  images, labels = separable(8)
  _, m = steps.train(state, train.put_batch({"image": images, "label": labels},
                                            steps.batch_sharding))
  assert calls == [True]
  assert float(m["loss"]) / 8 == pytest.approx(np.log(2), rel=1e-5)


@pytest.mark.slow
def test_sar_and_layer_rates_match_direct_spike_counts():
  images, labels = separable(10)
  opt = train.make_optimizer(0.1, 1, 1)
  steps = train.make_steps(CFG, G4, opt, INFO, augment=False)
  state = _alive_state(opt, G4)
  # Batches of 4: the last holds 2 real images and 2 padded ones.
  got = train.evaluate(steps, state, images, labels, batch_size=4)
  assert got["count"] == 10
  # Count spikes directly with a bare probe on the whole set at once.
  x = data_lib.normalize(images, INFO)
  params, stats = models.standalone_from_variables(
      {"params": state.params, "batch_stats": state.batch_stats}, CFG)
  _, aux = network.standalone_forward(params, G4, jnp.asarray(x), None, CFG, train=False,
                                      batch_stats=stats, probe=lambda s: s.sum(),
                                      per_layer=True)
  spikes = {k: float(v) for k, v in aux["probes"]["values"].items()}
  # Neurons per sample of each LIF, by hand: cells at 16x16x4 and 8x8x8.
  (h1, w1, c1), (h2, w2, c2) = CFG.stage_shapes
  neurons = {"reduction/lif": h1 * w1 * c1, "head/lif": h2 * w2 * c2, "head/fc_lif": 32}
  for e in (0, 2, 3, 5):
    neurons[f"cell0/edge{e}/lif"] = h1 * w1 * c1
    neurons[f"cell1/edge{e}/lif"] = h2 * w2 * c2
  assert set(got["rates"]) == set(neurons)
  t, n = CFG.timesteps, len(labels)
  for k, per_sample in neurons.items():
    assert got["rates"][k] == pytest.approx(spikes[k] / (per_sample * t * n), rel=1e-5), k
  sar = sum(spikes.values()) / (sum(neurons.values()) * t * n)
  assert got["sar"] == pytest.approx(sar, rel=1e-5)
  assert 0 < got["sar"] < 1
  # firing_rates on a hand-made case.
  sar2, rates = train.firing_rates({"a": {"spikes": 3.0, "neurons": 10.0},
                                    "b": {"spikes": 1.0, "neurons": 30.0}})
  assert sar2 == pytest.approx(4 / 40) and rates == {"a": 0.3, "b": pytest.approx(1 / 30)}


_DP = textwrap.dedent("""
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    from snnax_nas import train, network, data as data_lib
    from train_helpers import CFG1 as CFG, G, INFO, separable
    assert jax.device_count() == 2, jax.devices()
    images, labels = separable(16)
    opt = train.make_optimizer(0.5, 1, 3)
    out = {}
    for n in (1, 2):
      mesh = train.make_mesh(jax.devices()[:n])
      steps = train.make_steps(CFG, G, opt, INFO, mesh=mesh)  # dropout and augmentation on
      state = train.create_train_state(jax.random.PRNGKey(0), CFG, G, opt)
      p = state.params
      p["head"]["fc1"]["kernel"] = p["head"]["fc1"]["kernel"] * 30.0
      state = jax.device_put(state.replace(params=p), steps.state_sharding)
      losses = []
      for i in range(3):
        b = train.put_batch({"image": images, "label": labels}, steps.batch_sharding)
        assert len(b["image"].sharding.device_set) == n
        state, m = steps.train(state, b)
        losses.append(float(m["loss"]))
      out[n] = (losses, [np.asarray(x) for x in jax.tree.leaves((state.params, state.batch_stats))])
    np.testing.assert_allclose(out[1][0], out[2][0], rtol=1e-4)
    for a, b in zip(out[1][1], out[2][1]):
      np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    print("OK", out[1][0], out[2][0])
""")


@pytest.mark.slow
def test_data_parallel_two_devices_equals_one(env):
  out = run_script(_DP, env, 2)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "OK" in out.stdout


def test_training_devices_one_cpu_device_per_process():
  # Fake devices: two processes with two CPU devices each.
  devs = [types.SimpleNamespace(id=i, process_index=i // 2) for i in range(4)]
  assert [d.id for d in train.training_devices(devs, backend="cpu")] == [0, 2]
  assert train.training_devices(devs, backend="gpu") == devs
  steps = train.make_steps(CFG, G, train.make_optimizer(0.1, 1, 1), INFO)
  assert steps.mesh.size == len(train.training_devices())


# ----------------------------------------------------------------------------
# Compiler options.

def _ynn_fused_ops(compiled_text: str) -> list[str]:
  """The convolution / dot / reduce ops XLA:CPU handed to YNNPACK, sorted."""
  ops = []
  for name in re.findall(r"kind=kCustom, calls=(%[\w.\-]+)[^\n]*__ynn_fusion", compiled_text):
    body = re.search(re.escape(name) + r" [^\n]*\{\n(.*?)\n\}", compiled_text, re.S).group(1)
    ops += [op for op in ("convolution", "dot", "reduce") if f" {op}(" in body]
  return sorted(ops)


def _conv_dot_reduce(x, k, a, b):
  # (A conv whose only consumer is a reduction joins the reduction's YNN
  # fusion, which the options keep; the network's convs feed more than one.)
  return layers.conv2d(x, k, 1) * 2.0, a @ b, a.sum(0)


def test_cpu_compiler_options_take_only_convolutions_from_ynnpack():
  assert train.compiler_options("gpu") == {} and train.compiler_options("tpu") == {}
  if jax.default_backend() != "cpu":
    pytest.skip("XLA:CPU options")
  args = (jnp.ones((8, 8, 8, 32)), jnp.ones((3, 3, 32, 32)), jnp.ones((64, 256)),
          jnp.ones((256, 256)))
  default = _ynn_fused_ops(jax.jit(_conv_dot_reduce).lower(*args).compile().as_text())
  kept = _ynn_fused_ops(jax.jit(_conv_dot_reduce, compiler_options=train.compiler_options())
                        .lower(*args).compile().as_text())
  # By default XLA:CPU runs this conv in YNNPACK (single-threaded); the options
  # leave it to Eigen and keep every other kind of YNN fusion the default has.
  assert "convolution" in default, default
  assert kept == [op for op in default if op != "convolution"], (default, kept)
  assert "dot" in kept and "reduce" in kept, kept


def test_make_steps_compiles_with_the_compiler_options():
  if jax.default_backend() != "cpu":
    pytest.skip("XLA:CPU options")
  base = train.standalone_forward_fn(CFG1, G)

  def forward(params, batch_stats, images, key, *, train, probe):
    logits, aux = base(params, batch_stats, images, key, train=train, probe=probe)
    # A conv XLA:CPU gives YNNPACK by default (previous test), fed by the images.
    z = layers.conv2d(jnp.full((8, 8, 8, 32), images.mean()), jnp.ones((3, 3, 32, 32)), 1)
    return logits + 0.0 * z[0, 0, 0, :logits.shape[-1]], aux

  opt = train.make_optimizer(0.1, 1, 1)
  steps = train.make_steps(CFG1, G, opt, INFO, augment=False, forward=forward)
  state = train.create_train_state(jax.random.PRNGKey(0), CFG1, G, opt)
  images, labels = separable(8)
  batch = train.put_batch({"image": images, "label": labels}, steps.batch_sharding)
  assert "convolution" not in _ynn_fused_ops(steps.train.lower(state, batch).compile().as_text())
