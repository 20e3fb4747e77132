import jax
import numpy as np
import pytest

from snnax_nas import genotype as genotype_lib
from snnax_nas import kernels
from snnax_nas import memory
from snnax_nas import network
from snnax_nas import proxies
from snnax_nas import score

CFG = network.network_config(None, width=4, hidden=32, timesteps=2, vote_group=2,
                             input_shape=(16, 16, 3))
TABLE_CFG = network.network_config(None, width=4, hidden=32, timesteps=2, vote_group=2,
                                   input_shape=(16, 16, 3),
                                   ops="skip,conv3x3@0.5,conv3x3,conv3x3@1.5")
GENOTYPES = ["0303/0030/0003/0000", "0104/0040/0003/0000", "0111/0011/0001/0000"]


def _images(r=1, b=8, seed=0):
  return jax.random.normal(jax.random.key(seed), (r, b, 16, 16, 3)) * 2.0


# Worked by hand from the genotype rows (row i, column j: edge i -> j; digit
# 1 skip, 2-4 LIF->conv), after dead-node pruning.
@pytest.mark.parametrize("text, depth", [
    ("0101/0043/0000/0000", 1),  # 0 -skip-> 1 -conv-> 3 beats the direct skip; 1 -> 2 dead
    ("0222/0022/0002/0000", 3),  # conv chain 0 -> 1 -> 2 -> 3
    ("0001/0000/0000/0000", 0),  # one skip
    ("0203/0040/0000/0000", 1),  # 0 -conv-> 3; the chain 0 -> 1 -> 2 ends at a dead node
])
def test_conv_depth_counts_convs_on_the_longest_live_path(text, depth):
  g = genotype_lib.parse_genotype(text, TABLE_CFG.ops)
  got = proxies.conv_depth([g], TABLE_CFG)
  assert got.tolist() == [depth * TABLE_CFG.num_cells]


def test_analytic_scores_are_exact_and_refuse_supernets():
  gs = genotype_lib.as_genotypes(GENOTYPES, CFG)
  res = score.score_candidates(GENOTYPES, _images(), jax.random.key(0), CFG,
                               kernel=("params", "conv_depth", "flops"))
  assert res.compile_seconds == 0.0  # nothing compiled
  np.testing.assert_array_equal(res.scores[:, 0], memory.param_count(gs, CFG))
  np.testing.assert_array_equal(res.scores[:, 1], proxies.conv_depth(gs, CFG))
  # FLOPs of the forward: the 3-conv cell costs more than the 2-conv one,
  # the skip-only cell least.
  assert res.scores[0, 2] > res.scores[1, 2] > res.scores[2, 2] > 0
  multi = genotype_lib.arch_of(gs, CFG).copy()
  multi[0, :, 0, :] = 1.0
  with pytest.raises(ValueError, match="one op per edge"):
    proxies.analytic_scores(("params",), CFG, arch=multi)


def test_mixed_kernel_tuple_keeps_each_kernels_column():
  images, key = _images(), jax.random.key(3)
  both = score.score_candidates(GENOTYPES, images, key, CFG,
                                kernel=("params", "sahd", "grad_norm"), chunk_size=4)
  sahd = score.score_candidates(GENOTYPES, images, key, CFG, chunk_size=4)
  grad = score.score_candidates(GENOTYPES, images, key, CFG, kernel="grad_norm", chunk_size=4)
  np.testing.assert_allclose(both.scores[:, 1], sahd.scores, atol=1e-4)
  np.testing.assert_allclose(both.scores[:, 2], grad.scores, rtol=1e-4)
  np.testing.assert_array_equal(both.scores[:, 0],
                                memory.param_count(genotype_lib.as_genotypes(GENOTYPES, CFG), CFG))


def _gradient_reference(text, cid, key, images, cfg):
  """The architecture built alone, its gradients by plain jax.grad, scores in
  float64 numpy: the obviously-correct path for the gradient proxies."""
  g = genotype_lib.canonical(genotype_lib.parse_genotype(text, cfg.ops))
  k_init, k_drop = jax.random.split(jax.random.fold_in(key, cid))
  alone = network.standalone_from_supernet(network.init_supernet_params(k_init, cfg), cfg, g)
  out = {"grad_norm": [], "snip": [], "jacob_cov": []}
  for r in range(images.shape[0]):
    kd = jax.random.fold_in(k_drop, r)

    def loss(p, x):
      return proxies.proxy_loss(network.standalone_forward(p, g, x, kd, cfg)[0])

    def logit_sum(x):
      return network.standalone_forward(alone, g, x, kd, cfg)[0].sum()

    grads = jax.grad(loss)(alone, images[r])
    leaves = [np.asarray(x, np.float64) for x in jax.tree.leaves(grads)]
    weights = [np.asarray(x, np.float64) for x in jax.tree.leaves(alone)]
    out["grad_norm"].append(0.5 * np.log(sum((x * x).sum() for x in leaves)))
    out["snip"].append(np.log(sum(np.abs(w * x).sum() for w, x in zip(weights, leaves))))
    out["jacob_cov"].append(proxies.jacob_cov_reference(np.asarray(jax.grad(logit_sum)(images[r]))))
  return {k: float(np.mean(v)) for k, v in out.items()}


def test_gradient_proxies_equal_the_network_built_alone():
  images, key = _images(r=2), jax.random.key(5)
  ks = ("grad_norm", "snip", "jacob_cov")
  res = score.score_candidates(GENOTYPES[:2], images, key, CFG, kernel=ks, chunk_size=2)
  assert not res.singular.any()
  for i, text in enumerate(GENOTYPES[:2]):
    ref = _gradient_reference(text, i, key, images, CFG)
    for j, k in enumerate(ks):
      assert abs(res.scores[i, j] - ref[k]) < 2e-3 * max(1.0, abs(ref[k])), (text, k, ref[k])


def test_expressivity_terms_match_numpy_and_silent_codes_score_zero():
  rng = np.random.default_rng(0)
  for shape in [(4, 3, 3, 6), (8, 40)]:  # a conv call, and a dense call with C > B
    codes = (rng.random(shape) < 0.3).astype(np.float32)
    got = float(kernels.expressivity_terms(jax.numpy.asarray(codes)))
    assert abs(got - kernels.expressivity_reference(codes)) < 1e-4
  assert float(kernels.expressivity_terms(jax.numpy.zeros((4, 2, 2, 3)))) == 0.0
  # Isotropic: C independent balanced channels give nearly log C.
  codes = (rng.random((4096, 4)) < 0.5).astype(np.float32)
  assert abs(float(kernels.expressivity_terms(jax.numpy.asarray(codes))) - np.log(4)) < 0.01


def test_gradient_proxy_loss_is_not_flat_at_equal_logits():
  # A silent last layer gives equal logits; the loss must still have a gradient.
  g = jax.grad(proxies.proxy_loss)(jax.numpy.zeros((4, 3)))
  assert float(np.abs(g).sum()) > 0


def test_informative_terms_match_numpy_and_count_silent_and_saturated_neurons():
  rng = np.random.default_rng(1)
  codes = (rng.random((6, 3, 3, 4)) < 0.4).astype(np.float32)
  codes[:, 0] = 0.0  # silent neurons
  codes[:, 1] = 1.0  # saturated neurons
  got = float(kernels.informative_terms(jax.numpy.asarray(codes)))
  assert abs(got - kernels.informative_reference(codes)) < 1e-6
  assert got <= 1 / 3 + 1e-6  # two of the three rows of neurons tell no sample apart
  assert float(kernels.informative_terms(jax.numpy.zeros((4, 5)))) == 0.0


def test_progressivity_is_the_smallest_gain_between_cells():
  assert kernels.progressivity_from_cells([0.5, 1.5, 1.0, 2.0]) == -0.5
  assert kernels.progressivity_from_cells([0.5]) == -np.inf
  # Cells without a LIF that ran drop out of the sequence: the gain is
  # taken between the cells that remain.
  values = {"cell0/edge0/lif0": 2.0, "cell1/edge0/lif0": 0.0, "cell2/edge1/lif0": 5.0,
            "head/lif": 100.0}
  counts = {"cell0/edge0/lif0": 2.0, "cell1/edge0/lif0": 0.0, "cell2/edge1/lif0": 2.0,
            "head/lif": 2.0}
  s, bad = kernels._progressivity(jax.tree.map(jax.numpy.float32, values),
                                  jax.tree.map(jax.numpy.float32, counts))
  assert not bool(bad) and abs(float(s) - 1.5) < 1e-6


class _NamedHook:
  """A host probe recording every LIF call's codes with the LIF's name."""

  takes_membrane = True

  def __init__(self):
    self.calls = []

  def named(self, name, s):
    jax.debug.callback(lambda s: self.calls.append((name, np.asarray(s))), s, ordered=True)
    return ()


def test_spike_signals_equal_the_network_built_alone(monkeypatch):
  from snnax_nas.network import skeleton  # pylint: disable=g-import-not-at-top

  def record(self, name, spikes, membrane):
    if self.probe is not None:
      self.add(name, self.probe.named(name, spikes))

  images, key = _images(r=2), jax.random.key(4)
  ks = ("informative", "progressivity")
  res = score.score_candidates(GENOTYPES, images, key, CFG, kernel=ks, chunk_size=4)
  monkeypatch.setattr(skeleton._Recorder, "record", record)
  for i, text in enumerate(GENOTYPES):
    g = genotype_lib.canonical(genotype_lib.parse_genotype(text, CFG.ops))
    k_init, k_drop = jax.random.split(jax.random.fold_in(key, i))
    alone = network.standalone_from_supernet(network.init_supernet_params(k_init, CFG), CFG, g)
    ref = {k: [] for k in ks}
    for r in range(images.shape[0]):
      hook = _NamedHook()
      network.standalone_forward(alone, g, images[r], jax.random.fold_in(k_drop, r), CFG,
                                 probe=hook)
      ref["informative"].append(np.mean([kernels.informative_reference(c)
                                         for _, c in hook.calls]))
      per_cell = {}
      for name, c in hook.calls:
        if name.startswith("cell"):
          per_cell.setdefault(int(name.split("/")[0][4:]), []).append(
              kernels.expressivity_reference(c))
      ref["progressivity"].append(kernels.progressivity_from_cells(
          [np.mean(per_cell[l]) for l in sorted(per_cell)]))
    for j, k in enumerate(ks):
      want = float(np.mean(ref[k]))
      if np.isinf(want):  # a cell with no conv LIF (the skip-only genotype): flagged
        assert res.scores[i, j] == want and res.singular[i, j], (text, k)
        continue
      assert abs(res.scores[i, j] - want) < 1e-3 * max(1.0, abs(want)), (text, k, want)
  assert np.isfinite(res.scores[:2]).all()
