"""The search spaces (every distinct canonical valid cell of an op set), the
candidate pools drawn from them, and a memory budget checked against a space.

The budget rule itself is the analytic memory model's
(:func:`snnax_nas.memory.within_budget`); this module only adds the
search-space minimum (:func:`check_budget`).
"""

from __future__ import annotations

import functools

import numpy as np

from snnax_nas import configs
from snnax_nas import genotype as genotype_lib
from snnax_nas import genotype_space
from snnax_nas import memory
from snnax_nas import ops as ops_lib

# ----------------------------------------------------------------------------
# Spaces and strings.

# Not a compile cache: a pure function of hashable arguments returning a
# read-only array, memoised because enumerating the backward space takes ~0.5 s
# and budget checks and candidate pools ask for it repeatedly.
@functools.lru_cache(maxsize=16)
def search_space(ops: ops_lib.OpSet, backward: bool) -> np.ndarray:
  """Every distinct canonical valid cell of an op set.

  Args:
    ops: the op set (an :class:`snnax_nas.ops.OpSet`; hashable, so cached).
    backward: the backward (feedback) space instead of the forward one.

  Returns:
    Read-only ``int8 [M, 4, 4]`` in enumeration order (e.g. M = 7,556 for
    ``snasnet`` forward, 104,708 backward; 64 for ``spikenas`` forward).
  """
  raw = (genotype_space.enumerate_backward if backward else genotype_space.enumerate_forward)(ops)
  out = genotype_lib.unique_canonical(raw[genotype_lib.is_valid(raw)])
  out.setflags(write=False)
  return out


def candidate_pool(ops, backward: bool, num_candidates: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, bool]:
  """The candidate cells of one SpikeNAS step.

  Args:
    ops: the op set (anything :func:`snnax_nas.ops.op_set` accepts).
    backward: backward space instead of forward.
    num_candidates: the most distinct cells to return, >= 1.
    rng: generator for the sampled case (unused when the space is small).

  Returns:
    ``(pool int8 [M, 4, 4], enumerated)``: the whole space (``enumerated``
    True) when it has at most ``num_candidates`` distinct canonical valid
    cells, else ``num_candidates`` distinct cells drawn with the reference
    sampler, deduplicated by canonical form, in order of first draw.
  """
  ops = ops_lib.op_set(ops)
  space = search_space(ops, bool(backward))
  if len(space) <= num_candidates:
    return np.array(space), True
  got = np.zeros((0, 4, 4), genotype_lib.GENOTYPE_DTYPE)
  while len(got) < num_candidates:
    need = num_candidates - len(got)
    draw = genotype_space.sample_genotypes(rng, 2 * need + 16, ops, backward=backward)
    got = genotype_lib.unique_canonical(np.concatenate([got, draw]))
  return got[:num_candidates], False


def arch_strings(cells) -> list[str]:
  """Strings of per-cell architectures.

  Args:
    cells: int ``[N, L, 4, 4]`` genotypes.

  Returns:
    ``N`` strings: one genotype string when all cells agree, else the cells'
    strings joined with ``|`` (the form :func:`snnax_nas.genotype.as_genotypes`
    parses).
  """
  cells = np.asarray(cells)
  n, num_cells = cells.shape[:2]
  flat = genotype_lib.format_genotypes(cells.reshape(-1, 4, 4))
  out = []
  for i in range(n):
    row = flat[i * num_cells:(i + 1) * num_cells]
    out.append(row[0] if all(r == row[0] for r in row) else "|".join(row))
  return out


# ----------------------------------------------------------------------------
# The memory budget against the search space.

def budget_text(budget_params, budget_bytes, weight_bits: int) -> str:
  """A budget in words for error messages, e.g. ``"1,000 params and 4,000
  bytes (0.004 MB) at 32-bit weights"`` (limits already normalised)."""
  parts = []
  if budget_params is not None:
    parts.append(f"{budget_params:,} params")
  if budget_bytes is not None:
    parts.append(f"{budget_bytes:,} bytes ({budget_bytes / 1e6:.6g} MB) at {weight_bits}-bit "
                 "weights")
  return " and ".join(parts)


def smallest_network(cfg: configs.NetworkConfig) -> tuple[str, int]:
  """The cheapest network of the search space of ``cfg``.

  Per-cell search cannot go lower than one cell shared by all cells: a cell's
  cost is a sum of per-edge op costs whose order does not depend on the width,
  so the cheapest cell is the same in every cell.

  Returns:
    ``(genotype string, parameter count)``.
  """
  space = search_space(cfg.ops, cfg.backward)
  params = memory.param_count(space, cfg)
  i = int(np.argmin(params))
  return genotype_lib.format_genotype(space[i]), int(params[i])


def check_budget(cfg: configs.NetworkConfig, *, budget_params=None, budget_bytes=None,
                 weight_bits: int = 32) -> None:
  """Checks that a budget admits at least the smallest network of the space.

  Args:
    cfg: the network config (``ops`` and ``backward`` define the space).
    budget_params: most parameters of the whole network, or None / inf (no
      limit; see :func:`snnax_nas.memory.normalize_budget`).
    budget_bytes: most weight bytes at ``weight_bits``, or None / inf.
    weight_bits: weight precision: 32, 16, 8 or 4.

  Raises:
    ValueError: bad budget arguments (NaN, zero, negative, not a number, bad
      ``weight_bits``), or a budget below the minimum; the message states the
      minimum in params and bytes.
  """
  budget_params, budget_bytes = memory.normalize_budget(budget_params, budget_bytes, weight_bits)
  if budget_params is None and budget_bytes is None:
    return
  budget = dict(budget_params=budget_params, budget_bytes=budget_bytes, weight_bits=weight_bits)
  if memory.within_budget(search_space(cfg.ops, cfg.backward), cfg, **budget).any():
    return
  g, p = smallest_network(cfg)
  space = "backward" if cfg.backward else "forward"
  raise ValueError(
      f"memory budget of {budget_text(budget_params, budget_bytes, weight_bits)} is below "
      f"the smallest network of the search space: minimum {p:,} params = "
      f"{int(memory.weight_bytes(p, weight_bits)):,} bytes at {weight_bits}-bit weights "
      f"(cell {g} in all {cfg.num_cells} cells, op set {cfg.ops}, {space} space, "
      f"width {cfg.width})")
