"""snnax_nas.network.variables: the one weight inventory equals the flax
Module's real variables, and every count derives from it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnax_nas import genotype as genotype_lib
from snnax_nas import genotype_space
from snnax_nas import memory
from snnax_nas import models
from snnax_nas import network
from snnax_nas import ops as ops_lib
from snnax_nas import quant

OP_SETS = list(ops_lib.OP_SET_PRESETS) + ["zero,skip,conv1x1,conv3x3@0.5,conv3x3,maxpool3x3"]


def _shapes(tree):
  return jax.tree.map(lambda x: (tuple(x.shape), str(x.dtype)), tree)


def _cases(ops):
  """A tiny backward config of ``ops``, two shared-cell genotypes with
  backward edges and one per-cell pair."""
  cfg = network.network_config(None, input_shape=(8, 8, 2), width=4, hidden=8, num_classes=3,
                               vote_group=2, timesteps=2, backward=True, ops=ops)
  gs = genotype_space.sample_genotypes(np.random.default_rng(0), 4, cfg.ops, backward=True)
  return cfg, [gs[0], gs[1], gs[2:4]]


@pytest.mark.parametrize("ops", OP_SETS)
def test_inventory_is_the_modules_variable_tree(ops):
  cfg, genotypes = _cases(ops)
  assert any(genotype_lib.has_backward(g).any() for g in genotypes)
  for g in genotypes:
    model = models.SpikingNetwork.for_genotypes(cfg, g)
    real = jax.eval_shape(lambda k, m=model: m.init(k, jnp.zeros((1, 8, 8, 2)), train=False),
                          jax.random.key(0))
    inventory = network.variable_shapes(cfg, g)
    assert _shapes(inventory) == _shapes(dict(real)), (ops, g)
    # Every count is a sum over the same inventory, exactly.
    n = memory.tree_param_count(real["params"])
    one = np.asarray(g)[None]
    assert int(memory.param_count(one, cfg)[0]) == n
    for bits in (32, 16, 8, 4):
      q = jax.eval_shape(lambda p, b=bits: quant.quantize_params(p, b), real["params"])
      assert int(memory.quantized_weight_bytes(one, cfg, bits)[0]) == quant.quantized_bytes(q)


def test_fresh_functional_weights_regroup_into_the_inventory():
  cfg, genotypes = _cases(OP_SETS[-1])
  for g in genotypes:
    fresh = network.init_standalone_params(jax.random.key(0), cfg, g)
    assert _shapes(network.variables_from_standalone(fresh)) == _shapes(
        network.variable_shapes(cfg, g))


def test_per_op_pieces_price_every_op():
  width = 10
  for op in ops_lib.op_set(OP_SETS[-1]).ops:
    leaves = jax.tree.leaves(network.edge_param_specs(op, width),
                             is_leaf=lambda x: isinstance(x, network.ParamSpec))
    assert memory.op_params(op, width) == sum(int(np.prod(s.shape)) for s in leaves)
    assert bool(leaves) == op.has_lif


def _flat_names(tree, prefix=""):
  out = set()
  for k, v in tree.items():
    name = f"{prefix}/{k}" if prefix else k
    out |= _flat_names(v, name) if isinstance(v, dict) else {name}
  return out


@pytest.mark.parametrize("ops", OP_SETS)
def test_export_graph_reads_exactly_the_inventory(ops):
  from snnax_nas import export
  cfg, genotypes = _cases(ops)
  for g in genotypes:
    text = models.SpikingNetwork.for_genotypes(cfg, g).genotype
    nodes = export.graph(cfg, text)
    nodes += [layer for n in nodes for e in n.get("edges", []) for layer in e["layers"]]
    read = {n[k] for n in nodes for k in ("kernel", "scale", "bias", "mean", "var")
            if isinstance(n.get(k), str)}
    assert read == _flat_names(network.variable_shapes(cfg, text)), (ops, text)
