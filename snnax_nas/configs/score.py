"""Config of ``launch.score``: SAHD scores of a genotype file or a sample.

Presets: ``small`` (default; the CIFAR-10 sample, width 16) and
``reference`` (CIFAR-10, width 256, ``second_pool`` 4, batches of 256).
"""

from __future__ import annotations

from ml_collections import config_dict

from snnax_nas.configs import sections

PRESETS = {"reference": {"dataset": "cifar10"}}  # added to sections.REFERENCE


def get_config(preset: str | None = None) -> config_dict.ConfigDict:
  """The scoring config of ``preset`` (``small`` when None)."""
  c = config_dict.ConfigDict()
  c.dataset = "cifar10_sample"
  c.data_dir = config_dict.placeholder(str)
  c.seed = 0
  c.network = sections.network()  # a file with feedback edges needs network.backward
  c.scoring = sections.scoring()
  # A file of genotype strings, one per line ('|' between per-cell
  # genotypes); None: num_candidates sampled from the space.
  c.genotypes = config_dict.placeholder(str)
  c.num_candidates = 16
  # Rows whose cells are equal in canonical form are scored once and share
  # that score (stated in the report); True scores every row with its own
  # weight draw, as SNASNet's sampler keeps its duplicates.
  c.score_duplicates = False
  c.weight_bits = 32  # precision of memory_bytes: 32, 16, 8 or 4
  return sections.apply_preset(c, preset, PRESETS)
