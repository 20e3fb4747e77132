"""The network's variables: the ONE inventory of its weight tensors.

Every count and check of a network's weights derives from the
:class:`~snnax_nas.layers.ParamSpec` trees here, named as the flax Module
:class:`snnax_nas.models.SpikingNetwork` names its variables (a test checks
them against ``SpikingNetwork.init`` for every op set)::

  stem/conv/kernel                      [3, 3, C_in, C]
  stem/bn/{scale, bias}                 [C]
  cell_{l}/edge_{i}_{j}/conv/kernel     [k, k, C_l, C_l]   (a conv edge i -> j)
  cell_{l}/edge_{i}_{j}/bn/{scale, bias}  [C_l]
  reduction/{bn_in, conv, bn_out}       (C -> 2C between the two stages)
  head/bn, head/fc1/kernel, head/fc2/{kernel, bias}

* :func:`fixed_param_specs` (outside the cells) and :func:`edge_param_specs`
  (one op on one edge) are the pieces: :mod:`snnax_nas.memory` prices them
  per op for thousands of genotypes at once, and the supernet stacks the
  per-edge piece over its edge slots.
* :func:`param_specs` assembles one network; :func:`variable_shapes` adds
  the running BN statistics (``batch_stats``, the Module's second
  collection), what :mod:`snnax_nas.export` checks variables against.
* The functional network (:mod:`snnax_nas.network.standalone`) holds the
  same arrays grouped per cell edge slot (``cells[l][str(e)] = {kernel,
  scale, bias}``): :func:`standalone_from_variables` and
  :func:`variables_from_standalone` regroup between the two layouts.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from snnax_nas import genotype as genotype_lib
from snnax_nas import ops as ops_lib
from snnax_nas.configs import NetworkConfig
from snnax_nas.layers import ParamSpec
from snnax_nas.layers import bn_spec
from snnax_nas.layers import init_batch_stats
from snnax_nas.layers import linear_init_kind
from snnax_nas.network.skeleton import edge_ops

Variables = dict[str, Any]


def fixed_param_specs(cfg: NetworkConfig) -> dict:
  """:class:`ParamSpec` tree of everything but the cells: stem, reduction, head.

  The classifier's kernels (``fc1``, ``fc2``) follow ``cfg.linear_init``
  (:func:`snnax_nas.layers.linear_init_kind`); the fc2 bias starts at zero.
  """
  c, cin = cfg.width, cfg.input_shape[2]
  linear = linear_init_kind(cfg.linear_init)
  return {
      "stem": {"conv": {"kernel": ParamSpec((3, 3, cin, c), "conv")}, "bn": bn_spec(c)},
      "reduction": {"bn_in": bn_spec(c),
                    "conv": {"kernel": ParamSpec((3, 3, c, 2 * c), "conv")},
                    "bn_out": bn_spec(2 * c)},
      "head": {"bn": bn_spec(2 * c),
               "fc1": {"kernel": ParamSpec((cfg.classifier_in, cfg.hidden), linear)},
               "fc2": {"kernel": ParamSpec((cfg.hidden, cfg.num_outputs), linear),
                       "bias": ParamSpec((cfg.num_outputs,), "zeros")}},
  }


def edge_param_specs(op: ops_lib.OpSpec, width: int, lead: tuple[int, ...] = ()) -> dict:
  """:class:`ParamSpec` tree one op adds on one edge of a cell ``width`` wide.

  Args:
    op: the edge's op.
    width: the cell's channels C (input = output).
    lead: leading axes of every array (the supernet's ``(num_edges,)``).

  Returns:
    ``{"conv": {"kernel": lead + [k, k, C, C]}, "bn": {"scale", "bias": lead +
    [C]}}`` for a ``k x k`` conv; ``{}`` for every other op (skip, pooling
    and zero hold no weights).
  """
  if not op.has_lif:
    return {}
  return {"conv": {"kernel": ParamSpec(lead + (op.kernel, op.kernel, width, width), "conv")},
          "bn": bn_spec(width, lead)}


def edge_name(e: int) -> str:
  """The Module's name of edge slot ``e``: ``edge_{i}_{j}`` for the edge
  from node i to node j (:data:`snnax_nas.genotype.EDGES`)."""
  return "edge_{}_{}".format(*genotype_lib.EDGES[e])


_EDGE_SLOTS = {edge_name(e): e for e in range(len(genotype_lib.EDGES))}


def param_specs(cfg: NetworkConfig, genotypes) -> dict:
  """:class:`ParamSpec` tree of one network, in the Module's layout.

  Args:
    cfg: the network config.
    genotypes: any form :func:`snnax_nas.network.network_genotypes` takes
      (canonicalised first: dead edges are never built).

  Returns:
    ``{"stem", "reduction", "head", "cell_{l}", ...}`` (see the module
    docstring); a cell without conv edges has no entry, as in the Module.
  """
  specs = fixed_param_specs(cfg)
  for l, (ops, (_, _, c)) in enumerate(zip(edge_ops(genotypes, cfg), cfg.cell_shapes)):
    cell = {edge_name(e): edge_param_specs(op, c) for e, op in enumerate(ops) if op.has_lif}
    if cell:
      specs[f"cell_{l}"] = cell
  return specs


def variable_shapes(cfg: NetworkConfig, genotypes) -> Variables:
  """``{"params", "batch_stats"}`` of one network as float32
  ``jax.ShapeDtypeStruct`` leaves: the tree ``SpikingNetwork.init`` returns,
  without tracing it (:func:`param_specs` and a ``{mean, var}`` [C] beside
  every BN affine)."""
  params = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, jnp.float32),
                        param_specs(cfg, genotypes),
                        is_leaf=lambda x: isinstance(x, ParamSpec))
  return {"params": params, "batch_stats": jax.eval_shape(init_batch_stats, params)}


def variables_from_standalone(params, batch_stats=None) -> Variables:
  """:class:`~snnax_nas.models.SpikingNetwork` variables from the functional
  network's trees.

  Args:
    params: standalone parameters
      (:func:`snnax_nas.network.init_standalone_params`,
      :func:`snnax_nas.network.standalone_from_supernet`, or trained).
    batch_stats: their running BN statistics
      (:func:`snnax_nas.layers.init_batch_stats`); None: fresh ones (mean 0,
      var 1).

  Returns:
    ``{"params": ..., "batch_stats": ...}`` for ``SpikingNetwork.apply``
    (the same arrays, regrouped; see the module docstring for the names).
  """
  if batch_stats is None:
    batch_stats = init_batch_stats(params)

  def regroup(tree, edge_fn):
    out = {k: tree[k] for k in ("stem", "reduction", "head")}
    for l, cell in enumerate(tree["cells"]):
      if cell:
        out[f"cell_{l}"] = {edge_name(int(e)): edge_fn(leaves) for e, leaves in cell.items()}
    return out

  return {"params": regroup(params, lambda p: {"conv": {"kernel": p["kernel"]},
                                               "bn": {"scale": p["scale"], "bias": p["bias"]}}),
          "batch_stats": regroup(batch_stats, lambda s: {"bn": dict(s)})}


def standalone_from_variables(variables: Variables, config: NetworkConfig):
  """Inverse of :func:`variables_from_standalone`.

  Args:
    variables: :class:`~snnax_nas.models.SpikingNetwork` variables (or a
      :class:`ParamSpec` tree of them): ``"params"`` and, unless only
      parameters (or their gradients) are converted, ``"batch_stats"``.
    config: the network config (its number of cells: a cell without conv
      edges holds no variables).

  Returns:
    ``(params, batch_stats)`` for :func:`snnax_nas.network.standalone_forward`
    (``batch_stats`` None without ``variables["batch_stats"]``).

  Raises:
    ValueError: a variable that is not part of a network of ``config``.
  """
  def regroup(tree, edge_fn):
    out = {k: tree[k] for k in ("stem", "reduction", "head")}
    cells = [tree.get(f"cell_{l}", {}) for l in range(config.num_cells)]
    extra = sorted(set(tree) - set(out) - {f"cell_{l}" for l in range(config.num_cells)})
    if extra:
      raise ValueError(f"variables {extra} are not part of a network of "
                       f"{config.num_cells} cells")
    out["cells"] = [{str(_EDGE_SLOTS[name]): edge_fn(v) for name, v in cell.items()}
                    for cell in cells]
    return out

  params = regroup(variables["params"], lambda p: {"kernel": p["conv"]["kernel"],
                                                   "scale": p["bn"]["scale"],
                                                   "bias": p["bn"]["bias"]})
  batch_stats = None
  if "batch_stats" in variables:
    batch_stats = regroup(variables["batch_stats"], lambda s: dict(s["bn"]))
  return params, batch_stats
