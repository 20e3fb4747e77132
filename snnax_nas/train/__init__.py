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

from snnax_nas.train.checkpoint import Checkpointer
from snnax_nas.train.checkpoint import CorruptCheckpointError
from snnax_nas.train.checkpoint import checkpoint_directory
from snnax_nas.train.checkpoint import restore_checkpoint
from snnax_nas.train.loop import CompileCache
from snnax_nas.train.loop import TrainingDivergedError
from snnax_nas.train.loop import TrainResult
from snnax_nas.train.loop import default_test_split
from snnax_nas.train.loop import eval_batches
from snnax_nas.train.loop import evaluate
from snnax_nas.train.loop import format_duration
from snnax_nas.train.loop import time_left
from snnax_nas.train.loop import train_and_evaluate
from snnax_nas.train.metrics import MetricsWriter
from snnax_nas.train.metrics import firing_rates
from snnax_nas.train.metrics import flat_row
from snnax_nas.train.metrics import json_safe
from snnax_nas.train.metrics import model_summary
from snnax_nas.train.metrics import peak_rss_mb
from snnax_nas.train.metrics import plot_curves
from snnax_nas.train.metrics import plot_firing_rates
from snnax_nas.train.metrics import silent_in_evaluation_message
from snnax_nas.train.metrics import silent_layers
from snnax_nas.train.metrics import silent_layers_message
from snnax_nas.train.metrics import sum_metrics
from snnax_nas.train.metrics import write_metrics_csv
from snnax_nas.train.steps import DATA_AXIS
from snnax_nas.train.steps import LOSSES
from snnax_nas.train.steps import ForwardFn
from snnax_nas.train.steps import Steps
from snnax_nas.train.steps import TrainState
from snnax_nas.train.steps import compiler_options
from snnax_nas.train.steps import create_train_state
from snnax_nas.train.steps import init_variables
from snnax_nas.train.steps import loss_value
from snnax_nas.train.steps import lr_schedule
from snnax_nas.train.steps import make_mesh
from snnax_nas.train.steps import make_optimizer
from snnax_nas.train.steps import make_preprocess
from snnax_nas.train.steps import make_steps
from snnax_nas.train.steps import module_forward_fn
from snnax_nas.train.steps import network_model
from snnax_nas.train.steps import put_batch
from snnax_nas.train.steps import spike_probe
from snnax_nas.train.steps import standalone_forward_fn
from snnax_nas.train.steps import training_devices

__all__ = [
    "TrainingDivergedError",
    "Checkpointer", "CorruptCheckpointError", "checkpoint_directory", "restore_checkpoint",
    "CompileCache", "TrainResult", "default_test_split", "eval_batches", "evaluate", "format_duration",
    "time_left", "train_and_evaluate",
    "MetricsWriter", "firing_rates", "flat_row", "json_safe", "model_summary", "peak_rss_mb",
    "plot_curves", "plot_firing_rates", "silent_in_evaluation_message", "silent_layers",
    "silent_layers_message", "sum_metrics",
    "write_metrics_csv",
    "DATA_AXIS", "LOSSES", "ForwardFn", "Steps", "TrainState", "compiler_options",
    "create_train_state",
    "init_variables", "loss_value", "lr_schedule", "make_mesh", "make_optimizer",
    "make_preprocess", "make_steps",
    "module_forward_fn", "network_model", "put_batch", "spike_probe", "standalone_forward_fn",
    "training_devices",
]
