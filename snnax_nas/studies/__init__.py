"""The paper's studies: each a library function ``run(config, workdir)`` with
``report(result, workdir)``, as the jobs (:mod:`snnax_nas.jobs`) are, built on
the jobs and the core.

============  ========================================  ==================================
study         config                                    command line
============  ========================================  ==================================
compare       :mod:`snnax_nas.configs.compare`          ``python -m launch.compare``
groundtruth   :mod:`snnax_nas.configs.groundtruth`      ``python -m launch.groundtruth``
analyze_ops   :mod:`snnax_nas.configs.analyze_ops`      ``python -m launch.analyze_ops``
correlate     :mod:`snnax_nas.configs.correlate`        ``python -m launch.correlate``
============  ========================================  ==================================

* ``compare``: the accuracy-vs-memory table of SpikeNAS, SNASNet random
  search and LightSNN (searched, trained and evaluated by the jobs).
* ``groundtruth``: the searches judged on a table of trained architectures,
  without training.
* ``analyze_ops``: SpikeNAS step 1, how much each operation matters to
  accuracy.
* ``correlate``: rank correlation of a zero-cost score with trained accuracy.

Only :mod:`launch` and the studies themselves import this package; the core
and the jobs never do. The modules are imported on first use
(``studies.get`` or ``from snnax_nas.studies import compare``).
"""

from __future__ import annotations

from snnax_nas import _registry

STUDIES = ("compare", "groundtruth", "analyze_ops", "correlate")

# get(name): the module of a study; studies.NAME works without an import.
get, __getattr__ = _registry.module_registry(__name__, STUDIES, "study", "studies")
