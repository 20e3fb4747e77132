"""Configuration as data: the network (:class:`NetworkConfig`) and every job's config.

* :mod:`snnax_nas.configs.network`: :class:`NetworkConfig`, its presets, the
  one place where dataset facts become network fields, and the conversions
  to and from a job config's ``network`` section and JSON.
* ``snnax_nas/configs/<job>.py`` (the jobs ``search``, ``score``, ``train``,
  ``evaluate``; the studies ``analyze_ops``, ``compare``, ``groundtruth``,
  ``correlate``): ``get_config(preset)``, the ``ml_collections`` config a
  launcher reads and ``snnax_nas.jobs.<job>.run`` (a study's:
  ``snnax_nas.studies.<study>.run``) takes; :mod:`snnax_nas.configs.sections` holds the sections and the two
  presets (``small``, the default, and ``reference``) they share.

  from snnax_nas import configs, jobs
  config = configs.get_config("search", "small")
  config.network.width = 32
  jobs.search.run(config, "runs/search")
"""

from __future__ import annotations

import importlib
from typing import Optional

from ml_collections import config_dict

from snnax_nas.configs.network import DATASET_FIELDS
from snnax_nas.configs.network import LINEAR_FAN_IN_GAIN
from snnax_nas.configs.network import LINEAR_INITS
from snnax_nas.configs.network import PRESETS
from snnax_nas.configs.network import NetworkConfig
from snnax_nas.configs.network import network_config
from snnax_nas.configs.network import network_config_for_dataset
from snnax_nas.configs.network import network_from_job_config
from snnax_nas.configs.network import network_from_json
from snnax_nas.configs.network import network_to_json
from snnax_nas.configs.network import stem_stride_for
from snnax_nas.configs.network import vote_group_for
from snnax_nas.configs.sections import JOBS
from snnax_nas.configs.sections import TOOLS
from snnax_nas.configs.sections import path
from snnax_nas.configs.sections import set_fields


def get_config(job: str, preset: Optional[str] = None) -> config_dict.ConfigDict:
  """The config of ``job`` (``search``, ``score``, ``train``, ``evaluate``,
  ``analyze_ops``, ``compare``, ...) at ``preset`` (``small`` when None, or
  ``reference``).

  Raises:
    ValueError: an unknown job or preset.
  """
  path(job)  # names the jobs on a bad one
  return importlib.import_module(f"snnax_nas.configs.{job}").get_config(preset)


__all__ = ["DATASET_FIELDS", "JOBS", "LINEAR_FAN_IN_GAIN", "LINEAR_INITS", "NetworkConfig",
           "PRESETS", "TOOLS", "get_config", "network_config", "network_config_for_dataset",
           "network_from_job_config", "network_from_json", "network_to_json", "path",
           "set_fields", "stem_stride_for", "vote_group_for"]
