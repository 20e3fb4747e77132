"""Training a searched architecture: BPTT through the LIF dynamics, SGD with a
cosine schedule, data parallel over all devices, resumable checkpoints.

The reference recipe (spec §6): SGD lr 0.1, momentum 0.9, cosine annealing to
``eta_min = 0.001`` (1 % of 0.1), 300 epochs, batch 64, cross-entropy on the
time-averaged vote output, random crop + flip. Gradients flow through the
``lax.scan`` over timesteps of :func:`snnax_nas.network.standalone_forward`
(backpropagation through time) with the ATan surrogate derivative of the spike
(:mod:`snnax_nas.neurons`). The train step traces that scan unrolled
(``unroll_time``): XLA:CPU runs convolution kernel gradients inside a
loop body 20-40x slower than outside one.

Data parallelism. One ``jax.sharding.Mesh`` with a single ``"data"`` axis over
all devices; the batch is sharded along it and the :class:`TrainState` is
replicated. The step is written for the *global* batch and compiled with those
shardings, so XLA inserts the cross-device reductions: batch-norm statistics
and gradients are those of the global batch and a step on N devices computes
the same function as on one device (up to float summation order).

Spike activity. Every LIF call is probed (``probe(spikes)`` of
:mod:`snnax_nas.network`) for its spike count and neuron count, so

  SAR        = sum_layers spikes / sum_layers (neurons x timesteps)  (per image)
  rate[lif]  = spikes[lif] / (neurons[lif] x timesteps)

both averaged over the images of an epoch (LightSNN's spiking activity rate).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import logging as std_logging
import math
import os
import resource
import time
from typing import Any, Callable, Optional, Sequence

from absl import logging
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from snnax_nas import data as data_lib
from snnax_nas import memory
from snnax_nas import network as network_lib

LOSSES = ("ce", "mse")
DATA_AXIS = "data"


# ----------------------------------------------------------------------------
# State and optimiser.

@flax.struct.dataclass
class TrainState:
  """Everything a training run carries from step to step (a pytree).

  Attributes:
    params: network parameters (:func:`snnax_nas.network.init_standalone_params`).
    batch_stats: running BN statistics (:func:`snnax_nas.network.init_batch_stats`).
    opt_state: optax state.
    step: int32 scalar, optimiser steps taken.
    epoch: int32 scalar, epochs completed.
    rng: uint32 [2] raw PRNG key; step ``s`` uses ``fold_in(rng, s)`` so a
      resumed run draws the same dropout masks and crops.
  """

  params: Any
  batch_stats: Any
  opt_state: Any
  step: jax.Array
  epoch: jax.Array
  rng: jax.Array


def lr_schedule(lr: float, epochs: int, steps_per_epoch: int, *,
                final_fraction: float = 0.01, per_epoch: bool = False) -> optax.Schedule:
  """Cosine decay from ``lr`` to ``final_fraction * lr`` over the run.

  Args:
    lr: initial learning rate.
    epochs: epochs of the run (> 0).
    steps_per_epoch: optimiser steps per epoch (> 0).
    final_fraction: end value as a fraction of ``lr`` (reference: 0.001 / 0.1).
    per_epoch: hold the rate constant within an epoch, as the reference's
      ``CosineAnnealingLR(T_max=epochs)`` stepped once per epoch; the default
      decays every step (smoother, same endpoints).

  Returns:
    ``schedule(step) -> lr``; ``schedule(epochs * steps_per_epoch) ==
    final_fraction * lr``.
  """
  if epochs < 1 or steps_per_epoch < 1:
    raise ValueError(f"epochs ({epochs}) and steps_per_epoch ({steps_per_epoch}) must be >= 1")
  if per_epoch:
    base = optax.cosine_decay_schedule(lr, epochs, alpha=final_fraction)
    return lambda count: base(count // steps_per_epoch)
  return optax.cosine_decay_schedule(lr, epochs * steps_per_epoch, alpha=final_fraction)


def make_optimizer(lr: float, epochs: int, steps_per_epoch: int, momentum: float = 0.9,
                   weight_decay: float = 5e-4, *, final_fraction: float = 0.01,
                   per_epoch_schedule: bool = False) -> optax.GradientTransformation:
  """SGD with momentum, cosine schedule and (real) weight decay.

  ``g <- g + weight_decay * p`` (``optax.add_decayed_weights``) BEFORE the
  momentum SGD, which is PyTorch's ``SGD(weight_decay=...)`` (decay enters
  the momentum buffer, every parameter including BN affines). With momentum
  0 a parameter with zero gradient shrinks by the factor
  ``1 - lr_t * weight_decay`` per step.

  Note: both references (SNASNet ``search_snn.py:87``, LightSNN
  ``search_snn.py:116``) call ``torch.optim.SGD(params, lr, momentum,
  weight_decay)`` positionally; the 4th positional argument of SGD is
  *dampening*, so they trained with weight decay 0 and dampening 5e-4 (spec
  §6). We apply the intended 5e-4 as weight decay, with no dampening.

  Args:
    lr: initial learning rate (reference 0.1).
    epochs: epochs of the run.
    steps_per_epoch: steps per epoch.
    momentum: SGD momentum (reference 0.9; 0 = plain SGD).
    weight_decay: L2 decay coefficient (0 disables it).
    final_fraction: the cosine ends at ``final_fraction * lr`` (1 %).
    per_epoch_schedule: see :func:`lr_schedule`.
  """
  schedule = lr_schedule(lr, epochs, steps_per_epoch, final_fraction=final_fraction,
                         per_epoch=per_epoch_schedule)
  parts = []
  if weight_decay:
    parts.append(optax.add_decayed_weights(weight_decay))
  parts.append(optax.sgd(schedule, momentum=momentum or None))
  return optax.chain(*parts)


def create_train_state(key: jax.Array, cfg: network_lib.NetworkConfig, genotypes,
                       optimizer: optax.GradientTransformation) -> TrainState:
  """Fresh state: parameters from ``key``, BN stats (0, 1), optimiser state.

  Args:
    key: a raw uint32 [2] key (``jax.random.PRNGKey``) or a typed key.
    cfg: network config.
    genotypes: [4, 4] or [L, 4, 4] genotype digits.
    optimizer: from :func:`make_optimizer`.
  """
  key = _raw_key(key)
  k_init, k_run = jax.random.split(key)
  params = network_lib.init_standalone_params(k_init, cfg, genotypes)
  return TrainState(params=params, batch_stats=network_lib.init_batch_stats(params),
                    opt_state=optimizer.init(params), step=jnp.zeros((), jnp.int32),
                    epoch=jnp.zeros((), jnp.int32), rng=k_run)


def _raw_key(key) -> jax.Array:
  key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    key = jax.random.key_data(key)
  return key.astype(jnp.uint32)


# ----------------------------------------------------------------------------
# Losses, probes, rates.

def loss_value(logits: jax.Array, labels: jax.Array, kind: str = "ce") -> jax.Array:
  """Per-example loss [B] of the time-averaged vote output.

  Args:
    logits: [B, K] mean over T of the vote-pooled outputs.
    labels: int [B].
    kind: ``"ce"`` softmax cross-entropy (SNASNet), or ``"mse"``: mean over
      classes of ``(logits - one_hot)^2`` (LightSNN's DVS128 loss,
      ``nn.MSELoss`` against one-hot).
  """
  if kind == "ce":
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  if kind == "mse":
    onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
    return jnp.mean(jnp.square(logits - onehot), axis=-1)
  raise ValueError(f"unknown loss {kind!r}; choose from {LOSSES}")


def spike_probe(mask: Optional[jax.Array] = None) -> Callable[[jax.Array], dict]:
  """A LIF probe counting spikes and neuron-samples of one LIF call.

  Args:
    mask: optional float [B] weights of the batch rows (0 for padding).

  Returns:
    ``probe(spikes [B, ...]) -> {"spikes": scalar, "neurons": scalar}``:
    spikes emitted by the (unmasked) rows, and rows x neurons per row. Summed
    over T by the network, ``neurons`` becomes rows x neurons x T.
  """
  def probe(s):
    per_row = s.size // s.shape[0]
    if mask is None:
      # int32 sum: exact for any realistic layer (float32 is not past 2^24).
      return {"spikes": s.astype(jnp.int32).sum().astype(jnp.float32),
              "neurons": jnp.float32(s.size)}
    w = mask.reshape((-1,) + (1,) * (s.ndim - 1))
    return {"spikes": (s * w).sum(), "neurons": mask.sum() * per_row}
  return probe


def firing_rates(values: dict) -> tuple[float, dict]:
  """SAR and per-LIF firing rates from summed probe values.

  Args:
    values: ``{lif_name: {"spikes": s, "neurons": n}}`` (from
      :func:`spike_probe`, summed over timesteps and batches).

  Returns:
    ``(sar, {lif_name: rate})``: total spikes over total neuron-timestep-
    samples, and the same per LIF; rates in [0, 1] (NaN for an empty count).
  """
  rates = {k: float(v["spikes"]) / float(v["neurons"]) if float(v["neurons"]) else float("nan")
           for k, v in values.items()}
  total_n = sum(float(v["neurons"]) for v in values.values())
  total_s = sum(float(v["spikes"]) for v in values.values())
  return (total_s / total_n if total_n else float("nan")), rates


def _tree_sum(trees: Sequence[Any]) -> Any:
  """Float64 host sum of a list of equally structured pytrees."""
  host = jax.device_get(list(trees))
  return jax.tree.map(lambda *xs: float(np.sum(np.asarray(xs, np.float64))), *host)


# ----------------------------------------------------------------------------
# Steps.

def make_mesh(devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
  """A 1-D ``("data",)`` mesh over ``devices`` (default: all devices)."""
  devices = list(jax.devices() if devices is None else devices)
  return Mesh(np.array(devices), (DATA_AXIS,))


def make_preprocess(info: data_lib.DatasetInfo, augment: bool) -> Callable:
  """``preprocess(raw_images, key, train) -> float32`` network input.

  Static images (uint8 NHWC): the reference random crop (``info.crop_pad``)
  and flip on raw pixels in training when ``augment``, then
  :func:`snnax_nas.data.normalize`. Event frames: cast to float32 only.
  """
  def preprocess(images, key, train):
    if not info.is_event and augment and train:
      # crop_pad 0 still flips.
      images = data_lib.augment_batch_jax(key, images, pad=info.crop_pad)
    return data_lib.normalize(images, info)
  return preprocess


@dataclasses.dataclass(frozen=True)
class Steps:
  """Compiled train and eval steps with their shardings.

  Attributes:
    train: ``train(state, batch) -> (state, metrics)``; ``batch`` holds
      ``image`` [B, ...] raw and ``label`` int32 [B]; metrics are sums over
      the batch: ``loss``, ``correct``, ``count`` and per-LIF ``probes``.
    eval: ``eval(state, batch) -> metrics`` with ``mask`` float [B] in the
      batch (0 = padding); BN running statistics, no dropout.
    mesh: the device mesh.
    batch_sharding: sharding of the batch arrays (leading axis over data).
    state_sharding: replicated sharding of the state.
  """

  train: Callable
  eval: Callable
  mesh: Mesh
  batch_sharding: NamedSharding
  state_sharding: NamedSharding


def make_steps(cfg: network_lib.NetworkConfig, genotypes,
               optimizer: optax.GradientTransformation, info: data_lib.DatasetInfo, *,
               loss: str = "ce", augment: bool = True, mesh: Optional[Mesh] = None,
               donate: bool = True, unroll_time: bool = True) -> Steps:
  """Jitted, data-parallel train and eval steps for one architecture.

  Args:
    cfg: network config.
    genotypes: [4, 4] or [L, 4, 4] digits (static: the network is built from
      them).
    optimizer: the optax transformation.
    info: dataset info (normalisation, crop padding, event or not).
    loss: ``"ce"`` or ``"mse"`` (see :func:`loss_value`).
    augment: random crop + flip of static images during training.
    mesh: device mesh (default: all devices); the global batch size must be a
      multiple of its size.
    donate: donate the input state buffers of the train step.
    unroll_time: trace the network's time loop unrolled (see
      :func:`snnax_nas.network.standalone_forward`; compile time grows with
      T, the backward pass is far faster on CPU).
  """
  if loss not in LOSSES:
    raise ValueError(f"unknown loss {loss!r}; choose from {LOSSES}")
  genotypes = np.asarray(genotypes)
  mesh = mesh or make_mesh()
  preprocess = make_preprocess(info, augment)

  def train_step(state: TrainState, batch):
    key = jax.random.fold_in(state.rng, state.step)
    k_drop, k_aug = jax.random.split(key)
    x = preprocess(batch["image"], k_aug, True)
    labels = batch["label"]

    def objective(params):
      logits, aux = network_lib.standalone_forward(
          params, genotypes, x, k_drop, cfg, train=True, batch_stats=state.batch_stats,
          probe=spike_probe(), per_layer=True, unroll_time=unroll_time)
      per_example = loss_value(logits, labels, loss)
      return per_example.mean(), (per_example, logits, aux)

    (_, (per_example, logits, aux)), grads = jax.value_and_grad(objective, has_aux=True)(
        state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(params=params, batch_stats=aux["batch_stats"],
                              opt_state=opt_state, step=state.step + 1)
    metrics = {"loss": per_example.sum(),
               "correct": (logits.argmax(-1) == labels).sum().astype(jnp.float32),
               "count": jnp.float32(labels.shape[0]),
               "probes": aux["probes"]["values"]}
    return new_state, metrics

  def eval_step(state: TrainState, batch):
    x = preprocess(batch["image"], None, False)
    labels, mask = batch["label"], batch["mask"]
    logits, aux = network_lib.standalone_forward(
        state.params, genotypes, x, None, cfg, train=False, batch_stats=state.batch_stats,
        probe=spike_probe(mask), per_layer=True)
    per_example = loss_value(logits, labels, loss)
    return {"loss": (per_example * mask).sum(),
            "correct": ((logits.argmax(-1) == labels) * mask).sum(),
            "count": mask.sum(), "probes": aux["probes"]["values"]}

  repl = NamedSharding(mesh, P())
  data = NamedSharding(mesh, P(DATA_AXIS))
  train = jax.jit(train_step, in_shardings=(repl, data), out_shardings=(repl, repl),
                  donate_argnums=(0,) if donate else ())
  evaluate = jax.jit(eval_step, in_shardings=(repl, data), out_shardings=repl)
  return Steps(train, evaluate, mesh, data, repl)


def default_test_split(name: str) -> str:
  """The evaluation split of a dataset spec: ``val`` for TinyImageNet and for
  ``folder:`` trees without a ``test`` folder, else ``test``."""
  if name == "tinyimagenet":
    return "val"
  if name.startswith("folder:"):
    root = os.path.expanduser(name[len("folder:"):])
    if not os.path.isdir(os.path.join(root, "test")) and os.path.isdir(os.path.join(root, "val")):
      return "val"
  return "test"


def put_batch(batch: dict, sharding: NamedSharding) -> dict:
  """Global device arrays from this process's slice of a batch (numpy)."""
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in batch.items()}


def eval_batches(images, labels, batch_size: int, process_index: Optional[int] = None,
                 process_count: Optional[int] = None):
  """Every sample once, in order, in global batches of ``batch_size``.

  The last batch is padded (repeating sample 0) to the full size so one
  compiled step serves all batches; ``mask`` (float32, 0 on padding) removes
  the padding from every metric. Yields this process's equal slice.
  """
  pi = jax.process_index() if process_index is None else process_index
  pc = jax.process_count() if process_count is None else process_count
  if batch_size % pc:
    raise ValueError(f"batch_size {batch_size} not divisible by {pc} processes")
  lb = batch_size // pc
  n = len(labels)
  for start in range(0, n, batch_size):
    idx = np.arange(start, min(start + batch_size, n))
    mask = np.ones(batch_size, np.float32)
    mask[len(idx):] = 0.0
    idx = np.concatenate([idx, np.zeros(batch_size - len(idx), np.int64)])
    sl = slice(pi * lb, (pi + 1) * lb)
    yield {"image": images[idx[sl]], "label": np.asarray(labels[idx[sl]], np.int32),
           "mask": mask[sl]}


def evaluate(steps: Steps, state: TrainState, images, labels, batch_size: int) -> dict:
  """Test metrics over a whole split.

  Returns:
    ``{"loss", "accuracy", "sar", "rates": {lif: rate}, "count"}``.
  """
  outs = [steps.eval(state, put_batch(b, steps.batch_sharding))
          for b in eval_batches(images, labels, batch_size)]
  tot = _tree_sum(outs)
  sar, rates = firing_rates(tot["probes"])
  n = tot["count"]
  return {"loss": tot["loss"] / n, "accuracy": tot["correct"] / n, "sar": sar,
          "rates": rates, "count": int(n)}


# ----------------------------------------------------------------------------
# Summaries and outputs.

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


def _flat_row(entry: dict) -> dict:
  """One CSV row: scalars as they are, ``rates`` as ``rate/<lif>`` columns."""
  row = {k: v for k, v in entry.items() if k != "rates" and not isinstance(v, dict)}
  for k, v in (entry.get("rates") or {}).items():
    row[f"rate/{k}"] = v
  return row


def write_metrics_csv(path: str, history: list[dict]):
  """``history`` as a CSV (one row per epoch, the union of all columns; per-LIF
  rates as ``rate/<lif>``), written via a temporary file and rename."""
  rows = [_flat_row(e) for e in history]
  cols = []
  for r in rows:
    cols += [k for k in r if k not in cols]
  with open(path + ".tmp", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
  os.replace(path + ".tmp", path)


def _atomic_write(path: str, text: str):
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)


class MetricsWriter:
  """Per-epoch metrics to ``metrics.jsonl``, ``metrics.csv``, TensorBoard and
  (with ``plot_title`` not None) the curve ``accuracy.png``.

  The JSON/CSV files are rewritten from the whole history each epoch (via a
  temporary file and rename), so after a resume they hold exactly the epochs
  of the checkpoint's history plus the new ones, each once. TensorBoard event
  files are written with ``tensorboardX`` (no TensorFlow); a resumed writer
  purges the steps at and after the resume epoch. Only process 0 writes.
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
    _atomic_write(os.path.join(self.workdir, "metrics.jsonl"),
                  "".join(json.dumps(e, sort_keys=True) + "\n" for e in history))
    write_metrics_csv(os.path.join(self.workdir, "metrics.csv"), history)
    if self.plot_title is not None and history:
      plot_curves(history, os.path.join(self.workdir, "accuracy.png"), self.plot_title)
    if self.tb is not None and history:
      e = history[-1]
      for k, v in _flat_row(e).items():
        if k != "epoch" and isinstance(v, (int, float)) and v is not None and math.isfinite(v):
          self.tb.add_scalar(k if "/" in k else f"epoch/{k}", v, e["epoch"])
      self.tb.flush()

  def close(self):
    if self.tb is not None:
      self.tb.close()


def plot_curves(history: list[dict], path: str, title: str = ""):
  """Accuracy (train / test) and loss per epoch to a PNG."""
  import matplotlib  # lazy
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  ep = [e["epoch"] for e in history]
  fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
  a1.plot(ep, [100 * e["train_accuracy"] for e in history], "o-", label="train")
  test = [(e["epoch"], 100 * e["test_accuracy"]) for e in history
          if e.get("test_accuracy") is not None]
  if test:
    a1.plot(*zip(*test), "s-", label="test")
  a1.set_xlabel("epoch")
  a1.set_ylabel("accuracy (%)")
  a1.grid(alpha=0.3)
  a1.legend()
  a2.plot(ep, [e["train_loss"] for e in history], "o-", label="train")
  test = [(e["epoch"], e["test_loss"]) for e in history if e.get("test_loss") is not None]
  if test:
    a2.plot(*zip(*test), "s-", label="test")
  a2.set_xlabel("epoch")
  a2.set_ylabel("loss")
  a2.grid(alpha=0.3)
  a2.legend()
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


# ----------------------------------------------------------------------------
# Checkpoints.

class _DropOrbaxInfo:
  """absl log filter: orbax logs several INFO lines per save; keep warnings."""

  def filter(self, record) -> bool:
    return record.levelno >= std_logging.WARNING or "orbax" not in record.pathname


def _quiet_orbax():
  logger = logging.get_absl_logger()
  if not any(isinstance(f, _DropOrbaxInfo) for f in logger.filters):
    logger.addFilter(_DropOrbaxInfo())


class Checkpointer:
  """Orbax checkpoints of the :class:`TrainState` and the metrics history,
  one per epoch (step = epochs completed), keeping the last ``keep``.

  Orbax commits a checkpoint by renaming its temporary folder, so a process
  killed mid-save leaves the previous checkpoint as the latest.
  """

  def __init__(self, directory: str, keep: int = 3):
    import orbax.checkpoint as ocp  # lazy: slow import
    self._ocp = ocp
    _quiet_orbax()
    self.directory = os.path.abspath(directory)
    self.manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

  def latest_epoch(self) -> Optional[int]:
    return self.manager.latest_step()

  def save(self, epoch: int, state: TrainState, meta: dict):
    ocp = self._ocp
    self.manager.save(epoch, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))

  def restore(self, epoch: int, template: TrainState) -> tuple[TrainState, dict]:
    ocp = self._ocp
    out = self.manager.restore(epoch, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(template), meta=ocp.args.JsonRestore()))
    return out["state"], out["meta"]

  def close(self):
    self.manager.wait_until_finished()
    self.manager.close()


# ----------------------------------------------------------------------------
# The loop.

@functools.lru_cache(maxsize=8)
def _cached_steps(cfg, genotype_key, opt_args, info, loss, augment, mesh, unroll_time) -> Steps:
  """:func:`make_steps` memoised on its (hashable) inputs: several runs of one
  architecture (seeds, resumes in one process) trace it once."""
  shape, raw = genotype_key
  genotypes = np.frombuffer(raw, np.int32).reshape(shape)
  lr, epochs, spe, momentum, weight_decay, per_epoch = opt_args
  optimizer = make_optimizer(lr, epochs, spe, momentum, weight_decay,
                             per_epoch_schedule=per_epoch)
  return make_steps(cfg, genotypes, optimizer, info, loss=loss, augment=augment, mesh=mesh,
                    unroll_time=unroll_time)


_COMPILED: dict = {}


def _compiled(fn, *args):
  """``fn.lower(*args).compile()``, kept per (function, argument shapes)."""
  key = (fn, tuple((x.shape, x.dtype, x.sharding) for x in jax.tree.leaves(args)))
  if key not in _COMPILED:
    if len(_COMPILED) > 16:
      _COMPILED.clear()
    _COMPILED[key] = fn.lower(*args).compile()
  return _COMPILED[key]


@dataclasses.dataclass
class TrainResult:
  """Outcome of :func:`train_and_evaluate`.

  Attributes:
    state: final :class:`TrainState`.
    history: one dict per epoch (see :func:`train_and_evaluate`).
    summary: final numbers (accuracy, SAR, params, bytes, times).
  """

  state: TrainState
  history: list
  summary: dict


def _json_safe(x):
  if isinstance(x, float) and not math.isfinite(x):
    return None
  if isinstance(x, dict):
    return {k: _json_safe(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_json_safe(v) for v in x]
  return x


def train_and_evaluate(cfg: network_lib.NetworkConfig, genotypes, info: data_lib.DatasetInfo,
                       train_data: tuple, test_data: Optional[tuple], *, epochs: int,
                       batch_size: int, lr: float = 0.1, momentum: float = 0.9,
                       weight_decay: float = 5e-4, loss: str = "ce", augment: bool = True,
                       seed: int = 0, eval_every: int = 1, workdir: Optional[str] = None,
                       checkpoint_dir: Optional[str] = None, keep_checkpoints: int = 3,
                       log_every: int = 50, fingerprint: Optional[dict] = None,
                       plot_title: Optional[str] = None,
                       per_epoch_schedule: bool = False, unroll_time: bool = True,
                       mesh: Optional[Mesh] = None) -> TrainResult:
  """Trains one architecture and evaluates it, resuming from checkpoints.

  Each epoch appends one history entry: ``epoch``, ``train_loss``,
  ``train_accuracy``, ``train_sar``, ``lr`` (at the epoch's end),
  ``test_loss``/``test_accuracy``/``sar``/``rates`` (test split, eval mode;
  None on epochs without evaluation), ``epoch_time`` (s, training only),
  ``eval_time``, ``images_per_sec`` (training), ``peak_rss_mb``,
  ``elapsed_s`` (wall seconds from the start of the run to these metrics,
  summed over sessions, compilation included) and ``session`` (0 for the
  first process, +1 per resume). The test split is
  evaluated every ``eval_every`` epochs and after the last.

  Args:
    cfg: network config.
    genotypes: [4, 4] or [L, 4, 4] digits.
    info: dataset info (:func:`snnax_nas.data.get_info`).
    train_data: ``(images, labels)`` numpy arrays (raw uint8 or frames).
    test_data: the same for the test split, or None.
    epochs: total epochs of the run (a resumed run continues to this).
    batch_size: global batch size (multiple of the device count).
    lr, momentum, weight_decay: see :func:`make_optimizer`.
    loss: ``"ce"`` or ``"mse"``.
    augment: random crop + flip of training images.
    seed: seed of the weights, the data order, dropout and augmentation.
    eval_every: evaluate the test split every this many epochs.
    workdir: metrics/TensorBoard output folder (None: no files).
    checkpoint_dir: where checkpoints go (None: ``workdir/checkpoints``, or
      no checkpoints without a workdir).
    keep_checkpoints: checkpoints kept.
    log_every: a progress line every this many steps (0: epoch lines only).
    fingerprint: JSON-able run description stored with the checkpoints; a
      checkpoint with another fingerprint is refused (ValueError).
    plot_title: with a workdir, redraw ``accuracy.png`` each epoch under this
      title (None: no plot).
    per_epoch_schedule: see :func:`lr_schedule`.
    unroll_time: see :func:`make_steps`.
    mesh: device mesh (default: all devices).

  Raises:
    ValueError: bad arguments, too few training examples for one batch, or
      a checkpoint of another run.
  """
  t_start = time.perf_counter()
  images, labels = train_data
  if epochs < 1:
    raise ValueError(f"epochs must be >= 1, got {epochs}")
  if eval_every < 1:
    raise ValueError(f"eval_every must be >= 1, got {eval_every}")
  mesh = mesh or make_mesh()
  if batch_size < 1 or batch_size % mesh.size:
    raise ValueError(f"batch_size {batch_size} must be a positive multiple of the "
                     f"{mesh.size} devices")
  batches = data_lib.Batches(images, labels, batch_size, seed=seed, shuffle=True,
                             drop_remainder=True)
  spe = batches.steps_per_epoch
  if spe < 1:
    raise ValueError(f"{len(labels)} training examples is fewer than one batch of {batch_size}")
  opt_args = (lr, epochs, spe, momentum, weight_decay, per_epoch_schedule)
  optimizer = make_optimizer(*opt_args[:5], per_epoch_schedule=per_epoch_schedule)
  schedule = lr_schedule(lr, epochs, spe, per_epoch=per_epoch_schedule)
  g_key = np.asarray(genotypes, np.int32)
  steps = _cached_steps(cfg, (g_key.shape, g_key.tobytes()), opt_args, info, loss, augment,
                        mesh, unroll_time)
  state = create_train_state(jax.random.PRNGKey(seed), cfg, genotypes, optimizer)
  state = jax.device_put(state, steps.state_sharding)

  fingerprint = _json_safe(dict(fingerprint or {}, epochs=epochs, batch_size=batch_size,
                                lr=lr, seed=seed, steps_per_epoch=spe))
  if checkpoint_dir is None and workdir is not None:
    checkpoint_dir = os.path.join(workdir, "checkpoints")
  ckpt = Checkpointer(checkpoint_dir, keep_checkpoints) if checkpoint_dir else None
  history, session, start_epoch = [], 0, 0
  if ckpt is not None and ckpt.latest_epoch() is not None:
    start_epoch = int(ckpt.latest_epoch())
    state, meta = ckpt.restore(start_epoch, state)
    if meta.get("fingerprint") != fingerprint:
      ckpt.close()
      raise ValueError(f"checkpoints in {checkpoint_dir} belong to another run "
                       f"({meta.get('fingerprint')}); use a new --workdir/--checkpoint_dir")
    history = [e for e in meta["history"] if e["epoch"] <= start_epoch]
    session = int(meta.get("sessions", 1))
    logging.info("resumed from the checkpoint of epoch %d (%s)", start_epoch, checkpoint_dir)
  writer = MetricsWriter(workdir, start_epoch, plot_title) if workdir else None
  if writer is not None:
    writer.write(history)  # drop epochs the files hold beyond the checkpoint

  summary_extra = model_summary(state.params, genotypes, cfg)
  # Compile ahead of the loop, so epoch times and images/s exclude compilation.
  t0 = time.perf_counter()
  first = next(batches.epoch(0))
  example = put_batch(first, steps.batch_sharding)
  train_fn = _compiled(steps.train, state, example)
  eval_fn = None
  if test_data is not None:
    ex = next(eval_batches(test_data[0][:1], test_data[1][:1], batch_size))
    eval_fn = _compiled(steps.eval, state, put_batch(ex, steps.batch_sharding))
    steps = dataclasses.replace(steps, eval=eval_fn)
  compile_s = time.perf_counter() - t0
  logging.info("compiled train%s steps in %.1fs; %d steps/epoch of %d images on %d device(s); "
               "%s params", " and eval" if eval_fn else "", compile_s, spe, batch_size,
               mesh.size, f"{summary_extra['params']:,}")

  elapsed0 = history[-1].get("elapsed_s", 0.0) if history else 0.0
  for epoch in range(start_epoch, epochs):
    t_ep = time.perf_counter()
    outs = []
    for i, b in enumerate(batches.epoch(epoch)):
      state, m = train_fn(state, put_batch(b, steps.batch_sharding))
      outs.append(m)
      if log_every and (i + 1) % log_every == 0:
        part = _tree_sum(outs)
        dt = time.perf_counter() - t_ep
        logging.info("epoch %d step %d/%d  loss %.4f  acc %.2f%%  %.1f img/s", epoch + 1,
                     i + 1, spe, part["loss"] / part["count"],
                     100 * part["correct"] / part["count"], part["count"] / dt)
    tot = _tree_sum(outs)
    epoch_time = time.perf_counter() - t_ep
    train_sar, _ = firing_rates(tot["probes"])
    entry = {"epoch": epoch + 1, "train_loss": tot["loss"] / tot["count"],
             "train_accuracy": tot["correct"] / tot["count"], "train_sar": train_sar,
             "lr": float(schedule((epoch + 1) * spe)), "test_loss": None,
             "test_accuracy": None, "sar": None, "rates": None,
             "epoch_time": epoch_time, "eval_time": 0.0,
             "images_per_sec": tot["count"] / epoch_time, "session": session}
    if test_data is not None and ((epoch + 1) % eval_every == 0 or epoch + 1 == epochs):
      t_ev = time.perf_counter()
      ev = evaluate(steps, state, test_data[0], test_data[1], batch_size)
      entry.update(test_loss=ev["loss"], test_accuracy=ev["accuracy"], sar=ev["sar"],
                   rates=ev["rates"], eval_time=time.perf_counter() - t_ev)
    entry["peak_rss_mb"] = peak_rss_mb()
    # Time to this epoch's metrics: this session from the start of
    # train_and_evaluate (compilation included) plus earlier sessions' total.
    entry["elapsed_s"] = elapsed0 + time.perf_counter() - t_start
    entry = _json_safe(entry)
    history.append(entry)
    state = state.replace(epoch=jnp.asarray(epoch + 1, jnp.int32))
    if ckpt is not None:
      ckpt.save(epoch + 1, state, {"fingerprint": fingerprint, "history": history,
                                   "sessions": session + 1})
    if writer is not None:
      writer.write(history)
    test_txt = ("" if entry["test_accuracy"] is None else
                f"  test loss {entry['test_loss']:.4f} acc {100 * entry['test_accuracy']:.2f}%"
                f"  SAR {entry['sar']:.4f}")
    logging.info("epoch %d/%d  train loss %.4f acc %.2f%%%s  %.1fs  %.1f img/s", epoch + 1,
                 epochs, entry["train_loss"], 100 * entry["train_accuracy"], test_txt,
                 epoch_time, entry["images_per_sec"])
  if ckpt is not None:
    ckpt.close()
  if writer is not None:
    writer.close()

  last_eval = next((e for e in reversed(history) if e.get("test_accuracy") is not None), None)
  train_time = sum(e["epoch_time"] for e in history)
  summary = dict(
      epochs=len(history), final_train_accuracy=history[-1]["train_accuracy"] if history else None,
      final_test_accuracy=last_eval["test_accuracy"] if last_eval else None,
      final_test_loss=last_eval["test_loss"] if last_eval else None,
      best_test_accuracy=max((e["test_accuracy"] for e in history
                              if e.get("test_accuracy") is not None), default=None),
      sar=last_eval["sar"] if last_eval else None,
      rates=last_eval["rates"] if last_eval else None,
      train_time_s=train_time,
      eval_time_s=sum(e["eval_time"] for e in history),
      images_per_sec=(sum(e["images_per_sec"] * e["epoch_time"] for e in history) / train_time
                      if train_time else None),
      compile_s=compile_s, session_wall_s=time.perf_counter() - t_start,
      sessions=session + 1, peak_rss_mb=peak_rss_mb(), devices=mesh.size, **summary_extra)
  return TrainResult(state, history, _json_safe(summary))
