"""Job configs of the launchers, as data: one ``get_config(preset)`` per job.

Each module (``search``, ``score``, ``train``, ``analyze``) returns an
``ml_collections.ConfigDict``; the launcher loads it with absl
``config_flags``, so any field can be overridden on the command line with its
dotted name, and a preset is chosen after a colon::

  python -m launch.search --workdir=runs/search                      # :small
  python -m launch.search --config=$(python -c 'import configs; print(configs.path("search"))'):reference \\
      --config.network.width=128 --workdir=runs/ref

The ``network`` section of every job holds the :class:`NetworkConfig` fields
a user chooses; the dataset decides the rest
(:func:`snnax_nas.workdir.network_from_job_config`).
"""

from __future__ import annotations

import os
from typing import Any
from typing import Mapping

from ml_collections import config_dict

JOBS = ("search", "score", "train", "analyze", "compare", "groundtruth")
# Configs of commands that read a finished run (no network section, no presets).
TOOLS = ("evaluate",)


def path(job: str) -> str:
  """File of a job's config (the default ``--config`` of its launcher)."""
  if job not in JOBS + TOOLS:
    raise ValueError(f"unknown job {job!r}; jobs: {', '.join(JOBS + TOOLS)}")
  return os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{job}.py")


def network(**values: Any) -> config_dict.ConfigDict:
  """The ``network`` section: the small CPU defaults, then ``values``.

  ``width`` 16 and ``second_pool`` 2 are the small scale; the reference
  CIFAR-10 network is width 256, ``second_pool`` 4 (see the presets).
  """
  section = config_dict.ConfigDict(dict(
      ops="snasnet", width=16, cells_per_stage=1, timesteps=5, hidden=1024, second_pool=2,
      dropout=0.5, backward=False,
      linear_init="reference"))  # or fan_in: a classifier that fires at init at small widths
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
      kernel="sahd",       # a name of snnax_nas.score.KERNELS (sahd: the reference)
      draws=1,             # fresh weight draws per candidate, each over all R batches
      conv_dtype="float32"))  # cell convs: float32 (reference) or bfloat16 (f32 accumulation)


def apply_preset(config: config_dict.ConfigDict, presets: Mapping[str, Mapping[str, Any]],
                 preset: str | None, default: str = "small") -> config_dict.ConfigDict:
  """Sets the dotted fields of ``presets[preset]`` (``default`` when None).

  Raises:
    ValueError: unknown preset.
  """
  name = preset or default
  if name not in presets:
    raise ValueError(f"unknown preset {name!r}; presets: {', '.join(presets)}")
  for dotted, value in presets[name].items():
    *parents, leaf = dotted.split(".")
    node = config
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config
