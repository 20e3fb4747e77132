"""Analytic memory model (checked against real parameter trees) and the budget rule."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnax_nas import genotype as genotype_lib
from snnax_nas import genotype_space
from snnax_nas import memory
from snnax_nas import network


def _real_count(cfg, g):
  tree = jax.eval_shape(lambda k: network.init_standalone_params(k, cfg, g), jax.random.key(0))
  return memory.tree_param_count(tree)


def test_released_cells_match_spec_numbers():
  c100 = network.network_config("cifar100", backward=True)
  g100 = genotype_lib.parse_genotype("0302/0030/3003/0000", c100.ops)
  assert memory.param_count(g100, c100) == 20_624_500 == _real_count(c100, g100)
  c10 = network.network_config("cifar10", backward=True)
  g10 = genotype_lib.parse_genotype("0303/0030/2002/0200", c10.ops)
  assert memory.param_count(g10, c10) == 19_520_356 == _real_count(c10, g10)
  assert round(memory.param_count(g10, network.network_config(
      "cifar10", backward=True, second_pool=2)) / 1e6, 2) == 44.69


@pytest.mark.slow
@pytest.mark.parametrize("cells_per_stage", [1, 2])
def test_analytic_count_equals_real_tree_on_many_forward_genotypes(cells_per_stage):
  cfg = network.network_config(None, width=8, hidden=48, cells_per_stage=cells_per_stage,
                               num_classes=7, vote_group=3)
  gs = genotype_lib.unique_canonical(genotype_space.enumerate_forward(cfg.ops))
  # Every pattern of conv1x1/conv3x3 over the 6 edges appears; take them all
  # plus a random selection of the rest (a few hundred networks in total).
  digits = gs[..., [0, 0, 1, 0, 1, 2], [1, 2, 2, 3, 3, 3]]
  conv_pattern = np.where(digits == 2, 1, np.where(digits == 3, 2, 0))
  _, first = np.unique(conv_pattern, axis=0, return_index=True)
  rest = np.random.default_rng(0).choice(len(gs), 60, replace=False)
  pick = gs[np.unique(np.concatenate([first, rest]))]
  assert len(first) == 3 ** 6
  analytic = memory.param_count(pick, cfg)
  real = np.array([_real_count(cfg, g) for g in pick])
  np.testing.assert_array_equal(analytic, real)


def test_analytic_count_equals_real_tree_on_backward_and_per_cell_genotypes():
  cfg = network.network_config(None, width=6, hidden=40, backward=True,
                               ops="zero,skip,conv1x1,conv3x3@0.5,maxpool3x3")
  gs = genotype_space.sample_genotypes(np.random.default_rng(1), 40, cfg.ops, backward=True)
  np.testing.assert_array_equal(memory.param_count(gs, cfg),
                                [_real_count(cfg, g) for g in gs])
  per_cell = gs[:20].reshape(10, 2, 4, 4)
  np.testing.assert_array_equal(memory.param_count(per_cell, cfg),
                                [_real_count(cfg, g) for g in per_cell])


def test_bytes_neurons_and_budget_filter():
  cfg = network.network_config("cifar100")
  gs = genotype_space.sample_genotypes(np.random.default_rng(2), 50, cfg.ops)
  params = memory.param_count(gs, cfg)
  report = memory.memory_report(gs, cfg, weight_bits=4)
  np.testing.assert_array_equal(report.weight_bytes, params // 2)
  assert (memory.weight_bytes(params, 16) == params * 2).all()
  budget = int(np.median(params))
  ok = memory.within_budget(gs, cfg, budget_params=budget)
  np.testing.assert_array_equal(ok, params <= budget)
  ok8 = memory.within_budget(gs, cfg, budget_bytes=budget, weight_bits=8)
  np.testing.assert_array_equal(ok8, params <= budget)
  with pytest.raises(ValueError, match="weight_bits"):
    memory.weight_bytes(params, 3)
  with pytest.raises(ValueError, match="budget_params"):
    memory.within_budget(gs, cfg, budget_params=0)


@pytest.mark.slow
def test_neuron_count_equals_lifs_seen_by_the_network():
  cfg = network.network_config(None, width=4, hidden=32, timesteps=1, vote_group=2,
                               backward=True, input_shape=(16, 16, 3))
  for text in ("0303/0030/2002/0200", "0111/0011/0001/0000"):
    g = genotype_lib.parse_genotype(text, cfg.ops)
    params = network.init_standalone_params(jax.random.key(0), cfg, g)
    _, aux = network.standalone_forward(params, g, jnp.zeros((2, 16, 16, 3)), jax.random.key(0),
                                        cfg, probe=lambda s: jnp.float32(s[0].size))
    assert memory.neuron_count(g, cfg) == sum(float(v) for v in aux["probes"]["values"].values())


def test_op_params_is_the_one_per_op_formula():
  cfg = network.network_config(None, width=6, ops="zero,skip,conv1x1,conv3x3@0.5,maxpool3x3")
  by_name = {op.name: memory.op_params(op, 10) for op in cfg.ops.ops}
  assert by_name == {"zero": 0, "skip": 0, "conv1x1": 1 * 10 * 10 + 20,
                     "conv3x3@0.5": 9 * 10 * 10 + 20, "maxpool3x3": 0}


@pytest.mark.parametrize("limit", ["budget_params", "budget_bytes"])
def test_infinite_budget_is_no_budget(limit):
  cfg = network.network_config("cifar100")
  gs = genotype_space.sample_genotypes(np.random.default_rng(3), 20, cfg.ops)
  assert memory.within_budget(gs, cfg, **{limit: float("inf")}).all()
  assert memory.within_budget(gs, cfg, **{limit: np.inf}, weight_bits=4).all()
  assert memory.normalize_budget(**{limit: float("inf")}) == (None, None)
  assert memory.normalize_budget(budget_params=10, budget_bytes=np.inf) == (10, None)


@pytest.mark.parametrize("value, words", [
    (float("nan"), "is NaN"), (0, "must be > 0, got 0"), (-5, "must be > 0, got -5"),
    (-float("inf"), "must be > 0, got -inf"), ("1e6", "a positive number or None, got '1e6'"),
    (True, "got True")])
@pytest.mark.parametrize("limit", ["budget_params", "budget_bytes"])
def test_bad_budgets_are_refused_naming_the_value(limit, value, words):
  cfg = network.network_config("cifar100")
  g = genotype_lib.parse_genotype("0303/0030/2002/0200", cfg.ops)
  with pytest.raises(ValueError, match=re.escape(words)) as err:
    memory.within_budget(g, cfg, **{limit: value})
  assert str(err.value).startswith(limit)
  with pytest.raises(ValueError, match=limit):
    memory.normalize_budget(**{limit: value})


def test_budget_in_megabytes():
  assert memory.budget_bytes_from_mb(None) is None
  assert memory.budget_bytes_from_mb(float("inf")) is None  # no limit, not an OverflowError
  assert memory.budget_bytes_from_mb(0.8) == 800_000
  assert memory.budget_bytes_from_mb(1e-6) == 1
  for value, words in ((float("nan"), "budget_mb is NaN"), (0.0, "budget_mb must be > 0"),
                       (-1.0, "budget_mb must be > 0, got -1.0"),
                       (1e-7, "budget_mb=1e-07 is below one byte")):
    with pytest.raises(ValueError, match=words):
      memory.budget_bytes_from_mb(value)
  with pytest.raises(ValueError, match="weight_bits"):
    memory.normalize_budget(budget_bytes=100, weight_bits=12)


def test_params_within_budget_is_the_rule_of_within_budget():
  cfg = network.network_config(None, width=8, hidden=64, ops="snasnet")
  gs = genotype_space.enumerate_forward(cfg.ops)[:200]
  params = memory.param_count(gs, cfg)
  for bits in (32, 8):
    limit = float(np.median(memory.weight_bytes(params, bits)))
    by_genotype = memory.within_budget(gs, cfg, budget_bytes=limit, weight_bits=bits)
    assert 0 < by_genotype.sum() < len(gs)
    np.testing.assert_array_equal(
        memory.params_within_budget(params, budget_bytes=limit, weight_bits=bits), by_genotype)
  with pytest.raises(ValueError, match="budget_bytes"):
    memory.params_within_budget(params, budget_bytes=-1)


@pytest.mark.parametrize("ops,backward,cells_per_stage", [
    ("spikenas", False, 1), ("snasnet", False, 2), ("skip,conv3x3@0.5,conv3x3,conv3x3@1.5", False, 1),
    ("conv1x1,conv3x3", False, 1), ("spikenas", True, 1), ("avgpool3x3,conv1x1", True, 1)])
def test_space_range_equals_brute_force_enumeration(ops, backward, cells_per_stage):
  from snnax_nas.search import space as space_lib
  cfg = network.network_config(None, width=6, hidden=40, ops=ops, backward=backward,
                               cells_per_stage=cells_per_stage)
  # Every distinct valid cell of the space, shared by all cells: per-cell
  # choices reach the same extremes (the cheapest cell is cheapest at any width).
  params = memory.param_count(space_lib.search_space(cfg.ops, backward), cfg)
  for bits in (32, 4):
    r = memory.space_range(cfg, bits)
    assert (r.min_params, r.max_params) == (params.min(), params.max())
    assert (r.min_bytes, r.max_bytes) == (params.min() * bits // 8, params.max() * bits // 8)
  weightless = any(op.kind != "conv" for op in cfg.ops.nonzero_ops)
  assert r.fixed_params == memory.fixed_params(cfg)
  assert (r.min_params == r.fixed_params) == weightless  # a skip/pool-only cell has no weights


def test_budget_fractions_span_the_space_and_reject_bad_values():
  cfg = network.network_config(None, width=16, hidden=128, second_pool=4, ops="spikenas")
  r = memory.space_range(cfg, 8)
  assert (r.min_params, r.max_params) == (83_668, 153_364)  # the figures
  assert r.budget_bytes(0.0) == r.min_bytes and r.budget_bytes(1.0) == r.max_bytes
  assert r.min_bytes < r.budget_bytes(0.5) < r.max_bytes
  assert memory.parse_fractions("0.25, 0.5,1") == [0.25, 0.5, 1.0]
  for bad in ("0.5,x", "1.5", "-0.1", ""):
    with pytest.raises(ValueError, match="budget fraction"):
      memory.parse_fractions(bad)
  with pytest.raises(ValueError, match="2"):
    r.budget_bytes(2)
