"""Config of ``launch.evaluate``: a trained run's checkpoint, evaluated at a
weight precision (post-training quantisation, :func:`snnax_nas.evaluate.evaluate_run`).

  python -m launch.evaluate --workdir=runs/train --config.weight_bits=8 --config.split=test

The network, genotype and dataset come from the run's workdir; this config
only says how to evaluate it.
"""

from __future__ import annotations

from ml_collections import config_dict

from snnax_nas.configs import sections


def get_config(preset: str | None = None) -> config_dict.ConfigDict:
  """The evaluation config (one preset, ``small``; ``preset`` is accepted for
  the launchers' ``--config=FILE:PRESET`` form).

  Raises:
    ValueError: a preset other than ``small``.
  """
  if preset not in (None, "small"):
    raise ValueError(f"unknown preset {preset!r}; presets: small")
  c = config_dict.ConfigDict()
  c.weight_bits = 32    # 32 (float), 16, 8 or 4: per-channel symmetric weights, BN float32
  c.split = "test"      # train, test (val for TinyImageNet), or a split the dataset has
  c.batch_size = 256    # a multiple of the device count
  c.max_examples = config_dict.placeholder(int)  # the first N examples of the split
  c.raster = 0          # N > 0: spike raster of the split's first N inputs, next to firing_rates.png
  c.nir = False         # also export the network at weight_bits as a NIR graph (needs nir)
  c.nir_dt = 1e-4       # seconds per timestep recorded in the NIR graph (LIF tau = 4/3 dt)
  c.energy = sections.energy()  # pJ per accumulate and per MAC of the energy per inference
  return c
