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


@pytest.mark.parametrize("kwargs, word", [
    (dict(tau=0.5), "tau"), (dict(threshold=0.0), "threshold"),
    (dict(alpha=-1.0), "alpha"), (dict(reset="zero"), "'zero'")])
def test_bad_config_names_value(kwargs, word):
  with pytest.raises(ValueError, match=word):
    neurons.LIFConfig(**kwargs)
