"""Training a searched architecture: BPTT through the LIF dynamics, SGD with a
cosine schedule, data parallel over all devices, resumable checkpoints.

  steps.py       state, optimiser, loss, spike probes, the jitted steps
                 (the network enters through one ``forward`` function)
  loop.py        :func:`train_and_evaluate`, evaluation, progress and ETA
  checkpoint.py  orbax checkpoints; :func:`restore_checkpoint` on any devices
  metrics.py     firing rates, silent layers, metrics files and plots

Every public name is importable from ``snnax_nas.train`` itself.
"""

from __future__ import annotations

from snnax_nas.train.checkpoint import (
                                  Checkpointer,
                                  LegacyCheckpointError,
                                  checkpoint_directory,
                                  restore_checkpoint,
)
from snnax_nas.train.loop import (
                                  TrainResult,
                                  default_test_split,
                                  eval_batches,
                                  evaluate,
                                  format_duration,
                                  time_left,
                                  train_and_evaluate,
)
from snnax_nas.train.metrics import (
                                  MetricsWriter,
                                  firing_rates,
                                  flat_row,
                                  json_safe,
                                  model_summary,
                                  peak_rss_mb,
                                  plot_curves,
                                  plot_firing_rates,
                                  silent_layers,
                                  silent_layers_message,
                                  sum_metrics,
                                  write_metrics_csv,
)
from snnax_nas.train.steps import (
                                  DATA_AXIS,
                                  LOSSES,
                                  ForwardFn,
                                  Steps,
                                  TrainState,
                                  create_train_state,
                                  init_variables,
                                  loss_value,
                                  lr_schedule,
                                  make_mesh,
                                  make_optimizer,
                                  make_preprocess,
                                  make_steps,
                                  module_forward_fn,
                                  network_model,
                                  put_batch,
                                  spike_probe,
                                  standalone_forward_fn,
)

__all__ = [
    "Checkpointer", "LegacyCheckpointError", "checkpoint_directory", "restore_checkpoint",
    "TrainResult", "default_test_split", "eval_batches", "evaluate", "format_duration",
    "time_left", "train_and_evaluate",
    "MetricsWriter", "firing_rates", "flat_row", "json_safe", "model_summary", "peak_rss_mb",
    "plot_curves", "plot_firing_rates", "silent_layers", "silent_layers_message", "sum_metrics",
    "write_metrics_csv",
    "DATA_AXIS", "LOSSES", "ForwardFn", "Steps", "TrainState", "create_train_state",
    "init_variables", "loss_value", "lr_schedule", "make_mesh", "make_optimizer",
    "make_preprocess", "make_steps",
    "module_forward_fn", "network_model", "put_batch", "spike_probe", "standalone_forward_fn",
]
