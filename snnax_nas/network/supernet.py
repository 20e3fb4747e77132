"""The supernet: the architecture enters as data (the scorer's hot path).

Per-edge op weights ``arch`` [L, E, O] (one-hot for a genotype, normalised
multi-hot for a pruning supernet) select the ops. Every op of the op set has
parameters on every edge; an op whose weight is zero is skipped with
``lax.cond`` (a real branch under ``lax.map``; under ``vmap`` it becomes a
select and everything is computed). One compiled function scores any
genotype of the space. The skeleton around the cells is
:mod:`snnax_nas.network.skeleton`: step by step, or, in a space without
backward edges and on request, time-batched (every conv once over all T
steps, :func:`snnax_nas.network.skeleton.forward_time_batched`).
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from snnax_nas import genotype as genotype_lib
from snnax_nas.configs import NetworkConfig
from snnax_nas.layers import ParamSpec
from snnax_nas.layers import bn_spec
from snnax_nas.layers import conv2d
from snnax_nas.layers import materialize
from snnax_nas.layers import pool3x3
from snnax_nas.network.skeleton import Params
from snnax_nas.network.skeleton import Probe
from snnax_nas.network.skeleton import TimeLayout
from snnax_nas.network.skeleton import forward
from snnax_nas.network.skeleton import forward_time_batched
from snnax_nas.network.skeleton import zeros
from snnax_nas.network.variables import fixed_param_specs


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
                     **bn_spec(c, (cfg.num_edges,)))
       for op in cfg.ops.nonzero_ops if op.has_lif}
      for (_, _, c) in cfg.cell_shapes]
  return specs


def init_supernet_params(key: jax.Array, cfg: NetworkConfig) -> Params:
  """Fresh supernet parameters (see :func:`supernet_param_specs`)."""
  return materialize(key, supernet_param_specs(cfg))


def cell_conv(spikes: jax.Array, kernel: jax.Array,
              conv_dtype: Optional[str] = None) -> jax.Array:
  """A cell conv [B, H, W, C] -> [B, H, W, C'], float32 out.

  ``conv_dtype`` None: :func:`snnax_nas.layers.conv2d` in float32. Else
  (``"bfloat16"``) the spikes (0/1, exact) and the kernel are cast to it and
  the products accumulate in float32 (``preferred_element_type``), the
  matrix units' full-rate mode on GPUs and TPUs; only the weights lose
  precision (8 mantissa bits).
  """
  if conv_dtype is None:
    return conv2d(spikes, kernel)
  pad = kernel.shape[0] // 2
  return jax.lax.conv_general_dilated(
      spikes.astype(conv_dtype), kernel.astype(conv_dtype), (1, 1),
      [(pad, pad), (pad, pad)], dimension_numbers=("NHWC", "HWIO", "NHWC"),
      preferred_element_type=jnp.float32)


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
    state = {"v": tuple(tuple(zeros((batch, h, w, c)) for _ in range(groups))
                        for _ in _sources(cfg))}
    if cfg.backward:
      state["fb"] = tuple(zeros((batch, h, w, c)) for _ in range(3))
    states.append(state)
  return states


def supernet_forward(params: Params, arch: jax.Array, images: jax.Array,
                     key: Optional[jax.Array], cfg: NetworkConfig, *,
                     probe: Optional[Probe] = None, per_layer: bool = False,
                     train: bool = True, conv_dtype: Optional[str] = None,
                     time_batched: bool = False):
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
    conv_dtype: the cells' conv precision (:func:`cell_conv`; None: float32).
    time_batched: run each layer once over all timesteps
      (:func:`snnax_nas.network.skeleton.forward_time_batched`) instead of
      once per step; same values up to float summation order. Only for a
      config without backward edges (``cfg.backward`` False).

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
  if time_batched and cfg.backward:
    raise ValueError("time_batched=True needs a config without backward edges "
                     "(cfg.backward False): a backward edge feeds step t - 1 into step t")
  layout = TimeLayout(time_batched=time_batched)
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
          y = layout.spatial(lambda x: pool3x3(x, kind), u)
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
          v, spikes, membrane = layout.lif(v, u, lif)
          a = dict(zip(dsts, a))
          for e in out:
            for o, op in group:
              pe = {name: arr[e] for name, arr in p[op.name].items()}

              def conv_bn(a_d, s, o=o, e=e, pe=pe):
                y = layout.spatial(lambda x: cell_conv(x, pe["kernel"], conv_dtype), s)
                return a_d + w[e, o] * bn(y, pe, None)[0]

              a[dest[e]] = jax.lax.cond(w[e, o] != 0, conv_bn, lambda a_d, s: a_d,
                                        a[dest[e]], spikes)
          probed = layout.probe(probe, spikes, membrane) if probe is not None else ()
          return tuple(a[d] for d in dsts), v, probed

        def off(a, v, u):
          return a, v, (rec.zeros(layout.call_shape(u)) if probe is not None else ())

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

  state0 = _supernet_cell_state(cfg, images.shape[0])
  if time_batched:
    return forward_time_batched(params, images, key if train else None, cfg, cell_fn, state0,
                                train=train, probe=probe, per_layer=per_layer)
  return forward(params, images, key if train else None, cfg, cell_fn, state0, train=train,
                 batch_stats=None, probe=probe, per_layer=per_layer)
