"""Spike activity and the per-epoch outputs of a training run.

Spike activity. Every LIF call is probed (:func:`snnax_nas.train.steps.spike_probe`)
for its spike count and neuron count, so

  SAR        = sum_layers spikes / sum_layers (neurons x timesteps)  (per image)
  rate[lif]  = spikes[lif] / (neurons[lif] x timesteps)

both averaged over the images of an epoch (LightSNN's spiking activity rate).
A layer with rate 0 is *silent*: no spike reaches the layers after it, and
only the surrogate gradient through sub-threshold membranes can wake it.

Outputs (:class:`MetricsWriter`): ``metrics.jsonl``, ``metrics.csv``,
TensorBoard scalars, and the plots ``accuracy.png`` (accuracy and loss) and
``firing_rates.png`` (one line per LIF layer), all written atomically
(:mod:`snnax_nas.files`).
"""

from __future__ import annotations

import json
import math
import os
import resource
from typing import Any
from typing import Mapping
from typing import Optional
from typing import Sequence

from absl import logging
import jax
import numpy as np

from snnax_nas import files
from snnax_nas import memory
from snnax_nas import network as network_lib


def firing_rates(probes: Mapping) -> tuple[float, dict]:
  """SAR and per-LIF firing rates from summed probe values.

  Args:
    probes: either what the forward returns in ``aux["probes"]`` with the
      probe :func:`snnax_nas.train.steps.spike_probe`, i.e. ``{"values":
      {lif: {"spikes": s, "neurons": n}}, "counts": {lif: calls}}``
      (``per_layer=False`` gives one ``{"spikes", "neurons"}`` under
      ``"values"``, reported as the layer ``"all"``), or the ``values`` dict
      alone (the ``probes`` of a train/eval step's metrics). Scalars (numpy,
      jax or float), summed over timesteps and batches.

  Returns:
    ``(sar, {lif_name: rate})``: total spikes over total neuron-timestep-
    samples, and the same per LIF; rates in [0, 1] (NaN for an empty count).

  Raises:
    ValueError: ``probes`` is not one of these shapes (e.g. the probe was
      not a spike probe).
  """
  values = probes["values"] if "values" in probes and "counts" in probes else probes
  if "spikes" in values and "neurons" in values:  # summed over layers
    values = {"all": values}
  for name, v in values.items():
    if not (isinstance(v, Mapping) and "spikes" in v and "neurons" in v):
      raise ValueError(f"firing_rates: probe sums of {name!r} are {type(v).__name__}, not "
                       "{'spikes', 'neurons'}; run the forward with probe=spike_probe()")
  rates = {k: float(v["spikes"]) / float(v["neurons"]) if float(v["neurons"]) else float("nan")
           for k, v in values.items()}
  total_n = sum(float(v["neurons"]) for v in values.values())
  total_s = sum(float(v["spikes"]) for v in values.values())
  return (total_s / total_n if total_n else float("nan")), rates


def silent_layers(rates: Mapping[str, float]) -> list[str]:
  """Names of the LIF layers that never fired (rate exactly 0), in order.

  Args:
    rates: ``{lif_name: rate}`` from :func:`firing_rates`; NaN (no calls)
      is not silent.
  """
  return [k for k, r in rates.items() if r == 0.0]


def silent_layers_message(names: Sequence[str]) -> str:
  """The warning for silent layers at initialisation: which, and what to do."""
  return (f"{len(names)} LIF layer(s) never fire on the first training batch at "
          f"initialisation: {', '.join(names)}. Nothing they would pass on reaches the "
          "layers after them and they learn only through the surrogate gradient; if accuracy "
          "stays at chance, try --config.network.linear_init=fan_in (a classifier init "
          "scaled to its fan-in, so head/fc_lif fires from the first step), raise the width "
          "(network.width, or network.hidden for head/fc_lif), or lower the LIF threshold.")


def silent_in_evaluation_message(names: Sequence[str]) -> str:
  """The warning for layers that never fire in evaluation mode (running BN
  statistics, no dropout): the network's outputs then carry no information
  from the input and accuracy sits at chance, whatever the figure says."""
  return (f"{len(names)} LIF layer(s) never fire in evaluation mode: {', '.join(names)}. "
          "Nothing reaches the layers after them, so the predictions do not depend on the "
          "input and the accuracy is chance level. Usual causes: too little training for the "
          "running BN statistics to settle (train more epochs or examples), or a classifier "
          "that never learned to fire (--config.network.linear_init=fan_in, a larger width or "
          "network.hidden).")


def sum_metrics(trees: Sequence[Any]) -> Any:
  """Float64 host sum of a list of equally structured pytrees (step metrics)."""
  host = jax.device_get(list(trees))
  return jax.tree.map(lambda *xs: float(np.sum(np.asarray(xs, np.float64))), *host)


def json_safe(x):
  """``x`` with non-finite floats as None (JSON has no NaN), recursively."""
  if isinstance(x, float) and not math.isfinite(x):
    return None
  if isinstance(x, dict):
    return {k: json_safe(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [json_safe(v) for v in x]
  return x


# ----------------------------------------------------------------------------
# Summaries.

def model_summary(params, genotypes, cfg: network_lib.NetworkConfig) -> dict:
  """Parameter count and weight memory of a trained network.

  Returns:
    ``params`` (analytic, :func:`snnax_nas.memory.param_count`),
    ``params_in_tree`` (leaves actually held; equal unless the model changed),
    ``weight_bytes`` (float32), ``weight_bytes_by_bits`` and
    ``neuron_state_bytes`` (membranes per sample).
  """
  g = np.asarray(genotypes)
  if g.ndim == 3:  # per-cell [L, 4, 4]: one network, not L networks
    g = g[None]
  rep = memory.memory_report(g, cfg)
  count = int(np.ravel(rep.params)[0])
  return {"params": count,
          "params_in_tree": int(sum(x.size for x in jax.tree.leaves(params))),
          "weight_bytes": int(np.ravel(rep.weight_bytes)[0]),
          "weight_bytes_by_bits": {str(b): int(memory.weight_bytes(count, b))
                                   for b in memory.WEIGHT_BITS},
          "neuron_state_bytes": int(np.ravel(rep.neuron_state_bytes)[0])}


def peak_rss_mb() -> float:
  """Peak resident memory of this process in MiB (``ru_maxrss`` is KiB on Linux)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ----------------------------------------------------------------------------
# Files.

def flat_row(entry: dict) -> dict:
  """One CSV row: scalars as they are, ``rates`` as ``rate/<lif>`` columns
  (other dicts, e.g. ``train_rates``, stay in the JSON only)."""
  row = {k: v for k, v in entry.items() if k != "rates" and not isinstance(v, dict)}
  for k, v in (entry.get("rates") or {}).items():
    row[f"rate/{k}"] = v
  return row


def write_metrics_csv(path: str, history: list[dict]):
  """``history`` as a CSV written atomically (one row per epoch, the union of
  all columns; per-LIF test rates as ``rate/<lif>``)."""
  files.write_dict_csv(path, [flat_row(e) for e in history])


def plot_curves(history: list[dict], path: str, title: str = ""):
  """Accuracy (train / test) and loss per epoch to a PNG (written atomically)."""
  plt = files.pyplot()
  ep = [e["epoch"] for e in history]
  fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
  for ax, key, scale, ylabel in ((a1, "accuracy", 100, "accuracy (%)"), (a2, "loss", 1, "loss")):
    ax.plot(ep, [scale * e[f"train_{key}"] for e in history], "o-", label="train")
    test = [(e["epoch"], scale * e[f"test_{key}"]) for e in history
            if e.get(f"test_{key}") is not None]
    if test:
      ax.plot(*zip(*test), "s-", label="test")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  files.save_figure(fig, path, dpi=100)
  plt.close(fig)


def plot_firing_rates(history: list[dict], path: str, title: str = "") -> bool:
  """Per-layer firing rate over epochs to a PNG (written atomically).

  One line per LIF layer: its training-set rate (``train_rates``, spikes per
  neuron and timestep, in %) at each epoch; a layer at 0 is silent.

  Returns:
    Whether a plot was written (False when no epoch has ``train_rates``,
    e.g. a history from before they were recorded).
  """
  epochs = [e for e in history if e.get("train_rates")]
  if not epochs:
    return False
  names = list(dict.fromkeys(k for e in epochs for k in e["train_rates"]))
  plt = files.pyplot()
  fig, ax = plt.subplots(figsize=(8, 4.5))
  for name in names:
    pts = [(e["epoch"], 100 * e["train_rates"][name]) for e in epochs
           if e["train_rates"].get(name) is not None]
    if pts:
      ax.plot(*zip(*pts), "o-", ms=3, label=name)
  ax.set_xlabel("epoch")
  ax.set_ylabel("firing rate (% of neuron-timesteps)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7, ncol=1 + len(names) // 12, loc="best")
  if title:
    ax.set_title(title, fontsize=9)
  fig.tight_layout()
  files.save_figure(fig, path, dpi=100)
  plt.close(fig)
  return True


class MetricsWriter:
  """Per-epoch metrics to ``metrics.jsonl``, ``metrics.csv``, TensorBoard and
  (with ``plot_title`` not None) the plots ``accuracy.png`` and
  ``firing_rates.png``.

  The JSON/CSV files are rewritten atomically from the whole history each
  epoch, so after a resume they hold exactly the epochs of the checkpoint's
  history plus the new ones, each once. TensorBoard event files are written
  with ``tensorboardX`` (no TensorFlow); a resumed writer purges the steps at
  and after the resume epoch. Only process 0 writes.
  """

  def __init__(self, workdir: str, resume_epoch: int = 0, plot_title: Optional[str] = None):
    self.workdir = workdir
    self.plot_title = plot_title
    self.enabled = jax.process_index() == 0
    self.tb = None
    if not self.enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    try:
      import tensorboardX  # lazy: optional at import time of the library
    except ImportError:
      logging.warning("tensorboardX is not installed: no TensorBoard event files")
      return
    self.tb = tensorboardX.SummaryWriter(
        os.path.join(workdir, "tb"), purge_step=resume_epoch + 1 if resume_epoch else None)

  def write(self, history: list[dict]):
    """Writes the files for ``history`` (and TensorBoard scalars of its last
    entry)."""
    if not self.enabled:
      return
    files.write_text(os.path.join(self.workdir, "metrics.jsonl"),
                  "".join(json.dumps(e, sort_keys=True) + "\n" for e in history))
    write_metrics_csv(os.path.join(self.workdir, "metrics.csv"), history)
    if self.plot_title is not None and history:
      plot_curves(history, os.path.join(self.workdir, "accuracy.png"), self.plot_title)
      plot_firing_rates(history, os.path.join(self.workdir, "firing_rates.png"),
                        self.plot_title)
    if self.tb is not None and history:
      e = history[-1]
      for k, v in flat_row(e).items():
        if k != "epoch" and isinstance(v, (int, float)) and v is not None and math.isfinite(v):
          self.tb.add_scalar(k if "/" in k else f"epoch/{k}", v, e["epoch"])
      self.tb.flush()

  def close(self):
    if self.tb is not None:
      self.tb.close()
