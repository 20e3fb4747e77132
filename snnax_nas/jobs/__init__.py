"""The jobs: each a library function ``run(config, workdir)`` that validates its
config, claims its workdir (:mod:`snnax_nas.workdir`), runs, and writes its
outputs next to the code that reads them back; ``report(result, workdir)``
gives the lines its launcher prints.

=========  ================================  ===============================
job        config                            command line
=========  ================================  ===============================
search     :mod:`snnax_nas.configs.search`   ``python -m launch.search``
score      :mod:`snnax_nas.configs.score`    ``python -m launch.score``
train      :mod:`snnax_nas.configs.train`    ``python -m launch.train``
evaluate   :mod:`snnax_nas.configs.evaluate` ``python -m launch.evaluate``
=========  ================================  ===============================

The studies of the paper that run these jobs (compare, groundtruth,
analyze_ops, correlate) are :mod:`snnax_nas.studies`, above this package:
no job imports a study.

From Python::

  from snnax_nas import configs, jobs
  config = configs.get_config("train")
  config.from_search, config.training.epochs = "runs/search", 30
  summary = jobs.get("train").run(config, "runs/train")

A bad value raises a one-line ``ValueError`` naming the field; the launchers
print it and exit with status 2. The modules are imported on first use
(``jobs.get`` or ``from snnax_nas.jobs import train``): the training stack
is not loaded for a search.
"""

from __future__ import annotations

from snnax_nas import _registry

JOBS = ("search", "score", "train", "evaluate")

# get(name): the module of a job; jobs.NAME works without an import.
get, __getattr__ = _registry.module_registry(__name__, JOBS, "job", "jobs")
