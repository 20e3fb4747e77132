"""Config of ``launch.analyze_ops``: SpikeNAS operation significance
(:mod:`snnax_nas.studies.analyze_ops`).

Presets: ``small`` (default; width 16, 100 candidates, 5 epochs x 3 seeds)
and ``reference`` (width 256, ``second_pool`` 4, scoring batches of 256).
"""

from __future__ import annotations

from ml_collections import config_dict

from snnax_nas.configs import sections


def get_config(preset: str | None = None) -> config_dict.ConfigDict:
  """The op-significance config of ``preset`` (``small`` when None)."""
  c = config_dict.ConfigDict()
  c.dataset = "cifar10"  # a static-image dataset with a test split
  c.data_dir = config_dict.placeholder(str)
  c.seed = 0  # the search: sampling, weights, score batches
  c.network = sections.network()  # network.ops: the full op set
  c.scoring = sections.scoring()
  c.num_candidates = 100  # genotypes sampled and scored per space
  c.training = config_dict.ConfigDict(dict(
      epochs=5, seeds=3, batch_size=64, lr=0.1, loss="ce",
      max_train_examples=config_dict.placeholder(int),
      max_test_examples=config_dict.placeholder(int)))
  return sections.apply_preset(c, preset)
