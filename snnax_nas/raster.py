"""Spike trains of every LIF layer, and their raster plot.

:func:`record_spikes` runs :class:`snnax_nas.models.SpikingNetwork` in
evaluation mode and returns each LIF layer's spikes per timestep, named as
the firing rates are (``cell{l}/edge{e}/lif``, ``reduction/lif``,
``head/lif``, ``head/fc_lif``). It reads them from the submodules' outputs
(flax ``capture_intermediates``), so the Module is unchanged and the spikes
are exactly those of its forward pass. :func:`plot_spike_raster` draws them
for a few inputs: one row per layer, one column per input, time on the x
axis and (a sample of) the layer's neurons on the y axis, next to the
firing-rate plot of :func:`snnax_nas.train.metrics.plot_firing_rates`.
:func:`plot_run_raster` does both for a ``launch.train`` run.
"""

from __future__ import annotations

from typing import Mapping
from typing import Optional
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from snnax_nas import files
from snnax_nas import genotype as genotype_lib
from snnax_nas import models


def _is_spiking(module, method: str) -> bool:
  return method == "__call__" and isinstance(module, (models.ConvEdge, models.Reduction,
                                                      models.Head))


def record_spikes(model: models.SpikingNetwork, variables: Mapping,
                  images: jax.Array) -> dict[str, np.ndarray]:
  """Every LIF layer's spikes, per timestep, in evaluation mode.

  Args:
    model: the network.
    variables: its ``{"params", "batch_stats"}``.
    images: normalised float32 images [B, H, W, C] or frames [B, T, H, W, C].

  Returns:
    ``{layer: float32 {0, 1} [T, B, *neurons]}`` (neurons ``H, W, C`` for conv
    layers, ``hidden`` for the classifier's LIF), in forward order.
  """
  _, state = model.apply(dict(variables), jnp.asarray(images), train=False,
                         capture_intermediates=_is_spiking, mutable=["intermediates"])
  inter = state["intermediates"]
  out = {}
  for name, cell in sorted(((k, v) for k, v in inter.items() if k.startswith("cell_")),
                           key=lambda kv: int(kv[0].split("_")[1])):
    for edge, calls in cell.items():
      e = genotype_lib.EDGES.index(tuple(int(n) for n in edge.split("_")[1:]))
      # A cell with backward edges calls each edge once per timestep.
      spikes = jnp.concatenate([c[1] for c in calls["__call__"]])
      out[f"cell{name.split('_')[1]}/edge{e}/lif"] = spikes
  if "reduction" in inter:
    out["reduction/lif"] = inter["reduction"]["__call__"][0][1]
  out.update(inter["head"]["__call__"][0][1])
  cfg = model.config
  order = [f"cell{l}/" for l in range(cfg.num_cells)]

  def rank(name):  # reduction between the stages, head last
    if name.startswith("reduction"):
      return (cfg.cells_per_stage, -1, name)
    if name.startswith("head"):
      return (cfg.num_cells, ("head/lif", "head/fc_lif").index(name), name)
    l = next(i for i, p in enumerate(order) if name.startswith(p))
    return (l, int(name.split("/edge")[1].split("/")[0]), name)

  return {k: np.asarray(out[k], np.float32) for k in sorted(out, key=rank)}


def plot_spike_raster(spikes: Mapping[str, np.ndarray], path: str, *,
                      inputs: Optional[Sequence[int]] = None, max_neurons: int = 128,
                      title: str = "") -> str:
  """A spike raster per layer and input to a PNG (written atomically).

  Each panel is one layer on one input: x the timestep, y the drawn neurons
  (the label says how many of the layer's), black where a neuron spiked; the
  title gives the layer's firing rate on that input (% of neuron-timesteps).

  Args:
    spikes: :func:`record_spikes`' output, ``{layer: [T, B, ...]}``.
    path: the PNG path.
    inputs: which batch rows to draw (default: up to the first 4).
    max_neurons: neurons drawn per layer, evenly spaced over the layer
      (all of them when it has fewer).
    title: a figure title.

  Returns:
    ``path``.

  Raises:
    ValueError: no layers, or an input index outside the batch.
  """
  if not spikes:
    raise ValueError("no spike trains to plot")
  first = next(iter(spikes.values()))
  t, b = first.shape[:2]
  inputs = list(range(min(b, 4))) if inputs is None else list(inputs)
  bad = [i for i in inputs if not 0 <= i < b]
  if bad or not inputs:
    raise ValueError(f"inputs {inputs} must be batch rows in [0, {b})")
  plt = files.pyplot()
  names = list(spikes)
  fig, axes = plt.subplots(len(names), len(inputs), squeeze=False, sharex=True,
                           figsize=(2.2 * len(inputs) + 1.5, 0.9 * len(names) + 1.0))
  for r, name in enumerate(names):
    s = np.asarray(spikes[name]).reshape(t, b, -1)
    n = s.shape[-1]
    idx = np.unique(np.linspace(0, n - 1, min(n, max_neurons)).round().astype(int))
    for c, i in enumerate(inputs):
      ax = axes[r, c]
      # One cell per (neuron, timestep), black where it spiked: at a few
      # timesteps, blocks read better than tick marks.
      ax.imshow(s[:, i, idx].T, aspect="auto", cmap="Greys", vmin=0, vmax=1,
                interpolation="nearest", origin="lower", extent=(-0.5, t - 0.5, 0, len(idx)))
      ax.set_yticks([])
      if c == 0:
        ax.set_ylabel(f"{len(idx)}/{n}", fontsize=6)
      rate = 100 * float(s[:, i].mean())
      ax.set_title(f"{name}  {rate:.1f}%" if c == 0 else f"{rate:.1f}%", fontsize=6,
                   loc="left")
      if r == 0:
        ax.text(1.0, 1.25, f"input {i}", transform=ax.transAxes, ha="right", fontsize=7)
  for ax in axes[-1]:
    ax.set_xlabel("timestep", fontsize=7)
    ax.set_xticks(range(t))
  if title:
    fig.suptitle(title, fontsize=8)
  fig.tight_layout()
  files.save_figure(fig, path, dpi=110)
  plt.close(fig)
  return path


MAX_RUN_INPUTS = 16  # columns of a run's raster: 2.2 inches each, 36 inches at most


def plot_run_raster(workdir: str, path: str, *, num_inputs: int = 4, weight_bits: int = 32,
                    split: str = "test") -> str:
  """The spike raster of a ``launch.train`` run's latest checkpoint on the
  first ``num_inputs`` examples of ``split``, at ``weight_bits`` (PTQ).

  Raises:
    ValueError: no checkpointed run, bad bits / split, ``num_inputs`` outside
      1 .. :data:`MAX_RUN_INPUTS` or above the split's size.
  """
  if not 1 <= num_inputs <= MAX_RUN_INPUTS:
    raise ValueError(f"num_inputs={num_inputs}: a raster draws 1 to {MAX_RUN_INPUTS} inputs "
                     "(one column each)")
  from snnax_nas import data as data_lib
  from snnax_nas import evaluate  # the training stack
  trained = evaluate.load_trained_run(workdir)
  cfg = trained.config
  info, images, _ = evaluate.load_split(trained.run, cfg, split, num_inputs)
  variables = evaluate.quantized_variables(jax.device_get(trained.variables), weight_bits)
  model = models.SpikingNetwork(cfg, trained.genotype)
  if len(images) < num_inputs:
    raise ValueError(f"num_inputs={num_inputs}: the {split} split holds {len(images)} inputs")
  spikes = record_spikes(model, variables, data_lib.normalize(images, info))
  return plot_spike_raster(spikes, path, inputs=range(num_inputs), title=f"{workdir}: {trained.genotype}, "
                                               f"{weight_bits}-bit weights, {split} split")


__all__ = ["MAX_RUN_INPUTS", "plot_run_raster", "plot_spike_raster", "record_spikes"]
