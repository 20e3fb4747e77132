"""Config of ``launch.compare``: the accuracy-vs-memory table of the three searches.

For each memory budget (``budgets_mb``, MB = 10^6 bytes of weights at
``budget_bits``) the study runs the SpikeNAS memory-aware search, picks the
SNASNet random search's best-scoring draw within the budget (one random
search of ``random_draws`` draws, timed once, serves every budget) and runs
LightSNN pruning once (it takes no budget); then trains each found network
and evaluates it at every ``eval_bits`` weight precision
(:mod:`snnax_nas.studies.compare`).

Presets: ``small`` (default; the small network of the other jobs, budgets at
0.25, 0.5 and 0.75 of the space's weight range: 0.335-0.892 MB at 32 bits) and
``reference`` (CIFAR-10 network of the paper: width 256, ``second_pool`` 4,
scoring batches of 256, 300 epochs, budgets 50 and 75 MB; the space spans
38.7-109.5 MB at 32 bits). ``num_seeds`` > 1 repeats the study per seed and
adds the mean and 95 % interval over seeds and the paired differences.
"""

from __future__ import annotations

from ml_collections import config_dict

from snnax_nas.configs import sections

PRESETS = {  # added to sections.SMALL and sections.REFERENCE
    "reference": {"budgets_mb": "50,75", "budget.fraction": None, "training.epochs": 300,
                  "training.per_epoch_schedule": True, "training.eval_every": 10},
}


def get_config(preset: str | None = None) -> config_dict.ConfigDict:
  """The compare config of ``preset`` (``small`` when None)."""
  c = config_dict.ConfigDict()
  # cifar10, cifar100, tinyimagenet, npz:PATH ('{split}' -> train/test) or
  # folder:PATH. The searches score images of its train split only.
  c.dataset = "cifar10"
  c.data_dir = config_dict.placeholder(str)
  c.seed = 0  # of every search, training and sampler
  # Seeds seed .. seed + num_seeds - 1, each a whole study in WORKDIR/seed<s>;
  # more than one adds the mean and 95 % interval over seeds and the
  # SpikeNAS - random difference paired by seed.
  c.num_seeds = 1
  c.methods = "spikenas,random,lightsnn"  # comma-separated, any subset
  # Budgets as fractions of the searched spaces' weight range at budget_bits
  # (comma list in (0, 1]), or in MB (comma list): give one of the two.
  c.budget = config_dict.ConfigDict(dict(fraction="0.25,0.5,0.75"))
  c.budgets_mb = config_dict.placeholder(str)  # e.g. "0.45,0.6"; unset budget.fraction
  c.budget_bits = 32  # weight precision the budgets are measured at
  c.eval_bits = "32,8,4"  # weight precisions every found network is evaluated at
  c.random_draws = 5000  # SNASNet: draws of the one random search
  c.spikenas_candidates = 64  # SpikeNAS: distinct cells scored per cell step
  c.eval_max_examples = config_dict.placeholder(int)  # evaluate the first N test examples
  # Every method searches its own op set (spikenas / snasnet / lightsnn,
  # backward cells for lightsnn): leave network.ops and network.backward None.
  c.network = sections.network(ops=config_dict.placeholder(str),
                              backward=config_dict.placeholder(bool))
  c.scoring = sections.scoring()
  c.training = config_dict.ConfigDict(dict(
      epochs=3, batch_size=64, lr=0.1, per_epoch_schedule=False,
      eval_every=1,  # epochs between the training run's own test evaluations
      max_train_examples=config_dict.placeholder(int),
      max_test_examples=config_dict.placeholder(int)))
  return sections.apply_preset(c, preset, PRESETS)
