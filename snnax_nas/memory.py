"""Analytic memory model: parameters, weight bytes, neuron-state memory and
the memory budget rule.

Counts are sums over the network's one weight inventory
(:mod:`snnax_nas.network.variables`: conv kernels, BN affines, linear weights
and bias; running BN statistics are buffers and excluded, as in the
reference's parameter table). Nothing is initialised: the count is a table
lookup per edge digit, vectorised over a batch of genotypes.

  params = fixed(cfg) + sum_cells sum_edges op_params(op(edge), C_cell)
  op_params(conv kxk, C) = k*k*C*C + 2*C      (kernel + BN scale/bias)
  op_params(anything else, C) = 0

:func:`op_params` is the one per-op formula: the genotype counts here and the
supernet counts of LightSNN (:func:`snnax_nas.search.supernet_param_count`)
both derive from it.

Two weight-memory counts, both exact for what they define:

* :func:`weight_bytes`, ``params * b / 8``: SpikeNAS's memory model (every
  parameter at ``b`` bits). The budget rule below uses it, so a budget means
  what it means in the paper.
* :func:`quantized_weight_bytes`: the bytes of the network as
  :mod:`snnax_nas.quant` stores it (packed ``b``-bit kernel codes, a float32
  scale per output channel, BN affines and biases in float32); it equals
  ``quant.quantized_bytes`` of the real quantised tree (tested), and is what
  ``launch.evaluate`` and ``launch.compare`` report. At 32 bits the two are
  equal; below, it is larger by the scales and the float 1-D leaves (+0.1 to
  +0.7 % on the reference CIFAR-10 network at 16 to 4 bits).

Neuron-state memory
(membrane potentials of every LIF, float32 by default) is reported apart: it
is per input sample and does not depend on the weight precision.

The budget rule (:func:`within_budget`, the one every search applies): a
network fits when ``params <= budget_params`` and ``weight_bytes <=
budget_bytes``, each limit optional; an infinite limit means no limit
(:func:`normalize_budget`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Optional
from typing import Union

import jax
import numpy as np

from snnax_nas import genotype as genotype_lib
from snnax_nas import network as network_lib
from snnax_nas import ops as ops_lib
from snnax_nas import quant

WEIGHT_BITS = quant.WEIGHT_BITS  # one definition, shared with the quantiser
check_weight_bits = quant.check_weight_bits  # and its one check


# Every count below (parameters, exact quantised bytes) sums over the
# network's one weight inventory (snnax_nas.network.variables), priced per
# piece: the part outside the cells once, each op on each edge by a table.
# A kernel is (elements, output channels); a 1-D leaf (BN scale or bias, a
# Linear bias) is (elements, None).
Tensor = tuple[int, Optional[int]]


def _tensors(specs) -> list[Tensor]:
  """``(elements, out_channels)`` per kernel (ndim >= 2, quantised as
  :func:`snnax_nas.quant.is_weight` says), ``(elements, None)`` per 1-D leaf
  of a :class:`~snnax_nas.layers.ParamSpec` tree."""
  leaves = jax.tree.leaves(specs, is_leaf=lambda x: isinstance(x, network_lib.ParamSpec))
  return [(math.prod(s.shape), s.shape[-1] if len(s.shape) >= 2 else None) for s in leaves]


def fixed_tensors(cfg: network_lib.NetworkConfig) -> list[Tensor]:
  """Weight tensors outside the cells: stem, reduction block and classifier
  (:func:`snnax_nas.network.fixed_param_specs`)."""
  return _tensors(network_lib.fixed_param_specs(cfg))


def op_tensors(op: ops_lib.OpSpec, width: int) -> list[Tensor]:
  """Weight tensors one op adds on one edge of a cell ``width`` channels wide
  (:func:`snnax_nas.network.edge_param_specs`): kernel ``(k*k*C*C, C)`` and
  BN scale and bias ``(C, None)`` for a ``k x k`` conv, none for every other
  op (skip, pooling and zero hold no weights)."""
  return _tensors(network_lib.edge_param_specs(op, width))


def fixed_params(cfg: network_lib.NetworkConfig) -> int:
  """Parameters outside the cells (stem, reduction block and classifier), a
  count of scalars that does not depend on the genotype."""
  return sum(n for n, _ in fixed_tensors(cfg))


def op_params(op: ops_lib.OpSpec, width: int) -> int:
  """Parameters one op adds on one edge of a cell ``width`` channels wide.

  Args:
    op: the op.
    width: the cell's channel count C (input = output channels).

  Returns:
    ``k*k*C*C + 2*C`` for a ``k x k`` conv (kernel, then BN scale and bias);
    0 for every other op (skip, pooling and zero hold no weights).
  """
  return sum(n for n, _ in op_tensors(op, width))


def _tensor_bytes(tensors: list[Tensor], weight_bits: int) -> int:
  """Exact bytes of ``tensors`` as :mod:`snnax_nas.quant` stores them."""
  return sum(quant.leaf_bytes(n, c, weight_bits) if c is not None else quant.FLOAT_BYTES * n
             for n, c in tensors)


def _digit_table(cfg: network_lib.NetworkConfig, width: int, per: str) -> np.ndarray:
  """[num_digits] cost of each genotype digit on one edge of a cell of ``width``:
  ``per="params"``: :func:`op_params`; ``per="lifs"``: LIF layers (1 per conv)."""
  table = np.zeros(cfg.ops.num_digits, np.int64)
  for d in range(1, cfg.ops.num_digits):
    op = cfg.ops.op_of_digit(d)
    table[d] = op_params(op, width) if per == "params" else int(op.has_lif)
  return table


def _edge_digits(genotypes: np.ndarray) -> np.ndarray:
  """[..., 12] digits of the edge slots of canonical genotypes [..., 4, 4]."""
  rows, cols = zip(*genotype_lib.EDGES)
  return genotypes[..., list(rows), list(cols)]


def _cell_genotypes(genotypes, cfg: network_lib.NetworkConfig) -> np.ndarray:
  """Canonical per-cell genotypes [N, L, 4, 4] (:func:`snnax_nas.genotype.cell_genotypes`;
  backward edges are counted whatever ``cfg.backward`` says); a single [4, 4]
  gives [L, 4, 4], so counts come out 0-d."""
  single = not isinstance(genotypes, str) and np.ndim(genotypes) == 2
  cells = genotype_lib.cell_genotypes(np.asarray(genotypes)[None] if single else genotypes,
                                      cfg.ops, cfg.num_cells, allow_backward=True)
  return cells[0] if single else cells


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


def unpruned_param_count(genotypes, cfg: network_lib.NetworkConfig) -> np.ndarray:
  """Parameter count with every edge's op counted as written, dead paths
  included: what a tool that builds cells without pruning them logs (an
  edge off every input-to-output path still holds its conv there). At least
  :func:`param_count`; equal when pruning removes no conv.

  Args:
    genotypes: int [N, 4, 4], one genotype for all cells, not canonicalised.
    cfg: the network config.

  Returns:
    int64 [N].
  """
  digits = _edge_digits(np.asarray(genotypes))  # [N, 12]
  total = np.full(digits.shape[:-1], fixed_params(cfg), np.int64)
  for _, _, c in cfg.cell_shapes:
    total = total + _digit_table(cfg, c, "params")[digits].sum(-1)
  return total


def weight_bytes(params: Union[int, np.ndarray], weight_bits: int = 32) -> np.ndarray:
  """Bytes to store weights at ``weight_bits`` bits each.

  Args:
    params: int parameter counts, any shape.
    weight_bits: 32, 16, 8 or 4.

  Returns:
    int64 bytes, the shape of ``params`` (``params * weight_bits // 8``).
  """
  check_weight_bits(weight_bits)
  return np.asarray(params, np.int64) * weight_bits // 8


def quantized_weight_bytes(genotypes, cfg: network_lib.NetworkConfig,
                           weight_bits: int = 32) -> np.ndarray:
  """Exact bytes of each standalone network quantised by :mod:`snnax_nas.quant`.

  Equals ``quant.quantized_bytes(quant.quantize_params(params, weight_bits))``
  for the network's parameters, computed from the genotype alone: every conv
  or dense kernel costs ``ceil(n * b / 8)`` bytes of packed codes plus a
  float32 scale per output channel, every 1-D leaf (BN scale/bias, the
  classifier bias) 4 bytes per element. At 32 bits it is ``4 * params``.
  (:func:`weight_bytes` is the plainer ``params * b / 8``: it prices BN
  affines and biases at ``b`` bits too and omits the scales.)

  Args:
    genotypes: int [N, 4, 4], [N, L, 4, 4] or one [4, 4] (as
      :func:`param_count`).
    cfg: the network config.
    weight_bits: 32, 16, 8 or 4.

  Returns:
    int64 [N] bytes (a 0-d array for a single genotype).
  """
  fixed = _tensor_bytes(fixed_tensors(cfg), weight_bits)
  cells = _cell_genotypes(genotypes, cfg)
  digits = _edge_digits(cells)  # [..., L, 12]
  total = np.full(digits.shape[:-2], fixed, np.int64)
  for l, (_, _, width) in enumerate(cfg.cell_shapes):
    table = np.array([0] + [_tensor_bytes(op_tensors(cfg.ops.op_of_digit(d), width), weight_bits)
                            for d in range(1, cfg.ops.num_digits)], np.int64)
    total = total + table[digits[..., l, :]].sum(-1)
  return total


def neuron_count(genotypes, cfg: network_lib.NetworkConfig) -> np.ndarray:
  """LIF neurons (membrane potentials) per input sample of each network.

  Args:
    genotypes: as :func:`param_count`.
    cfg: the network config.

  Returns:
    int64 [N] (a 0-d array for a single genotype).
  """
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
  """Parameters, weight bytes and neuron-state bytes of each genotype.

  Args:
    genotypes: as :func:`param_count` (N networks).
    cfg: the network config.
    weight_bits: weight precision: 32, 16, 8 or 4.

  Returns:
    A :class:`MemoryReport` of int64 [N] arrays (bytes for the memories).
  """
  params = param_count(genotypes, cfg)
  return MemoryReport(params, weight_bytes(params, weight_bits),
                      neuron_count(genotypes, cfg) * 4, weight_bits)


def normalize_budget(budget_params: Optional[float] = None,
                     budget_bytes: Optional[float] = None,
                     weight_bits: int = 32) -> tuple[Optional[float], Optional[float]]:
  """A validated memory budget, with infinite limits written as None.

  An infinite limit (``math.inf``) means NO limit, exactly as None: every
  network fits it, and it is reported (and fingerprinted) as None.

  Args:
    budget_params: most parameters of the whole network, or None / inf.
    budget_bytes: most weight bytes at ``weight_bits``, or None / inf.
    weight_bits: weight precision: 32, 16, 8 or 4.

  Returns:
    ``(budget_params, budget_bytes)``: each finite limit unchanged, each
    infinite one None.

  Raises:
    ValueError: ``weight_bits`` not in :data:`WEIGHT_BITS`, or a limit that
      is not a number, NaN, zero or negative (the message names it).
  """
  check_weight_bits(weight_bits)
  return budget_limit("budget_params", budget_params), budget_limit("budget_bytes", budget_bytes)


def budget_limit(name: str, value) -> Optional[float]:
  """One budget limit checked: None for None or inf, else ``value`` (> 0).

  Raises:
    ValueError: not a number, NaN, zero or negative (the message names
      ``name`` and the value).
  """
  if value is None:
    return None
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise ValueError(f"{name} must be a positive number or None, got {value!r}")
  if math.isnan(value):
    raise ValueError(f"{name} is NaN; give a positive number, or None (or inf) for no limit")
  if not value > 0:
    raise ValueError(f"{name} must be > 0, got {value!r}; give None (or inf) for no limit")
  return None if math.isinf(value) else value


def budget_bytes_from_mb(mb: Optional[float]) -> Optional[int]:
  """A weight-memory budget in MB (10^6 bytes) as whole bytes (``budget_bytes``).

  Args:
    mb: megabytes, or None / inf for no limit.

  Returns:
    ``round(mb * 1e6)`` bytes, or None for no limit.

  Raises:
    ValueError: ``mb`` is not a number, NaN, zero, negative, or rounds to
      zero bytes (the message names it).
  """
  limit = budget_limit("budget_mb", mb)
  if limit is None:
    return None
  out = int(round(limit * 1e6))
  if out == 0:
    raise ValueError(f"budget_mb={mb!r} is below one byte; give at least 1e-06 MB")
  return out


def within_budget(genotypes, cfg: network_lib.NetworkConfig, *,
                  budget_params: Optional[float] = None,
                  budget_bytes: Optional[float] = None,
                  weight_bits: int = 32) -> np.ndarray:
  """Which networks fit a memory budget: the one budget rule of the package.

  A network fits when ``param_count <= budget_params`` and ``weight_bytes(
  param_count, weight_bits) <= budget_bytes``; a None or infinite limit is no
  limit (:func:`normalize_budget`).

  Args:
    genotypes: as :func:`param_count` (N networks).
    cfg: the network config.
    budget_params: most parameters, or None / inf.
    budget_bytes: most weight bytes at ``weight_bits``, or None / inf.
    weight_bits: weight precision: 32, 16, 8 or 4.

  Returns:
    bool [N] (a 0-d array for a single genotype).

  Raises:
    ValueError: a bad budget (see :func:`normalize_budget`).
  """
  return params_within_budget(param_count(genotypes, cfg), budget_params=budget_params,
                              budget_bytes=budget_bytes, weight_bits=weight_bits)


def params_within_budget(params, *, budget_params: Optional[float] = None,
                         budget_bytes: Optional[float] = None,
                         weight_bits: int = 32) -> np.ndarray:
  """:func:`within_budget` for networks known by their parameter counts only
  (e.g. rows of a scores table): the same rule.

  Args:
    params: int parameter counts, any shape.
    budget_params: most parameters, or None / inf.
    budget_bytes: most weight bytes at ``weight_bits``, or None / inf.
    weight_bits: weight precision: 32, 16, 8 or 4.

  Returns:
    bool, the shape of ``params``.

  Raises:
    ValueError: a bad budget (see :func:`normalize_budget`).
  """
  budget_params, budget_bytes = normalize_budget(budget_params, budget_bytes, weight_bits)
  params = np.asarray(params, np.int64)
  ok = np.ones(params.shape, bool)
  if budget_params is not None:
    ok &= params <= budget_params
  if budget_bytes is not None:
    ok &= weight_bytes(params, weight_bits) <= budget_bytes
  return ok


@dataclasses.dataclass(frozen=True)
class SpaceRange:
  """The smallest and largest network of a search space, in weights.

  Attributes:
    min_params, max_params: parameter counts of the whole network (cells and
      the fixed stem, reduction block and classifier).
    fixed_params: the part outside the cells (:func:`fixed_params`).
    min_bytes, max_bytes: weight bytes of the two at ``weight_bits``
      (:func:`weight_bytes`, the budget rule's memory model).
    weight_bits: the weight precision.
  """

  min_params: int
  max_params: int
  fixed_params: int
  min_bytes: int
  max_bytes: int
  weight_bits: int

  @property
  def cell_share(self) -> float:
    """Fraction of the largest network's parameters that sit in its cells
    (the rest is the stem, reduction block and classifier)."""
    return (self.max_params - self.fixed_params) / self.max_params

  def budget_bytes(self, fraction: float) -> int:
    """Weight bytes of the budget ``fraction`` of the way from the smallest
    to the largest network: ``floor(min + fraction * (max - min))``.

    Args:
      fraction: in [0, 1]; 0 admits only the smallest networks, 1 all.

    Raises:
      ValueError: ``fraction`` is not a number in [0, 1] (named).
    """
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not (
        0.0 <= fraction <= 1.0):
      raise ValueError(f"budget fraction must be a number in [0, 1], got {fraction!r}")
    return int(math.floor(self.min_bytes + fraction * (self.max_bytes - self.min_bytes)))


def space_range(cfg: network_lib.NetworkConfig, weight_bits: int = 32) -> SpaceRange:
  """Exact min and max weight memory over the search space of ``cfg``.

  The space is every valid cell of ``cfg.ops`` (forward, or backward too
  with ``cfg.backward``) in each of the ``cfg.num_cells`` cells, chosen per
  cell. A cell's parameters are a sum over its live edges of
  :func:`op_params`, so without enumerating anything: the smallest valid cell
  is one edge input -> output carrying the cheapest non-zero op (a path from
  input to output is what validity asks), the largest has every edge (6
  forward, +6 backward) live carrying the costliest op. Which op is cheapest
  or costliest does not depend on the width, so one shared genotype attains
  each extreme and the range is the same for shared-cell and per-cell spaces.
  (Checked against brute-force enumeration in ``tests/test_memory.py``.)

  Args:
    cfg: the network config (``ops``, ``backward``, widths, classifier).
    weight_bits: 32, 16, 8 or 4.

  Returns:
    A :class:`SpaceRange`.
  """
  check_weight_bits(weight_bits)
  fixed = lo = hi = fixed_params(cfg)
  pairs = len(genotype_lib.FORWARD_EDGES)
  for _, _, width in cfg.cell_shapes:
    costs = _digit_table(cfg, width, "params")[1:]  # digit 0 (no edge) left out
    # Each of the 6 node pairs holds at most one op (forward, or backward in
    # the backward space), and only when "zero" is in the op set can a pair
    # be empty: then the cheapest cell is the one edge 0->3 that validity asks.
    lo += (1 if cfg.ops.has_zero else pairs) * int(costs.min())
    hi += pairs * int(costs.max())
  return SpaceRange(int(lo), int(hi), int(fixed), int(weight_bytes(lo, weight_bits)),
                    int(weight_bytes(hi, weight_bits)), weight_bits)


def parse_fractions(text) -> list[float]:
  """Budget fractions from a comma list (``"0.25,0.5,0.75"``) or a number.

  Returns:
    The fractions, in the order given.

  Raises:
    ValueError: an item (or an empty list) that is not a number in [0, 1]
      (the message names it).
  """
  items = [text] if isinstance(text, numbers.Real) else [t.strip() for t in str(text).split(",")]
  out = []
  for item in items:
    try:
      value = float(item)
    except (TypeError, ValueError):
      raise ValueError(f"budget fraction {item!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
      raise ValueError(f"budget fraction {item!r} must lie in [0, 1] (0: the smallest "
                       "network of the space, 1: the largest)")
    out.append(value)
  return out


def tree_param_count(tree) -> int:
  """Number of scalars in a pytree of arrays or ShapeDtypeStructs (a real
  parameter tree, to check the analytic counts against)."""
  return int(sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree)))
