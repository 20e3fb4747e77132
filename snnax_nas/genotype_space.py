"""The genotype spaces of an op set, whole or sampled: every raw forward-only
or backward genotype (:func:`enumerate_forward`, :func:`enumerate_backward`),
and the reference sampler of valid genotypes (:func:`sample_genotypes`,
SNASNet's ``model_snn.py``: per node pair a forward op or a backward op, each
uniform, then pruning and rejection of cells whose output is unreachable).

Genotypes are the ``[4, 4]`` integer arrays of :mod:`snnax_nas.genotype`.
"""

from __future__ import annotations

import numpy as np

from snnax_nas.genotype import FORWARD_EDGES
from snnax_nas.genotype import GENOTYPE_DTYPE
from snnax_nas.genotype import NUM_NODES
from snnax_nas.genotype import OpsLike
from snnax_nas.genotype import prune
from snnax_nas.ops import OpSet
from snnax_nas.ops import op_set

# Node pairs (i < j) in FORWARD_EDGES order; the pair's backward edge is (j, i).
_PAIR_I = np.array([e[0] for e in FORWARD_EDGES], dtype=np.intp)
_PAIR_J = np.array([e[1] for e in FORWARD_EDGES], dtype=np.intp)


def _product(num_choices: int, positions: int) -> np.ndarray:
  """All index tuples of ``range(num_choices) ** positions``, last fastest.

  Returns:
    ``intp`` array ``[num_choices ** positions, positions]``.
  """
  idx = np.indices((num_choices,) * positions).reshape(positions, -1)
  return idx.T


def enumerate_forward(ops: OpsLike) -> np.ndarray:
  """Every raw forward-only genotype of an op set.

  Each of the 6 forward edges takes any digit of ``ops.forward_digits``; the
  lower triangle is 0. Order: lexicographic over ``FORWARD_EDGES`` (last edge
  fastest).

  Returns:
    ``int8`` array ``[len(ops.forward_digits) ** 6, 4, 4]``.
  """
  ops = op_set(ops)
  digits = np.asarray(ops.forward_digits, dtype=GENOTYPE_DTYPE)
  choice = digits[_product(len(digits), len(FORWARD_EDGES))]
  g = np.zeros((choice.shape[0], NUM_NODES, NUM_NODES), dtype=GENOTYPE_DTYPE)
  g[:, _PAIR_I, _PAIR_J] = choice
  return g


def _pair_choices(ops: OpSet) -> tuple[np.ndarray, np.ndarray]:
  """Per-pair (forward digit, backward digit) choices of the backward space.

  A pair (i < j) holds either a forward op (any forward digit, backward 0)
  or a backward op (forward 0, backward digit 1..num_digits-1), never both.

  Returns:
    Two ``int8`` arrays ``[C]``: forward digits and backward digits.
  """
  fwd = list(ops.forward_digits) + [0] * (ops.num_digits - 1)
  bwd = [0] * len(ops.forward_digits) + list(range(1, ops.num_digits))
  return (np.asarray(fwd, dtype=GENOTYPE_DTYPE),
          np.asarray(bwd, dtype=GENOTYPE_DTYPE))


def enumerate_backward(ops: OpsLike) -> np.ndarray:
  """Every raw genotype of the backward (feedback) space of an op set.

  Per node pair (i < j): a forward op (``ops.forward_digits``, backward 0) or a
  backward op (forward 0, backward digit in ``1..num_digits-1``). For the 5-op
  ``snasnet`` set this is 9 choices per pair, 9^6 = 531,441 genotypes. Order:
  lexicographic over pairs in ``FORWARD_EDGES`` order (last pair fastest),
  forward choices before backward ones.

  Returns:
    ``int8`` array ``[C ** 6, 4, 4]`` with ``C = len(forward_digits) +
    num_digits - 1``.
  """
  ops = op_set(ops)
  fwd, bwd = _pair_choices(ops)
  choice = _product(len(fwd), len(FORWARD_EDGES))
  g = np.zeros((choice.shape[0], NUM_NODES, NUM_NODES), dtype=GENOTYPE_DTYPE)
  g[:, _PAIR_I, _PAIR_J] = fwd[choice]
  g[:, _PAIR_J, _PAIR_I] = bwd[choice]
  return g


def _sample_raw(rng: np.random.Generator, n: int, ops: OpSet,
                backward: bool) -> np.ndarray:
  """Raw draws of the reference sampler, before pruning and rejection.

  Per pair: selection bit b ~ Bernoulli(1/2); b=1: forward digit uniform over
  ``ops.forward_digits``, backward 0; b=0: forward 0, backward digit uniform
  over ``ops.forward_digits`` (0 = empty pair). ``backward=False``: each
  forward edge uniform over ``ops.forward_digits``, lower triangle 0.

  Returns:
    ``int8`` array ``[n, 4, 4]``.
  """
  digits = np.asarray(ops.forward_digits, dtype=GENOTYPE_DTYPE)
  shape = (n, len(FORWARD_EDGES))
  fwd = digits[rng.integers(0, len(digits), size=shape)]
  g = np.zeros((n, NUM_NODES, NUM_NODES), dtype=GENOTYPE_DTYPE)
  if not backward:
    g[:, _PAIR_I, _PAIR_J] = fwd
    return g
  bwd = digits[rng.integers(0, len(digits), size=shape)]
  select_fwd = rng.integers(0, 2, size=shape).astype(bool)
  zero = np.zeros((), dtype=GENOTYPE_DTYPE)
  g[:, _PAIR_I, _PAIR_J] = np.where(select_fwd, fwd, zero)
  g[:, _PAIR_J, _PAIR_I] = np.where(select_fwd, zero, bwd)
  return g


def sample_genotypes(rng: np.random.Generator, n: int, ops: OpsLike,
                     backward: bool = False) -> np.ndarray:
  """Samples valid genotypes as the reference (SNASNet's ``model_snn.py``) does.

  Raw draws as in the reference sampler, then pruning, then rejection of
  those failing :func:`is_valid`; rejected draws are replaced by further draws
  (in oversized blocks, so the cost is a few vectorised passes).

  Args:
    rng: numpy Generator; the result is deterministic given its state.
    n: number of genotypes, >= 0.
    ops: the op set (anything ``op_set`` accepts).
    backward: sample the backward space (feedback edges) if True, else the
      forward-only space.

  Returns:
    ``int8`` array ``[n, 4, 4]`` of canonical (pruned) valid genotypes, in draw
    order; not deduplicated.

  Raises:
    ValueError: ``n < 0``.
  """
  if int(n) != n or n < 0:
    raise ValueError(f"number of genotypes must be an integer >= 0, got {n!r}")
  n = int(n)
  ops = op_set(ops)
  parts = []
  have = 0
  # Acceptance is 0.4 (snasnet, backward) to 1.0 (no zero op, forward); start
  # from a cautious guess and then use the observed rate.
  rate = 0.4
  while have < n:
    need = n - have
    block = int(np.ceil(need / rate * 1.2)) + 32
    can = prune(_sample_raw(rng, block, ops, backward))
    ok = can[:, 0, 3] != 0  # is_valid on an already pruned matrix
    acc = can[ok][:need]
    parts.append(acc)
    have += len(acc)
    # Acceptance is >= 1/(2 * num_digits) > 0, so the loop ends.
    rate = max(float(ok.mean()), 0.05)
  if not parts:
    return np.zeros((0, NUM_NODES, NUM_NODES), dtype=GENOTYPE_DTYPE)
  return np.concatenate(parts, axis=0)
