import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnax_nas import genotype as genotype_lib
from snnax_nas import genotype_space
from snnax_nas import memory
from snnax_nas import network
from snnax_nas import quant

QUANT_BITS = (16, 8, 4)


def _weights(seed=0):
  """A conv kernel (HWIO) with one all-zero output channel and channels of very
  different magnitudes, plus a dense kernel."""
  rng = np.random.default_rng(seed)
  conv = rng.normal(size=(3, 3, 5, 6)).astype(np.float32) * np.array(
      [1e-3, 1.0, 0.0, 50.0, 1e-6, 2.0], np.float32)
  dense = rng.normal(size=(7, 4)).astype(np.float32)
  return {"conv": {"kernel": jnp.asarray(conv)}, "bn": {"scale": jnp.ones(6), "bias": jnp.zeros(6)},
          "fc": {"kernel": jnp.asarray(dense), "bias": jnp.full((4,), 0.3)}}


@pytest.mark.slow
@pytest.mark.parametrize("bits", QUANT_BITS)
def test_codes_ranges_dtypes_and_error_bound(bits):
  params = _weights()
  q = quant.quantize_params(params, bits)
  qmax = 2 ** (bits - 1) - 1
  assert quant.qmax(4) == 7
  for name in ("conv", "fc"):
    qt = q.tree[name]["kernel"]
    w = np.asarray(params[name]["kernel"])
    assert isinstance(qt, quant.QuantizedTensor) and qt.bits == bits
    assert qt.codes.shape == w.shape and qt.scale.shape == (w.shape[-1],)
    assert qt.codes.dtype == (jnp.int16 if bits == 16 else jnp.int8)
    codes = np.asarray(qt.codes)
    assert codes.min() >= -qmax and codes.max() <= qmax
    # Every non-zero channel reaches the end of the range (the scale is tight).
    peak = np.abs(codes).reshape(-1, w.shape[-1]).max(0)
    nonzero = np.abs(w).reshape(-1, w.shape[-1]).max(0) > 0
    np.testing.assert_array_equal(peak[nonzero], qmax)
    scale = np.asarray(qt.scale)
    np.testing.assert_allclose(scale, np.abs(w).reshape(-1, w.shape[-1]).max(0) / qmax, rtol=1e-6)
    err = np.abs(w - np.asarray(quant.dequantize_tensor(qt)))
    assert (err <= scale / 2 * (1 + 1e-5) + 1e-30).all()
  # 1-D leaves stay float32 and untouched.
  for path in (("bn", "scale"), ("bn", "bias"), ("fc", "bias")):
    leaf = q.tree[path[0]][path[1]]
    assert not isinstance(leaf, quant.QuantizedTensor) and leaf.dtype == jnp.float32
    np.testing.assert_array_equal(leaf, params[path[0]][path[1]])


@pytest.mark.slow
def test_all_zero_channel_and_all_zero_tensor_are_exact():
  params = _weights()
  for bits in QUANT_BITS:
    qt = quant.quantize_params(params, bits).tree["conv"]["kernel"]
    assert float(qt.scale[2]) == 0.0 and not np.asarray(qt.codes[..., 2]).any()
    assert np.isfinite(np.asarray(quant.dequantize_tensor(qt))).all()
    zero = quant.quantize_tensor(jnp.zeros((2, 3)), bits)
    np.testing.assert_array_equal(quant.dequantize_tensor(zero), np.zeros((2, 3)))


@pytest.mark.parametrize("bits", QUANT_BITS)
def test_quantisation_is_idempotent(bits):
  once = quant.dequantize(quant.quantize_params(_weights(1), bits))
  q2 = quant.quantize_params(once, bits)
  twice = quant.dequantize(q2)
  q1 = quant.quantize_params(_weights(1), bits)
  for name in ("conv", "fc"):
    np.testing.assert_array_equal(q2.tree[name]["kernel"].codes, q1.tree[name]["kernel"].codes)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=0), once, twice)


@pytest.mark.slow
def test_4_bit_range_and_rounding_on_known_values():
  w = jnp.array([[7.0, -3.5], [-7.0, 0.2], [3.4, 1.0]])  # channel 0: scale 1, channel 1: 0.5
  qt = quant.quantize_tensor(w, 4)
  np.testing.assert_allclose(qt.scale, [1.0, 0.5])
  np.testing.assert_array_equal(qt.codes, [[7, -7], [-7, 0], [3, 2]])
  np.testing.assert_allclose(quant.dequantize_tensor(qt), [[7, -3.5], [-7, 0], [3, 1]])


def test_bad_bits_and_bad_shapes_raise():
  with pytest.raises(ValueError, match="weight_bits"):
    quant.quantize_params(_weights(), 2)
  with pytest.raises(ValueError, match="weight_bits"):
    quant.fake_quantize(_weights(), 12)
  with pytest.raises(ValueError, match="ndim >= 2"):
    quant.quantize_tensor(jnp.ones(3), 8)
  with pytest.raises(ValueError, match="weight_bits"):
    memory.quantized_weight_bytes(np.zeros((4, 4), int), network.network_config(None, width=4), 5)


def test_32_bits_is_the_float_tree():
  params = _weights()
  q = quant.quantize_params(params, 32)
  assert q.tree is params
  jax.tree.map(np.testing.assert_array_equal, quant.dequantize(q), params)
  assert quant.fake_quantize(params, 32) is params
  n = memory.tree_param_count(params)
  assert quant.quantized_bytes(q) == 4 * n


@pytest.mark.slow
@pytest.mark.parametrize("bits", QUANT_BITS)
def test_fake_quantize_forward_is_ptq_and_gradient_is_straight_through(bits):
  params = _weights(2)
  fq = jax.jit(quant.fake_quantize, static_argnums=1)(params, bits)
  ptq = quant.dequantize(quant.quantize_params(params, bits))
  jax.tree.map(np.testing.assert_array_equal, fq, ptq)

  cotangent = jax.tree.map(lambda x: jnp.arange(x.size, dtype=jnp.float32).reshape(x.shape) - 3.0,
                           params)

  def loss(p):
    q = quant.fake_quantize(p, bits)
    return sum(jnp.sum(c * x) for c, x in zip(jax.tree.leaves(cotangent), jax.tree.leaves(q)))

  grads = jax.jit(jax.grad(loss))(params)
  jax.tree.map(np.testing.assert_array_equal, grads, cotangent)
  # Forward mode too (custom_jvp): the tangent passes through unchanged.
  _, tangent = jax.jvp(lambda p: quant.fake_quantize(p, bits), (params,), (cotangent,))
  jax.tree.map(np.testing.assert_array_equal, tangent, cotangent)


@pytest.mark.parametrize("bits", QUANT_BITS)
def test_pack_codes_round_trip_and_byte_count(bits):
  rng = np.random.default_rng(bits)
  for shape in ((3, 3, 5, 5), (7, 3), (1, 1, 3, 3)):  # odd sizes need the ceil at 4 bits
    q = quant.qmax(bits)
    codes = rng.integers(-q, q + 1, shape).astype(quant.code_dtype(bits))
    packed = quant.pack_codes(codes, bits)
    assert packed.dtype == np.uint8 and packed.size == -(-codes.size * bits // 8)
    back = quant.unpack_codes(packed, bits, shape)
    assert back.dtype == quant.code_dtype(bits)
    np.testing.assert_array_equal(back, codes)
  with pytest.raises(ValueError, match="bytes cannot hold"):
    quant.unpack_codes(np.zeros(3, np.uint8), bits, (7, 3))


def _genotype_cases():
  fwd = network.network_config(None, width=5, hidden=12, num_classes=3, vote_group=3,
                               input_shape=(8, 8, 3), timesteps=2)
  bwd = network.network_config(None, width=6, hidden=10, num_classes=3, vote_group=2,
                               backward=True, input_shape=(8, 8, 3), timesteps=2,
                               ops="zero,skip,conv1x1,conv3x3@0.5,maxpool3x3")
  pool = network.network_config(None, width=4, hidden=9, num_classes=5, vote_group=1,
                                input_shape=(8, 8, 1), timesteps=2, cells_per_stage=2,
                                ops="zero,skip,conv1x1,conv3x3,avgpool3x3")
  cases = [(fwd, genotype_lib.parse_genotype("0303/0030/0002/0000", fwd.ops)),
           (fwd, genotype_lib.parse_genotype("0222/0022/0002/0000", fwd.ops)),
           (bwd, genotype_lib.parse_genotype("0303/0030/2002/0200", bwd.ops)),
           (bwd, genotype_lib.parse_genotype("0141/0014/3001/0300", bwd.ops))]
  per_cell = genotype_space.sample_genotypes(np.random.default_rng(3), 4, pool.ops)
  cases.append((pool, per_cell))
  cases += [(bwd, g) for g in genotype_space.sample_genotypes(np.random.default_rng(4), 3, bwd.ops,
                                                            backward=True)]
  return cases


@pytest.mark.slow
@pytest.mark.parametrize("bits", (32,) + QUANT_BITS)
def test_memory_model_bytes_equal_the_quantised_network_exactly(bits):
  for cfg, g in _genotype_cases():
    params = network.init_standalone_params(jax.random.key(0), cfg, g)
    real = quant.quantized_bytes(quant.quantize_params(params, bits))
    # [1, 4, 4] or [1, L, 4, 4]: a batch of one ([L, 4, 4] alone reads as L genotypes).
    predicted = memory.quantized_weight_bytes(np.asarray(g)[None], cfg, bits)
    assert predicted.shape == (1,) and int(predicted[0]) == real, (cfg.ops, g, bits)
    # The abstract tree (no weights built) gives the same count.
    shapes = jax.eval_shape(lambda k: quant.quantize_params(
        network.init_standalone_params(k, cfg, g), bits), jax.random.key(0))
    assert quant.quantized_bytes(shapes) == real
    if bits == 32:
      assert real == 4 * int(memory.param_count(np.asarray(g)[None], cfg)[0])
  # Batched over genotypes.
  cases = [(cfg, g) for cfg, g in _genotype_cases() if np.asarray(g).ndim == 2 and cfg.backward]
  cfg = cases[0][0]
  gs = np.stack([g for _, g in cases])
  np.testing.assert_array_equal(
      memory.quantized_weight_bytes(gs, cfg, bits),
      [memory.quantized_weight_bytes(g, cfg, bits) for g in gs])


@pytest.mark.slow
def test_16_bit_network_logits_stay_close_to_float():
  cfg = network.network_config(None, width=8, hidden=32, num_classes=4, vote_group=2,
                               input_shape=(8, 8, 3), timesteps=2, dropout=0.0)
  g = genotype_lib.parse_genotype("0303/0030/0002/0000", cfg.ops)
  params = network.init_standalone_params(jax.random.key(1), cfg, g)
  # A larger classifier init than the reference's N(0, 0.01^2) makes the
  # hidden LIF layer fire, so the logits are not all zero.
  params["head"]["fc1"]["kernel"] = params["head"]["fc1"]["kernel"] * 100
  params["head"]["fc2"]["kernel"] = params["head"]["fc2"]["kernel"] * 100
  images = jax.random.normal(jax.random.key(2), (6, 8, 8, 3))

  @jax.jit
  def logits(p):
    return network.standalone_forward(p, g, images, None, cfg, probe=None)[0]

  ref = np.asarray(logits(params))
  assert np.abs(ref).max() > 0
  got = np.asarray(logits(quant.dequantize(quant.quantize_params(params, 16))))
  np.testing.assert_allclose(got, ref, atol=1e-2 * np.abs(ref).max())


@pytest.mark.slow
def test_works_on_a_flax_params_tree():
  import flax.linen as nn

  class Tiny(nn.Module):
    @nn.compact
    def __call__(self, x):
      x = nn.BatchNorm(use_running_average=False)(nn.Conv(3, (3, 3), use_bias=False)(x))
      return nn.Dense(5)(x.reshape(x.shape[0], -1))

  variables = Tiny().init(jax.random.key(0), jnp.ones((1, 4, 4, 2)))
  params = variables["params"]
  q = quant.quantize_params(params, 4)
  kernels = [x for x in jax.tree.leaves(q.tree, is_leaf=lambda x: isinstance(
      x, quant.QuantizedTensor)) if isinstance(x, quant.QuantizedTensor)]
  assert sorted(k.codes.shape for k in kernels) == [(3, 3, 2, 3), (48, 5)]
  # conv: ceil(54 / 2) + 4 * 3, dense: 240 / 2 + 4 * 5; BN scale/bias (3 + 3) and
  # the dense bias (5) stay float32.
  assert quant.quantized_bytes(q) == (27 + 12) + (120 + 20) + 4 * (3 + 3 + 5)
  y = Tiny().apply({**variables, "params": quant.fake_quantize(params, 8)},
                   jnp.ones((1, 4, 4, 2)), mutable=["batch_stats"])[0]
  assert y.shape == (1, 5)
