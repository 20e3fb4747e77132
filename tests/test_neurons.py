import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnax_nas import neurons


def test_membrane_and_spike_trace_hand_computed():
  # tau = 4/3: v_t = 0.25 v_{t-1} + 0.75 x_t; spike at v >= 1; hard reset to 0.
  xs = jnp.array([0.8, 0.8, 0.8, 2.0, 0.0, 4.0 / 3.0])
  v_final, spikes = neurons.lif_scan(xs)
  expected_v = [0.6, 0.75, 0.7875, 1.696875, 0.0, 1.0]
  v = 0.0
  vs = []
  for x in np.asarray(xs):
    v = 0.25 * v + 0.75 * x
    vs.append(v)
    if v >= 1.0:
      v = 0.0
  np.testing.assert_allclose(vs, expected_v, rtol=1e-6)
  np.testing.assert_array_equal(np.asarray(spikes), [0, 0, 0, 1, 0, 1])
  assert float(v_final) == 0.0


def test_threshold_is_inclusive_and_parameters_apply():
  cfg = neurons.LIFConfig(tau=2.0, threshold=0.5)
  v, s = neurons.lif_step(jnp.zeros(()), jnp.ones(()), cfg)  # v = 0.5
  assert float(s) == 1.0 and float(v) == 0.0
  soft = neurons.LIFConfig(reset="soft", threshold=0.5, tau=2.0)
  v, s = neurons.lif_step(jnp.zeros(()), jnp.full((), 1.6), soft)  # v = 0.8
  assert float(s) == 1.0
  np.testing.assert_allclose(float(v), 0.3, rtol=1e-6)


def test_spike_gradient_is_atan_surrogate():
  us = jnp.linspace(-1.5, 1.5, 31)
  grads = jax.vmap(jax.grad(lambda u: neurons.spike_fn(u, 2.0)))(us)
  np.testing.assert_allclose(grads, 1.0 / (1.0 + (math.pi * np.asarray(us)) ** 2), rtol=1e-6)
  grads4 = jax.vmap(jax.grad(lambda u: neurons.spike_fn(u, 4.0)))(us)
  expected4 = 2.0 / (1.0 + (math.pi / 2 * 4.0 * np.asarray(us)) ** 2)
  np.testing.assert_allclose(grads4, expected4, rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("detach", [True, False])
def test_reset_detaching(detach):
  cfg = neurons.LIFConfig(detach_reset=detach)
  x, v0 = 2.0, 0.0  # charged v = 1.5 -> spikes, hard reset

  def v_next(x):
    return neurons.lif_step(jnp.asarray(v0), x, cfg)[0]

  g = float(jax.grad(v_next)(jnp.asarray(x)))
  if detach:
    # v_next = (1 - sg(s)) v: with s = 1 no gradient flows through the reset.
    assert g == 0.0
  else:
    v = 0.75 * x
    surrogate = 1.0 / (1.0 + (math.pi * (v - 1.0)) ** 2)
    np.testing.assert_allclose(g, -surrogate * 0.75 * v, rtol=1e-5)


@pytest.mark.slow
def test_scan_equals_step_loop():
  xs = jax.random.normal(jax.random.key(0), (7, 3, 4)) * 2
  _, spikes = neurons.lif_scan(xs)
  v = jnp.zeros((3, 4))
  for t in range(7):
    v, s = neurons.lif_step(v, xs[t])
    np.testing.assert_array_equal(spikes[t], s)


@pytest.mark.parametrize("cfg", [
    neurons.LIFConfig(),
    neurons.LIFConfig(reset="soft"),
    neurons.LIFConfig(detach_reset=False),
    neurons.LIFConfig(tau=2.5, threshold=0.7, v_reset=0.1, alpha=4.0, reset="soft",
                      detach_reset=False),
], ids=["hard", "soft", "hard-attached", "soft-attached-other-constants"])
# T 3: the forward scan fully unrolled; T 6: a loop (neurons._UNROLL_MAX_STEPS).
@pytest.mark.parametrize("timesteps", [3, 6], ids=["unrolled", "looped"])
def test_scan_values_and_gradients_equal_autodiff_of_step_loop(cfg, timesteps):
  # lif_scan's hand-written backward pass against autodiff of the obviously
  # correct per-timestep loop of lif_step, with cotangents on both outputs
  # (spikes and final membrane) and gradients to both inputs (xs and v0).
  kx, kv, ks, kf = jax.random.split(jax.random.key(1), 4)
  assert (timesteps <= neurons._UNROLL_MAX_STEPS) == (timesteps == 3)
  xs = jax.random.normal(kx, (timesteps, 5, 8)) + 0.8  # around the threshold: many spikes
  v0 = 0.5 * jax.random.normal(kv, (5, 8))
  w_spikes = jax.random.normal(ks, xs.shape)
  w_final = jax.random.normal(kf, v0.shape)

  def loop(xs, v0):
    v, spikes = v0, []
    for t in range(xs.shape[0]):
      v, s = neurons.lif_step(v, xs[t], cfg)
      spikes.append(s)
    return v, jnp.stack(spikes)

  def loss(fn, xs, v0):
    v, spikes = fn(xs, v0)
    return (spikes * w_spikes).sum() + (v * w_final).sum()

  scan = lambda xs, v0: neurons.lif_scan(xs, cfg, v0)  # noqa: E731
  for got, want in zip(scan(xs, v0), loop(xs, v0)):
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
  got = jax.grad(functools.partial(loss, scan), (0, 1))(xs, v0)
  want = jax.grad(functools.partial(loss, loop), (0, 1))(xs, v0)
  for g, w in zip(got, want):
    assert float(jnp.abs(w).max()) > 0.1
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6 * float(jnp.abs(w).max()))


@pytest.mark.parametrize("kwargs, word", [
    (dict(tau=0.5), "tau"), (dict(threshold=0.0), "threshold"),
    (dict(alpha=-1.0), "alpha"), (dict(reset="zero"), "'zero'")])
def test_bad_config_names_value(kwargs, word):
  with pytest.raises(ValueError, match=word):
    neurons.LIFConfig(**kwargs)
