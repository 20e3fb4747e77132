"""Config of ``launch.score``: SAHD scores of a genotype file or a sample.

Presets: ``small`` (default; the CIFAR-10 sample, width 16) and
``reference`` (CIFAR-10, width 256, ``second_pool`` 4, batches of 256).
"""

from __future__ import annotations

from ml_collections import config_dict

import configs

PRESETS = {
    "small": {},
    "reference": {"dataset": "cifar10", "network.width": 256, "network.second_pool": 4,
                  "scoring.batch_size": 256},
}


def get_config(preset: str | None = None) -> config_dict.ConfigDict:
  """The scoring config of ``preset`` (``small`` when None)."""
  c = config_dict.ConfigDict()
  c.dataset = "cifar10_sample"
  c.data_dir = config_dict.placeholder(str)
  c.seed = 0
  c.network = configs.network()  # a file with feedback edges needs network.backward
  c.scoring = configs.scoring()
  # A file of genotype strings, one per line ('|' between per-cell
  # genotypes); None: num_candidates sampled from the space.
  c.genotypes = config_dict.placeholder(str)
  c.num_candidates = 16
  c.weight_bits = 32  # precision of memory_bytes: 32, 16, 8 or 4
  return configs.apply_preset(c, PRESETS, preset)
