"""Tests of snnax_nas.layers: batch norm, initialisers, pooling, dropout masks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnax_nas import layers


@pytest.mark.parametrize("ratio", [0.0, 1.0, 10.0, 1000.0])
def test_batch_norm_variance_against_float64(ratio):
  # |mean| / std = ratio. The two-pass variance (training) is exact at any
  # ratio; the one-pass one (scoring at initialisation) where the ratio is
  # small, which is what scored networks see.
  rng = np.random.default_rng(0)
  x = (rng.standard_normal((64, 8, 8, 4)) * 0.5 + 0.5 * ratio).astype(np.float32)
  p = {"scale": jnp.ones(4), "bias": jnp.zeros(4)}
  x64 = x.astype(np.float64)
  ref = (x64 - x64.mean((0, 1, 2))) / np.sqrt(x64.var((0, 1, 2)) + layers.BN_EPS)
  two, _ = layers.batch_norm(jnp.asarray(x), p)
  np.testing.assert_allclose(np.asarray(two), ref, atol=5e-5)
  one, _ = layers.batch_norm(jnp.asarray(x), p, one_pass=True)
  if ratio <= 10:
    np.testing.assert_allclose(np.asarray(one), ref, atol=5e-5)


def test_batch_norm_running_stats_follow_pytorch_momentum():
  rng = np.random.default_rng(1)
  x = rng.standard_normal((4, 3, 3, 2)).astype(np.float32) * 2 + 1
  p = {"scale": jnp.ones(2), "bias": jnp.zeros(2)}
  stats = {"mean": jnp.full(2, 0.5), "var": jnp.full(2, 2.0)}
  _, new = layers.batch_norm(jnp.asarray(x), p, stats)
  flat = x.reshape(-1, 2).astype(np.float64)
  np.testing.assert_allclose(new["mean"], 0.9 * 0.5 + 0.1 * flat.mean(0), rtol=1e-5)
  np.testing.assert_allclose(new["var"], 0.9 * 2.0 + 0.1 * flat.var(0, ddof=1), rtol=1e-5)
  y, same = layers.batch_norm(jnp.asarray(x), p, new, train=False)
  assert same is new
  np.testing.assert_allclose(y, (x - new["mean"]) / np.sqrt(new["var"] + layers.BN_EPS),
                             rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="running statistics"):
    layers.batch_norm(jnp.asarray(x), p, None, train=False)


@pytest.mark.slow
def test_initializers_draw_the_param_spec_distributions():
  specs = {"conv": layers.ParamSpec((3, 3, 16, 64), "conv"),
           "dense": layers.ParamSpec((256, 256), "dense"),
           **layers.bn_spec(5)}
  tree = layers.materialize(jax.random.key(0), specs)
  bound = np.sqrt(1.2 / (3 * 3 * 16))
  for conv in (tree["conv"], layers.initializer("conv")(jax.random.key(1), (3, 3, 16, 64))):
    assert float(jnp.abs(conv).max()) <= bound and float(jnp.abs(conv).max()) > 0.98 * bound
    assert abs(float(conv.std()) - bound / np.sqrt(3)) < 0.02 * bound
  for dense in (tree["dense"], layers.initializer("dense")(jax.random.key(1), (256, 256))):
    assert abs(float(dense.std()) - 0.01) < 3e-4 and abs(float(dense.mean())) < 3e-4
    assert bool(jnp.isfinite(dense).all())
  np.testing.assert_array_equal(tree["scale"], np.ones(5))
  np.testing.assert_array_equal(tree["bias"], np.zeros(5))
  assert layers.init_batch_stats({"bn": tree})["bn"]["var"].shape == (5,)
  with pytest.raises(ValueError, match="kaiming"):
    layers.initializer("kaiming")
  with pytest.raises(ValueError, match="kaiming"):
    layers.materialize(jax.random.key(0), {"w": layers.ParamSpec((2,), "kaiming")})


@pytest.mark.slow
def test_pooling_and_strided_conv_padding():
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
  window = jax.lax.reduce_window(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), 0.0, jax.lax.add,
                                 (1, 3, 3, 1), (1, 1, 1, 1), "VALID") / 9.0
  np.testing.assert_allclose(layers.pool3x3(x, "avgpool"), window, rtol=1e-6, atol=1e-6)
  assert layers.avg_pool(x, 2).shape == (2, 4, 4, 3)
  np.testing.assert_allclose(layers.avg_pool(x, 4), x.reshape(2, 2, 4, 2, 4, 3).mean((2, 4)),
                             rtol=1e-6)
  # Stride 2 pads symmetrically (PyTorch), unlike XLA's 'SAME'.
  k = jnp.zeros((3, 3, 3, 1)).at[0, 0, 0, 0].set(1.0)
  y = layers.conv2d(x, k, stride=2)
  assert y.shape == (2, 4, 4, 1)
  np.testing.assert_array_equal(y[:, 1:, 1:, 0], x[:, 1:-2:2, 1:-2:2, 0])


def test_dropout_mask_is_inverted_bernoulli():
  m = layers.dropout_mask(jax.random.key(0), 0.25, (64, 64))
  assert set(np.unique(np.asarray(m)).tolist()) == {0.0, np.float32(1 / 0.75)}
  assert abs(float(m.mean()) - 1.0) < 0.05


@pytest.mark.parametrize("stride", [1, 2])
def test_conv_over_time_equals_autodiff_of_one_conv(stride):
  # Reference: autodiff of one conv2d over all T x B images (the path the
  # custom kernel gradient replaces).
  kx, kk, kg = jax.random.split(jax.random.key(0), 3)
  xs = jax.random.normal(kx, (3, 2, 8, 8, 4))
  kernel = jax.random.normal(kk, (3, 3, 4, 5))

  def reference(xs, kernel):
    y = layers.conv2d(xs.reshape((-1,) + xs.shape[2:]), kernel, stride)
    return y.reshape(xs.shape[:2] + y.shape[1:])

  y = layers.conv_over_time(xs, kernel, stride)
  y_ref = reference(xs, kernel)
  assert y.shape == (3, 2, 8 // stride, 8 // stride, 5)
  np.testing.assert_allclose(y, y_ref, rtol=1e-6, atol=1e-6)
  g = jax.random.normal(kg, y.shape)
  grads = jax.vjp(lambda a, b: layers.conv_over_time(a, b, stride), xs, kernel)[1](g)
  grads_ref = jax.vjp(reference, xs, kernel)[1](g)
  for a, b in zip(grads, grads_ref):
    assert float(jnp.abs(b).max()) > 0
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_repeat_over_time_equals_broadcast_with_its_gradient():
  x = jax.random.normal(jax.random.key(0), (1, 2, 3, 4))
  g = jax.random.normal(jax.random.key(1), (5, 2, 3, 4))
  y, vjp = jax.vjp(lambda a: layers.repeat_over_time(a, 5), x)
  y_ref, vjp_ref = jax.vjp(lambda a: jnp.broadcast_to(a, (5, 2, 3, 4)), x)
  np.testing.assert_array_equal(y, y_ref)
  np.testing.assert_allclose(vjp(g)[0], vjp_ref(g)[0], rtol=1e-6, atol=1e-6)


def test_batch_norm_per_step_equals_autodiff_of_the_moments():
  kx, ks, kb, kg = jax.random.split(jax.random.key(0), 4)
  x = 2.0 + 3.0 * jax.random.normal(kx, (3, 4, 5, 5, 6))
  scale, bias = jax.random.normal(ks, (6,)), jax.random.normal(kb, (6,))

  def reference(x, scale, bias):
    mean, var = layers.batch_moments(x, (1, 2, 3))
    y = layers.bn_normalize(x, mean[:, None, None, None], var[:, None, None, None],
                            {"scale": scale, "bias": bias})
    return y, mean, var

  out, vjp = jax.vjp(layers.batch_norm_per_step, x, scale, bias)
  out_ref, vjp_ref = jax.vjp(reference, x, scale, bias)
  for a, b in zip(out, out_ref):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
  gs = [jax.random.normal(k, o.shape) for k, o in zip(jax.random.split(kg, 3), out)]
  for cot in (gs, [gs[0], jnp.zeros_like(gs[1]), jnp.zeros_like(gs[2])]):
    for a, b in zip(vjp(tuple(cot)), vjp_ref(tuple(cot))):
      assert float(jnp.abs(b).max()) > 0
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
