r"""Evaluates a trained run's checkpoint at a weight precision (post-training quantisation).

  python -m launch.evaluate --workdir=runs/train
  python -m launch.evaluate --workdir=runs/train --config.weight_bits=8 --config.split=test

``--workdir`` is a ``launch.train`` workdir: its network, genotype, dataset
and latest checkpoint are read back (:func:`snnax_nas.evaluate.evaluate_run`),
restored on this process's devices whatever the device count it trained on.
At ``config.weight_bits`` 16, 8 or 4 every conv and dense kernel is quantised
per output channel (symmetric codes, float32 scales; BN and biases float32).

Prints the accuracy, the SAR, the firing rate of each LIF layer and the
weight memory at that precision, and writes the numbers to
``WORKDIR/eval/{split}_w{bits}.json`` (atomically). ``--config.raster=N``
also draws the spike raster of the split's first N inputs (every LIF layer
over the T timesteps, :mod:`snnax_nas.raster`) to
``WORKDIR/spike_raster_{split}_w{bits}.png``, next to ``firing_rates.png``;
``--config.nir=true`` exports the network at that precision as a NIR graph,
``WORKDIR/eval/network_w{bits}.nir`` (:mod:`snnax_nas.nir_graph`; needs
``pip install 'snnax_nas[nir]'``). Bad values (bits not in
32/16/8/4, an unknown split, a workdir without a checkpointed training run)
exit with status 2 and one line.
"""

from __future__ import annotations

import os

from absl import app
from absl import flags

from launch import common
from snnax_nas import evaluate
from snnax_nas import io
from snnax_nas import nir_graph
from snnax_nas import raster

FLAGS = flags.FLAGS
common.define_config_flags("evaluate")


def result_path(workdir: str, split: str, weight_bits: int) -> str:
  """``WORKDIR/eval/{split}_w{bits}.json``."""
  return os.path.join(workdir, "eval", f"{split}_w{weight_bits}.json")


def report(ev: evaluate.Evaluation, workdir: str) -> str:
  """The lines printed for one evaluation."""
  lines = [f"{workdir}: epoch {ev.epoch}, {ev.split} split, {ev.num_examples} examples, "
           f"{ev.weight_bits}-bit weights",
           f"  accuracy {100 * ev.accuracy:.2f}%  loss {ev.loss:.4f}  SAR {ev.sar:.4f}",
           f"  weights {ev.weight_bytes:,} bytes ({ev.weight_bytes / 1e6:.3f} MB), "
           f"{ev.params:,} params",
           "  firing rates (spikes per neuron and timestep):"]
  width = max((len(k) for k in ev.firing_rates), default=0)
  lines += [f"    {name:<{width}}  {rate:.4f}" for name, rate in ev.firing_rates.items()]
  return "\n".join(lines)


@common.exits_cleanly_on_interrupt
def main(argv):
  if len(argv) > 1:
    common.fail(f"unexpected arguments {' '.join(argv[1:])!r}; every input is a flag "
                "(--workdir=RUN --config.weight_bits=8)")
  config = FLAGS.config
  workdir = FLAGS.workdir
  if not workdir:
    common.fail("--workdir is required: the launch.train workdir to evaluate")
  try:
    evaluate.check_weight_bits(config.weight_bits)
  except ValueError as e:
    common.fail(f"--config.{e}")
  if config.split not in evaluate.SPLITS:
    common.fail(f"unknown --config.split={config.split!r}; choose from "
                f"{', '.join(evaluate.SPLITS)}")
  common.check_positive(config, "batch_size")
  if config.max_examples is not None:
    common.check_positive(config, "max_examples")
  if config.raster < 0:
    common.fail(f"--config.raster={config.raster} must be >= 0 (inputs to draw)")
  if config.nir:
    try:
      nir_graph.require_nir()
    except ModuleNotFoundError as e:
      common.fail(str(e))
  common.use_cpu_cores()
  try:
    ev = evaluate.evaluate_run(workdir, weight_bits=config.weight_bits, split=config.split,
                               batch_size=config.batch_size, max_examples=config.max_examples)
  except (ValueError, FileNotFoundError) as e:
    common.fail(str(e))
  path = result_path(workdir, config.split, config.weight_bits)
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    io.write_json(path, ev.to_json())
  except OSError as e:
    common.fail(f"cannot write {path}: {e.strerror}")
  print(report(ev, workdir))
  print(f"wrote {path}")
  try:
    if config.raster:
      print("wrote " + raster.plot_run_raster(
          workdir, os.path.join(workdir, f"spike_raster_{config.split}_w{config.weight_bits}.png"),
          num_inputs=config.raster, weight_bits=config.weight_bits, split=config.split))
    if config.nir:
      print("wrote " + nir_graph.export_run(
          workdir, os.path.join(workdir, "eval", f"network_w{config.weight_bits}.nir"),
          weight_bits=config.weight_bits, dt=config.nir_dt))
  except ValueError as e:
    common.fail(str(e))


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags)
