r"""The evaluate job: a trained run's checkpoint at a weight precision
(post-training quantisation), as ``run(config, workdir)``; ``launch.evaluate``
is its command line.

  python -m launch.evaluate --workdir=runs/train
  python -m launch.evaluate --workdir=runs/train --config.weight_bits=8 --config.split=test

``workdir`` is a train workdir: its network, genotype, dataset and latest
checkpoint are read back (:func:`snnax_nas.evaluate.evaluate_run`), restored
on this process's devices whatever the device count it trained on. At
``config.weight_bits`` 16, 8 or 4 every conv and dense kernel is quantised
per output channel (symmetric codes, float32 scales; BN and biases float32).

The synaptic operations, MACs, additions and energy per inference (per
layer and total, and the ANN equivalent beside them) are reported too, at
``config.energy.accumulate_pj`` / ``config.energy.mac_pj`` picojoules per
operation (:mod:`snnax_nas.energy`; default the 45 nm 32-bit float figures).

Writes the numbers to ``WORKDIR/eval/{split}_w{bits}.json``
(:func:`result_path`, atomically; :func:`read_result` reads it back).
``config.raster=N`` also draws the spike raster of the split's first N
inputs (every LIF layer over the T timesteps, :mod:`snnax_nas.raster`) to
:func:`raster_path`, next to ``firing_rates.png``; ``config.nir=true``
exports the network at that precision as a NIR graph, :func:`nir_path`
(:mod:`snnax_nas.nir_graph`; needs ``pip install 'snnax_nas[nir]'``). Bad
values (bits not in 32/16/8/4, an unknown split, a workdir without a
checkpointed training run) raise one-line ValueErrors.
"""

from __future__ import annotations

import json
import os
from typing import Optional

from absl import logging

from snnax_nas import data as data_lib
from snnax_nas import energy
from snnax_nas import evaluate
from snnax_nas import files
from snnax_nas import nir_graph
from snnax_nas import quant
from snnax_nas import raster
from snnax_nas import train
from snnax_nas import workdir as workdir_lib
from snnax_nas.jobs import common


def result_path(workdir: str, split: str, weight_bits: int,
                max_examples: Optional[int] = None) -> str:
  """``WORKDIR/eval/{split}_w{bits}.json`` for a whole split, and
  ``{split}_w{bits}_first{N}.json`` for its first N examples, so a partial
  evaluation never takes the whole split's place."""
  part = "" if max_examples is None else f"_first{max_examples}"
  return os.path.join(workdir, "eval", f"{split}_w{weight_bits}{part}.json")


def read_result(workdir: str, split: str, weight_bits: int,
                max_examples: Optional[int] = None) -> dict:
  """The JSON :func:`run` wrote for ``(split, weight_bits, max_examples)``
  (the fields of :class:`snnax_nas.evaluate.Evaluation`)."""
  with open(result_path(workdir, split, weight_bits, max_examples)) as f:
    return json.load(f)


def report(ev: evaluate.Evaluation, workdir: str) -> str:
  """The lines ``launch.evaluate`` prints for one evaluation."""
  lines = [f"{workdir}: epoch {ev.epoch}, {ev.split} split, {ev.num_examples} examples, "
           f"{ev.weight_bits}-bit weights",
           f"  accuracy {100 * ev.accuracy:.2f}%  loss {ev.loss:.4f}  SAR {ev.sar:.4f}",
           f"  weights {ev.weight_bytes:,} bytes ({ev.weight_bytes / 1e6:.3f} MB), "
           f"{ev.params:,} params",
           "  firing rates (spikes per neuron and timestep):"]
  width = max((len(k) for k in ev.firing_rates), default=0)
  lines += [f"    {name:<{width}}  {rate:.4f}" for name, rate in ev.firing_rates.items()]
  if ev.operations:
    lines += energy.summary_lines(ev.operations)
  if ev.silent_layers:
    lines.append("warning: " + train.silent_in_evaluation_message(ev.silent_layers))
  if ev.checkpoint_dir and (os.path.abspath(ev.checkpoint_dir)
                            != os.path.abspath(os.path.join(workdir, "checkpoints"))):
    lines.append(f"checkpoint: {ev.checkpoint_dir} (outside the workdir, as the run was trained)")
  lines.append(f"wrote {result_path(workdir, ev.split, ev.weight_bits, ev.max_examples)}")
  for extra in (raster_path(workdir, ev.split, ev.weight_bits), nir_path(workdir, ev.weight_bits)):
    if os.path.exists(extra):
      lines.append(f"wrote {extra}")
  return "\n".join(lines)


def run(config, workdir: str) -> evaluate.Evaluation:
  """Evaluates the train run in ``workdir`` as ``config`` says and writes
  :func:`result_path`.

  Args:
    config: a :mod:`snnax_nas.configs.evaluate` config (``weight_bits``,
      ``split``, ``batch_size``, ``max_examples``).
    workdir: a train run's workdir.

  Returns:
    The :class:`snnax_nas.evaluate.Evaluation`.

  Raises:
    ValueError: a bad config value, no checkpointed training run, a dataset
      that cannot be loaded, or an unwritable workdir.
  """
  if not workdir:
    raise ValueError("--workdir is required: the launch.train workdir to evaluate")
  quant.check_weight_bits(config.weight_bits, "--config.weight_bits")
  if config.split not in evaluate.SPLITS:
    raise ValueError(f"unknown --config.split={config.split!r}; choose from "
                     f"{', '.join(evaluate.SPLITS)}")
  common.check_positive(config, "batch_size")
  if config.max_examples is not None:
    common.check_positive(config, "max_examples")
  energies = energy.energies_from_config(config.energy)
  if not 0 <= config.raster <= raster.MAX_RUN_INPUTS:
    raise ValueError(f"--config.raster={config.raster} must be >= 0 and <= "
                     f"{raster.MAX_RUN_INPUTS} (inputs to draw, one column each; 0: no raster)")
  if config.nir:
    try:
      nir_graph.require_nir()
    except ModuleNotFoundError as e:
      raise ValueError(str(e)) from None
  dataset = workdir_lib.load_run(workdir).config.get("dataset", "")
  if config.split != "train" and not data_lib.has_separate_splits(dataset):
    common.warn(f"{dataset} is one file for every split: this {config.split!r} evaluation "
                "measures the network on its TRAINING data")
  logging.info("evaluating %s on %s of the %s split of %s at %d-bit weights (%s)", workdir,
               "all examples" if config.max_examples is None
               else f"the first {config.max_examples} examples", config.split, dataset,
               config.weight_bits, "--config.max_examples=N evaluates the first N"
               if config.max_examples is None else "the whole split without max_examples")
  ev = evaluate.evaluate_run(workdir, weight_bits=config.weight_bits, split=config.split,
                             batch_size=config.batch_size, max_examples=config.max_examples,
                             energies=energies)
  path = result_path(workdir, config.split, config.weight_bits, config.max_examples)
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    files.write_json(path, ev.to_json())
  except OSError as e:
    raise ValueError(f"cannot write {path}: {e.strerror}") from None
  if config.raster:
    raster.plot_run_raster(workdir, raster_path(workdir, config.split, config.weight_bits),
                           num_inputs=config.raster, weight_bits=config.weight_bits,
                           split=config.split)
  if config.nir:
    nir_graph.export_run(workdir, nir_path(workdir, config.weight_bits),
                         weight_bits=config.weight_bits, dt=config.nir_dt)
  return ev


def raster_path(workdir: str, split: str, weight_bits: int) -> str:
  """``WORKDIR/spike_raster_{split}_w{bits}.png`` (``config.raster``), next to
  the training's ``firing_rates.png``."""
  return os.path.join(workdir, f"spike_raster_{split}_w{weight_bits}.png")


def nir_path(workdir: str, weight_bits: int) -> str:
  """``WORKDIR/eval/network_w{bits}.nir`` (``config.nir``)."""
  return os.path.join(workdir, "eval", f"network_w{weight_bits}.nir")
