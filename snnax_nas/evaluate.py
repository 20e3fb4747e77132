"""Evaluating a trained run on its own, at any weight precision.

:func:`evaluate_run` reads a ``launch.train`` workdir back (its network,
genotype, dataset and latest checkpoint, restored on whatever devices this
process has), quantises the weights after training (PTQ) at ``weight_bits``
and evaluates one split of the run's dataset::

  from snnax_nas import evaluate
  ev = evaluate.evaluate_run("runs/train", weight_bits=8)
  ev.accuracy, ev.sar, ev.firing_rates["head/fc_lif"], ev.weight_bytes

:func:`evaluate_model` does the same for a model and variables held in memory
(parameters trained in one's own loop).

Quantisation (:mod:`snnax_nas.quant`): every conv and dense kernel is
replaced by its symmetric per-output-channel codes, dequantised
(``codes * scale``); BN affines, running statistics and the fc2 bias stay
float32 (BN is not folded). ``weight_bytes`` is what that network occupies
(:func:`snnax_nas.memory.quantized_weight_bytes`: packed codes, float32
scales, float32 1-D leaves), 4 bytes per parameter at 32 bits. A run trained
quantisation-aware at ``b`` bits (``--config.training.weight_bits=b``) and
evaluated here at ``b`` bits gives the logits of its own (fake-quantised)
evaluation.

The metrics are computed by the training code's evaluation step
(:func:`snnax_nas.train.evaluate`): BN with running statistics, no dropout,
the run's loss, SAR and per-layer firing rates as ``launch.train`` reports
them. ``operations`` are the synaptic operations, MACs, additions and
energy per inference of the same (quantised) network on the same examples,
per layer and in total, from a second forward pass that records where every
LIF layer spiked (:mod:`snnax_nas.energy`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from snnax_nas import configs
from snnax_nas import data as data_lib
from snnax_nas import energy
from snnax_nas import memory
from snnax_nas import models
from snnax_nas import network
from snnax_nas import quant
from snnax_nas import train
from snnax_nas import workdir as workdir_lib

SPLITS = ("train", "test", "val")


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """One evaluation of a trained network.

  Attributes:
    accuracy: top-1 accuracy, a fraction in [0, 1].
    loss: mean loss of the run's kind (``ce`` or ``mse``) per example.
    sar: spike activity rate: spikes over neuron-timesteps, all LIF layers,
      averaged over the examples (as ``launch.train`` reports it).
    firing_rates: ``{lif layer: rate}`` (``cell0/edge3/lif``,
      ``reduction/lif``, ``head/lif``, ``head/fc_lif``).
    weight_bits: 32, 16, 8 or 4.
    weight_bytes: exact bytes of the weights at that precision
      (:func:`snnax_nas.memory.quantized_weight_bytes`).
    params: parameters of the network.
    num_examples: examples evaluated.
    split: the split evaluated.
    epoch: the checkpoint evaluated (epochs trained).
    silent_layers: the LIF layers with rate 0 (never fired): a non-empty list
      means the predictions ignore the input (chance accuracy); see
      :func:`snnax_nas.train.metrics.silent_in_evaluation_message`.
    max_examples: the limit asked for (None: the whole split).
    checkpoint_dir: the checkpoint directory read (None: variables in memory).
    operations: operations and energy per inference, per layer and in total
      (:meth:`snnax_nas.energy.Operations.to_json` at the energies asked for).
  """

  accuracy: float
  loss: float
  sar: float
  firing_rates: dict
  weight_bits: int
  weight_bytes: int
  params: int
  num_examples: int
  split: str
  epoch: int = 0
  silent_layers: list = dataclasses.field(default_factory=list)
  max_examples: Optional[int] = None
  checkpoint_dir: Optional[str] = None
  operations: dict = dataclasses.field(default_factory=dict)

  def to_json(self) -> dict:
    """The fields as a JSON-ready dict (a non-finite float becomes None)."""
    return workdir_lib.json_ready(dataclasses.asdict(self))


@dataclasses.dataclass(frozen=True)
class TrainedRun:
  """A ``launch.train`` workdir read back with its weights.

  Attributes:
    run: the workdir record (:func:`snnax_nas.workdir.load_run`).
    config: the network config.
    genotype: the genotype string (``|`` between per-cell genotypes).
    genotypes: int8 [L, 4, 4], its canonical per-cell digits.
    variables: ``{"params", "batch_stats"}`` of
      :class:`snnax_nas.models.SpikingNetwork`, float32, on one device.
    epoch: the checkpoint's epoch.
    weight_bits: the bits the run trained at (32: float training).
    checkpoint_dir: the directory the checkpoint was read from
      (:func:`checkpoint_dir_of`).
  """

  run: workdir_lib.Run
  config: configs.NetworkConfig
  genotype: str
  genotypes: np.ndarray
  variables: dict
  epoch: int
  weight_bits: int
  checkpoint_dir: str = ""


def checkpoint_dir_of(workdir: str, summary: Optional[dict]) -> str:
  """Where a train run's checkpoints are.

  A run owns ``WORKDIR/checkpoints``: ``summary.json`` records that path
  relative to the workdir, so a copied or moved run reads its own copy. Only
  a run trained with an explicit outside ``--checkpoint_dir`` records an
  absolute path, and it is used only when the workdir holds no
  ``checkpoints`` of its own (the evaluate job prints it when it is used).
  """
  where = (summary or {}).get("checkpoint_dir") or "checkpoints"
  if not os.path.isabs(where):
    return os.path.join(workdir, where)
  own = os.path.join(workdir, "checkpoints")
  return own if os.path.isdir(own) else where


def load_trained_run(workdir: str) -> TrainedRun:
  """A ``launch.train`` workdir and its latest checkpoint, restored onto this
  process's first device (whatever device count it was trained on).

  Raises:
    ValueError: ``workdir`` holds no training run, or no checkpoint yet.
  """
  run = workdir_lib.load_run(workdir)
  if run.job != "train":
    raise ValueError(f"{workdir!r} holds a {run.job} run, not a training run; give the "
                     "--workdir of launch.train")
  if not run.genotypes:
    raise ValueError(f"{workdir!r}: the training run names no genotype")
  ckpt_dir = checkpoint_dir_of(workdir, run.summary)
  try:
    state, meta = train.restore_checkpoint(ckpt_dir)
  except FileNotFoundError:
    raise ValueError(f"{workdir!r} has no checkpoint (looked in {ckpt_dir}); has the training "
                     "run finished an epoch?") from None
  params = state["params"]
  cfg = run.network
  text = run.genotypes[0]
  history = meta.get("history") or [{"epoch": 0}]
  training = run.config.get("training") or {}
  return TrainedRun(run=run, config=cfg, genotype=text,
                    genotypes=network.network_genotypes(text, cfg),
                    variables={"params": params, "batch_stats": state["batch_stats"]},
                    epoch=int(history[-1]["epoch"]),
                    weight_bits=int(training.get("weight_bits", 32)), checkpoint_dir=ckpt_dir)


def quantized_variables(variables: dict, weight_bits: int) -> dict:
  """``variables`` with every kernel quantised and dequantised (PTQ) at
  ``weight_bits``; BN affines, running statistics and biases unchanged.

  Args:
    variables: ``{"params", "batch_stats"}`` of the Module.
    weight_bits: 32 (returned as is), 16, 8 or 4.
  """
  quant.check_weight_bits(weight_bits)
  params = quant.dequantize(quant.quantize_params(variables["params"], weight_bits))
  return dict(variables, params=params)


def _dataset_options(config) -> dict:
  """The loader options of a train config's dataset (DVS: the frames and
  size the run trained on), as ``launch.train`` passed them."""
  if config.get("dataset") != "dvs128_gesture":
    return {}
  dvs = config.get("dvs")
  return {"n_time_bins": dvs["frames"], "size": dvs["size"]}


def load_split(run: workdir_lib.Run, cfg: configs.NetworkConfig, split: str,
               max_examples: Optional[int] = None):
  """``(info, images, labels)`` of one split of a run's dataset, the first
  ``max_examples`` (all when None); event frames binned to ``cfg.timesteps``.

  Raises:
    ValueError: an unknown split, a bad limit, a split the dataset lacks.
  """
  if split not in SPLITS:
    raise ValueError(f"split {split!r} is not one of {', '.join(SPLITS)}")
  data_lib.first_examples([], [], max_examples)  # checks the limit before loading
  name = run.config["dataset"]
  if split == "test":
    split = train.default_test_split(name)
  options = _dataset_options(run.config)
  info = data_lib.get_info(name, **options)
  images, labels = data_lib.first_examples(
      *data_lib.load_arrays(name, split, run.config.get("data_dir"), **options), max_examples)
  if info.is_event:
    images = data_lib.bin_frames(images, cfg.timesteps)
  if not len(labels):
    raise ValueError(f"{name}: the {split} split is empty")
  return info, images, np.asarray(labels, np.int32)


def evaluate_variables(variables: dict, cfg: configs.NetworkConfig, genotypes, info,
                       images, labels, *, batch_size: int = 256, loss: str = "ce") -> dict:
  """Metrics of a network's variables on ``(images, labels)`` (raw uint8
  images or frames), data parallel over all devices.

  Args:
    variables: ``{"params", "batch_stats"}`` of the Module (already
      quantised if wanted: :func:`quantized_variables`).
    cfg, genotypes: the network.
    info: the dataset (normalisation).
    images, labels: numpy [N, ...], int [N].
    batch_size: global batch, split over the most devices that divide it.
    loss: ``"ce"`` or ``"mse"``.

  Returns:
    ``{"loss", "accuracy", "sar", "rates", "count"}`` (:func:`snnax_nas.train.evaluate`).

  Raises:
    ValueError: ``batch_size`` < 1.
  """
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}")
  devices = jax.devices()
  n = max(d for d in range(1, len(devices) + 1) if batch_size % d == 0)
  mesh = train.make_mesh(devices[:n])
  steps = train.make_steps(cfg, genotypes, optax.identity(), info, loss=loss, augment=False,
                           mesh=mesh, donate=False)
  state = train.TrainState(params=variables["params"], batch_stats=variables["batch_stats"],
                           opt_state=(), step=jnp.zeros((), jnp.int32),
                           epoch=jnp.zeros((), jnp.int32), rng=jnp.zeros((2,), jnp.uint32))
  state = jax.device_put(state, steps.state_sharding)
  return train.evaluate(steps, state, images, labels, batch_size)


def evaluate_model(model, variables: dict, images, labels, info, *, weight_bits: int = 32,
                   batch_size: int = 256, loss: str = "ce", split: str = "given",
                   epoch: int = 0,
                   energies: Optional[energy.OperationEnergies] = None) -> Evaluation:
  """Evaluates a network held in memory (e.g. trained in one's own loop, as the
  README's 15-line optax step) at ``weight_bits``, as :func:`evaluate_run`
  evaluates a run's checkpoint::

    ev = snnax_nas.evaluate_model(model, variables, test_x, test_y, info, weight_bits=8)

  Args:
    model: the :class:`snnax_nas.models.SpikingNetwork` (its ``config`` and
      ``genotype``).
    variables: its ``{"params", "batch_stats"}`` (float32; quantised here).
    images, labels: raw images or frames [N, H, W, C] (uint8 or float, as the
      dataset's loader gives them: normalised here with ``info``), int [N].
    info: the dataset (:func:`snnax_nas.data.get_info`).
    weight_bits: 32 (as given), or 16 / 8 / 4: post-training quantisation of
      every kernel (see the module docstring).
    batch_size: evaluation batch, split over the most devices that divide it.
    loss: ``"ce"`` or ``"mse"``, the loss reported.
    split, epoch: labels recorded in the :class:`Evaluation`.
    energies: picojoules per operation of ``operations`` (default
      :class:`snnax_nas.energy.OperationEnergies`: 0.9 pJ per accumulate,
      4.6 pJ per MAC).

  Returns:
    :class:`Evaluation` (``weight_bytes`` at ``weight_bits``).

  Raises:
    ValueError: bad ``weight_bits`` or ``batch_size``.
  """
  quant.check_weight_bits(weight_bits)
  cfg = model.config
  genotypes = network.network_genotypes(model.genotype, cfg)
  deployed = quantized_variables(variables, weight_bits)
  metrics = evaluate_variables(deployed, cfg, genotypes, info, images,
                               np.asarray(labels, np.int32), batch_size=batch_size, loss=loss)
  ops = energy.measure_operations(model, deployed, images,
                                  batch_size=batch_size, info=info)
  rates = dict(metrics["rates"])
  return Evaluation(
      accuracy=float(metrics["accuracy"]), loss=float(metrics["loss"]),
      sar=float(metrics["sar"]), firing_rates=rates, silent_layers=train.silent_layers(rates),
      weight_bits=weight_bits,
      weight_bytes=int(memory.quantized_weight_bytes(genotypes[None], cfg, weight_bits)[0]),
      params=memory.tree_param_count(variables["params"]),
      num_examples=int(metrics["count"]), split=split, epoch=epoch,
      operations=ops.to_json(energies or energy.OperationEnergies()))


def evaluate_run(workdir: str, *, weight_bits: int = 32, split: str = "test",
                 batch_size: int = 256, max_examples: Optional[int] = None,
                 energies: Optional[energy.OperationEnergies] = None) -> Evaluation:
  """Evaluates a ``launch.train`` run's latest checkpoint at ``weight_bits``.

  Args:
    workdir: the run's ``--workdir``.
    weight_bits: 32 (the trained float weights), or 16 / 8 / 4:
      post-training quantisation of every kernel (see the module docstring).
    split: ``"test"`` (``val`` for TinyImageNet and folder datasets without
      ``test``), ``"train"`` or ``"val"``.
    batch_size: evaluation batch (a multiple of the device count).
    max_examples: evaluate the first N examples of the split (None: all).
    energies: picojoules per operation (see :func:`evaluate_model`).

  Returns:
    :class:`Evaluation`.

  Raises:
    ValueError: bad ``weight_bits`` / ``split`` / ``batch_size`` /
      ``max_examples``, a workdir without a checkpointed training run, or a
      dataset that cannot be loaded (the message says which).
  """
  quant.check_weight_bits(weight_bits)
  if split not in SPLITS:
    raise ValueError(f"split {split!r} is not one of {', '.join(SPLITS)}")
  trained = load_trained_run(workdir)
  info, images, labels = load_split(trained.run, trained.config, split, max_examples)
  loss = (trained.run.config.get("training") or {}).get("loss", "ce")
  model = models.SpikingNetwork.for_genotypes(trained.config, trained.genotypes)
  ev = evaluate_model(model, trained.variables, images, labels, info,
                      weight_bits=weight_bits, batch_size=batch_size, loss=loss, split=split,
                      epoch=trained.epoch, energies=energies)
  return dataclasses.replace(ev, max_examples=max_examples,
                             checkpoint_dir=trained.checkpoint_dir)


__all__ = ["Evaluation", "SPLITS", "TrainedRun", "checkpoint_dir_of",
           "evaluate_model", "evaluate_run", "evaluate_variables", "load_split", "load_trained_run",
           "quantized_variables"]
