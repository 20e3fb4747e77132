"""Config of ``launch.groundtruth``: the searches judged on a table of trained
architectures, without training (:mod:`snnax_nas.studies.groundtruth`).

``table`` is a CSV ``genotype,accuracy[,params]`` (e.g. the development
tables ``cells_cifar100.csv`` / ``cells_tinyimagenet.csv``); ``trained`` the
network it was trained at (a :mod:`snnax_nas.configs` preset and overrides:
memory and budgets are counted there; a ``params`` column that disagrees
with it is refused, naming the preset that matches); ``network`` the scoring network
(narrower than the trained one, for speed: a training-free score needs only
the cell's structure and inputs of the same statistics).

Presets (both: a table trained at the ``cifar100`` network, 20 seeds, the
bundled CIFAR-10 sample; ``--config.trained.preset=tinyimagenet`` for a table
trained at the TinyImageNet network, whose cells are still scored on 32x32
images):

* ``small`` (default): scored at width 16, 2 batches of 64, the setting of
  the earlier correlation runs on the development tables;
* ``reference``: the reference scorer, width 256, ``second_pool`` 4, 2
  batches of 256 (an accelerator's job).

The 20-seed CPU runs of ``benchmarks/RESULTS.md`` score at width 8 on one
batch of 32 (``--config.network.width=8 --config.scoring.batch_size=32
--config.scoring.repeats=1``), about 5x cheaper per cell; the score ranks
the cells less well there (Kendall tau about 0.5 instead of 0.6).
"""

from __future__ import annotations

from ml_collections import config_dict

from snnax_nas.configs import sections

TABLE_OPS = "skip,conv3x3@0.5,conv3x3,conv3x3@1.5"  # the development tables' op set
PRESETS = {"reference": {"network.ops": TABLE_OPS}}  # added to sections.REFERENCE


def get_config(preset: str | None = None) -> config_dict.ConfigDict:
  """The ground-truth config of ``preset`` (``small`` when None)."""
  c = config_dict.ConfigDict()
  c.table = config_dict.placeholder(str)  # CSV genotype,accuracy[,params]; required
  # The network the table was trained at: a snnax_nas.configs preset
  # (cifar10, cifar100, tinyimagenet) and fields that override it.
  c.trained = config_dict.ConfigDict(dict(
      preset="cifar100", width=config_dict.placeholder(int),
      hidden=config_dict.placeholder(int), second_pool=config_dict.placeholder(int)))
  c.dataset = "cifar10_sample"  # images the cells are scored on (train split)
  c.data_dir = config_dict.placeholder(str)
  c.seed = 0  # seeds seed .. seed + num_seeds - 1: weights, batches, random draws
  c.num_seeds = 20
  c.network = sections.network(ops=TABLE_OPS)  # the scoring network
  c.scoring = sections.scoring()
  c.methods = "spikenas,random,random_cell,largest"
  c.spikenas_candidates = 64  # SpikeNAS: distinct cells in the pool (whole table if fewer)
  c.random_draws = 64  # SNASNet: draws with replacement, all scored
  # Budgets as fractions of the table's weight range at the trained network
  # (comma list, 0: smallest cell, 1: largest) and/or MB (comma list).
  c.budget = config_dict.ConfigDict(dict(
      fraction="0.25,0.5,0.75", mb=config_dict.placeholder(str), weight_bits=32))
  return sections.apply_preset(c, preset, PRESETS)
