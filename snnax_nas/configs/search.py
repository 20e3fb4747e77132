"""Config of ``launch.search``: the training-free search.

Presets: ``small`` (default; the bundled 1,024-image CIFAR-10 sample, width
16, a few minutes on CPU) and ``reference`` (CIFAR-10, the reference network
width 256 with ``second_pool`` 4, scoring batches of 256).

Fields left None take the method's default: ``network.ops`` (spikenas:
``spikenas``, random: ``snasnet``, lightsnn: ``lightsnn``),
``network.backward`` (True for lightsnn, as the paper), ``num_candidates``
(spikenas: 64 distinct cells per step, random: 5000 draws; unused by
lightsnn) and the budget: spikenas, the memory-aware search, takes half the
space's weight range (``budget.fraction`` 0.5) when no budget is given
(``--config.budget.mb=inf``: no limit); random and lightsnn take none.
"""

from __future__ import annotations

from ml_collections import config_dict

from snnax_nas.configs import sections

PRESETS = {"reference": {"dataset": "cifar10"}}  # added to sections.REFERENCE
DEFAULT_OPS = {"spikenas": "spikenas", "random": "snasnet", "lightsnn": "lightsnn"}
DEFAULT_NUM_CANDIDATES = {"spikenas": 64, "random": 5000}
DEFAULT_BUDGET_FRACTION = {"spikenas": 0.5}


def get_config(preset: str | None = None) -> config_dict.ConfigDict:
  """The search config of ``preset`` (``small`` when None)."""
  c = config_dict.ConfigDict()
  c.method = "spikenas"  # spikenas, random or lightsnn
  c.dataset = "cifar10_sample"  # cifar10_sample, cifar10, cifar100, tinyimagenet, npz:PATH, folder:PATH
  c.data_dir = config_dict.placeholder(str)  # where a tfds dataset or folder lives
  c.seed = 0  # seed of the candidates, weights and batches
  c.network = sections.network(ops=config_dict.placeholder(str),
                              backward=config_dict.placeholder(bool))
  c.scoring = sections.scoring()
  c.num_candidates = config_dict.placeholder(int)
  # Budgets: parameters of the whole network, or weight memory in MB (10^6
  # bytes) at weight_bits, or a fraction in [0, 1] of the space's weight range
  # at weight_bits (0: its smallest network, 1: its largest); lightsnn takes none.
  c.budget = config_dict.ConfigDict(dict(
      params=config_dict.placeholder(int), mb=config_dict.placeholder(float),
      fraction=config_dict.placeholder(float), weight_bits=32))
  # random only: a file of genotype strings to score instead of sampling.
  c.genotypes = config_dict.placeholder(str)
  # pJ per operation of the chosen network's energy at initialisation (summary.json)
  c.energy = sections.energy()
  return sections.apply_preset(c, preset, PRESETS)


def resolve(config: config_dict.ConfigDict) -> None:
  """Fills the fields left None with the method's defaults (in place), so
  the config written to the workdir is the one that ran."""
  if config.network.ops is None:
    config.network.ops = DEFAULT_OPS.get(config.method, "snasnet")
  if config.network.backward is None:
    config.network.backward = config.method == "lightsnn"
  if config.num_candidates is None and config.method in DEFAULT_NUM_CANDIDATES:
    config.num_candidates = DEFAULT_NUM_CANDIDATES[config.method]
  budget = config.budget
  if (budget.params is None and budget.mb is None and budget.fraction is None
      and config.method in DEFAULT_BUDGET_FRACTION):
    budget.fraction = DEFAULT_BUDGET_FRACTION[config.method]
