"""Config of the correlate study (``launch.correlate``, :mod:`snnax_nas.studies.correlate`):
rank correlation of a scores CSV with a ``genotype,accuracy`` table.

``launch.correlate`` sets these fields from its plain flags (``--scores``,
``--truth``, ``--ops``, ``--top_k``, ``--resamples``, ``--bootstrap_seed``).
"""

from __future__ import annotations

from ml_collections import config_dict

from snnax_nas import correlation


def get_config(preset: str | None = None) -> config_dict.ConfigDict:
  """The correlation config (one preset, ``small``).

  Raises:
    ValueError: a preset other than ``small``.
  """
  if preset not in (None, "small"):
    raise ValueError(f"unknown preset {preset!r}; presets: small")
  c = config_dict.ConfigDict()
  c.scores = config_dict.placeholder(str)  # CSV with genotype, score[, params]
  c.truth = config_dict.placeholder(str)   # CSV with genotype, accuracy
  c.ops = "snasnet"                        # the op set the genotype strings use
  c.top_k = "10,50"                        # k values (>= 1) of the top-k overlap
  c.resamples = correlation.BOOTSTRAP_RESAMPLES  # for the 95 % intervals (0: none)
  c.bootstrap_seed = correlation.BOOTSTRAP_SEED
  return c
