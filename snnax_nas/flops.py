"""Analytic FLOP model of scoring a candidate: GPU/TPU time estimates and
load balancing of the batch scorer.

FLOPs of one candidate's score (its network, ``repeats`` image batches of
``batch`` images, ``T`` timesteps)::

  repeats * [ stem conv + T * ( reduction conv + fc1 + fc2
              + sum over active (cell, edge, conv op) of the conv
              + Gram matmuls of the LIF probes ) ]

with a conv counted as ``2 * k * k * Cin * Cout * H * W * B`` and a dense
layer as ``2 * B * in * out``, and one Gram ``2 * B * B * N`` per LIF call of
N neurons. BN, LIF, pooling and other elementwise work, the kernel
arithmetic and the log-determinant are not counted.

Two counts differ only in the Grams:

* ``useful``: one Gram per active (edge, conv op) LIF, as the reference's
  per-edge neurons and hooks compute them;
* ``executed``: what :func:`snnax_nas.network.supernet_forward` computes:
  edges leaving one node read the same value, so one LIF and one Gram per
  (node, LIF threshold) serve them all.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from snnax_nas import genotype as genotype_lib
from snnax_nas import network as network_lib


@dataclasses.dataclass(frozen=True)
class FlopCount:
  """FLOPs per candidate, float64 [N] each (see the module docstring)."""

  useful: np.ndarray
  executed: np.ndarray


def candidate_flops(arch, cfg: network_lib.NetworkConfig, batch: int,
                    repeats: int = 1) -> FlopCount:
  """FLOPs of scoring each candidate.

  Args:
    arch: op weights [N, L, E, O] (``snnax_nas.genotype.arch_of`` of genotypes,
      or multi-hot supernet masks); an op counts where its weight is non-zero.
    cfg: the network config.
    batch: images per batch, B.
    repeats: image batches per candidate, R.

  Returns:
    A :class:`FlopCount` of float64 [N] arrays.
  """
  arch = np.asarray(arch)
  expect = (cfg.num_cells, cfg.num_edges, len(cfg.ops.nonzero_ops))
  if arch.ndim != 4 or arch.shape[1:] != expect:
    raise ValueError(f"arch has shape {arch.shape}; expected [N, {', '.join(map(str, expect))}]")
  if batch < 1 or repeats < 1:
    raise ValueError(f"batch and repeats must be >= 1, got {batch} and {repeats}")
  b = float(batch)
  (h1, w1, c1), (h2, w2, c2) = cfg.stage_shapes
  h0, w0, cin = cfg.input_shape

  def conv(k, ci, co, hh, ww):
    return 2.0 * k * k * ci * co * hh * ww * b

  def gram(n):
    return 2.0 * b * b * n

  fixed_t = (conv(3, c1, c2, h1, w1) + 2 * b * cfg.classifier_in * cfg.hidden
             + 2 * b * cfg.hidden * cfg.num_outputs
             + gram(h1 * w1 * c1) + gram(h2 * w2 * c2) + gram(cfg.hidden))
  ops = cfg.ops.nonzero_ops
  lif_ops = np.array([op.has_lif for op in ops])
  active = arch != 0                                         # [N, L, E, O]
  conv_active = active & lif_ops                             # [N, L, E, O]
  # Per cell: FLOPs of each op on one edge, and one Gram of the cell's size.
  op_flops = np.array([[conv(op.kernel, c, c, hh, ww) if op.has_lif else 0.0 for op in ops]
                       for hh, ww, c in cfg.cell_shapes])    # [L, O]
  cell_gram = np.array([gram(hh * ww * c) for hh, ww, c in cfg.cell_shapes])  # [L]
  convs = np.einsum("nleo,lo->n", conv_active, op_flops)
  useful_grams = np.einsum("nleo,l->n", conv_active, cell_gram)
  # Executed Grams: one per (cell, source node, threshold group) with any
  # active conv op on an edge leaving that node.
  sources = np.array([i for i, _ in genotype_lib.EDGES[:cfg.num_edges]])
  executed_grams = np.zeros(arch.shape[0])
  for thr in cfg.ops.lif_thresholds:
    in_group = np.array([op.has_lif and op.threshold == thr for op in ops])
    edge_on = (active & in_group).any(-1)                   # [N, L, E]
    node_on = np.stack([edge_on[..., sources == i].any(-1) for i in np.unique(sources)], -1)
    executed_grams += np.einsum("nlk,l->n", node_on, cell_gram)
  stem = conv(3, cin, c1, h0 // cfg.stem_stride, w0 // cfg.stem_stride)
  t = cfg.timesteps
  return FlopCount(useful=repeats * (stem + t * (fixed_t + convs + useful_grams)),
                   executed=repeats * (stem + t * (fixed_t + convs + executed_grams)))


def costliest_first(arch, cfg: network_lib.NetworkConfig, batch: int,
                    repeats: int = 1) -> np.ndarray:
  """Indices of the candidates of ``arch`` by executed FLOPs, costliest first.

  The scheduling order of every scorer loop (:func:`snnax_nas.score.balanced_slots`,
  the search's store scorer, ``launch.score``): cut into chunks, it gives
  chunks of similar cost. Stable, so every process computes the same order.
  """
  cost = candidate_flops(arch, cfg, batch, repeats).executed
  return np.argsort(-cost, kind="stable")
