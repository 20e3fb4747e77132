"""Sections and presets shared by the job configs (``snnax_nas/configs/<job>.py``).

Each job or study module (``search``, ``score``, ``train``, ``evaluate``,
``analyze_ops``, ``compare``, ``groundtruth``, ``correlate``) has ``get_config(preset)`` returning an
``ml_collections.ConfigDict``; a launcher loads it with absl ``config_flags``,
so any field can be overridden on the command line by its dotted name, and a
preset is chosen after a colon::

  python -m launch.search --workdir=runs/search                      # :small
  python -m launch.search --config=snnax_nas/configs/search.py:reference \\
      --config.network.width=128 --workdir=runs/ref

From Python, ``snnax_nas.configs.get_config("search", "reference")`` gives the
same config, and ``snnax_nas.jobs.search.run(config, workdir)`` runs it.

The ``network`` section of every job is derived from
:class:`~snnax_nas.configs.NetworkConfig`: its user-chosen fields with their
dataclass defaults (the dataset decides the rest:
:func:`~snnax_nas.configs.network_from_job_config`). There are two presets:
``small`` (the default: width 16, hidden 128, ``second_pool`` 4, two cells
per stage: minutes on a CPU, cells hold most of the weights) and ``reference`` (the
paper's CIFAR-10 network, ``NetworkConfig`` preset ``cifar10``, scored on
batches of 256 images); a job adds its own fields to either.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any
from typing import Mapping
from typing import Optional

from ml_collections import config_dict

from snnax_nas import ops as ops_lib
from snnax_nas.configs import network as network_lib

JOBS = ("search", "score", "train", "analyze_ops", "compare", "groundtruth")
# Configs of commands that read a finished run (no network section, no presets).
TOOLS = ("evaluate", "correlate")

# NetworkConfig fields that are not in a job's network section: the dataset
# decides them, and the neuron constants are not a job choice.
_NOT_IN_SECTION = network_lib.DATASET_FIELDS + ("lif",)

# The default scale: minutes on a CPU, and cells, not the classifier, hold
# most of the weights, so a memory budget chooses between cells (measured by
# benchmarks/space_scale.py: the spikenas space spans 83,668-223,060 params,
# x2.67, cells 62 % of the largest network; at hidden 1024 and second_pool 2
# the classifier held 97 % and the space spanned x1.03). Width 16 with one
# cell per stage or hidden 128 alone stays under 50 %.
SMALL = {"network.width": 16, "network.hidden": 128, "network.second_pool": 4,
         "network.cells_per_stage": 2}
# The paper's CIFAR-10 network (NetworkConfig preset "cifar10") and its
# scoring batch of 256 images.
REFERENCE = {**{f"network.{k}": v for k, v in network_lib.PRESETS["cifar10"].items()
                if k not in _NOT_IN_SECTION},
             "scoring.batch_size": 256}


def path(job: str) -> str:
  """File of a job's config (the default ``--config`` of its launcher).

  Raises:
    ValueError: an unknown job (the message lists the jobs).
  """
  if job not in JOBS + TOOLS:
    raise ValueError(f"unknown job {job!r}; jobs: {', '.join(JOBS + TOOLS)}")
  return os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{job}.py")


def network(**values: Any) -> config_dict.ConfigDict:
  """The ``network`` section: every user-chosen :class:`NetworkConfig` field
  at its dataclass default (``ops`` as its name), then ``values``.

  ``linear_init`` ``fan_in`` gives a classifier that fires at initialisation
  at small widths (``reference``: the paper's N(0, 0.01²)).
  """
  section = config_dict.ConfigDict()
  defaults = network_lib.NetworkConfig()
  for field in dataclasses.fields(network_lib.NetworkConfig):
    if field.name not in _NOT_IN_SECTION:
      value = getattr(defaults, field.name)
      if field.name == "ops":  # by its preset's name ("snasnet"), as a user writes it
        value = next((name for name, ops in ops_lib.OP_SET_PRESETS.items()
                      if ops == value.names), str(value))
      section[field.name] = value
  for key, value in values.items():
    section[key] = value
  return section


def scoring() -> config_dict.ConfigDict:
  """The ``scoring`` section: batches and compiled-call layout of the SAHD
  scorer (the reference scores 2 batches of 256 images)."""
  return config_dict.ConfigDict(dict(
      batch_size=64,       # images per scoring batch B
      repeats=2,           # batches R averaged per candidate
      # Candidates per compiled call and vmapped inside it: an int, or "auto"
      # (chosen from the backend, device memory and FLOPs, snnax_nas.autotune:
      # chunk 8 / map_batch 1 on CPU; more vmapped small candidates on GPU/TPU).
      chunk_size="auto",
      map_batch_size="auto",
      kernel="sahd",       # a name of snnax_nas.kernels.KERNELS (sahd: the reference)
      draws=1,             # fresh weight draws per candidate, each over all R batches
      # independent: each candidate its own weights (the reference); common:
      # every candidate on the same weights (a cell's score is the cell's alone)
      weights="independent",
      conv_dtype="float32",  # cell convs: float32 (reference) or bfloat16 (f32 accumulation)
      # Forward-only spaces: every layer once over all T timesteps instead of
      # step by step (same scores up to rounding; not faster on a 2-core CPU).
      time_batched=False))


def apply_preset(config: config_dict.ConfigDict, preset: Optional[str],
                 extra: Optional[Mapping[str, Mapping[str, Any]]] = None
                 ) -> config_dict.ConfigDict:
  """Sets the dotted fields of the preset ``preset`` (``small`` when None):
  :data:`SMALL` or :data:`REFERENCE`, then the job's own ``extra[preset]``.
  Fields a config lacks (``scoring`` in a train config) are skipped.

  Raises:
    ValueError: an unknown preset (the message lists both).
  """
  name = preset or "small"
  if name not in ("small", "reference"):
    raise ValueError(f"unknown preset {name!r}; presets: small, reference")
  fields = dict(SMALL if name == "small" else REFERENCE)
  fields.update((extra or {}).get(name, {}))
  return set_fields(config, {k: v for k, v in fields.items()
                             if k.split(".")[0] in config})


def set_fields(config: config_dict.ConfigDict, fields: Mapping[str, Any]
               ) -> config_dict.ConfigDict:
  """Sets each dotted field (``"network.width": 32``) of ``config`` in place,
  as ``--config.network.width=32`` does; returns ``config``.

  Raises:
    KeyError: a section ``config`` lacks.
  """
  for dotted, value in fields.items():
    *parents, leaf = dotted.split(".")
    node = config
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config
