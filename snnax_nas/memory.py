"""Analytic memory model: parameters, weight bytes and neuron-state memory.

Counts follow the standalone network exactly (conv kernels, BN affines,
linear weights and bias; running BN statistics are buffers and excluded, as in
the reference's parameter table). Nothing is initialised: the count is a
table lookup per edge digit, vectorised over a batch of genotypes.

  params = fixed(cfg) + sum_cells sum_edges conv_params(op(edge), C_cell)
  conv_params(conv kxk, C) = k*k*C*C + 2*C      (kernel + BN scale/bias)

Weight memory at ``b`` bits is ``params * b / 8`` bytes. Neuron-state memory
(membrane potentials of every LIF, float32 by default) is reported apart: it
is per input sample and does not depend on the weight precision.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Union

import numpy as np

from snnax_nas import genotype as genotype_lib
from snnax_nas import network as network_lib

WEIGHT_BITS = (32, 16, 8, 4)


def fixed_params(cfg: network_lib.NetworkConfig) -> int:
  """Parameters outside the cells: stem, reduction block and classifier."""
  c, cin = cfg.width, cfg.input_shape[2]
  stem = 9 * cin * c + 2 * c
  reduction = 2 * c + 9 * c * 2 * c + 2 * 2 * c
  head = 2 * 2 * c + cfg.classifier_in * cfg.hidden + cfg.hidden * cfg.num_outputs + cfg.num_outputs
  return stem + reduction + head


def _digit_table(cfg: network_lib.NetworkConfig, width: int, per: str) -> np.ndarray:
  """[num_digits] cost of each genotype digit on one edge of a cell of ``width``."""
  table = np.zeros(cfg.ops.num_digits, np.int64)
  for d in range(1, cfg.ops.num_digits):
    op = cfg.ops.op_of_digit(d)
    if op.has_lif:
      table[d] = op.kernel * op.kernel * width * width + 2 * width if per == "params" else 1
  return table


def _edge_digits(genotypes: np.ndarray) -> np.ndarray:
  """[..., 12] digits of the edge slots of canonical genotypes [..., 4, 4]."""
  rows, cols = zip(*genotype_lib.EDGES)
  return genotypes[..., list(rows), list(cols)]


def _cell_genotypes(genotypes, cfg: network_lib.NetworkConfig) -> np.ndarray:
  g = np.asarray(genotypes)
  if g.ndim < 2 or g.shape[-2:] != (4, 4):
    raise ValueError(f"genotypes must have shape [..., 4, 4], got {g.shape}")
  if g.ndim == 4:
    if g.shape[1] != cfg.num_cells:
      raise ValueError(f"per-cell genotypes of shape {g.shape}; expected [N, {cfg.num_cells}, 4, 4]")
    cells = g
  elif g.ndim > 4:
    raise ValueError(f"genotypes must be [4, 4], [N, 4, 4] or [N, L, 4, 4], got {g.shape}")
  else:
    cells = np.broadcast_to(g[..., None, :, :], g.shape[:-2] + (cfg.num_cells, 4, 4))
  genotype_lib.check_genotypes(cells, cfg.ops)
  return genotype_lib.canonical(cells.astype(np.int32))


def param_count(genotypes, cfg: network_lib.NetworkConfig) -> np.ndarray:
  """Exact parameter count of each standalone network.

  Args:
    genotypes: int [N, 4, 4] (one genotype for all cells), [N, L, 4, 4]
      (per cell), or a single [4, 4]. Canonicalised first, as the networks
      are built.
    cfg: the network config.

  Returns:
    int64 [N] (a 0-d array for a single genotype).
  """
  cells = _cell_genotypes(genotypes, cfg)
  digits = _edge_digits(cells)  # [..., L, 12]
  total = np.full(digits.shape[:-2], fixed_params(cfg), np.int64)
  for l, (_, _, c) in enumerate(cfg.cell_shapes):
    total = total + _digit_table(cfg, c, "params")[digits[..., l, :]].sum(-1)
  return total


def weight_bytes(params: Union[int, np.ndarray], weight_bits: int = 32) -> np.ndarray:
  """Bytes to store ``params`` weights at ``weight_bits`` bits each."""
  if weight_bits not in WEIGHT_BITS:
    raise ValueError(f"weight_bits must be one of {WEIGHT_BITS}, got {weight_bits}")
  return np.asarray(params, np.int64) * weight_bits // 8


def neuron_count(genotypes, cfg: network_lib.NetworkConfig) -> np.ndarray:
  """LIF neurons (membrane potentials) per input sample, int64 [N]."""
  cells = _cell_genotypes(genotypes, cfg)
  digits = _edge_digits(cells)
  (h1, w1, c1), (h2, w2, c2) = cfg.stage_shapes
  total = np.full(digits.shape[:-2], h1 * w1 * c1 + h2 * w2 * c2 + cfg.hidden, np.int64)
  for l, (h, w, c) in enumerate(cfg.cell_shapes):
    lifs = _digit_table(cfg, c, "lifs")[digits[..., l, :]].sum(-1)
    total = total + lifs * h * w * c
  return total


@dataclasses.dataclass(frozen=True)
class MemoryReport:
  """Memory footprint of a batch of candidates.

  Attributes:
    params: int64 [N] parameter counts.
    weight_bytes: int64 [N] bytes of the weights at ``weight_bits``.
    neuron_state_bytes: int64 [N] bytes of membrane potentials per sample
      (float32).
    weight_bits: the weight precision used.
  """

  params: np.ndarray
  weight_bytes: np.ndarray
  neuron_state_bytes: np.ndarray
  weight_bits: int


def memory_report(genotypes, cfg: network_lib.NetworkConfig, weight_bits: int = 32) -> MemoryReport:
  """Parameters, weight bytes and neuron-state bytes of each genotype."""
  params = param_count(genotypes, cfg)
  return MemoryReport(params, weight_bytes(params, weight_bits),
                      neuron_count(genotypes, cfg) * 4, weight_bits)


def within_budget(genotypes, cfg: network_lib.NetworkConfig, *,
                  budget_params: Optional[int] = None,
                  budget_bytes: Optional[int] = None,
                  weight_bits: int = 32) -> np.ndarray:
  """bool [N]: which candidates fit the budget (params and/or weight bytes).

  Raises:
    ValueError: a non-positive budget.
  """
  params = param_count(genotypes, cfg)
  ok = np.ones(params.shape, bool)
  if budget_params is not None:
    if budget_params <= 0:
      raise ValueError(f"budget_params must be > 0, got {budget_params}")
    ok &= params <= budget_params
  if budget_bytes is not None:
    if budget_bytes <= 0:
      raise ValueError(f"budget_bytes must be > 0, got {budget_bytes}")
    ok &= weight_bytes(params, weight_bits) <= budget_bytes
  return ok


def tree_param_count(tree) -> int:
  """Number of parameters in a pytree of arrays or ShapeDtypeStructs."""
  import jax
  return int(sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree)))
