"""Train and eval steps: state, optimiser, loss, spike probes, data parallelism.

The reference recipe (SNASNet's ``search_snn.py`` and ``config.py``): SGD lr 0.1, momentum 0.9, cosine annealing to
``eta_min = 0.001`` (1 % of 0.1), 300 epochs, batch 64, cross-entropy on the
time-averaged vote output, random crop + flip. Gradients flow through the
``lax.scan`` over timesteps of :func:`snnax_nas.network.standalone_forward`
(backpropagation through time) with the ATan surrogate derivative of the spike
(:mod:`snnax_nas.neurons`).

The network is the flax Module :class:`snnax_nas.models.SpikingNetwork`:
:func:`create_train_state` initialises its variables (``params`` and
``batch_stats``, the collections of ``SpikingNetwork.init``), checkpoints hold
them, and it enters the steps through ONE function, a :data:`ForwardFn`
(``forward(params, batch_stats, images, key, *, train, probe) -> (logits,
aux)``): :func:`module_forward_fn` (the default) applies the Module,
:func:`standalone_forward_fn` runs the functional network
(:func:`snnax_nas.network.standalone_forward`, the same function) on the
same variables. Another model trains with these steps by passing its own
``forward`` to :func:`make_steps`.

Quantisation-aware training (``weight_bits`` < 32): the forward sees every
conv and dense kernel as :func:`snnax_nas.quant.fake_quantize` makes it
(symmetric per-output-channel codes, dequantised), the gradient passes the
rounding straight through (STE) and the optimiser keeps float32 weights. BN
affines and the fc2 bias stay float32. Such a run's evaluation, and the
post-training quantisation of its weights at the same bits
(:func:`snnax_nas.evaluate.evaluate_run`), compute the same logits.

Data parallelism. One ``jax.sharding.Mesh`` with a single ``"data"`` axis over
the training devices (:func:`training_devices`: all accelerators, or one CPU
device per process); the batch is sharded along it and the :class:`TrainState` is
replicated. The step is written for the *global* batch and compiled with those
shardings, so XLA inserts the cross-device reductions: batch-norm statistics
and gradients are those of the global batch and a step on N devices computes
the same function as on one device (up to float summation order).
"""

from __future__ import annotations

import dataclasses
from typing import Any
from typing import Callable
from typing import Optional
from typing import Sequence

import flax
import jax
import jax.numpy as jnp
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np
import optax

from snnax_nas import callbacks
from snnax_nas import data as data_lib
from snnax_nas import models
from snnax_nas import network as network_lib
from snnax_nas import quant

LOSSES = ("ce", "mse")
DATA_AXIS = "data"

# XLA:CPU's default hands some convolutions (here the 16 -> 32 and 32 -> 32
# convs of the width-16 network) to YNNPACK, which runs each of them on ONE
# thread, where Eigen's convolution uses every core: 2x their time on two
# cores. Without that a training step ran 1.06-1.19x faster
# (benchmarks/RESULTS.md). The option is the default list of YNN
# fusion kinds (jax 0.10.2) without individual convolutions;
# tests/test_train_steps.py checks both halves.
_CPU_COMPILER_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type":
        "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"}

# forward(params, batch_stats, images, key, *, train, probe) -> (logits, aux):
# params / batch_stats the Module's collections (create_train_state),
# images float32 [B, ...] (preprocessed), key the dropout key (None in eval),
# logits [B, num_classes]; aux["batch_stats"] the updated running statistics
# and aux["probes"] the probe sums ``{"values": {lif: ...}, "counts": ...}``.
ForwardFn = callbacks.ForwardFn  # the Protocol, re-exported


# ----------------------------------------------------------------------------
# State and optimiser.

@flax.struct.dataclass
class TrainState:
  """Everything a training run carries from step to step (a pytree).

  Attributes:
    params: the ``params`` collection of
      :class:`snnax_nas.models.SpikingNetwork` (float32, also under QAT).
    batch_stats: its ``batch_stats`` collection (running BN statistics).
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
  *dampening*, so they trained with weight decay 0 and dampening 5e-4.
  We apply the intended 5e-4 as weight decay, with no dampening.

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


def network_model(cfg: network_lib.NetworkConfig, genotypes) -> models.SpikingNetwork:
  """The :class:`~snnax_nas.models.SpikingNetwork` of ``genotypes`` ([4, 4] or
  [L, 4, 4] digits, or genotype strings)."""
  return models.SpikingNetwork.for_genotypes(cfg, genotypes)


def init_variables(key: jax.Array, cfg: network_lib.NetworkConfig, genotypes) -> dict:
  """Fresh variables of :func:`network_model` (``{"params", "batch_stats"}``,
  the tree of ``SpikingNetwork.init``, :func:`snnax_nas.network.variable_shapes`)
  from ``key``.

  The weights are :func:`snnax_nas.network.init_standalone_params` (one
  uniform draw over the network's weight inventory,
  :func:`snnax_nas.layers.materialize`) regrouped by
  :func:`snnax_nas.network.variables_from_standalone`: the distributions of
  ``SpikingNetwork.init`` (kernels per :class:`snnax_nas.layers.ParamSpec`,
  the classifier's per ``cfg.linear_init``; BN scale 1, bias 0; running mean
  0, var 1). Why not ``SpikingNetwork.init``: flax draws each variable from
  its own key, so the values would differ from the functional network's and
  earlier versions' for the same key (every seeded run and its results would
  change); and it traces a whole forward pass, 5-10x slower (measured on the
  CIFAR-10 reference network, batch 1, CPU: 9-15 s against 1-3 s).
  """
  params = network_lib.init_standalone_params(key, cfg, genotypes)
  return network_lib.variables_from_standalone(params)


def create_train_state(key: jax.Array, cfg: network_lib.NetworkConfig, genotypes,
                       optimizer: optax.GradientTransformation) -> TrainState:
  """Fresh state: the Module's variables from ``key`` (:func:`init_variables`),
  optimiser state, step 0.

  Args:
    key: a raw uint32 [2] key (``jax.random.PRNGKey``) or a typed key.
    cfg: network config.
    genotypes: [4, 4] or [L, 4, 4] genotype digits.
    optimizer: from :func:`make_optimizer`.
  """
  key = _raw_key(key)
  k_init, k_run = jax.random.split(key)
  variables = init_variables(k_init, cfg, genotypes)
  params = variables["params"]
  return TrainState(params=params, batch_stats=variables["batch_stats"],
                    opt_state=optimizer.init(params), step=jnp.zeros((), jnp.int32),
                    epoch=jnp.zeros((), jnp.int32), rng=k_run)


def _raw_key(key) -> jax.Array:
  key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    key = jax.random.key_data(key)
  return key.astype(jnp.uint32)


# ----------------------------------------------------------------------------
# Losses and probes.

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
    over T by the network, ``neurons`` becomes rows x neurons x T. The
    forward returns them as ``aux["probes"]["values"][lif]``, which
    :func:`snnax_nas.train.metrics.firing_rates` reads
    (:func:`snnax_nas.network.spike_counts`). The probe's ``mask``
    attribute is ``mask``: a model that counts its spikes itself (the flax
    Module's ``probe_mask``, :func:`module_forward_fn`) weights the rows by it.
  """
  def probe(s):
    return network_lib.spike_counts(s, mask)
  probe.mask = mask
  return probe


# ----------------------------------------------------------------------------
# Steps.

def make_mesh(devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
  """A 1-D ``("data",)`` mesh over ``devices`` (default: all devices)."""
  devices = list(jax.devices() if devices is None else devices)
  return Mesh(np.array(devices), (DATA_AXIS,))


def training_devices(devices: Optional[Sequence[jax.Device]] = None,
                     backend: Optional[str] = None) -> list:
  """The devices a training run's mesh spans unless told otherwise.

  All of ``devices`` (default: all devices) on an accelerator backend; on the
  CPU backend the first device of each process only. The CPU devices of one
  process (``jax_num_cpu_devices``, one per core for the scorer) share the
  same cores, so splitting a training batch over them gains no compute, while
  every batch-norm statistic (per timestep) and every gradient then needs a
  cross-device reduction: measured 0.65-0.7x the images/s of one device with
  the same cores (benchmarks/train_bench.py, RESULTS.md).

  Args:
    devices: candidate devices (objects with ``process_index``).
    backend: the backend's name (default: ``jax.default_backend()``).
  """
  devices = list(jax.devices() if devices is None else devices)
  if (backend or jax.default_backend()) != "cpu":
    return devices
  first = {}
  for d in devices:
    first.setdefault(d.process_index, d)
  return list(first.values())


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


def module_forward_fn(cfg: network_lib.NetworkConfig, genotypes, *,
                      weight_bits: int = 32) -> ForwardFn:
  """The :data:`ForwardFn` of one searched architecture: ``SpikingNetwork.apply``.

  Training applies it with ``mutable=["batch_stats"]`` and
  ``rngs={"dropout": key}``; evaluation with the running statistics.

  Args:
    cfg: network config.
    genotypes: [4, 4] or [L, 4, 4] digits (static: the Module is built from
      them in Python).
    weight_bits: 32 (float weights), or 16 / 8 / 4: every kernel goes through
      :func:`snnax_nas.quant.fake_quantize` first (QAT, straight-through
      gradient).

  Returns:
    ``forward(params, batch_stats, images, key, *, train, probe) -> (logits
    [B, num_classes], aux)``; ``probe`` must be a :func:`spike_probe` (or
    None: no probes), whose per-LIF sums come back in
    ``aux["probes"]["values"]``.

  Raises:
    ValueError: ``weight_bits`` not in 32, 16, 8, 4.
  """
  quant.fake_quantize({}, weight_bits)  # checks the bits now, not at trace time
  model = network_model(cfg, genotypes)

  def forward(params, batch_stats, images, key, *, train: bool, probe):
    if probe is not None and not hasattr(probe, "mask"):
      raise ValueError("the flax network counts its spikes itself: give probe=spike_probe(mask) "
                       "(or use standalone_forward_fn for another probe)")
    variables = {"params": quant.fake_quantize(params, weight_bits), "batch_stats": batch_stats}
    kwargs = dict(return_probes=probe is not None,
                  probe_mask=None if probe is None else probe.mask)
    if train:
      out, updates = model.apply(variables, images, train=True, mutable=["batch_stats"],
                                 rngs={} if key is None else {"dropout": key}, **kwargs)
      new_stats = updates["batch_stats"]
    else:
      out, new_stats = model.apply(variables, images, train=False, **kwargs), batch_stats
    logits, probes = out if probe is not None else (out, None)
    if probes is not None:  # every LIF runs once per timestep
      probes = {"values": probes,
                "counts": {k: jnp.float32(cfg.timesteps) for k in probes}}
    return logits, {"batch_stats": new_stats, "probes": probes}
  return forward


def standalone_forward_fn(cfg: network_lib.NetworkConfig, genotypes, *,
                          unroll_time: bool = True) -> ForwardFn:
  """A :data:`ForwardFn` running the functional network
  (:func:`snnax_nas.network.standalone_forward`) on the Module's variables.

  The same function as :func:`module_forward_fn` (the variables are regrouped
  with :func:`snnax_nas.network.standalone_from_variables` and back); it takes
  any probe function, not only :func:`spike_probe`.

  Args:
    cfg: network config.
    genotypes: [4, 4] or [L, 4, 4] digits (static: the network is built from
      them in Python).
    unroll_time: trace the time loop unrolled in training (see
      :func:`snnax_nas.network.standalone_forward`); evaluation keeps the
      rolled loop (no backward pass, faster to compile).

  Returns:
    ``forward(params, batch_stats, images, key, *, train, probe) -> (logits
    [B, num_classes], aux)`` with per-LIF probe sums in ``aux["probes"]``
    and ``aux["batch_stats"]`` in the Module's layout.
  """
  genotypes = np.asarray(genotypes)

  def forward(params, batch_stats, images, key, *, train: bool, probe):
    p, stats = network_lib.standalone_from_variables(
        {"params": params, "batch_stats": batch_stats}, cfg)
    logits, aux = network_lib.standalone_forward(
        p, genotypes, images, key, cfg, train=train, batch_stats=stats,
        probe=probe, per_layer=True, unroll_time=unroll_time and train)
    stats = network_lib.variables_from_standalone(p, aux["batch_stats"])["batch_stats"]
    return logits, dict(aux, batch_stats=stats)
  return forward


@dataclasses.dataclass(frozen=True)
class Steps:
  """Compiled train and eval steps with their shardings.

  Attributes:
    train: ``train(state, batch) -> (state, metrics)``; ``batch`` holds
      ``image`` [B, ...] raw and ``label`` int32 [B]; metrics are sums over
      the batch: ``loss``, ``correct``, ``count`` and per-LIF ``probes``
      (``{lif: {"spikes", "neurons"}}``).
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


def compiler_options(platform: Optional[str] = None) -> dict[str, str]:
  """XLA compiler options for a training step compiled for ``platform``.

  On the CPU every convolution runs on XLA's multi-threaded Eigen path
  instead of single-threaded YNNPACK (see ``_CPU_COMPILER_OPTIONS``); elsewhere
  none. :func:`make_steps` compiles with them; a loop of your own passes them
  on: ``jax.jit(step, compiler_options=train.compiler_options())``.

  Args:
    platform: ``"cpu"``, ``"gpu"``, ``"tpu"``...; default the default
      backend's (``jax.default_backend()``).

  Returns:
    A new ``{option: value}`` dict (empty off the CPU).
  """
  platform = platform or jax.default_backend()
  return dict(_CPU_COMPILER_OPTIONS) if platform == "cpu" else {}


def make_steps(cfg: network_lib.NetworkConfig, genotypes,
               optimizer: optax.GradientTransformation, info: data_lib.DatasetInfo, *,
               loss: str = "ce", augment: bool = True, mesh: Optional[Mesh] = None,
               donate: bool = True, weight_bits: int = 32,
               forward: Optional[ForwardFn] = None) -> Steps:
  """Jitted, data-parallel train and eval steps for one architecture.

  Args:
    cfg: network config.
    genotypes: [4, 4] or [L, 4, 4] digits (static: the network is built from
      them).
    optimizer: the optax transformation.
    info: dataset info (normalisation, crop padding, event or not).
    loss: ``"ce"`` or ``"mse"`` (see :func:`loss_value`).
    augment: random crop + flip of static images during training.
    mesh: device mesh (default: over :func:`training_devices`); the global
      batch size must be a multiple of its size.
    donate: donate the input state buffers of the train step.
    weight_bits: 32, or 16 / 8 / 4 for quantisation-aware training (see the
      module docstring); used by the default ``forward``.
    forward: the network (a :data:`ForwardFn`); default
      ``module_forward_fn(cfg, genotypes, weight_bits=weight_bits)``.
  """
  if loss not in LOSSES:
    raise ValueError(f"unknown loss {loss!r}; choose from {LOSSES}")
  if forward is None:
    forward = module_forward_fn(cfg, genotypes, weight_bits=weight_bits)
  mesh = mesh or make_mesh(training_devices())
  preprocess = make_preprocess(info, augment)

  def train_step(state: TrainState, batch):
    key = jax.random.fold_in(state.rng, state.step)
    k_drop, k_aug = jax.random.split(key)
    x = preprocess(batch["image"], k_aug, True)
    labels = batch["label"]

    def objective(params):
      logits, aux = forward(params, state.batch_stats, x, k_drop, train=True,
                            probe=spike_probe())
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
    logits, aux = forward(state.params, state.batch_stats, x, None, train=False,
                          probe=spike_probe(mask))
    per_example = loss_value(logits, labels, loss)
    return {"loss": (per_example * mask).sum(),
            "correct": ((logits.argmax(-1) == labels) * mask).sum(),
            "count": mask.sum(), "probes": aux["probes"]["values"]}

  repl = NamedSharding(mesh, P())
  data = NamedSharding(mesh, P(DATA_AXIS))
  options = compiler_options(mesh.devices.flat[0].platform)
  train = jax.jit(train_step, in_shardings=(repl, data), out_shardings=(repl, repl),
                  donate_argnums=(0,) if donate else (), compiler_options=options)
  evaluate = jax.jit(eval_step, in_shardings=(repl, data), out_shardings=repl,
                     compiler_options=options)
  return Steps(train, evaluate, mesh, data, repl)


def put_batch(batch: dict, sharding: NamedSharding) -> dict:
  """Global device arrays from this process's slice of a batch (numpy)."""
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in batch.items()}
