"""The SNASNet macro skeleton, as pure functions over parameter pytrees.

Per input batch (reference ``model_snn.py``; spec §1)::

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

Two cell implementations share this skeleton:

* the **supernet** cell (:func:`supernet_forward`): the architecture enters as
  data, per-edge op weights ``arch`` [L, E, O] (one-hot for a genotype,
  normalised multi-hot for a pruning supernet). Every op of the op set has
  parameters on every edge; an op whose weight is zero is skipped with
  ``lax.cond`` (a real branch under ``lax.map``; under ``vmap`` it becomes a
  select and everything is computed).
* the **standalone** cell (:func:`standalone_forward`): one genotype built
  alone, only its chosen ops, one LIF per conv edge, no masks. It is the
  network one trains, and the obviously-correct path the supernet is tested
  against.

Layouts: images NHWC float32; conv kernels HWIO; dense kernels [in, out].
Cell ``l`` of ``L = 2 * cells_per_stage`` (stage-1 cells first).
Edge slots ``e`` follow :data:`snnax_nas.genotype.EDGES` (6 forward edges,
then 6 backward edges when ``cfg.backward``).

LIF "probes": every LIF call (one LIF at one timestep) is reported to a
``probe(spikes) -> pytree`` function; the forward pass returns the per-LIF sum
over time of ``active * probe(spikes)`` and of ``active`` (the call count).
The SAHD score and the spike-rate metrics are both probes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from snnax_nas import genotype as genotype_lib
from snnax_nas import neurons
from snnax_nas import ops as ops_lib
from snnax_nas.configs import PRESETS, NetworkConfig, network_config  # noqa: F401  (re-exported)

Params = Any
Probe = Callable[[jax.Array], Any]

BN_EPS = 1e-5
BN_MOMENTUM = 0.1  # PyTorch convention: new = (1 - m) * old + m * batch.


# ----------------------------------------------------------------------------
# Layers.

@dataclasses.dataclass(frozen=True)
class ParamSpec:
  """Shape and initialiser of one parameter array.

  ``init``: ``"conv"`` (HWIO, kaiming_uniform(a=2): U(+-sqrt(1.2 / fan_in)),
  fan_in = k*k*C_in), ``"dense"`` (N(0, 0.01^2)), ``"ones"`` or ``"zeros"``.
  """

  shape: tuple[int, ...]
  init: str


def _is_spec(x) -> bool:
  return isinstance(x, ParamSpec)


def materialize(key: jax.Array, specs) -> Params:
  """Initialises a tree of :class:`ParamSpec` from ONE uniform draw.

  A single random call for all weights keeps compile time low when a fresh
  network is initialised inside a compiled scorer for every candidate.
  """
  leaves, treedef = jax.tree.flatten(specs, is_leaf=_is_spec)
  random = [s for s in leaves if s.init in ("conv", "dense")]
  total = sum(int(np.prod(s.shape)) for s in random)
  u = jax.random.uniform(key, (max(total, 1),), jnp.float32,
                         minval=np.nextafter(np.float32(-1), np.float32(0)), maxval=1.0)
  out, offset = [], 0
  for s in leaves:
    if s.init == "ones":
      out.append(jnp.ones(s.shape, jnp.float32))
    elif s.init == "zeros":
      out.append(jnp.zeros(s.shape, jnp.float32))
    else:
      size = int(np.prod(s.shape))
      x = u[offset:offset + size].reshape(s.shape)
      offset += size
      if s.init == "conv":
        fan_in = int(np.prod(s.shape[-4:-1]))
        out.append(x * np.float32(np.sqrt(1.2 / fan_in)))
      elif s.init == "dense":
        out.append(np.float32(0.01 * np.sqrt(2.0)) * jax.lax.erf_inv(x))
      else:
        raise ValueError(f"unknown initialiser {s.init!r}")
  return jax.tree.unflatten(treedef, out)


def conv2d(x: jax.Array, kernel: jax.Array, stride: int = 1) -> jax.Array:
  """'Same'-padded NHWC convolution with an HWIO kernel, no bias."""
  pad = kernel.shape[0] // 2
  return jax.lax.conv_general_dilated(
      x, kernel, (stride, stride), [(pad, pad), (pad, pad)],
      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def pool3x3(x: jax.Array, kind: str) -> jax.Array:
  """Stride-1 3x3 pooling with padding 1 (avg counts the zero padding, as
  PyTorch's default ``count_include_pad=True``), NHWC.

  Written as nine shifted slices of the padded input, summed in the window's
  row-major order: XLA fuses this into one elementwise pass and it is
  bit-identical to ``lax.reduce_window`` here, which XLA:CPU runs ~5x slower.
  """
  _, h, w, _ = x.shape
  pad_value = 0.0 if kind == "avgpool" else -jnp.inf
  p = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=pad_value)
  combine = jnp.add if kind == "avgpool" else jnp.maximum
  out = None
  for i in range(3):
    for j in range(3):
      s = p[:, i:i + h, j:j + w]
      out = s if out is None else combine(out, s)
  return out / 9.0 if kind == "avgpool" else out


def avg_pool(x: jax.Array, size: int) -> jax.Array:
  """Non-overlapping size x size average pooling, NHWC."""
  if size == 1:
    return x
  if size == 2:
    # Strided slices fuse with the producer (the reduction block's BN) into
    # one pass; a reshape-mean is a separate reduction (~1.5x slower there).
    # Summed in the order XLA:CPU's mean uses, so results are unchanged.
    s = lambda i, j: x[:, i::2, j::2]
    return ((s(0, 0) + s(0, 1)) + (s(1, 0) + s(1, 1))) / 4.0
  b, h, w, c = x.shape
  return x.reshape(b, h // size, size, w // size, size, c).mean(axis=(2, 4))


def batch_norm(x: jax.Array, p: Params, stats: Optional[Params] = None,
               train: bool = True, one_pass: bool = False):
  """Batch norm over all axes but the last.

  Args:
    x: activations [..., C].
    p: ``{"scale": [C], "bias": [C]}``.
    stats: running ``{"mean": [C], "var": [C]}`` or None (scoring keeps none).
    train: normalise with batch statistics (and update ``stats``) or with the
      running statistics.
    one_pass: batch variance as ``E[x^2] - E[x]^2``: one read of ``x`` for
      both moments instead of two (5-8 % of the scorer's time). Exact enough
      only while ``|mean| / std`` stays small (relative error ~1e-5 at 10,
      ~2e-3 at 100): true of networks at initialisation, whose conv weights
      have zero mean, so the scorer uses it; training does not.

  Returns:
    ``(y, new_stats)``; ``new_stats`` is None when ``stats`` is None.
  """
  axes = tuple(range(x.ndim - 1))
  if train:
    mean = x.mean(axes)
    if one_pass:  # XLA fuses the two sibling reductions into one pass
      var = jnp.maximum(jnp.mean(jnp.square(x), axes) - jnp.square(mean), 0.0)
    else:
      var = jnp.mean(jnp.square(x - mean), axes)
    new_stats = None
    if stats is not None:
      n = x.size // x.shape[-1]
      new_stats = {
          "mean": (1 - BN_MOMENTUM) * stats["mean"] + BN_MOMENTUM * mean,
          "var": (1 - BN_MOMENTUM) * stats["var"] + BN_MOMENTUM * var * n / max(n - 1, 1),
      }
  else:
    if stats is None:
      raise ValueError("batch_norm(train=False) needs running statistics")
    mean, var, new_stats = stats["mean"], stats["var"], stats
  y = (x - mean) * jax.lax.rsqrt(var + BN_EPS) * p["scale"] + p["bias"]
  return y, new_stats


def _bn_spec(c: int, lead: tuple[int, ...] = ()):
  return {"scale": ParamSpec(lead + (c,), "ones"), "bias": ParamSpec(lead + (c,), "zeros")}


def init_batch_stats(params: Params) -> Params:
  """Fresh running BN statistics (mean 0, var 1) mirroring ``params``.

  Every dict holding ``scale`` (a BN affine, possibly beside a conv
  ``kernel``) gets ``{"mean", "var"}``; subtrees without a BN are dropped.
  """
  def walk(node):
    if isinstance(node, dict):
      if "scale" in node:
        return {"mean": jnp.zeros_like(node["scale"]), "var": jnp.ones_like(node["scale"])}
      out = {k: walk(v) for k, v in node.items()}
      return {k: v for k, v in out.items() if v is not None} or None
    if isinstance(node, (list, tuple)):
      return [walk(v) or {} for v in node]
    return None
  return walk(params)


# ----------------------------------------------------------------------------
# Fixed (candidate-independent in structure) parts.

# ----------------------------------------------------------------------------
# The skeleton.

def fixed_param_specs(cfg: NetworkConfig):
  """:class:`ParamSpec` tree of everything but the cells: stem, reduction, head."""
  c, cin = cfg.width, cfg.input_shape[2]
  return {
      "stem": {"conv": {"kernel": ParamSpec((3, 3, cin, c), "conv")}, "bn": _bn_spec(c)},
      "reduction": {"bn_in": _bn_spec(c),
                    "conv": {"kernel": ParamSpec((3, 3, c, 2 * c), "conv")},
                    "bn_out": _bn_spec(2 * c)},
      "head": {"bn": _bn_spec(2 * c),
               "fc1": {"kernel": ParamSpec((cfg.classifier_in, cfg.hidden), "dense")},
               "fc2": {"kernel": ParamSpec((cfg.hidden, cfg.num_outputs), "dense"),
                       "bias": ParamSpec((cfg.num_outputs,), "zeros")}},
  }


class _Recorder:
  """Collects ``(active * probe(spikes), active)`` of each LIF in one step."""

  def __init__(self, probe: Optional[Probe]):
    self.probe = probe
    self.values, self.counts = {}, {}

  def zeros(self, spikes_shape) -> Any:
    out = jax.eval_shape(self.probe, jax.ShapeDtypeStruct(spikes_shape, jnp.float32))
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out)

  def add(self, name: str, value: Any, active=1.0):
    active = jnp.asarray(active, jnp.float32)
    self.values[name] = jax.tree.map(lambda v: active * v, value)
    self.counts[name] = active

  def record(self, name: str, spikes: jax.Array):
    if self.probe is not None:
      self.add(name, self.probe(spikes))


def cell_wiring(x0: jax.Array, feedback: Optional[Sequence[jax.Array]],
                edge_fn: Callable[[int, jax.Array], Optional[jax.Array]],
                backward: bool):
  """The node graph of a cell (spec §2), shared by both cell implementations.

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


def _forward(params: Params, images: jax.Array, key: Optional[jax.Array],
             cfg: NetworkConfig, cell_fn, cell_state0, *, train: bool,
             batch_stats: Optional[Params], probe: Optional[Probe],
             per_layer: bool, unroll_time: bool = False):
  """The skeleton of the module docstring around a cell implementation.

  ``cell_fn(l, x, state_l, stats_l, rec, bn) -> (y, state_l, stats_l)``
  computes cell ``l``; ``cell_state0[l]`` is its initial state.
  ``unroll_time`` unrolls the time ``lax.scan`` (see :func:`standalone_forward`).
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
    if images.shape[1] < cfg.timesteps:
      raise ValueError(f"{images.shape[1]} frames for {cfg.timesteps} timesteps")
    frames = jnp.moveaxis(images[:, :cfg.timesteps], 1, 0)
  else:
    static_x, stem_stats = stem(images, stats_of("stem", "bn"))

  drop_mask = None
  if train and cfg.dropout > 0:
    if key is None:
      raise ValueError("train=True with dropout > 0 needs a PRNG key")
    keep = jax.random.bernoulli(key, 1.0 - cfg.dropout, (b, cfg.classifier_in))
    drop_mask = keep.astype(jnp.float32) / (1.0 - cfg.dropout)

  (h1, w1, c1), (h2, w2, c2) = cfg.stage_shapes
  v0 = {"reduction": _zeros((b, h1, w1, c1)), "head": _zeros((b, h2, w2, c2)),
        "fc": _zeros((b, cfg.hidden))}
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
        rec.record("reduction/lif", spikes)
        y, s_out = bn(conv2d(spikes, r["conv"]["kernel"]), r["bn_out"],
                      stats and stats["reduction"]["bn_out"])
        x = avg_pool(y, 2)
      x, state, cstats = cell_fn(l, x, cell_states[l], stats and stats["cells"][l], rec, bn)
      new_states.append(state)
      new_cell_stats.append(cstats)
    hd = params["head"]
    y, s_head = bn(x, hd["bn"], stats and stats["head"]["bn"])
    new_v["head"], spikes = neurons.lif_step(v["head"], y, lif)
    rec.record("head/lif", spikes)
    y = avg_pool(spikes, cfg.second_pool).reshape(b, -1)
    if drop_mask is not None:
      y = y * drop_mask
    new_v["fc"], spikes = neurons.lif_step(v["fc"], y @ hd["fc1"]["kernel"], lif)
    rec.record("head/fc_lif", spikes)
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


def _zeros(shape) -> jax.Array:
  return jnp.zeros(shape, jnp.float32)


# ----------------------------------------------------------------------------
# Supernet cells: the architecture as data.

def _conv_ops(cfg: NetworkConfig):
  """[(digit_index o, OpSpec)] of the conv ops, grouped by LIF threshold."""
  ops = cfg.ops.nonzero_ops
  return [[(o, op) for o, op in enumerate(ops) if op.has_lif and op.threshold == thr]
          for thr in cfg.ops.lif_thresholds]


def supernet_param_specs(cfg: NetworkConfig):
  """:class:`ParamSpec` tree of the supernet: every conv op on every edge.

  ``cells[l][op_name]`` holds ``kernel`` [E, k, k, C_l, C_l], ``scale`` and
  ``bias`` [E, C_l] (the conv's BN affine).
  """
  specs = fixed_param_specs(cfg)
  specs["cells"] = [
      {op.name: dict(kernel=ParamSpec((cfg.num_edges, op.kernel, op.kernel, c, c), "conv"),
                     **_bn_spec(c, (cfg.num_edges,)))
       for op in cfg.ops.nonzero_ops if op.has_lif}
      for (_, _, c) in cfg.cell_shapes]
  return specs


def init_supernet_params(key: jax.Array, cfg: NetworkConfig) -> Params:
  """Fresh supernet parameters (see :func:`supernet_param_specs`)."""
  return materialize(key, supernet_param_specs(cfg))


def _sources(cfg: NetworkConfig) -> tuple[int, ...]:
  """Nodes that feed at least one edge slot, in the order they complete."""
  return tuple(sorted({i for i, _ in genotype_lib.EDGES[:cfg.num_edges]}))


def _supernet_cell_state(cfg: NetworkConfig, batch: int):
  """Initial state of each supernet cell.

  ``v[k][g]`` is the membrane [B, H, W, C] of the LIF of threshold group
  ``g`` on the edges leaving source node ``_sources(cfg)[k]``: all those edges
  read the same node value from the same zero start, so their per-edge LIFs
  would hold identical membranes and emit identical spikes; one serves all.
  """
  groups = len(cfg.ops.lif_thresholds)
  states = []
  for h, w, c in cfg.cell_shapes:
    state = {"v": tuple(tuple(_zeros((batch, h, w, c)) for _ in range(groups))
                        for _ in _sources(cfg))}
    if cfg.backward:
      state["fb"] = tuple(_zeros((batch, h, w, c)) for _ in range(3))
    states.append(state)
  return states


def supernet_forward(params: Params, arch: jax.Array, images: jax.Array,
                     key: Optional[jax.Array], cfg: NetworkConfig, *,
                     probe: Optional[Probe] = None, per_layer: bool = False,
                     train: bool = True):
  """Forward pass of the supernet with op weights ``arch``, batch-stat BN.

  Args:
    params: from :func:`init_supernet_params`.
    arch: per-edge op weights [L, E, O] (or [E, O], shared by all cells);
      ``O = len(cfg.ops.nonzero_ops)``. Edge output = sum_o arch[e, o] op_o(u);
      an all-zero row is an absent edge.
    images: [B, H, W, C_in], or event frames [B, T' >= T, H, W, C_in].
    key: dropout key (None with ``train=False`` disables dropout).
    cfg: the network config.
    probe: LIF probe; a conv edge's LIF counts as a call only where one of
      its conv ops has non-zero weight.
    per_layer: return probe sums per LIF name (``cell{l}/edge{e}/lif{g}``
      for the cells) instead of summed over LIFs.
    train: dropout on (BN always uses batch statistics here).

  Returns:
    ``(logits [B, num_classes], aux)``; ``aux["probes"]`` holds
    ``{"values", "counts"}`` summed over timesteps.

  Cost model (why it is built this way): the cell is unrolled over its
  source nodes. Every edge leaving node ``i`` reads the same value, so the
  edges' LIFs (per threshold group), their probes (Gram matmuls) and their
  pools are computed once per node and weighted by the number of active
  edges: exactly the per-edge values, without the repeats. Each optional
  piece sits in a ``lax.cond`` whose false branch returns the node
  accumulators unchanged, which XLA runs without a copy; a branch that
  returns fresh zeros (or a scan over edge slots with dynamic slicing)
  costs full passes over the activations even when the op is off.
  """
  arch = jnp.asarray(arch, jnp.float32)
  if arch.ndim == 2:
    arch = jnp.broadcast_to(arch, (cfg.num_cells,) + arch.shape)
  expect = (cfg.num_cells, cfg.num_edges, len(cfg.ops.nonzero_ops))
  if arch.shape != expect:
    raise ValueError(f"arch has shape {arch.shape}, expected {expect} for this config")
  ops = cfg.ops.nonzero_ops
  groups = _conv_ops(cfg)
  edges = genotype_lib.EDGES[:cfg.num_edges]
  # Destination of edge (i, j): node j for a forward edge, the new feedback
  # state s_j for a backward one (j < i).
  dest = [("x", j) if i < j else ("s", j) for i, j in edges]
  sources = _sources(cfg)

  def cell_fn(l, x, state, _stats, rec, bn):
    p = params["cells"][l]
    w = arch[l]
    fb = state.get("fb")
    nodes = {0: x}
    acc = {}
    new_v = []

    for k, i in enumerate(sources):
      if i > 0:
        nodes[i] = acc.pop(("x", i), None)
        if nodes[i] is None:
          nodes[i] = jnp.zeros_like(x)
      u = nodes[i] if fb is None or i == 3 else nodes[i] + fb[i]
      out = [e for e, (src, _) in enumerate(edges) if src == i]
      dsts = tuple(dict.fromkeys(dest[e] for e in out))
      skips = [o for o, op in enumerate(ops) if op.kind == "skip"]
      # Sums this node starts (first edge into a destination) begin as its
      # skip term or zeros, made inside one cond: then u is a materialised
      # cond operand, where a plain ``w * u`` per destination would make
      # XLA:CPU re-fuse u's whole producer chain (e.g. the reduction block's
      # BN + 2x2 pool) into each of them.
      fresh = [d for d in dsts if acc.get(d) is None]
      if fresh:
        terms = [[(e, o) for e in out if dest[e] == d for o in skips] for d in fresh]

        def start(u, terms=terms):
          return tuple(sum((w[e, o] * u for e, o in t[1:]), w[t[0][0], t[0][1]] * u)
                       if t else jnp.zeros_like(u) for t in terms)

        any_skip = jnp.any(jnp.stack([w[e, o] != 0 for t in terms for e, o in t] or
                                     [jnp.bool_(False)]))
        acc.update(zip(fresh, jax.lax.cond(
            any_skip, start, lambda u: tuple(jnp.zeros_like(u) for _ in fresh), u)))
        started = set(fresh)
      else:
        started = set()
      for o in skips:
        for e in out:
          if dest[e] in started:
            continue
          acc[dest[e]] = jax.lax.cond(w[e, o] != 0, lambda a, u, e=e, o=o: a + w[e, o] * u,
                                      lambda a, u: a, acc[dest[e]], u)

      for o, op in enumerate(ops):
        if op.kind not in ("avgpool", "maxpool"):
          continue

        def pooled(a, u, o=o, kind=op.kind):
          y = pool3x3(u, kind)
          a = dict(zip(dsts, a))
          for e in out:
            a[dest[e]] = a[dest[e]] + w[e, o] * y
          return tuple(a[d] for d in dsts)

        res = jax.lax.cond(jnp.any(jnp.stack([w[e, o] != 0 for e in out])), pooled,
                           lambda a, u: a, tuple(acc[d] for d in dsts), u)
        acc.update(zip(dsts, res))

      vs = []
      for g, group in enumerate(groups):
        lif = cfg.lif.with_threshold(group[0][1].threshold)
        edge_active = [jnp.any(jnp.stack([w[e, o] != 0 for o, _ in group])) for e in out]
        active = jnp.any(jnp.stack(edge_active))

        def on(a, v, u, group=group, lif=lif):
          v, spikes = neurons.lif_step(v, u, lif)
          a = dict(zip(dsts, a))
          for e in out:
            for o, op in group:
              pe = {name: arr[e] for name, arr in p[op.name].items()}

              def conv_bn(a_d, s, o=o, e=e, pe=pe):
                return a_d + w[e, o] * bn(conv2d(s, pe["kernel"]), pe, None)[0]

              a[dest[e]] = jax.lax.cond(w[e, o] != 0, conv_bn, lambda a_d, s: a_d,
                                        a[dest[e]], spikes)
          probed = probe(spikes) if probe is not None else ()
          return tuple(a[d] for d in dsts), v, probed

        def off(a, v, u):
          return a, v, (rec.zeros(u.shape) if probe is not None else ())

        res, v, probed = jax.lax.cond(active, on, off, tuple(acc[d] for d in dsts),
                                      state["v"][k][g], u)
        acc.update(zip(dsts, res))
        vs.append(v)
        if probe is not None:
          if per_layer:
            for e, ea in zip(out, edge_active):
              rec.add(f"cell{l}/edge{e}/lif{g}", probed, ea)
          else:
            count = sum(ea.astype(jnp.float32) for ea in edge_active)
            rec.add(f"cell{l}/node{i}/lif{g}", probed, count)
      new_v.append(tuple(vs))

    y = nodes[3] if 3 in nodes else acc.pop(("x", 3))
    new_state = {"v": tuple(new_v)}
    if cfg.backward:
      new_state["fb"] = tuple(acc.pop(("s", j)) for j in range(3))
    return y, new_state, None

  return _forward(params, images, key if train else None, cfg, cell_fn,
                  _supernet_cell_state(cfg, images.shape[0]), train=train,
                  batch_stats=None, probe=probe, per_layer=per_layer)


# ----------------------------------------------------------------------------
# Standalone cells: one genotype, only its chosen ops.

def _cell_genotypes(genotypes, cfg: NetworkConfig) -> np.ndarray:
  """Canonical int genotypes [L, 4, 4] from one [4, 4] or per-cell [L, 4, 4]."""
  g = np.asarray(genotypes)
  if g.shape == (4, 4):
    g = np.broadcast_to(g, (cfg.num_cells, 4, 4))
  if g.shape != (cfg.num_cells, 4, 4):
    raise ValueError(f"genotypes of shape {g.shape}; expected (4, 4) or "
                     f"({cfg.num_cells}, 4, 4) for this config")
  g = genotype_lib.canonical(g.astype(np.int32))
  if g.max() >= cfg.ops.num_digits or g.min() < 0:
    raise ValueError(f"genotype digit {int(g.max())} out of range for op set {cfg.ops}")
  if not cfg.backward and genotype_lib.has_backward(g).any():
    raise ValueError("genotype has backward edges but cfg.backward is False")
  return g


def _edge_op(g_cell: np.ndarray, e: int, cfg: NetworkConfig) -> ops_lib.OpSpec:
  i, j = genotype_lib.EDGES[e]
  return cfg.ops.op_of_digit(int(g_cell[i, j]))


def standalone_param_specs(cfg: NetworkConfig, genotypes):
  """:class:`ParamSpec` tree of one architecture built alone.

  Args:
    cfg: the network config.
    genotypes: one genotype [4, 4] for every cell, or one per cell [L, 4, 4]
      (canonicalised first: dead edges are never built).

  Returns:
    ``{"stem", "reduction", "head", "cells"}``; ``cells[l][str(e)]`` holds
    ``kernel`` [k, k, C_l, C_l], ``scale``, ``bias`` [C_l] for each conv edge.
  """
  g = _cell_genotypes(genotypes, cfg)
  specs = fixed_param_specs(cfg)
  cells = []
  for l, (_, _, c) in enumerate(cfg.cell_shapes):
    cell = {}
    for e in range(cfg.num_edges):
      op = _edge_op(g[l], e, cfg)
      if op.has_lif:
        cell[str(e)] = dict(kernel=ParamSpec((op.kernel, op.kernel, c, c), "conv"), **_bn_spec(c))
    cells.append(cell)
  specs["cells"] = cells
  return specs


def init_standalone_params(key: jax.Array, cfg: NetworkConfig, genotypes) -> Params:
  """Fresh parameters of one architecture built alone (see
  :func:`standalone_param_specs`)."""
  return materialize(key, standalone_param_specs(cfg, genotypes))


def standalone_from_supernet(super_params: Params, cfg: NetworkConfig, genotypes) -> Params:
  """The standalone parameters a genotype selects out of supernet parameters."""
  g = _cell_genotypes(genotypes, cfg)
  params = {k: v for k, v in super_params.items() if k != "cells"}
  cells = []
  for l in range(cfg.num_cells):
    cell = {}
    for e in range(cfg.num_edges):
      op = _edge_op(g[l], e, cfg)
      if op.has_lif:
        cell[str(e)] = {k: a[e] for k, a in super_params["cells"][l][op.name].items()}
    cells.append(cell)
  params["cells"] = cells
  return params


def standalone_forward(params: Params, genotypes, images: jax.Array,
                       key: Optional[jax.Array], cfg: NetworkConfig, *,
                       train: bool = True, batch_stats: Optional[Params] = None,
                       probe: Optional[Probe] = None, per_layer: bool = True,
                       unroll_time: bool = False):
  """Forward pass of one architecture built alone (no masks).

  Args:
    params: from :func:`init_standalone_params` (or
      :func:`standalone_from_supernet`).
    genotypes: [4, 4] or [L, 4, 4] digits (static: the structure is built
      from them in Python).
    images: [B, H, W, C_in] (a float32 normalised batch), or event frames
      [B, T' >= T, H, W, C_in] (the first T are used, one per timestep).
    key: dropout key; required when ``train`` and ``cfg.dropout > 0``.
    cfg: the network config.
    train: BN with batch statistics (updating ``batch_stats`` if given) and
      dropout on; False uses the running statistics, no dropout.
    batch_stats: running BN statistics from :func:`init_batch_stats`, or None
      (scoring: batch statistics, nothing kept; needs ``train=True``).
    probe: LIF probe (see module docstring).
    per_layer: probe sums per LIF name (default) or summed over LIFs.
    unroll_time: trace the time ``lax.scan`` fully unrolled (its transpose
      too). For training on CPU: XLA:CPU (jax 0.10.2) runs a convolution's
      kernel gradient inside a loop body through its naive emitter, 20-40x
      slower than the same convolution outside a loop. Compile time grows
      with T.

  Returns:
    ``(logits [B, num_classes], aux)`` with ``aux["batch_stats"]`` (updated
    running statistics or None) and ``aux["probes"]``.
  """
  if not train and batch_stats is None:
    raise ValueError("standalone_forward(train=False) needs running statistics "
                     "(batch_stats); scoring uses train=True")
  g = _cell_genotypes(genotypes, cfg)
  b = images.shape[0]
  edge_ops = [[_edge_op(g[l], e, cfg) for e in range(cfg.num_edges)]
              for l in range(cfg.num_cells)]
  backward = bool(genotype_lib.has_backward(g).any())

  def cell_fn(l, x, state, stats, rec, bn):
    new_v, new_stats = {}, {}

    def edge_fn(e, u):
      op = edge_ops[l][e]
      if op.kind == "zero":
        return None
      if op.kind == "skip":
        return u
      if op.kind in ("avgpool", "maxpool"):
        return pool3x3(u, op.kind)
      new_v[str(e)], spikes = neurons.lif_step(
          state["v"][str(e)], u, cfg.lif.with_threshold(op.threshold))
      rec.record(f"cell{l}/edge{e}/lif", spikes)
      pe = params["cells"][l][str(e)]
      y, new_stats[str(e)] = bn(conv2d(spikes, pe["kernel"]), pe, stats and stats[str(e)])
      return y

    fb = tuple(state["fb"]) if backward else None
    y, new_fb = cell_wiring(x, fb, edge_fn, backward)
    new_state = {"v": new_v}
    if backward:
      new_state["fb"] = new_fb
    return y, new_state, (new_stats if stats is not None else None)

  state0 = []
  for l, (h, w, c) in enumerate(cfg.cell_shapes):
    st = {"v": {str(e): _zeros((b, h, w, c)) for e in range(cfg.num_edges)
                if edge_ops[l][e].has_lif}}
    if backward:
      st["fb"] = tuple(_zeros((b, h, w, c)) for _ in range(3))
    state0.append(st)
  return _forward(params, images, key, cfg, cell_fn, state0, train=train,
                  batch_stats=batch_stats, probe=probe, per_layer=per_layer,
                  unroll_time=unroll_time)
