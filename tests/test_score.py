import os
import subprocess
import sys
import textwrap

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnax_nas import genotype as genotype_lib
from snnax_nas import genotype_space
from snnax_nas import kernels
from snnax_nas import network
from snnax_nas import score
from snnax_nas import search as search_lib

CFG = network.network_config(None, width=4, hidden=32, timesteps=3, vote_group=2,
                             backward=True, input_shape=(16, 16, 3))
# Forward and backward genotypes, incl. a pooling cell and a skip-only cell.
GENOTYPES = ["0303/0030/2002/0200", "0302/0030/3003/0000", "0104/0040/0003/0000",
             "0333/0033/0003/0000", "0211/0041/0003/0200", "0111/0011/0001/0000"]
R, B = 2, 16


def _images(seed=0):
  return jax.random.normal(jax.random.key(seed), (R, B, 16, 16, 3)) * 2.0


def _random_codes(rng, b, n, rate):
  return (rng.random((b, n)) < rate).astype(np.float32)


@pytest.mark.slow
def test_hamming_terms_match_float64_reference():
  rng = np.random.default_rng(0)
  codes = _random_codes(rng, 12, 700, 0.2).reshape(12, 7, 10, 10)
  for kernel in kernels.HAMMING_KERNELS:
    d, n = kernels.hamming_terms(jnp.asarray(codes), kernel)
    ref = kernels.kernel_from_codes_reference(codes, kernel)
    np.testing.assert_allclose(float(n) - np.asarray(d, np.float64), ref, rtol=1e-6, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("b, n, rates", [(64, 131072, (0.05, 0.3, 0.5)),
                                         (256, 4096, (0.1, 0.02)),
                                         (32, 16384, (0.5,))])
def test_float32_logdet_matches_float64(b, n, rates):
  # Mean kernel over several calls, as a real candidate produces.
  rng = np.random.default_rng(b)
  calls = [_random_codes(rng, b, n, r) for r in rates]
  ref = kernels.kernel_logdet_reference([kernels.kernel_from_codes_reference(c) for c in calls])
  d_sum = sum(kernels.hamming_terms(jnp.asarray(c))[0] for c in calls)
  logdet, singular = kernels.kernel_logdet(-d_sum / len(calls), jnp.float32(n))
  assert not bool(singular)
  assert abs(float(logdet) - ref) < 1e-4, (float(logdet), ref)
  # The naive float32 slogdet of the full kernel is visibly worse at large N.
  if n >= 100000:
    naive = jnp.linalg.slogdet(n - d_sum / len(calls))[1]
    assert abs(float(naive) - ref) > 1e-3


@pytest.mark.slow
def test_singular_kernel_is_flagged_not_nan():
  rng = np.random.default_rng(1)
  codes = _random_codes(rng, 16, 512, 0.3)
  codes[5] = codes[9]  # two samples with identical codes
  d, n = kernels.hamming_terms(jnp.asarray(codes))
  logdet, singular = kernels.kernel_logdet(-d, n)
  assert bool(singular) and float(logdet) == -np.inf
  silent = np.zeros((16, 512), np.float32)  # a layer that never fires
  d, n = kernels.hamming_terms(jnp.asarray(silent))
  logdet, singular = kernels.kernel_logdet(-d, n)
  assert bool(singular) and float(logdet) == -np.inf


def _reference_score(text, key, images, cfg, kernel="sahd"):
  """The obviously-correct path: the architecture built alone, host 'hooks'
  on every LIF call, kernels and slogdet in float64 numpy."""
  g = genotype_lib.canonical(genotype_lib.parse_genotype(text, cfg.ops))
  cid = GENOTYPES.index(text)
  k_init, k_drop = jax.random.split(jax.random.fold_in(key, cid))
  alone = network.standalone_from_supernet(network.init_supernet_params(k_init, cfg), cfg, g)
  logdets = []
  for r in range(images.shape[0]):
    calls = []
    hook = lambda s: calls.append(np.asarray(s))
    probe = lambda s: (jax.debug.callback(hook, s, ordered=True), ())[1]
    network.standalone_forward(alone, g, images[r], jax.random.fold_in(k_drop, r), cfg,
                               probe=probe)
    n_lifs = 2 * int((np.vectorize(lambda d: cfg.ops.op_of_digit(d).has_lif)(
        g[tuple(zip(*genotype_lib.EDGES))])).sum()) + 3
    assert len(calls) == cfg.timesteps * n_lifs
    logdets.append(kernels.kernel_logdet_reference(
        [kernels.kernel_from_codes_reference(c, kernel) for c in calls]))
  return float(np.mean(logdets))


@pytest.mark.slow
def test_batched_supernet_score_equals_standalone_reference():
  key, images = jax.random.key(7), _images()
  result = score.score_candidates(GENOTYPES, images, key, CFG, chunk_size=4)
  assert result.scores.shape == (len(GENOTYPES),)
  assert result.singular.sum() <= 1
  for i, text in enumerate(GENOTYPES):
    ref = _reference_score(text, key, images, CFG)
    if result.singular[i]:  # a singular kernel must be singular in float64 too
      assert ref == -np.inf and result.scores[i] == -np.inf
    else:
      assert abs(result.scores[i] - ref) < 1e-4, (text, result.scores[i], ref)
  # Different architectures get different scores.
  assert len(set(np.round(result.scores, 6))) == len(GENOTYPES) - result.singular.sum() + (
      result.singular.sum() > 0)


@pytest.mark.slow
def test_time_batched_scores_equal_per_step_scores_and_the_reference():
  # A forward-only space scored time-batched (every conv once over all T
  # steps): the same scores as the per-step supernet, and as the float64
  # reference of the standalone network.
  cfg = CFG.replace(backward=False)
  forward_only = [t for t in GENOTYPES if not genotype_lib.parse_genotype(t, cfg.ops)[
      np.tril_indices(4, -1)].any()]
  assert len(forward_only) == 3
  ids = np.array([GENOTYPES.index(t) for t in forward_only])
  key, images = jax.random.key(7), _images()
  kinds = ("sahd", "sahd_time", "membrane")
  batched = score.score_candidates(forward_only, images, key, cfg, kernel=kinds, chunk_size=4,
                                   candidate_ids=ids, time_batched=True)
  stepped = score.score_candidates(forward_only, images, key, cfg, kernel=kinds, chunk_size=4,
                                   candidate_ids=ids)
  np.testing.assert_array_equal(batched.singular, stepped.singular)
  np.testing.assert_allclose(batched.scores, stepped.scores, rtol=1e-6, atol=1e-4)
  assert np.isfinite(batched.scores[:, 0]).sum() >= 2
  for i, text in enumerate(forward_only):
    ref = _reference_score(text, key, images, cfg)
    if batched.singular[i, 0]:  # singular in float64 too
      assert ref == -np.inf and batched.scores[i, 0] == -np.inf
    else:
      assert abs(batched.scores[i, 0] - ref) < 1e-4, (text, batched.scores[i, 0], ref)


@pytest.mark.slow
def test_one_compilation_for_any_number_of_chunks_and_chunking_invariance(monkeypatch):
  key, images = jax.random.key(3), _images(1)
  gs = genotype_space.sample_genotypes(np.random.default_rng(0), 7, CFG.ops, backward=True)
  chex.clear_trace_counter()
  monkeypatch.setattr(score, "_chunk_body", chex.assert_max_traces(score._chunk_body, n=1))
  score.chunk_scorer.cache_clear()
  a = score.score_candidates(gs, images, key, CFG, chunk_size=2)  # 4 chunks
  b = score.score_candidates(gs, images, key, CFG, chunk_size=2)  # cached: no retrace
  np.testing.assert_array_equal(a.scores, b.scores)
  monkeypatch.undo()
  score.chunk_scorer.cache_clear()
  # Scores depend on candidate ids, not on chunking, order or vmapping.
  c = score.score_candidates(gs[::-1], images, key, CFG, chunk_size=8, map_batch_size=8,
                             candidate_ids=np.arange(7)[::-1])
  np.testing.assert_allclose(c.scores[::-1], a.scores, atol=1e-4)


@pytest.mark.slow
def test_hamming_kernel_option():
  res = score.score_candidates(GENOTYPES[:2], _images(), jax.random.key(0), CFG,
                               kernel="hamming", chunk_size=2)
  assert np.isfinite(res.scores).all()
  ref = _reference_score(GENOTYPES[0], jax.random.key(0), _images(), CFG, kernel="hamming")
  assert abs(res.scores[0] - ref) < 1e-3 * abs(ref)


def test_bad_inputs_raise_value_errors():
  with pytest.raises(ValueError, match="cosine"):
    score.score_candidates(GENOTYPES, _images(), jax.random.key(0), CFG, kernel="cosine")
  with pytest.raises(ValueError, match="images of shape"):
    score.score_candidates(GENOTYPES, jnp.zeros((2, 4, 8, 8, 3)), jax.random.key(0), CFG)
  with pytest.raises(ValueError, match="0309"):
    score.score_candidates(["0309/0030/2002/0200"], _images(), jax.random.key(0), CFG)
  fwd_only = network.network_config(None, width=4, hidden=32, input_shape=(16, 16, 3))
  with pytest.raises(ValueError, match="backward"):
    genotype_lib.as_genotypes(["0303/0030/2002/0200"], fwd_only)


_SHARDED = textwrap.dedent("""
    import os, sys
    import jax, numpy as np
    from snnax_nas import network, score
    cfg = network.network_config(None, width=4, hidden=32, timesteps=3, vote_group=2,
                                 backward=True, input_shape=(16, 16, 3))
    images = jax.random.normal(jax.random.key(0), (2, 16, 16, 16, 3)) * 2.0
    gs = {gs!r}
    res = score.score_candidates(gs, images, jax.random.key(7), cfg, chunk_size=4)
    print(jax.local_device_count(), *res.scores.tolist())
""")


@pytest.mark.slow
def test_sharded_over_four_host_devices_gives_same_scores():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
             JAX_PLATFORMS="cpu")
  code = _SHARDED.format(gs=GENOTYPES[:5])
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                       text=True, check=True, timeout=600).stdout.split()
  assert out[0] == "4"
  images = jax.random.normal(jax.random.key(0), (2, 16, 16, 16, 3)) * 2.0
  single = score.score_candidates(GENOTYPES[:5], images, jax.random.key(7), CFG, chunk_size=4)
  np.testing.assert_allclose(np.array(out[1:], float), single.scores, atol=1e-5)


def test_code_gram_is_exact_in_every_dtype():
  rng = np.random.default_rng(3)
  codes = _random_codes(rng, 24, 5000, 0.3)
  ref = codes.astype(np.float64) @ codes.T.astype(np.float64)
  for dtype in (jnp.int8, jnp.bfloat16, jnp.float32, None):
    np.testing.assert_array_equal(np.asarray(kernels.code_gram(jnp.asarray(codes), dtype)), ref)


_VMAPPED_LOGDETS = textwrap.dedent("""
    import jax
    jax.config.update("jax_num_cpu_devices", 2)
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, PartitionSpec as P
    from snnax_nas import kernels
    mesh = Mesh(np.array(jax.devices()), ("d",))

    def per_device(x):  # 64 kernels [64, 64] per device, vmapped (map_batch_size > 1)
      m = jnp.einsum("kij,klj->kil", x[0], x[0]) / 100.0 - 0.3
      return jax.vmap(kernels.kernel_logdet, in_axes=(0, None))(m, jnp.float32(5.0))[0][None]

    f = jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=P("d"), out_specs=P("d")))
    x = jax.random.uniform(jax.random.key(0), (2, 64, 64, 256))
    for _ in range(3):
      out = jax.block_until_ready(f(x))
    print(np.isfinite(np.asarray(out)).all())
""")


@pytest.mark.slow
def test_vmapped_logdets_on_two_devices_do_not_deadlock():
  # A batched LAPACK LU on each of two XLA:CPU devices used to block both
  # intra-op pool threads waiting for each other (see kernels._lu_terms).
  out = subprocess.run([sys.executable, "-c", _VMAPPED_LOGDETS],
                       env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True,
                       text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.split()[-1] == "True"


# ----------------------------------------------------------------------------
# Score variants.

@pytest.mark.slow
def test_variant_terms_match_numpy_on_hand_made_codes():
  codes = np.array([[1, 0, 1, 0, 0, 1],
                    [1, 0, 1, 0, 0, 1],   # = row 0
                    [0, 1, 1, 0, 0, 0],
                    [1, 1, 1, 1, 0, 1]], np.float32)
  n = codes.shape[1]
  # sahd_norm: d / N of a live call; a silent and a saturated call are not live.
  dn, live = kernels.normalised_terms(jnp.asarray(codes))
  ref = (n - kernels.kernel_from_codes_reference(codes)) / n
  assert float(live) == 1.0
  np.testing.assert_allclose(np.asarray(dn), ref, atol=1e-6)
  for dead in (np.zeros_like(codes), np.ones_like(codes)):
    dn, live = kernels.normalised_terms(jnp.asarray(dead))
    assert float(live) == 0.0 and not np.asarray(dn).any()
  # swap: distinct columns (neuron patterns over the batch).
  assert float(kernels.pattern_count(jnp.asarray(codes))) == len(np.unique(codes, axis=1).T)
  assert float(kernels.pattern_count(jnp.zeros((4, 6)))) == 1.0
  rng = np.random.default_rng(0)
  wide = (rng.random((40, 300)) < 0.02).astype(np.float32)  # B > 32: two packed words
  wide[:, 7] = wide[:, 3]
  assert float(kernels.pattern_count(jnp.asarray(wide))) == len(np.unique(wide, axis=1).T)
  # membrane: the sample correlation matrix, no threshold.
  v = rng.normal(size=(5, 3, 4)).astype(np.float32)
  np.testing.assert_allclose(np.asarray(kernels.membrane_terms(jnp.asarray(v))),
                             np.corrcoef(v.reshape(5, -1)), atol=1e-5)
  # sahd_time: summed per-call Grams give the SAHD kernel of the codes
  # concatenated over time.
  calls = [codes, codes[::-1], np.roll(codes, 1, axis=1)]
  gram = sum(kernels.time_terms(jnp.asarray(c))[0] for c in calls)
  m, n_bar = kernels._time_kernel({"lif": (gram, jnp.float32(3 * n))},
                                {"lif": jnp.float32(3)})
  np.testing.assert_allclose(float(n_bar) + np.asarray(m),
                             kernels.kernel_from_codes_reference(np.concatenate(calls, 1)),
                             rtol=1e-6, atol=1e-4)


class _Hook:
  """A host probe recording every LIF call's spikes and membrane."""

  takes_membrane = True

  def __init__(self):
    self.calls = []

  def __call__(self, s, v):
    jax.debug.callback(lambda s, v: self.calls.append((np.asarray(s), np.asarray(v))), s, v,
                       ordered=True)
    return ()


def _correlation(v):
  """Row correlation matrix; a constant row (no variance) gives a zero row."""
  c = v.astype(np.float64) - v.mean(1, keepdims=True)
  norm = np.sqrt((c * c).sum(1, keepdims=True))
  z = np.divide(c, norm, out=np.zeros_like(c), where=norm > 0)
  return z @ z.T


def _variant_reference(text, key, images, cfg, draw_key=None):
  """Float64 numpy scores of the new kernels on the architecture built alone."""
  g = genotype_lib.canonical(genotype_lib.parse_genotype(text, cfg.ops))
  cid = GENOTYPES.index(text)
  k_init, k_drop = jax.random.split(jax.random.fold_in(key, cid))
  alone = network.standalone_from_supernet(network.init_supernet_params(k_init, cfg), cfg, g)
  out = {k: [] for k in ("sahd_norm", "sahd_time", "swap", "membrane")}
  for r in range(images.shape[0]):
    hook = _Hook()
    network.standalone_forward(alone, g, images[r], jax.random.fold_in(k_drop, r), cfg,
                               probe=hook)
    codes = [(s.reshape(s.shape[0], -1) > 0).astype(np.float64) for s, _ in hook.calls]
    n_lifs = len(codes) // cfg.timesteps
    live = [c for c in codes if (c != c[:1]).any()]
    norm = [kernels.kernel_from_codes_reference(c) / c.shape[1] for c in live]
    out["sahd_norm"].append(kernels.kernel_logdet_reference(norm))
    per_lif = [np.concatenate(codes[l::n_lifs], axis=1) for l in range(n_lifs)]
    out["sahd_time"].append(kernels.kernel_logdet_reference(
        [kernels.kernel_from_codes_reference(x) for x in per_lif]))
    out["swap"].append(np.log(sum(len(np.unique(c, axis=1).T) for c in codes)))
    out["membrane"].append(kernels.kernel_logdet_reference(
        [_correlation(v.reshape(v.shape[0], -1)) for _, v in hook.calls]))
  return {k: float(np.mean(v)) for k, v in out.items()}


@pytest.mark.slow
def test_variant_scores_equal_standalone_numpy_reference():
  key, images = jax.random.key(7), _images()
  texts = GENOTYPES[:2] + GENOTYPES[4:5]
  kernels = ("sahd", "sahd_norm", "sahd_time", "swap", "membrane")
  res = score.score_candidates(texts, images, key, CFG, kernel=kernels, chunk_size=4,
                               candidate_ids=[GENOTYPES.index(t) for t in texts])
  alone = score.score_candidates(texts, images, key, CFG, chunk_size=4,
                                 candidate_ids=[GENOTYPES.index(t) for t in texts])
  assert res.scores.shape == (3, 5)
  # SAHD is unchanged when computed beside the other kernels.
  np.testing.assert_allclose(res.scores[:, 0], alone.scores, atol=1e-4)
  for i, text in enumerate(texts):
    ref = _variant_reference(text, key, images, CFG)
    for j, k in enumerate(kernels[1:], start=1):
      assert not res.singular[i, j], (text, k)
      assert abs(res.scores[i, j] - ref[k]) < 1e-3 * max(1.0, abs(ref[k])), (text, k, ref[k])


@pytest.mark.slow
def test_new_kernels_and_draws_compile_once(monkeypatch):
  key, images = jax.random.key(3), _images(1)
  gs = genotype_space.sample_genotypes(np.random.default_rng(0), 5, CFG.ops, backward=True)
  kernels = ("sahd_norm", "sahd_time", "swap", "membrane")
  chex.clear_trace_counter()
  monkeypatch.setattr(score, "_chunk_body", chex.assert_max_traces(score._chunk_body, n=1))
  score.chunk_scorer.cache_clear()
  a = score.score_candidates(gs, images, key, CFG, kernel=kernels, draws=2, chunk_size=2)
  b = score.score_candidates(gs, images, key, CFG, kernel=kernels, draws=2, chunk_size=2)
  np.testing.assert_array_equal(a.scores, b.scores)
  monkeypatch.undo()
  score.chunk_scorer.cache_clear()
  # One draw reproduces the single-draw scores; a second draw changes them.
  one = score.score_candidates(gs, images, key, CFG, kernel="swap", chunk_size=2)
  assert one.scores.shape == (5,)
  assert not np.allclose(one.scores, a.scores[:, 2])
  with pytest.raises(ValueError, match="draws"):
    score.score_candidates(gs, images, key, CFG, draws=0)
  with pytest.raises(ValueError, match="distinct"):
    score.score_candidates(gs, images, key, CFG, kernel=("swap", "swap"))


def test_rank_ensemble():
  a = np.array([3.0, 1.0, 2.0, -np.inf])
  b = np.array([0.1, 0.4, np.nan, 0.3])
  # Ranks a: 4, 2, 3, 1; b (NaN lowest): 2, 4, 1, 3.
  np.testing.assert_array_equal(kernels.rank_ensemble(a, b), [3.0, 3.0, 2.0, 2.0])
  with pytest.raises(ValueError):
    kernels.rank_ensemble()


@pytest.mark.slow
def test_auto_layout_and_conv_dtype_options():
  key, images = jax.random.key(5), _images(2)
  gs = GENOTYPES[:4]
  explicit = score.score_candidates(gs, images, key, CFG, chunk_size=4, map_batch_size=1)
  auto = score.score_candidates(gs, images, key, CFG)  # auto: chunk 8, map_batch 1 on CPU
  np.testing.assert_allclose(auto.scores, explicit.scores, atol=1e-4)
  f32 = score.score_candidates(gs, images, key, CFG, chunk_size=4, conv_dtype="float32")
  np.testing.assert_array_equal(f32.scores, explicit.scores)  # float32 = the default path
  bf16 = score.score_candidates(gs, images, key, CFG, chunk_size=4, conv_dtype=jnp.bfloat16)
  ok = np.isfinite(explicit.scores)
  # Only the weights are rounded (spikes are exact in bf16): scores move little.
  np.testing.assert_allclose(bf16.scores[ok], explicit.scores[ok], rtol=0.05, atol=0.5)
  with pytest.raises(ValueError, match="float16"):
    score.score_candidates(gs, images, key, CFG, conv_dtype="float16")
  with pytest.raises(ValueError, match="chunk_size=0"):
    score.score_candidates(gs, images, key, CFG, chunk_size=0)


@pytest.mark.slow
def test_searches_pass_draws_and_conv_dtype_to_the_scorer():
  from snnax_nas import search  # pylint: disable=g-import-not-at-top
  fwd = network.network_config(None, width=4, hidden=32, timesteps=2, vote_group=2,
                               input_shape=(16, 16, 3))
  texts = ["0104/0040/0003/0000", "0333/0033/0003/0000"]
  key, images = jax.random.key(2), _images(4)
  res = search.random_search(images, key, fwd, genotypes=texts,
                             scorer=search.ScorerOptions(chunk_size=2, draws=2,
                                                         conv_dtype="bfloat16"))
  direct = score.score_candidates(texts, images, key, fwd, chunk_size=2, draws=2,
                                  conv_dtype="bfloat16")
  got = {r.candidate_id: r.score for r in res.records}
  np.testing.assert_allclose([got[0], got[1]], direct.scores, atol=1e-5)


def test_common_weights_score_a_cell_alike_under_every_id():
  texts = ["0302/0030/0003/0000", "0104/0040/0003/0000", "0302/0030/0003/0000"]
  images, key = _images(5), jax.random.key(4)
  common = score.score_candidates(texts, images, key, CFG, candidate_ids=np.array([3, 7, 11]),
                                  common_weights=True, chunk_size=3)
  # The same cell under two ids: one score; and every cell is scored on id 0's draw.
  assert common.scores[0] == common.scores[2]
  alone = score.score_candidates(texts[:2], images, key, CFG, candidate_ids=np.array([0, 0]),
                                 chunk_size=3)
  np.testing.assert_allclose(common.scores[:2], alone.scores, rtol=1e-6)
  independent = score.score_candidates(texts, images, key, CFG,
                                       candidate_ids=np.array([3, 7, 11]), chunk_size=3)
  assert independent.scores[0] != independent.scores[2]
  opts = search_lib.ScorerOptions(common_weights=True)
  assert opts.score_args() == {"common_weights": True}
