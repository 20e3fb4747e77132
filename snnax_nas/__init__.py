"""snnax_nas: fast, memory-aware, training-free NAS for spiking neural networks.

The curated public API. Submodules hold one concept each (``ops``,
``genotype``, ``configs``, ``layers``, ``network``, ``models``, ``score``,
``memory``, ``flops``, ``quant``, ``search``, ``train``, ``evaluate``,
``export``, ``data``, ``workdir``, ...); the names below are the ones a user
script needs. ``configs`` holds every job's config and ``jobs`` every job as
``run(config, workdir)``, the functions the launchers call. They are imported on first use, so ``import snnax_nas`` is cheap
and does not pull in the training stack (orbax, optax) until asked.

Example::

  import jax, snnax_nas as sn
  cfg = sn.network_config(None, width=16, timesteps=5)
  images = sn.data.score_batches("cifar10_sample", num_batches=2, batch_size=64, seed=0)
  result = sn.score_candidates(["0303/0030/2002/0200"], images, jax.random.key(0), cfg)
  model = sn.SpikingNetwork(cfg, "0303/0030/2002/0200")
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS = {
    # configuration
    "NetworkConfig": "configs",
    "network_config": "configs",
    "network_config_for_dataset": "configs",
    "op_set": "ops",
    # genotypes
    "parse_genotype": "genotype",
    "format_genotype": "genotype",
    "canonical": "genotype",
    "cell_genotypes": "genotype",
    "sample_genotypes": "genotype_space",
    # networks
    "SpikingNetwork": "models",
    "variables_from_standalone": "network",
    "standalone_forward": "network",
    "supernet_forward": "network",
    # scoring
    "score_candidates": "score",
    "ScoreResult": "score",
    "KERNELS": "kernels",
    # analytic models
    "param_count": "memory",
    "memory_report": "memory",
    "within_budget": "memory",
    "quantized_weight_bytes": "memory",
    "candidate_flops": "flops",
    # quantisation
    "quantize_params": "quant",
    "dequantize": "quant",
    "fake_quantize": "quant",
    "quantized_bytes": "quant",
    # searches
    "random_search": "search",
    "spikenas_search": "search",
    "lightsnn_prune": "search",
    "SearchResult": "search",
    "ScorerOptions": "search",
    # training, evaluation, export
    "train_and_evaluate": "train",
    "create_train_state": "train",
    "make_optimizer": "train",
    "restore_checkpoint": "train",
    "firing_rates": "train",
    "evaluate_run": "evaluate",
    "evaluate_model": "evaluate",
    "Evaluation": "evaluate",
    "export_run": "export",
    "export_network": "export",
    "load_export": "export",
    "to_nir": "nir_graph",
    "from_nir": "nir_graph",
    "record_spikes": "raster",
    "plot_spike_raster": "raster",
    # runs
    "load_run": "workdir",
    # correlation with trained accuracies
    "correlation_report": "correlation",
    # typed callbacks
    "ScoreProgress": "callbacks",
    "SearchProgress": "callbacks",
    "SpikeProbe": "callbacks",
    "ForwardFn": "callbacks",
}

_SUBMODULES = (
    "allocator", "callbacks", "configs", "correlation", "data", "distributed", "evaluate",
    "export", "files", "flops", "genotype", "genotype_space", "jobs", "kernels", "layers", "memory", "models",
    "network", "neurons", "nir_graph", "ops", "quant", "raster", "score", "score_store",
    "search", "studies", "train", "workdir",
)

__all__ = sorted(_EXPORTS) + list(_SUBMODULES)


def __getattr__(name: str) -> Any:
  # PEP 562: resolve public names and submodules lazily, then cache them.
  if name in _EXPORTS:
    value = getattr(importlib.import_module(f"snnax_nas.{_EXPORTS[name]}"), name)
  elif name in _SUBMODULES:
    value = importlib.import_module(f"snnax_nas.{name}")
  else:
    raise AttributeError(f"module 'snnax_nas' has no attribute {name!r}")
  globals()[name] = value
  return value


def __dir__() -> list[str]:
  return sorted(set(globals()) | set(__all__))
