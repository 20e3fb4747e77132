"""A memory budget as one value: :class:`Budget`.

A budget is a most number of parameters and/or a most number of weight bytes
at a weight precision (SpikeNAS's memory model, ``params * bits / 8``:
:func:`snnax_nas.memory.weight_bytes`); a limit left None is no limit. It is
made once, where the user's numbers come in (MB, parameters, or a fraction of
a search space's weight range), checked there, and passed as one argument
through the jobs, searches and studies. Whether a network fits is the memory
model's one rule (:func:`snnax_nas.memory.within_budget`).

  budget = Budget.from_mb(0.8, weight_bits=8)
  budget.fits(genotypes, cfg)          # bool [N]
  Budget.from_fraction(memory.space_range(cfg, 32), 0.5)
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from snnax_nas import configs
from snnax_nas import memory


@dataclasses.dataclass(frozen=True)
class Budget:
  """A weight-memory budget; the default is no limit at 32-bit weights.

  Attributes:
    max_params: most parameters of the whole network, or None (no limit).
    max_bytes: most weight bytes at ``weight_bits``, or None (no limit).
    weight_bits: the weight precision the bytes are counted at: 32, 16, 8
      or 4.

  Raises:
    ValueError: on construction, a limit that is not a number, NaN, zero or
      negative, or an unknown ``weight_bits`` (the message names it). An
      infinite limit is stored as None.
  """

  max_params: Optional[float] = None
  max_bytes: Optional[float] = None
  weight_bits: int = 32

  def __post_init__(self):
    memory.check_weight_bits(self.weight_bits)
    object.__setattr__(self, "max_params", memory.budget_limit("max_params", self.max_params))
    object.__setattr__(self, "max_bytes", memory.budget_limit("max_bytes", self.max_bytes))

  @classmethod
  def from_mb(cls, mb: Optional[float], weight_bits: int = 32,
              max_params: Optional[float] = None) -> "Budget":
    """``mb`` MB (10^6 bytes) of weights at ``weight_bits`` (None or inf: no
    byte limit), and optionally a parameter limit.

    Raises:
      ValueError: a bad ``mb`` (see :func:`snnax_nas.memory.budget_bytes_from_mb`)
        or a bad limit.
    """
    return cls(max_params, memory.budget_bytes_from_mb(mb), weight_bits)

  @classmethod
  def from_fraction(cls, space: memory.SpaceRange, fraction: float) -> "Budget":
    """The byte budget ``fraction`` of the way from the smallest to the
    largest network of a space (:meth:`snnax_nas.memory.SpaceRange.budget_bytes`),
    at the range's precision.

    Raises:
      ValueError: ``fraction`` not in [0, 1].
    """
    return cls(None, space.budget_bytes(fraction), space.weight_bits)

  @property
  def limited(self) -> bool:
    """Whether the budget limits anything."""
    return self.max_params is not None or self.max_bytes is not None

  @property
  def mb(self) -> Optional[float]:
    """The byte limit in MB, or None."""
    return None if self.max_bytes is None else self.max_bytes / 1e6

  def fits(self, genotypes, cfg: configs.NetworkConfig) -> np.ndarray:
    """bool [N]: which of the genotypes fit (:func:`snnax_nas.memory.within_budget`)."""
    return memory.within_budget(genotypes, cfg, **self.limits())

  def fits_params(self, params) -> np.ndarray:
    """bool, the shape of ``params``: which parameter counts fit
    (:func:`snnax_nas.memory.params_within_budget`)."""
    return memory.params_within_budget(params, **self.limits())

  def limits(self) -> dict:
    """``{"budget_params", "budget_bytes", "weight_bits"}``: the keyword
    arguments of the memory model's rule, and the fields a search result
    records."""
    return dict(budget_params=self.max_params, budget_bytes=self.max_bytes,
                weight_bits=self.weight_bits)

  def text(self) -> str:
    """The budget in words, e.g. ``"1,000 params and 4,000 bytes (0.004 MB) at
    32-bit weights"`` (``"no limit"`` when it limits nothing)."""
    parts = []
    if self.max_params is not None:
      parts.append(f"{self.max_params:,} params")
    if self.max_bytes is not None:
      parts.append(f"{self.max_bytes:,} bytes ({self.max_bytes / 1e6:.6g} MB) at "
                   f"{self.weight_bits}-bit weights")
    return " and ".join(parts) or "no limit"


NO_BUDGET = Budget()
