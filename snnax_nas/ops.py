"""Candidate operations of a cell edge, as data.

An op set is an ordered tuple of :class:`OpSpec`. Genotype digits index it with
one fixed convention: digit ``0`` is always the absent edge (the ``zero`` op),
and digit ``k >= 1`` is the k-th *non-zero* op of the set in the order listed.
For op sets that list ``zero`` first (``snasnet``, ``lightsnn``) this is
exactly "digit = index into the op set", the reference's encoding
(``0 zero, 1 skip, 2 conv1x1, 3 conv3x3, 4 avgpool3x3``). Whether ``zero`` is in
the set decides only whether a *forward* edge may be absent.

Op names: ``zero``, ``skip``, ``conv1x1``, ``conv3x3``, ``avgpool3x3``,
``maxpool3x3``. A conv op may carry its own LIF threshold, ``conv3x3@0.5``
(spaces with variable-threshold neurons as candidate ops); a bare conv op uses
the network's threshold.
"""

from __future__ import annotations

import dataclasses
from typing import Optional
from typing import Sequence
from typing import Union

OP_KINDS = ("zero", "skip", "conv", "avgpool", "maxpool")

_BASE_OPS = {
    "zero": ("zero", 0),
    "skip": ("skip", 0),
    "conv1x1": ("conv", 1),
    "conv3x3": ("conv", 3),
    "avgpool3x3": ("avgpool", 3),
    "maxpool3x3": ("maxpool", 3),
}

OP_SET_PRESETS = {
    "snasnet": ("zero", "skip", "conv1x1", "conv3x3", "avgpool3x3"),
    "spikenas": ("skip", "conv3x3"),
    "spikenas3": ("skip", "conv3x3", "avgpool3x3"),
    "lightsnn": ("zero", "skip", "conv3x3"),
}


@dataclasses.dataclass(frozen=True)
class OpSpec:
  """One candidate op of a cell edge.

  Attributes:
    name: the op's string form, e.g. ``"conv3x3"`` or ``"conv3x3@0.5"``.
    kind: one of ``OP_KINDS``.
    kernel: spatial kernel size (1 or 3 for convs, 3 for pools, 0 otherwise).
    threshold: LIF threshold of a conv op's input neuron; ``None`` means the
      network's default threshold. Always ``None`` for non-conv ops.
  """

  name: str
  kind: str
  kernel: int
  threshold: Optional[float] = None

  @property
  def has_lif(self) -> bool:
    """True for ops that start with a LIF neuron (the conv ops)."""
    return self.kind == "conv"


def parse_op(name: str) -> OpSpec:
  """Parses one op name such as ``"conv3x3"`` or ``"conv1x1@0.5"``.

  Raises:
    ValueError: unknown op, a threshold on a non-conv op, or a bad threshold.
  """
  if not isinstance(name, str):
    raise ValueError(f"op name must be a string, got {name!r}")
  text = name.strip()
  base, sep, thr = text.partition("@")
  if base not in _BASE_OPS:
    raise ValueError(
        f"unknown op {name!r}; known ops: {', '.join(_BASE_OPS)} "
        "(a conv op may carry a threshold, e.g. 'conv3x3@0.5')")
  kind, kernel = _BASE_OPS[base]
  threshold = None
  if sep:
    if kind != "conv":
      raise ValueError(f"op {name!r}: only conv ops take a LIF threshold")
    try:
      threshold = float(thr)
    except ValueError:
      raise ValueError(f"op {name!r}: threshold {thr!r} is not a number") from None
    if not threshold > 0:
      raise ValueError(f"op {name!r}: threshold must be > 0, got {threshold}")
    text = f"{base}@{threshold:g}"
  return OpSpec(name=text, kind=kind, kernel=kernel, threshold=threshold)


@dataclasses.dataclass(frozen=True)
class OpSet:
  """An ordered set of candidate ops.

  Attributes:
    ops: the ops as listed by the user.
  """

  ops: tuple[OpSpec, ...]

  @property
  def names(self) -> tuple[str, ...]:
    return tuple(op.name for op in self.ops)

  @property
  def has_zero(self) -> bool:
    """Whether a forward edge may be absent (``zero`` is a candidate)."""
    return any(op.kind == "zero" for op in self.ops)

  @property
  def nonzero_ops(self) -> tuple[OpSpec, ...]:
    """The ops that digits ``1..len`` denote, in order."""
    return tuple(op for op in self.ops if op.kind != "zero")

  @property
  def num_digits(self) -> int:
    """Number of distinct genotype digits: the absent edge plus every op."""
    return len(self.nonzero_ops) + 1

  @property
  def forward_digits(self) -> tuple[int, ...]:
    """Digits a forward edge may take (0 only if ``zero`` is in the set)."""
    first = 0 if self.has_zero else 1
    return tuple(range(first, self.num_digits))

  @property
  def lif_thresholds(self) -> tuple[Optional[float], ...]:
    """Distinct LIF thresholds of the conv ops, in order of first use.

    Conv ops with the same threshold read the same edge input, so one LIF per
    (edge, threshold) serves all of them exactly.
    """
    seen = []
    for op in self.nonzero_ops:
      if op.has_lif and op.threshold not in seen:
        seen.append(op.threshold)
    return tuple(seen)

  def digit(self, name: str) -> int:
    """The genotype digit of op ``name`` (0 for ``zero``)."""
    spec = parse_op(name)
    if spec.kind == "zero":
      return 0
    for i, op in enumerate(self.nonzero_ops):
      if op.name == spec.name:
        return i + 1
    raise ValueError(f"op {name!r} is not in the op set {self.names}")

  def op_of_digit(self, digit: int) -> OpSpec:
    """The op a genotype digit denotes; digit 0 is ``zero``."""
    if not 0 <= digit < self.num_digits:
      raise ValueError(
          f"digit {digit} out of range for op set {self.names} "
          f"(valid digits 0..{self.num_digits - 1})")
    if digit == 0:
      return parse_op("zero")
    return self.nonzero_ops[digit - 1]

  def __str__(self) -> str:
    return ",".join(self.names)


def op_set(spec: Union[str, Sequence[str], OpSet]) -> OpSet:
  """Builds an :class:`OpSet` from a preset name, a comma list or a sequence.

  Examples: ``op_set("snasnet")``, ``op_set("skip,conv3x3@0.5,conv3x3")``.

  Raises:
    ValueError: unknown preset or op, duplicates, or an empty/zero-only set.
  """
  if isinstance(spec, OpSet):
    return spec
  if isinstance(spec, str):
    names = OP_SET_PRESETS.get(spec.strip())
    if names is None:
      names = tuple(s for s in (p.strip() for p in spec.split(",")) if s)
      if len(names) == 1 and names[0] not in _BASE_OPS and "@" not in names[0]:
        raise ValueError(
            f"unknown op set {spec!r}; presets: {', '.join(OP_SET_PRESETS)}, "
            "or a comma list of ops")
  else:
    names = tuple(spec)
  ops = tuple(parse_op(n) for n in names)
  seen = set()
  for op in ops:
    if op.name in seen:
      raise ValueError(f"op {op.name!r} listed twice in op set {spec!r}")
    seen.add(op.name)
  if not any(op.kind != "zero" for op in ops):
    raise ValueError(f"op set {spec!r} has no op other than zero")
  return OpSet(ops)
