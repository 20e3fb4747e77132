"""The SNASNet macro skeleton, shared by the supernet and the standalone cells.

Per input batch (the SNASNet reference's ``model_snn.py``)::

  static_x = BN(conv3x3(images, stride))            # stem, once, no LIF
  for t in range(T):                                 # lax.scan
    (event frames [B, T', H, W, C]: the stem runs on frame t instead)
    x = cells of stage 1 (width C)                   # k cells, same genotype, own weights
    x = avgpool2(BN(conv3x3(LIF(BN(x)))))            # fixed reduction block, C -> 2C
    x = cells of stage 2 (width 2C)
    s = LIF(BN(x)); s = avgpool_{s2}(s); flatten (H, W, C order)
    h = LIF(dropout(s) @ fc1)                        # dropout mask fixed over T
    out_t = vote(h @ fc2 + b)                        # mean over groups of `vote_group`
  return mean_t out_t

:func:`forward` runs this around a cell implementation
(:mod:`snnax_nas.network.supernet`, :mod:`snnax_nas.network.standalone`);
:func:`cell_wiring` is the node graph both cell implementations share, and
:func:`network_genotypes` / :func:`edge_ops` the cells and edge ops of one
network, which every network implementation builds from.
:func:`forward_time_batched` computes the same network for cells without
backward edges, scoring only (batch statistics): every layer but the LIFs
runs once over the time-major activations of all T steps [T, B, H, W, C]
(one conv over T x B images), each LIF's membrane recursion is an
elementwise loop over T. A :class:`TimeLayout` tells a cell implementation
which of the two it is called from.

Layouts: images NHWC float32; conv kernels HWIO; dense kernels [in, out].
Cell ``l`` of ``L = 2 * cells_per_stage`` (stage-1 cells first).
Edge slots ``e`` follow :data:`snnax_nas.genotype.EDGES` (6 forward edges,
then 6 backward edges when ``cfg.backward``).

LIF "probes": every LIF call (one LIF at one timestep) is reported to a
``probe(spikes) -> pytree`` function; the forward pass returns the per-LIF sum
over time of ``active * probe(spikes)`` and of ``active`` (the call count).
The SAHD score and the spike-rate metrics (:func:`spike_counts`) are both
probes.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from typing import Callable
from typing import Optional
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from snnax_nas import callbacks
from snnax_nas import genotype as genotype_lib
from snnax_nas import neurons
from snnax_nas import ops as ops_lib
from snnax_nas.configs import NetworkConfig
from snnax_nas.layers import avg_pool
from snnax_nas.layers import batch_moments
from snnax_nas.layers import batch_norm
from snnax_nas.layers import bn_normalize
from snnax_nas.layers import conv2d
from snnax_nas.layers import dropout_mask

Params = Any
Probe = callbacks.SpikeProbe  # the Protocol, re-exported


def network_genotypes(genotypes, cfg: NetworkConfig) -> np.ndarray:
  """The canonical per-cell genotypes of ONE network, int8 [L, 4, 4].

  Args:
    genotypes: one genotype for every cell ([4, 4] digits or a genotype
      string) or one per cell ([L, 4, 4], a ``|``-joined string, or a
      sequence of L strings). Must be static (known at trace time): the
      network's structure is built from it in Python.
    cfg: the network config (op set, cells, whether backward edges are
      allowed).

  Raises:
    TypeError: ``genotypes`` is a traced (jit/vmap) value.
    ValueError: a bad shape, digit or string, or a backward edge with
      ``cfg.backward`` False (see :func:`snnax_nas.genotype.cell_genotypes`).
  """
  if isinstance(genotypes, str):
    batch = [genotypes]
  elif (isinstance(genotypes, (list, tuple)) and genotypes
        and all(isinstance(t, str) for t in genotypes)):
    batch = ["|".join(genotypes)]
  else:
    try:
      g = np.asarray(genotypes)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
      raise TypeError(
          "genotypes must be static (a numpy array, a genotype string or a tuple of "
          "strings known at trace time), got a traced value: close over them, or mark "
          "them static, e.g. jax.jit(f, static_argnames='genotypes') with a hashable "
          "form such as a genotype string") from None
    if g.ndim not in (2, 3):
      raise ValueError(f"genotypes of shape {g.shape}; expected (4, 4) or "
                       f"({cfg.num_cells}, 4, 4) for this config")
    batch = g[None]
  return genotype_lib.cell_genotypes(batch, cfg.ops, cfg.num_cells,
                                     allow_backward=cfg.backward)[0]


def edge_ops(genotypes, cfg: NetworkConfig) -> tuple[tuple[ops_lib.OpSpec, ...], ...]:
  """The op of every edge slot of every cell, ``[L][num_edges]`` (edge slots
  in :data:`snnax_nas.genotype.EDGES` order; ``zero`` for an absent edge).

  Args:
    genotypes: see :func:`network_genotypes`.
    cfg: the network config.
  """
  g = network_genotypes(genotypes, cfg)
  return tuple(tuple(cfg.ops.op_of_digit(int(g[l][i, j]))
                     for i, j in genotype_lib.EDGES[:cfg.num_edges])
               for l in range(cfg.num_cells))


def call_probe(probe: Probe, spikes: jax.Array, membrane: jax.Array):
  """``probe(spikes)``, or ``probe(spikes, membrane)`` for a probe with a true
  ``takes_membrane`` attribute; ``membrane`` is the LIF's charged potential
  before fire and reset (:func:`snnax_nas.neurons.lif_charge`), shaped as
  ``spikes``. Unused membranes cost nothing (XLA drops them)."""
  if getattr(probe, "takes_membrane", False):
    return probe(spikes, membrane)
  return probe(spikes)


def spike_counts(spikes: jax.Array, mask: Optional[jax.Array] = None,
                 batch_axis: int = 0) -> dict:
  """Spikes emitted and neurons seen by one LIF: the spike-rate probe of both
  network implementations (:func:`snnax_nas.train.spike_probe` of the
  functional one, per timestep; the flax Module's ``return_probes``, over all
  timesteps at once).

  Args:
    spikes: binary spikes, the batch on ``batch_axis`` (e.g. [B, ...] of one
      timestep, or [T, B, ...] with ``batch_axis=1``).
    mask: optional float [B] weights of the batch rows (0 for padding).
    batch_axis: the batch axis of ``spikes``.

  Returns:
    ``{"spikes", "neurons"}`` float32 scalars: the spikes of the (unmasked)
    rows, and rows x neurons per row x the size of the axes before the batch.
  """
  lead = int(np.prod(spikes.shape[:batch_axis]))
  per_row = spikes.size // (lead * spikes.shape[batch_axis])
  if mask is None:
    # Exact: float32 sums of 0/1 values are exact integers below 2^24, so each
    # row (one sample at one step) is summed in float32 and the rows in int32.
    # XLA:CPU sums float32 ~6x faster than it converts and sums int32 (1.2 vs
    # 0.2 ms for [3, 64, 32, 32, 16]), once per LIF per training step.
    if per_row < 2 ** 24:
      rows = spikes.reshape(lead * spikes.shape[batch_axis], per_row).sum(1)
      total = rows.astype(jnp.int32).sum()
    else:
      total = spikes.astype(jnp.int32).sum()
    return {"spikes": total.astype(jnp.float32), "neurons": jnp.float32(spikes.size)}
  w = mask.reshape((1,) * batch_axis + (-1,) + (1,) * (spikes.ndim - batch_axis - 1))
  return {"spikes": (spikes * w).sum(), "neurons": lead * mask.sum() * per_row}


class _Recorder:
  """Collects ``(active * probe(spikes), calls * active)`` of each LIF in one
  step, or over all ``calls`` timesteps at once (the values then summed over
  them by the caller)."""

  def __init__(self, probe: Optional[Probe], calls: int = 1):
    self.probe = probe
    self.calls = calls
    self.values, self.counts = {}, {}

  def zeros(self, spikes_shape) -> Any:
    out = jax.eval_shape(lambda s: call_probe(self.probe, s, s),
                         jax.ShapeDtypeStruct(spikes_shape, jnp.float32))
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out)

  def add(self, name: str, value: Any, active=1.0):
    active = jnp.asarray(active, jnp.float32)
    self.values[name] = jax.tree.map(lambda v: active * v, value)
    self.counts[name] = self.calls * active

  def record(self, name: str, spikes: jax.Array, membrane: jax.Array):
    if self.probe is not None:
      self.add(name, call_probe(self.probe, spikes, membrane))


def cell_wiring(x0: jax.Array, feedback: Optional[Sequence[jax.Array]],
                edge_fn: Callable[[int, jax.Array], Optional[jax.Array]],
                backward: bool):
  """The node graph of a cell (the reference's ``searchcells/search_cell_snn.py``),
  shared by both cell implementations.

  Nodes 1..3 sum their incoming forward edges. With backward edges, the
  feedback state ``s_i`` computed at t-1 is added to node ``i`` (i < 3) for
  every edge that reads it, and new states are the sums of the backward edges
  into each node.

  Args:
    x0: the cell input [B, H, W, C].
    feedback: (s0, s1, s2) from the previous timestep, or None (forward cell).
    edge_fn: ``edge_fn(e, u)`` applies edge slot ``e`` to its input ``u``;
      returns None for an absent edge.
    backward: whether to compute the backward edges.

  Returns:
    ``(x3, new_feedback)``; ``new_feedback`` is None for a forward cell.
  """
  fb = feedback if feedback is not None else (None, None, None)

  def total(terms):
    terms = [t for t in terms if t is not None]
    return sum(terms[1:], terms[0]) if terms else jnp.zeros_like(x0)

  nodes = [x0]

  def read(i):
    return nodes[i] if i == 3 or fb[i] is None else nodes[i] + fb[i]

  edges = genotype_lib.EDGES
  for j in (1, 2, 3):
    nodes.append(total([edge_fn(e, read(i)) for e, (i, jj) in enumerate(edges[:6]) if jj == j]))
  if not backward:
    return nodes[3], None
  new_fb = tuple(
      total([edge_fn(6 + e, read(j)) for e, (j, ii) in enumerate(edges[6:]) if ii == i])
      for i in (0, 1, 2))
  return nodes[3], new_fb


def forward(params: Params, images: jax.Array, key: Optional[jax.Array],
            cfg: NetworkConfig, cell_fn, cell_state0, *, train: bool,
            batch_stats: Optional[Params], probe: Optional[Probe],
            per_layer: bool, unroll_time: bool = False):
  """The skeleton of the module docstring around a cell implementation.

  Args:
    params: ``{"stem", "reduction", "head", "cells"}`` (see
      :func:`snnax_nas.network.variables.fixed_param_specs`; ``cells`` is
      the cell implementation's).
    images: [B, H, W, C_in], or event frames [B, T' >= T, H, W, C_in].
    key: dropout key, or None (no dropout).
    cfg: the network config.
    cell_fn: ``cell_fn(l, x, state_l, stats_l, rec, bn) -> (y, state_l,
      stats_l)`` computes cell ``l`` on ``x`` [B, H_l, W_l, C_l] at one step.
    cell_state0: ``cell_state0[l]`` is cell ``l``'s initial state.
    train, batch_stats, probe, per_layer, unroll_time: see
      :func:`snnax_nas.network.standalone.standalone_forward`.

  Returns:
    ``(logits [B, num_classes], aux)`` with ``aux["batch_stats"]`` and
    ``aux["probes"]``.
  """
  b = images.shape[0]
  keep_stats = batch_stats is not None
  bn_train = train or not keep_stats  # scoring uses batch statistics

  def bn(x, p, s):
    # Without running statistics this is a scoring pass at initialisation:
    # the one-pass variance is safe there (see batch_norm).
    return batch_norm(x, p, s, train=bn_train, one_pass=not keep_stats)

  def stats_of(*path):
    node = batch_stats
    for k in path:
      node = None if node is None else node[k]
    return node

  def stem(x, stats):
    return bn(conv2d(x, params["stem"]["conv"]["kernel"], cfg.stem_stride),
              params["stem"]["bn"], stats)

  # Static images: the stem runs once and its analog output is fed at every
  # timestep (direct encoding). Frames [B, T', H, W, C] (event data): the stem
  # runs on frame t at timestep t, with per-timestep BN like the other layers.
  framed = images.ndim == 5
  frames = static_x = stem_stats = None
  if framed:
    if images.shape[1] != cfg.timesteps:  # never drop frames silently
      raise ValueError(
          f"{images.shape[1]} frames for {cfg.timesteps} timesteps: feed exactly T frames "
          "(snnax_nas.data.bin_frames sums F frames into T, or load the events with "
          "n_time_bins=T)")
    frames = jnp.moveaxis(images, 1, 0)
  else:
    static_x, stem_stats = stem(images, stats_of("stem", "bn"))

  drop_mask = None
  if train and cfg.dropout > 0:
    if key is None:
      raise ValueError("train=True with dropout > 0 needs a PRNG key")
    drop_mask = dropout_mask(key, cfg.dropout, (b, cfg.classifier_in))

  (h1, w1, c1), (h2, w2, c2) = cfg.stage_shapes
  v0 = {"reduction": zeros((b, h1, w1, c1)), "head": zeros((b, h2, w2, c2)),
        "fc": zeros((b, cfg.hidden))}
  stats0 = None
  if keep_stats:
    stats0 = {k: batch_stats[k] for k in ("reduction", "cells", "head")}
    if framed:
      stats0["stem"] = batch_stats["stem"]
  lif = cfg.lif

  def step(carry, frame):
    v, cell_states, stats = carry
    rec = _Recorder(probe)
    new_v, new_states, new_cell_stats = {}, [], []
    x = static_x
    if framed:
      x, s_stem = stem(frame, stats and stats["stem"]["bn"])
    for l in range(cfg.num_cells):
      if l == cfg.cells_per_stage:  # the fixed reduction block between stages
        r = params["reduction"]
        y, s_in = bn(x, r["bn_in"], stats and stats["reduction"]["bn_in"])
        new_v["reduction"], spikes = neurons.lif_step(v["reduction"], y, lif)
        rec.record("reduction/lif", spikes, neurons.lif_charge(v["reduction"], y, lif))
        y, s_out = bn(conv2d(spikes, r["conv"]["kernel"]), r["bn_out"],
                      stats and stats["reduction"]["bn_out"])
        x = avg_pool(y, 2)
      x, state, cstats = cell_fn(l, x, cell_states[l], stats and stats["cells"][l], rec, bn)
      new_states.append(state)
      new_cell_stats.append(cstats)
    hd = params["head"]
    y, s_head = bn(x, hd["bn"], stats and stats["head"]["bn"])
    new_v["head"], spikes = neurons.lif_step(v["head"], y, lif)
    rec.record("head/lif", spikes, neurons.lif_charge(v["head"], y, lif))
    y = avg_pool(spikes, cfg.second_pool).reshape(b, -1)
    if drop_mask is not None:
      y = y * drop_mask
    fc_in = y @ hd["fc1"]["kernel"]
    new_v["fc"], spikes = neurons.lif_step(v["fc"], fc_in, lif)
    rec.record("head/fc_lif", spikes, neurons.lif_charge(v["fc"], fc_in, lif))
    out = spikes @ hd["fc2"]["kernel"] + hd["fc2"]["bias"]
    out = out.reshape(b, cfg.num_classes, cfg.vote_group).mean(-1)
    new_stats = None
    if keep_stats:
      new_stats = {"reduction": {"bn_in": s_in, "bn_out": s_out},
                   "cells": new_cell_stats, "head": {"bn": s_head}}
      if framed:
        new_stats["stem"] = {"bn": s_stem}
    recorded = None
    if probe is not None:
      recorded = (rec.values, rec.counts)
      if not per_layer:
        recorded = jax.tree.map(lambda *xs: sum(xs[1:], xs[0]),
                                *[(rec.values[k], rec.counts[k]) for k in rec.values])
    return (new_v, new_states, new_stats), (out, recorded)

  (_, _, stats), (outs, recorded) = jax.lax.scan(
      step, (v0, cell_state0, stats0), frames, length=cfg.timesteps, unroll=unroll_time)
  logits = outs.mean(0)
  aux = {"batch_stats": None, "probes": None}
  if keep_stats:
    aux["batch_stats"] = stats if framed else dict(stats, stem={"bn": stem_stats})
  if probe is not None:
    values, counts = jax.tree.map(lambda a: a.sum(0), recorded)
    aux["probes"] = {"values": values, "counts": counts}
  return logits, aux


def over_time(fn: Callable[[jax.Array], jax.Array], xs: jax.Array) -> jax.Array:
  """``fn`` of NHWC images [N, ...] applied to time-major ``xs`` [T, B, ...] as
  one call on the T x B images (one convolution instead of T)."""
  y = fn(xs.reshape((-1,) + xs.shape[2:]))
  return y.reshape(xs.shape[:2] + y.shape[1:])


def lif_over_time(v0: jax.Array, xs: jax.Array, lif: neurons.LIFConfig):
  """A LIF from membrane ``v0`` [...] over time-major inputs ``xs`` [T, ...].

  Returns:
    ``(v_T [...], spikes [T, ...], membranes [T, ...])``: the membrane after
    the last step, the spikes, and each step's charged membrane
    (:func:`snnax_nas.neurons.lif_charge`, for probes that read it; dropped
    by XLA when none does).

  The few, static timesteps are unrolled: the recursion is elementwise, so
  XLA fuses it into one pass over ``xs`` (a ``lax.scan`` would be a loop of
  T small kernels).
  """
  v, spikes, membranes = v0, [], []
  for t in range(xs.shape[0]):
    membranes.append(neurons.lif_charge(v, xs[t], lif))
    v, s = neurons.lif_step(v, xs[t], lif)
    spikes.append(s)
  return v, jnp.stack(spikes), jnp.stack(membranes)


def probe_over_time(probe: Probe, spikes: jax.Array, membranes: jax.Array):
  """The sum over timesteps of :func:`call_probe` of each step's spikes and
  membranes [T, B, ...]: the T calls of one LIF, one probe call each."""
  total = None
  for t in range(spikes.shape[0]):
    v = call_probe(probe, spikes[t], membranes[t])
    total = v if total is None else jax.tree.map(jnp.add, total, v)
  return total


def batch_norm_per_step(xs: jax.Array, p: Params) -> jax.Array:
  """Batch norm of time-major ``xs`` [T, B, ..., C], each timestep with its own
  batch statistics, exactly the statistics :func:`forward`'s scoring pass
  takes per step (one-pass variance, see :func:`snnax_nas.layers.batch_norm`).

  Args:
    xs: activations [T, B, ..., C].
    p: ``{"scale": [C], "bias": [C]}`` (other entries ignored).
  """
  mean, var = batch_moments(xs, tuple(range(1, xs.ndim - 1)), one_pass=True)  # [T, C]
  shape = (xs.shape[0],) + (1,) * (xs.ndim - 2) + (xs.shape[-1],)
  return bn_normalize(xs, mean.reshape(shape), var.reshape(shape), p)


@dataclasses.dataclass(frozen=True)
class TimeLayout:
  """How a cell implementation sees time.

  ``time_batched`` False: one timestep's activations [B, H, W, C] per call,
  from :func:`forward`. True: all T timesteps at once, time-major [T, B, H,
  W, C], from :func:`forward_time_batched`. The methods are the operations a
  cell needs that differ between the two.
  """

  time_batched: bool = False

  def lif(self, v: jax.Array, u: jax.Array, lif: neurons.LIFConfig):
    """``(v_next, spikes, charged membrane)`` of a LIF from membrane ``v``
    [B, ...] on input ``u`` (one step, or all steps: ``v_next`` after the
    last)."""
    if self.time_batched:
      return lif_over_time(v, u, lif)
    membrane = neurons.lif_charge(v, u, lif)
    v, spikes = neurons.lif_step(v, u, lif)
    return v, spikes, membrane

  def spatial(self, fn: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
    """An op of NHWC images (conv, pooling) applied to ``x``."""
    return over_time(fn, x) if self.time_batched else fn(x)

  def probe(self, probe: Probe, spikes: jax.Array, membrane: jax.Array):
    """The probe output of one LIF's spikes, summed over the steps ``spikes``
    holds."""
    if self.time_batched:
      return probe_over_time(probe, spikes, membrane)
    return call_probe(probe, spikes, membrane)

  def call_shape(self, x: jax.Array) -> tuple[int, ...]:
    """The shape of one LIF call's spikes [B, H, W, C] for activations ``x``."""
    return x.shape[1:] if self.time_batched else x.shape


def forward_time_batched(params: Params, images: jax.Array, key: Optional[jax.Array],
                         cfg: NetworkConfig, cell_fn, cell_state0, *, train: bool,
                         probe: Optional[Probe], per_layer: bool):
  """:func:`forward` without running statistics (a scoring pass), for cells
  without backward edges, with every layer run once over all timesteps.

  A forward-only network has no recurrence but each LIF's membrane, so the
  convs, pools, BNs and the classifier's matmuls run on time-major
  activations [T, B, ...] (the convs as one conv over T x B images), BN with
  each timestep's own batch statistics (:func:`batch_norm_per_step`), and
  each LIF is an elementwise loop over T (:func:`lif_over_time`). Same
  values as :func:`forward` with ``batch_stats=None``, up to float summation
  order (tests/test_network.py).

  Args:
    params, images, key, cfg, train, probe, per_layer: as :func:`forward`
      (``train``: dropout only; BN always uses batch statistics).
    cell_fn: ``cell_fn(l, xs, state_l, None, rec, bn) -> (ys, state_l, _)``
      computes cell ``l`` on ``xs`` [T, B, H_l, W_l, C_l] over all steps
      (``bn(x, p, None) -> (y, None)`` normalises per timestep); called with
      ``TimeLayout(time_batched=True)`` semantics.
    cell_state0: ``cell_state0[l]`` is cell ``l``'s initial state (its
      membranes [B, ...]).

  Returns:
    ``(logits [B, num_classes], aux)``; ``aux["batch_stats"]`` is None and
    ``aux["probes"]`` holds the probe sums over timesteps.
  """
  b, steps = images.shape[0], cfg.timesteps

  def bn(x, p, _stats=None):
    return batch_norm_per_step(x, p), None

  stem_conv = lambda x: conv2d(x, params["stem"]["conv"]["kernel"], cfg.stem_stride)  # noqa: E731
  if images.ndim == 5:  # event frames: the stem runs on every frame
    if images.shape[1] != steps:
      raise ValueError(
          f"{images.shape[1]} frames for {steps} timesteps: feed exactly T frames "
          "(snnax_nas.data.bin_frames sums F frames into T, or load the events with "
          "n_time_bins=T)")
    xs = batch_norm_per_step(over_time(stem_conv, jnp.moveaxis(images, 1, 0)),
                             params["stem"]["bn"])
  else:  # static images: the stem runs once, its output is fed at every step
    x = batch_norm(stem_conv(images), params["stem"]["bn"], None, one_pass=True)[0]
    xs = jnp.broadcast_to(x, (steps,) + x.shape)

  drop_mask = None
  if train and cfg.dropout > 0:
    if key is None:
      raise ValueError("train=True with dropout > 0 needs a PRNG key")
    drop_mask = dropout_mask(key, cfg.dropout, (b, cfg.classifier_in))

  rec = _Recorder(probe, calls=steps)
  lif = cfg.lif

  def fire(name, u):
    _, spikes, membranes = lif_over_time(zeros(u.shape[1:]), u, lif)
    if probe is not None:
      rec.add(name, probe_over_time(probe, spikes, membranes))
    return spikes

  for l in range(cfg.num_cells):
    if l == cfg.cells_per_stage:  # the fixed reduction block between stages
      r = params["reduction"]
      spikes = fire("reduction/lif", batch_norm_per_step(xs, r["bn_in"]))
      y = batch_norm_per_step(over_time(lambda s: conv2d(s, r["conv"]["kernel"]), spikes),
                              r["bn_out"])
      xs = over_time(lambda y: avg_pool(y, 2), y)
    xs, _, _ = cell_fn(l, xs, cell_state0[l], None, rec, bn)
  hd = params["head"]
  spikes = fire("head/lif", batch_norm_per_step(xs, hd["bn"]))
  y = over_time(lambda s: avg_pool(s, cfg.second_pool), spikes).reshape(steps, b, -1)
  if drop_mask is not None:
    y = y * drop_mask
  spikes = fire("head/fc_lif", y @ hd["fc1"]["kernel"])
  out = spikes @ hd["fc2"]["kernel"] + hd["fc2"]["bias"]
  logits = out.reshape(steps, b, cfg.num_classes, cfg.vote_group).mean(-1).mean(0)
  aux = {"batch_stats": None, "probes": None}
  if probe is not None:
    values, counts = rec.values, rec.counts
    if not per_layer:
      values, counts = jax.tree.map(lambda *xs: sum(xs[1:], xs[0]),
                                    *[(values[k], counts[k]) for k in values])
    aux["probes"] = {"values": values, "counts": counts}
  return logits, aux


def zeros(shape) -> jax.Array:
  """float32 zeros (an initial membrane or feedback state)."""
  return jnp.zeros(shape, jnp.float32)
