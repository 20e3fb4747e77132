"""The standalone SNASNet network of one genotype as a flax linen Module.

:class:`SpikingNetwork` computes the same function as
:func:`snnax_nas.network.standalone_forward` (same layers, same running
statistics, same probes), built from submodules so that its variables read
like a flax model: ``params`` as listed by the network's one weight inventory
(:mod:`snnax_nas.network.variables`: ``stem/conv/kernel``,
``cell_0/edge_0_1/conv/kernel`` for a conv edge from node 0 to node 1, ...,
``head/fc2/bias``; edges without weights have no variables, and neither does
a cell of such edges) and ``batch_stats``, the running ``{mean, var}`` of
every BN.

It runs time-major: a cell without backward edges processes all T timesteps
of a layer at once (one convolution over T x B images, the LIF as a
``lax.scan`` over time, :func:`snnax_nas.neurons.lif_scan`), so no
convolution sits inside a loop; a cell with backward edges steps through time,
since its input at t depends on its output at t - 1. Batch norm normalises
each timestep with that timestep's statistics and updates the running
statistics once per timestep, PyTorch-style (:mod:`snnax_nas.layers`).

Example: one optax training step (init, apply with the mutable batch
statistics and the dropout rng, loss, update)::

  import jax, jax.numpy as jnp, optax
  from snnax_nas import configs, models

  cfg = configs.network_config(None, input_shape=(16, 16, 3), num_classes=10, width=8,
                               hidden=32, timesteps=2, vote_group=2, backward=True)
  model = models.SpikingNetwork(cfg, "0303/0030/2002/0200")
  images, labels = jnp.ones((4, 16, 16, 3)), jnp.array([0, 1, 2, 3])
  variables = model.init(jax.random.key(0), images, train=False)
  params, batch_stats = variables["params"], variables["batch_stats"]
  tx = optax.sgd(0.1, momentum=0.9)
  opt_state = tx.init(params)

  @jax.jit
  def train_step(params, batch_stats, opt_state, images, labels, key):
    def loss_fn(params):
      logits, updates = model.apply({"params": params, "batch_stats": batch_stats}, images,
                                    train=True, mutable=["batch_stats"], rngs={"dropout": key})
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
      return loss, updates["batch_stats"]
    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), batch_stats, opt_state, loss

  params, batch_stats, opt_state, loss = train_step(
      params, batch_stats, opt_state, images, labels, jax.random.key(1))

:func:`variables_from_standalone` and :func:`standalone_from_variables`
(from :mod:`snnax_nas.network.variables`) convert between these variables
and the functional network's ``(params, batch_stats)``.
"""

from __future__ import annotations

from typing import Callable
from typing import Optional
from typing import Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from snnax_nas import genotype as genotype_lib
from snnax_nas import layers
from snnax_nas import neurons
from snnax_nas.configs import NetworkConfig
from snnax_nas.network import standalone
from snnax_nas.network.skeleton import cell_wiring
from snnax_nas.network.skeleton import spike_counts
from snnax_nas.network.variables import edge_name
from snnax_nas.network.variables import standalone_from_variables  # noqa: F401  (re-exported)
from snnax_nas.network.variables import variables_from_standalone  # noqa: F401  (re-exported)
from snnax_nas.ops import OpSpec


def _over_time(fn: Callable[[jax.Array], jax.Array], xs: jax.Array) -> jax.Array:
  """``fn`` of NHWC images applied to time-major ``xs`` [T, B, H, W, C]."""
  y = fn(xs.reshape((-1,) + xs.shape[2:]))
  return y.reshape(xs.shape[:2] + y.shape[1:])


def _lif(xs: jax.Array, lif: neurons.LIFConfig, v0: Optional[jax.Array] = None):
  """LIF over time-major inputs [T, ...]: ``(membrane [...], spikes [T, ...])``."""
  return neurons.lif_scan(xs, lif, v0)


class Conv(nn.Module):
  """A bias-free conv padded ``kernel // 2`` on every side (as
  :func:`snnax_nas.layers.conv2d`) of time-major images: one convolution over
  all timesteps, the kernel gradient summed per timestep
  (:func:`snnax_nas.layers.conv_over_time`). Variables: ``params/kernel``
  [k, k, C_in, C], initialised as a ``"conv"`` ParamSpec."""

  features: int
  kernel: int
  stride: int = 1

  @nn.compact
  def __call__(self, xs: jax.Array) -> jax.Array:
    """Args: xs: [T, B, H, W, C_in]. Returns: [T, B, H / s, W / s, C]."""
    w = self.param("kernel", layers.initializer("conv"),
                   (self.kernel, self.kernel, xs.shape[-1], self.features))
    return layers.conv_over_time(xs, w, self.stride)


class BatchNorm(nn.Module):
  """Batch norm of time-major activations, each timestep on its own.

  Per timestep t, ``x[t]`` is normalised with its batch statistics over all
  axes but the channels (``train``) or with the running statistics; in
  training the running statistics take one PyTorch-momentum update per
  timestep, in time order (:func:`snnax_nas.layers.running_stats_update`),
  except while the module is being initialised.

  Variables: ``params/{scale, bias}`` [C], ``batch_stats/{mean, var}`` [C].
  """

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """Args: x: [T, B, ..., C]. Returns: the normalised x, same shape."""
    c = x.shape[-1]
    p = {"scale": self.param("scale", layers.initializer("ones"), (c,)),
         "bias": self.param("bias", layers.initializer("zeros"), (c,))}
    mean_v = self.variable("batch_stats", "mean", jnp.zeros, (c,), jnp.float32)
    var_v = self.variable("batch_stats", "var", jnp.ones, (c,), jnp.float32)
    if not train:
      return layers.bn_normalize(x, mean_v.value, var_v.value, p)
    y, mean, var = layers.batch_norm_per_step(x, p["scale"], p["bias"])  # mean, var [T, C]
    if not self.is_initializing():
      stats = {"mean": mean_v.value, "var": var_v.value}
      n = x[0].size // c
      for t in range(x.shape[0]):
        stats = layers.running_stats_update(stats, mean[t], var[t], n)
      mean_v.value, var_v.value = stats["mean"], stats["var"]
    return y


class ConvEdge(nn.Module):
  """A conv edge of a cell: LIF -> conv k x k -> BN.

  Attributes:
    features: channels C (input = output).
    kernel: conv kernel size k.
    lif: the edge's LIF constants (its op's threshold).
  """

  features: int
  kernel: int
  lif: neurons.LIFConfig

  @nn.compact
  def __call__(self, xs: jax.Array, v0: Optional[jax.Array] = None, *, train: bool):
    """Args: xs: [T, B, H, W, C]; v0: the LIF membrane [B, H, W, C] (zeros if None).

    Returns: ``(membrane [B, H, W, C] after the last step, spikes [T, B, H, W, C],
    output [T, B, H, W, C])``.
    """
    v, spikes = _lif(xs, self.lif, v0)
    y = Conv(self.features, self.kernel, name="conv")(spikes)
    return v, spikes, BatchNorm(name="bn")(y, train=train)


class Cell(nn.Module):
  """One cell of the genotype (the reference's ``search_cell_snn.py``): nodes 1..3 sum their incoming
  edges (:func:`snnax_nas.network.skeleton.cell_wiring`).

  Attributes:
    ops: the op of each edge slot, in :data:`snnax_nas.genotype.EDGES` order
      (6 forward edges, then 6 backward ones if the config has them).
    lif: the network's LIF constants.
  """

  ops: tuple[OpSpec, ...]
  lif: neurons.LIFConfig

  @nn.compact
  def __call__(self, xs: jax.Array, *, train: bool):
    """Args: xs: the cell input [T, B, H, W, C].

    Returns: ``(output [T, B, H, W, C], {edge slot e: spikes [T, B, H, W, C]})``
    for the conv edges.
    """
    c = xs.shape[-1]
    edges = {e: ConvEdge(c, op.kernel, self.lif.with_threshold(op.threshold),
                         name=edge_name(e))
             for e, op in enumerate(self.ops) if op.has_lif}
    spikes = {e: [] for e in edges}
    membranes = {e: None for e in edges}

    def edge_fn(e, u):
      op = self.ops[e]
      if op.kind == "zero":
        return None
      if op.kind == "skip":
        return u
      if op.kind in ("avgpool", "maxpool"):
        return _over_time(lambda x: layers.pool3x3(x, op.kind), u)
      membranes[e], s, y = edges[e](u, membranes[e], train=train)
      spikes[e].append(s)
      return y

    if not any(op.kind != "zero" for op in self.ops[6:]):
      y, _ = cell_wiring(xs, None, edge_fn, backward=False)
    else:
      # Feedback: step through time; the states s_0..s_2 of step t - 1
      # enter the nodes at step t (zeros at t = 0).
      fb, ys = (jnp.zeros_like(xs[:1]),) * 3, []
      for t in range(xs.shape[0]):
        y_t, fb = cell_wiring(xs[t:t + 1], fb, edge_fn, backward=True)
        ys.append(y_t)
      y = jnp.concatenate(ys)
    return y, {e: jnp.concatenate(s) for e, s in spikes.items()}


class Stem(nn.Module):
  """conv 3x3 (stride ``stride``) -> BN, no LIF (direct encoding)."""

  features: int
  stride: int

  @nn.compact
  def __call__(self, xs: jax.Array, *, train: bool) -> jax.Array:
    """Args: xs: [T', B, H, W, C_in]. Returns: [T', B, H / s, W / s, C]."""
    y = Conv(self.features, 3, self.stride, name="conv")(xs)
    return BatchNorm(name="bn")(y, train=train)


class Reduction(nn.Module):
  """The fixed block between the stages: BN -> LIF -> conv 3x3 (C -> 2C) ->
  BN -> 2x2 average pool."""

  lif: neurons.LIFConfig

  @nn.compact
  def __call__(self, xs: jax.Array, *, train: bool):
    """Args: xs: [T, B, H, W, C].

    Returns: ``(output [T, B, H / 2, W / 2, 2C], spikes [T, B, H, W, C])``.
    """
    y = BatchNorm(name="bn_in")(xs, train=train)
    _, spikes = _lif(y, self.lif)
    y = Conv(2 * xs.shape[-1], 3, name="conv")(spikes)
    y = BatchNorm(name="bn_out")(y, train=train)
    return _over_time(lambda x: layers.avg_pool(x, 2), y), spikes


class Head(nn.Module):
  """BN -> LIF -> avg pool -> flatten -> dropout -> fc1 -> LIF -> fc2 ->
  vote, averaged over time. The dropout mask (one per sample, fixed over
  time) comes from the ``"dropout"`` rng. fc1 and fc2 kernels are drawn as
  ``config.linear_init`` says (:func:`snnax_nas.layers.linear_init_kind`)."""

  config: NetworkConfig

  @nn.compact
  def __call__(self, xs: jax.Array, *, train: bool):
    """Args: xs: [T, B, H2, W2, 2C].

    Returns: ``(logits [B, num_classes], {"head/lif": spikes [T, B, H2, W2,
    2C], "head/fc_lif": spikes [T, B, hidden]})``.
    """
    cfg = self.config
    t, b = xs.shape[:2]
    y = BatchNorm(name="bn")(xs, train=train)
    _, s_head = _lif(y, cfg.lif)
    y = _over_time(lambda x: layers.avg_pool(x, cfg.second_pool), s_head).reshape(t, b, -1)
    if train and cfg.dropout > 0:
      y = y * layers.dropout_mask(self.make_rng("dropout"), cfg.dropout, (b, y.shape[-1]))
    linear = layers.initializer(layers.linear_init_kind(cfg.linear_init))
    y = nn.Dense(cfg.hidden, use_bias=False, kernel_init=linear, name="fc1")(y)
    _, s_fc = _lif(y, cfg.lif)
    out = nn.Dense(cfg.num_outputs, kernel_init=linear,
                   bias_init=layers.initializer("zeros"), name="fc2")(s_fc)
    out = out.reshape(t, b, cfg.num_classes, cfg.vote_group).mean(-1)
    return out.mean(0), {"head/lif": s_head, "head/fc_lif": s_fc}


class SpikingNetwork(nn.Module):
  """The standalone network of one genotype (see the module docstring).

  Attributes:
    config: the network config (width, timesteps, op set, ...).
    genotype: a genotype string for all cells (``"0303/0030/2002/0200"``),
      ``|``-joined per-cell strings, or a tuple of strings (one, or one per
      cell): static and hashable. :meth:`for_genotypes` makes one from digit
      arrays. Dead edges are pruned (canonical form) before building.
  """

  config: NetworkConfig
  genotype: Union[str, tuple[str, ...]]

  def __post_init__(self):
    super().__post_init__()
    standalone.edge_ops(self.genotype, self.config)  # a bad genotype fails here

  @classmethod
  def for_genotypes(cls, config: NetworkConfig, genotypes, **kwargs) -> "SpikingNetwork":
    """The network of ``genotypes`` ([4, 4] or [L, 4, 4] digits, or any form
    :func:`snnax_nas.network.network_genotypes` accepts), with its genotype
    field as canonical strings: one string when all cells agree, else
    ``|``-joined per-cell strings."""
    cells = genotype_lib.format_genotypes(standalone.network_genotypes(genotypes, config))
    text = cells[0] if len(set(cells)) == 1 else "|".join(cells)
    return cls(config, text, **kwargs)

  @nn.compact
  def __call__(self, images: jax.Array, *, train: bool, return_probes: bool = False,
               probe_mask: Optional[jax.Array] = None):
    """Forward pass over ``config.timesteps`` steps.

    Args:
      images: static images [B, H, W, C_in] (float32, normalised; the stem
        runs once and its output is fed at every timestep), or event frames
        [B, T' >= T, H, W, C_in] (the first T, one per timestep).
      train: batch statistics in BN (updating ``batch_stats``, which must
        then be mutable) and dropout (a ``"dropout"`` rng when
        ``config.dropout > 0``); False: running statistics, no dropout.
      return_probes: also return the spike counts of every LIF.
      probe_mask: optional float [B] weights of the batch rows in the
        probes (0 for padding rows).

    Returns:
      logits [B, num_classes] (the vote output averaged over time), or
      ``(logits, probes)`` with ``probes[lif] = {"spikes", "neurons"}``
      float32 scalars summed over time (spikes emitted; rows x neurons x T),
      named as the functional network's (``cell{l}/edge{e}/lif``,
      ``reduction/lif``, ``head/lif``, ``head/fc_lif``): what
      :func:`snnax_nas.train.metrics.firing_rates` reads.

    Raises:
      ValueError: images of the wrong shape, or fewer frames than timesteps.
    """
    cfg = self.config
    ops = standalone.edge_ops(self.genotype, cfg)
    if images.ndim not in (4, 5) or tuple(images.shape[-3:]) != tuple(cfg.input_shape):
      raise ValueError(f"images of shape {images.shape}; expected [B, *{cfg.input_shape}] or "
                       f"frames [B, T, *{cfg.input_shape}]")
    stem = Stem(cfg.width, cfg.stem_stride, name="stem")
    if images.ndim == 4:
      x = stem(images[None], train=train)
      xs = layers.repeat_over_time(x, cfg.timesteps)
    else:
      if images.shape[1] < cfg.timesteps:
        raise ValueError(f"{images.shape[1]} frames for {cfg.timesteps} timesteps")
      xs = stem(jnp.moveaxis(images[:, :cfg.timesteps], 1, 0), train=train)
    spikes = {}
    for l in range(cfg.num_cells):
      if l == cfg.cells_per_stage:
        xs, spikes["reduction/lif"] = Reduction(cfg.lif, name="reduction")(xs, train=train)
      xs, cell_spikes = Cell(ops[l], cfg.lif, name=f"cell_{l}")(xs, train=train)
      spikes.update({f"cell{l}/edge{e}/lif": s for e, s in cell_spikes.items()})
    logits, head_spikes = Head(cfg, name="head")(xs, train=train)
    if not return_probes:
      return logits
    spikes.update(head_spikes)
    return logits, {k: spike_counts(s, probe_mask, batch_axis=1) for k, s in spikes.items()}
