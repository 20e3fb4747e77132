"""One architecture built alone: only its chosen ops, one LIF per conv edge,
no masks. It is the network one trains, and the obviously-correct path the
supernet is tested against. The skeleton around the cells is
:mod:`snnax_nas.network.skeleton`; :class:`snnax_nas.models.SpikingNetwork`
is the same network as a flax Module.
"""

from __future__ import annotations

from typing import Optional

import jax

from snnax_nas import genotype as genotype_lib
from snnax_nas import neurons
from snnax_nas.configs import NetworkConfig
from snnax_nas.layers import conv2d
from snnax_nas.layers import materialize
from snnax_nas.layers import pool3x3
from snnax_nas.network.skeleton import Params
from snnax_nas.network.skeleton import Probe
from snnax_nas.network.skeleton import cell_wiring
from snnax_nas.network.skeleton import edge_ops
from snnax_nas.network.skeleton import forward
from snnax_nas.network.skeleton import network_genotypes
from snnax_nas.network.skeleton import zeros
from snnax_nas.network.variables import param_specs
from snnax_nas.network.variables import standalone_from_variables


def standalone_param_specs(cfg: NetworkConfig, genotypes):
  """:class:`~snnax_nas.layers.ParamSpec` tree of one architecture built alone: the inventory
  (:func:`snnax_nas.network.variables.param_specs`) in this module's layout.

  Args:
    cfg: the network config.
    genotypes: one genotype [4, 4] for every cell, or one per cell [L, 4, 4]
      (canonicalised first: dead edges are never built).

  Returns:
    ``{"stem", "reduction", "head", "cells"}``; ``cells[l][str(e)]`` holds
    ``kernel`` [k, k, C_l, C_l], ``scale``, ``bias`` [C_l] for each conv edge.
  """
  return standalone_from_variables({"params": param_specs(cfg, genotypes)}, cfg)[0]


def init_standalone_params(key: jax.Array, cfg: NetworkConfig, genotypes) -> Params:
  """Fresh parameters of one architecture built alone (see
  :func:`standalone_param_specs`)."""
  return materialize(key, standalone_param_specs(cfg, genotypes))


def standalone_from_supernet(super_params: Params, cfg: NetworkConfig, genotypes) -> Params:
  """The standalone parameters a genotype selects out of supernet parameters."""
  ops = edge_ops(genotypes, cfg)
  params = {k: v for k, v in super_params.items() if k != "cells"}
  cells = []
  for l in range(cfg.num_cells):
    cell = {}
    for e, op in enumerate(ops[l]):
      if op.has_lif:
        cell[str(e)] = {k: a[e] for k, a in super_params["cells"][l][op.name].items()}
    cells.append(cell)
  params["cells"] = cells
  return params


def standalone_forward(params: Params, genotypes, images: jax.Array,
                       key: Optional[jax.Array], cfg: NetworkConfig, *,
                       train: bool = True, batch_stats: Optional[Params] = None,
                       probe: Optional[Probe] = None, per_layer: bool = True,
                       unroll_time: bool = False):
  """Forward pass of one architecture built alone (no masks).

  Args:
    params: from :func:`init_standalone_params` (or
      :func:`standalone_from_supernet`).
    genotypes: [4, 4] or [L, 4, 4] digits (static: the structure is built
      from them in Python).
    images: [B, H, W, C_in] (a float32 normalised batch), or event frames
      [B, T' >= T, H, W, C_in] (the first T are used, one per timestep).
    key: dropout key; required when ``train`` and ``cfg.dropout > 0``.
    cfg: the network config.
    train: BN with batch statistics (updating ``batch_stats`` if given) and
      dropout on; False uses the running statistics, no dropout.
    batch_stats: running BN statistics from :func:`init_batch_stats`, or None
      (scoring: batch statistics, nothing kept; needs ``train=True``).
    probe: LIF probe (see module docstring).
    per_layer: probe sums per LIF name (default) or summed over LIFs.
    unroll_time: trace the time ``lax.scan`` fully unrolled (its transpose
      too). For training on CPU: XLA:CPU (jax 0.10.2) runs a convolution's
      kernel gradient inside a loop body through its naive emitter, 20-40x
      slower than the same convolution outside a loop. Compile time grows
      with T.

  Returns:
    ``(logits [B, num_classes], aux)`` with ``aux["batch_stats"]`` (updated
    running statistics or None) and ``aux["probes"]``.
  """
  if not train and batch_stats is None:
    raise ValueError("standalone_forward(train=False) needs running statistics "
                     "(batch_stats); scoring uses train=True")
  g = network_genotypes(genotypes, cfg)
  b = images.shape[0]
  ops = edge_ops(g, cfg)
  backward = bool(genotype_lib.has_backward(g).any())

  def cell_fn(l, x, state, stats, rec, bn):
    new_v, new_stats = {}, {}

    def edge_fn(e, u):
      op = ops[l][e]
      if op.kind == "zero":
        return None
      if op.kind == "skip":
        return u
      if op.kind in ("avgpool", "maxpool"):
        return pool3x3(u, op.kind)
      lif = cfg.lif.with_threshold(op.threshold)
      new_v[str(e)], spikes = neurons.lif_step(state["v"][str(e)], u, lif)
      rec.record(f"cell{l}/edge{e}/lif", spikes, neurons.lif_charge(state["v"][str(e)], u, lif))
      pe = params["cells"][l][str(e)]
      y, new_stats[str(e)] = bn(conv2d(spikes, pe["kernel"]), pe, stats and stats[str(e)])
      return y

    fb = tuple(state["fb"]) if backward else None
    y, new_fb = cell_wiring(x, fb, edge_fn, backward)
    new_state = {"v": new_v}
    if backward:
      new_state["fb"] = new_fb
    return y, new_state, (new_stats if stats is not None else None)

  state0 = []
  for l, (h, w, c) in enumerate(cfg.cell_shapes):
    st = {"v": {str(e): zeros((b, h, w, c)) for e in range(cfg.num_edges)
                if ops[l][e].has_lif}}
    if backward:
      st["fb"] = tuple(zeros((b, h, w, c)) for _ in range(3))
    state0.append(st)
  return forward(params, images, key, cfg, cell_fn, state0, train=train,
                  batch_stats=batch_stats, probe=probe, per_layer=per_layer,
                  unroll_time=unroll_time)
