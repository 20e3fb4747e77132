import functools

import jax
import jax.extend
import numpy as np
import pytest

from snnax_nas import flops
from snnax_nas import genotype as genotype_lib
from snnax_nas import genotype_space
from snnax_nas import kernels
from snnax_nas import network
from snnax_nas import score


def _traced_flops(jaxpr) -> float:
  """FLOPs of every conv and dot in a jaxpr (2 per multiply-add), counting
  sub-jaxprs and a scan body ``length`` times: the slow, obvious count."""
  total = 0.0
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "conv_general_dilated":
      out, rhs = eqn.outvars[0].aval, eqn.invars[1].aval
      dn = eqn.params["dimension_numbers"]
      k_spatial = np.prod([rhs.shape[d] for d in dn.rhs_spec[2:]])
      cin = rhs.shape[dn.rhs_spec[1]]
      total += 2.0 * np.prod(out.shape) * k_spatial * cin
    elif eqn.primitive.name == "dot_general":
      (contract, _), _ = eqn.params["dimension_numbers"]
      lhs = eqn.invars[0].aval
      total += 2.0 * np.prod(eqn.outvars[0].aval.shape) * np.prod([lhs.shape[d] for d in contract])
    times = eqn.params.get("length", 1) if eqn.primitive.name == "scan" else 1
    for sub in jax.extend.core.jaxprs_in_params(eqn.params):
      total += times * _traced_flops(sub)
  return total


@pytest.mark.slow
@pytest.mark.parametrize("ops,backward,text", [
    ("snasnet", False, "0321/0023/0004/0000"),
    ("snasnet", False, "0104/0040/0003/0000"),
    ("lightsnn", True, "0222/2020/2202/2220"),
])
def test_useful_flops_equal_a_count_of_the_standalone_networks_jaxpr(ops, backward, text):
  # The standalone network has one LIF (and one probe Gram) per conv edge:
  # exactly what "useful" counts.
  cfg = network.network_config(None, width=4, hidden=24, timesteps=3, vote_group=2,
                               ops=ops, backward=backward, input_shape=(16, 16, 3))
  g = genotype_lib.as_genotypes([text], cfg)
  params = network.init_standalone_params(jax.random.key(0), cfg, g[0])
  images = np.zeros((8, 16, 16, 3), np.float32)
  fwd = functools.partial(network.standalone_forward, genotypes=g[0], cfg=cfg,
                          probe=kernels.hamming_terms)
  jaxpr = jax.make_jaxpr(lambda p, x, k: fwd(p, images=x, key=k))(
      params, images, jax.random.key(1)).jaxpr
  count = flops.candidate_flops(genotype_lib.arch_of(g, cfg), cfg, batch=8, repeats=1)
  assert count.useful[0] == _traced_flops(jaxpr)


def test_executed_flops_count_one_gram_per_node_and_threshold():
  cfg = network.network_config(None, width=4, hidden=24, timesteps=3, vote_group=2,
                               input_shape=(16, 16, 3))
  (h, w, c), (h2, w2, c2) = cfg.stage_shapes
  grams = lambda: 2.0 * 8 * 8 * np.array([h * w * c, h2 * w2 * c2])  # cell 1, cell 2
  # Node 0 feeds three conv edges (one shared LIF), node 1 one, node 2 one.
  g = genotype_lib.as_genotypes(["0333/0033/0003/0000"], cfg)
  count = flops.candidate_flops(genotype_lib.arch_of(g, cfg), cfg, batch=8, repeats=2)
  saved = 2 * cfg.timesteps * (6 - 3) * grams().sum()
  assert count.useful[0] - count.executed[0] == saved
  # Mixed thresholds: conv3x3@0.5 and conv3x3 on edges from node 0 need two LIFs.
  cfg2 = network.network_config(None, width=4, hidden=24, timesteps=3, vote_group=2,
                                input_shape=(16, 16, 3), ops="skip,conv3x3,conv3x3@0.5")
  # Edges 0-1 (threshold 1) and 0-2, 0-3 (threshold 0.5); skips 1-3 and 2-3
  # keep nodes 1 and 2 alive.
  g2 = genotype_lib.as_genotypes(["0233/0001/0001/0000"], cfg2)
  count2 = flops.candidate_flops(genotype_lib.arch_of(g2, cfg2), cfg2, batch=8, repeats=1)
  assert count2.useful[0] - count2.executed[0] == cfg2.timesteps * grams().sum()


def test_flops_reject_bad_arguments():
  cfg = network.network_config(None, width=4, hidden=24)
  with pytest.raises(ValueError, match="expected"):
    flops.candidate_flops(np.zeros((2, 6, 4)), cfg, batch=8)
  with pytest.raises(ValueError, match="batch"):
    flops.candidate_flops(np.zeros((2, 2, 6, 4)), cfg, batch=0)


def test_balanced_slots_cover_every_candidate_and_even_out_devices():
  rng = np.random.default_rng(0)
  cost = rng.choice([1.0, 2.0, 3.0, 4.0], size=37)
  order = np.argsort(-cost, kind="stable")
  slots, real = score.balanced_slots(order, chunk_size=8, num_devices=2)
  assert slots.shape == real.shape == (40,)
  assert sorted(slots[real]) == list(range(37))  # each real candidate once
  assert (cost[slots[~real]] == cost.min()).all()  # padding: the cheapest
  per_device = cost[slots].reshape(5, 2, 4).sum(-1)  # [chunk, device]
  naive = np.concatenate([cost, np.full(3, cost[-1])]).reshape(5, 2, 4).sum(-1)
  assert np.abs(per_device[:, 0] - per_device[:, 1]).max() <= 1.0
  assert np.abs(per_device[:, 0] - per_device[:, 1]).sum() < np.abs(naive[:, 0] - naive[:, 1]).sum()
  with pytest.raises(ValueError, match="multiple"):
    score.balanced_slots(order, chunk_size=7, num_devices=2)


def test_search_space_cost_spread_is_what_the_balancing_is_for():
  # At width 16 the 5-op space's candidates differ ~4x in executed FLOPs.
  cfg = network.network_config(None, width=16, hidden=256)
  gs = genotype_lib.as_genotypes(genotype_space.sample_genotypes(np.random.default_rng(0), 64, cfg.ops), cfg)
  ex = flops.candidate_flops(genotype_lib.arch_of(gs, cfg), cfg, batch=64, repeats=2).executed
  assert 3.0 < ex.max() / ex.min() < 6.0
  order = flops.costliest_first(genotype_lib.arch_of(gs, cfg), cfg, batch=64, repeats=2)
  assert sorted(order) == list(range(64)) and (np.diff(ex[order]) <= 0).all()
