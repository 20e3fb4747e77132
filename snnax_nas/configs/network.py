"""Network configuration as data: :class:`NetworkConfig`, presets, and the one
place where dataset facts become network fields.

A ``NetworkConfig`` is frozen and hashable, so it is a ``jit`` static argument;
everything a launcher or a user derives from a dataset (input shape, classes,
vote group, stem stride) goes through :func:`network_config_for_dataset`.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from typing import Mapping
from typing import Optional

import numpy as np

from snnax_nas import neurons
from snnax_nas import ops as ops_lib

LINEAR_INITS = ("reference", "fan_in")
# NetworkConfig fields the dataset decides (network_config_for_dataset).
DATASET_FIELDS = ("input_shape", "num_classes", "vote_group", "stem_stride")
# Gain of the "fan_in" classifier init: with spike inputs (0/1, rate r) the
# hidden pre-activation std is gain·sqrt(r); 4 makes a threshold-1 LIF fire at
# rates of a few percent from the first step.
LINEAR_FAN_IN_GAIN = 4.0


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
  """Static description of a network (hashable; a ``jit`` static argument).

  Attributes:
    input_shape: (H, W, C_in) of one input image or frame.
    num_classes: number of classes.
    width: stem / stage-1 width C; stage 2 runs at 2C.
    cells_per_stage: searched cells in each of the two stages.
    timesteps: T, the number of simulated timesteps.
    stem_stride: stride of the stem conv (2 for 64x64 TinyImageNet).
    second_pool: s2, the avg-pool after the last LIF.
    hidden: width of the classifier's hidden LIF layer.
    vote_group: output neurons per class, averaged ("vote").
    dropout: dropout rate before the first classifier layer.
    ops: the op set of the cells.
    backward: whether cells have backward (in-time feedback) edges.
    lif: neuron constants (a conv op may override the threshold).
    linear_init: initialisation of the classifier's two Linear layers.
      ``"reference"`` (default, faithful): N(0, 0.01²) weights as SNASNet. At
      small widths the hidden LIF layer then never fires at initialisation and
      training stays at chance. ``"fan_in"``: N(0, 1/fan_in)·``LINEAR_FAN_IN_GAIN``²
      weights, so the hidden layer's input current has a standard deviation of
      order one and it fires from the first step at any width.
  """

  input_shape: tuple[int, int, int] = (32, 32, 3)
  num_classes: int = 10
  width: int = 256
  cells_per_stage: int = 1
  timesteps: int = 5
  stem_stride: int = 1
  second_pool: int = 2
  hidden: int = 1024
  vote_group: int = 10
  dropout: float = 0.5
  ops: ops_lib.OpSet = dataclasses.field(
      default_factory=lambda: ops_lib.op_set("snasnet"))
  backward: bool = False
  lif: neurons.LIFConfig = neurons.LIFConfig()
  linear_init: str = "reference"

  def __post_init__(self):
    object.__setattr__(self, "ops", ops_lib.op_set(self.ops))
    object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
    for name in ("num_classes", "width", "cells_per_stage", "timesteps",
                 "stem_stride", "second_pool", "hidden", "vote_group"):
      value = getattr(self, name)
      if not (isinstance(value, (int, np.integer)) and value >= 1):
        raise ValueError(f"NetworkConfig.{name} must be a positive int, got {value!r}")
    if len(self.input_shape) != 3 or min(self.input_shape) < 1:
      raise ValueError(f"input_shape must be (H, W, C), got {self.input_shape}")
    if self.linear_init not in LINEAR_INITS:
      raise ValueError(f"linear_init must be one of {LINEAR_INITS}, got {self.linear_init!r}")
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
    h, w, _ = self.input_shape
    div = self.stem_stride * 2 * self.second_pool
    if h % div or w % div:
      raise ValueError(
          f"input {h}x{w} is not divisible by stem_stride*2*second_pool = {div}")

  def replace(self, **changes) -> "NetworkConfig":
    """A copy with ``changes`` (field names) applied and validated, e.g. a
    loaded run's network at another width: ``run.network.replace(width=32)``.

    Raises:
      ValueError: an unknown field or an invalid value.
    """
    fields = {f.name for f in dataclasses.fields(self)}
    unknown = sorted(set(changes) - fields)
    if unknown:
      raise ValueError(f"unknown NetworkConfig field(s) {', '.join(unknown)}")
    return dataclasses.replace(self, **changes)

  @property
  def num_cells(self) -> int:
    return 2 * self.cells_per_stage

  @property
  def num_edges(self) -> int:
    return 12 if self.backward else 6

  @property
  def stage_shapes(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(H, W, C) of stage 1 and stage 2."""
    h, w, _ = self.input_shape
    h1, w1 = h // self.stem_stride, w // self.stem_stride
    return (h1, w1, self.width), (h1 // 2, w1 // 2, 2 * self.width)

  @property
  def cell_shapes(self) -> tuple[tuple[int, int, int], ...]:
    """(H, W, C) of each cell, stage-1 cells first."""
    s1, s2 = self.stage_shapes
    return (s1,) * self.cells_per_stage + (s2,) * self.cells_per_stage

  @property
  def classifier_in(self) -> int:
    h, w, c = self.stage_shapes[1]
    return (h // self.second_pool) * (w // self.second_pool) * c

  @property
  def num_outputs(self) -> int:
    return self.num_classes * self.vote_group


PRESETS = {
    # Reference constants (SNASNet's ``model_snn.py``). CIFAR10 uses s2 = 4 as the released model.
    "cifar10": dict(input_shape=(32, 32, 3), num_classes=10, width=256,
                    hidden=1024, vote_group=10, second_pool=4),
    "cifar100": dict(input_shape=(32, 32, 3), num_classes=100, width=128,
                     hidden=1024, vote_group=5, second_pool=2),
    "tinyimagenet": dict(input_shape=(64, 64, 3), num_classes=200, width=128,
                         hidden=4096, vote_group=5, second_pool=2, stem_stride=2),
}


def network_config(preset: Optional[str] = None, **overrides) -> NetworkConfig:
  """A :class:`NetworkConfig` from a preset (``cifar10``, ``cifar100``,
  ``tinyimagenet``) with field overrides; ``preset=None`` starts from defaults.

  Raises:
    ValueError: unknown preset or field, or an invalid value.
  """
  if preset is None:
    base = {}
  elif preset in PRESETS:
    base = dict(PRESETS[preset])
  else:
    raise ValueError(f"unknown network preset {preset!r}; presets: {', '.join(PRESETS)}")
  fields = {f.name for f in dataclasses.fields(NetworkConfig)}
  for key in overrides:
    if key not in fields:
      raise ValueError(f"unknown NetworkConfig field {key!r}")
  base.update(overrides)
  return NetworkConfig(**base)


def vote_group_for(num_classes: int) -> int:
  """Output neurons per class (reference rule): 10 up to 10 classes, else 5."""
  return 5 if num_classes > 10 else 10


def stem_stride_for(input_shape: tuple[int, ...]) -> int:
  """Stem conv stride (reference rule): 2 for inputs of 64 pixels or more
  (TinyImageNet), else 1."""
  return 2 if input_shape[0] >= 64 else 1


def network_config_for_dataset(info: Any, **overrides) -> NetworkConfig:
  """The :class:`NetworkConfig` for a dataset, every dataset-derived field set
  by the reference rules.

  Args:
    info: a dataset description with ``image_shape`` (H, W, C) and
      ``num_classes`` (a :class:`snnax_nas.data.DatasetInfo`).
    **overrides: any other :class:`NetworkConfig` field (``width``,
      ``timesteps``, ``ops``, ...); they may not set ``input_shape``,
      ``num_classes``, ``vote_group`` or ``stem_stride``, which the dataset
      decides.

  Raises:
    ValueError: an unknown field, a dataset-derived field in ``overrides``, or
      an invalid value.
  """
  derived = dict(input_shape=tuple(info.image_shape), num_classes=int(info.num_classes),
                 vote_group=vote_group_for(int(info.num_classes)),
                 stem_stride=stem_stride_for(tuple(info.image_shape)))
  clash = sorted(set(derived) & set(overrides))
  if clash:
    raise ValueError(f"{', '.join(clash)} come from the dataset; do not override them")
  return network_config(None, **derived, **overrides)


def network_from_job_config(network: Mapping[str, Any], info: Any,
                            **overrides) -> NetworkConfig:
  """The :class:`NetworkConfig` of a job config's ``network`` section.

  Args:
    network: ``config.network`` of a job config (or a dict): ``ops``,
      ``width``, ``cells_per_stage``, ``timesteps``, ``hidden``,
      ``second_pool``, ``dropout``, ``backward``, ``linear_init``; keys set
      to None are left at the ``NetworkConfig`` default.
    info: the dataset (:class:`snnax_nas.data.DatasetInfo`): input shape,
      classes, vote group and stem stride come from it
      (:func:`network_config_for_dataset`).
    **overrides: fields that replace the section's values (e.g. ``ops`` of
      one variant of a space).

  Raises:
    ValueError: an unknown or dataset-derived key, or an invalid value.
  """
  fields = dict(network.items()) if not hasattr(network, "to_dict") else network.to_dict()
  fields = {k: v for k, v in fields.items() if v is not None}
  fields.update(overrides)
  return network_config_for_dataset(info, **fields)


def network_to_json(cfg: NetworkConfig) -> dict:
  """Every field of ``cfg`` as JSON-ready data (inverse:
  :func:`network_from_json`)."""
  out = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
  out.update(input_shape=list(cfg.input_shape), ops=str(cfg.ops),
             lif=dataclasses.asdict(cfg.lif))
  return out


def network_from_json(data: Mapping[str, Any]) -> NetworkConfig:
  """The :class:`NetworkConfig` of :func:`network_to_json`'s output."""
  data = dict(data)
  if "lif" in data:
    data["lif"] = neurons.LIFConfig(**data["lif"])
  return NetworkConfig(**data)
