"""A NIR interpreter written from the NIR 1.0 specification, for the tests.

It shares no code with :mod:`snnax_nas.nir_graph`: it reads a ``nir.NIRGraph``
(nodes, edges, metadata) and runs it in numpy, float32, one timestep at a
time, with the semantics the NIR documentation gives each primitive:

* edges carry a node's output unchanged; a node's input is the sum of all
  edges into it;
* ``Conv2d``: cross-correlation over (C, H, W) with ``stride``, zero
  ``padding``, ``dilation``, ``groups`` and a per-output-channel ``bias``;
* ``Linear``: ``W x``; ``Affine``: ``W x + b``; ``Scale``: ``s * x``;
* ``Flatten``: row-major flattening of per-sample axes ``start_dim..end_dim``;
* ``AvgPool2d`` / ``SumPool2d``: window mean / sum (padding in ``AvgPool2d``
  is refused: the specification does not say whether it counts);
* ``LIF``: ``tau dv/dt = (v_leak - v) + r I``, integrated with forward Euler
  over ``dt`` (the graph's ``dt`` metadata), spike ``z = v > v_threshold``,
  then ``v = v_reset`` where ``z``;
* cycles: edges listed in the ``delayed_edges`` metadata deliver the source's
  output of the previous timestep (zeros at t = 0); the rest is computed in a
  topological order.
"""

from __future__ import annotations

import json

import numpy as np


def _text(x):
  return x.decode() if isinstance(x, bytes) else str(x)


def _pair(v):
  a = np.atleast_1d(np.asarray(v)).astype(int)
  return (int(a[0]), int(a[-1]))


def conv2d(x, weight, bias, stride, padding, dilation, groups):
  """x [B, C_in, H, W], weight [C_out, C_in / groups, kh, kw] -> [B, C_out, H', W']."""
  b, cin, h, w = x.shape
  cout, cin_g, kh, kw = weight.shape
  (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
  xp = np.zeros((b, cin, h + 2 * ph, w + 2 * pw), np.float32)
  xp[:, :, ph:ph + h, pw:pw + w] = x
  ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
  wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
  out = np.zeros((b, cout, ho, wo), np.float32)
  cout_g = cout // groups
  for g in range(groups):
    xs = xp[:, g * cin_g:(g + 1) * cin_g]
    ws = weight[g * cout_g:(g + 1) * cout_g].astype(np.float32)
    for i in range(kh):
      for j in range(kw):
        patch = xs[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]
        out[:, g * cout_g:(g + 1) * cout_g] += np.einsum("bchw,oc->bohw", patch, ws[:, :, i, j])
  return out + np.asarray(bias, np.float32).reshape(1, -1, 1, 1)


def pool2d(x, kernel, stride, reduce):
  (kh, kw), (sh, sw) = _pair(kernel), _pair(stride)
  b, c, h, w = x.shape
  ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
  out = np.zeros((b, c, ho, wo), np.float32)
  for i in range(kh):
    for j in range(kw):
      out += x[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
  return out / np.float32(kh * kw) if reduce == "mean" else out


class Interpreter:
  """Runs a NIR graph over time. ``run(frames)`` with ``frames`` [T, B, ...]
  (the Input node's shape) returns ``(outputs [T, B, ...], spikes {LIF node:
  [T, B, ...]})``."""

  def __init__(self, graph):
    self.graph = graph
    meta = graph.metadata or {}
    self.dt = float(meta["dt"])
    self.delayed = {tuple(e) for e in json.loads(_text(meta.get("delayed_edges", "[]")))}
    self.inputs = {name: [] for name in graph.nodes}
    for src, dst in graph.edges:
      self.inputs[dst].append(src)
    self.order = self._topological()

  def _topological(self):
    indeg = {n: 0 for n in self.graph.nodes}
    for src, dst in self.graph.edges:
      if (src, dst) not in self.delayed:
        indeg[dst] += 1
    ready = [n for n, d in indeg.items() if d == 0]
    order = []
    while ready:
      n = ready.pop(0)
      order.append(n)
      for src, dst in self.graph.edges:
        if src == n and (src, dst) not in self.delayed:
          indeg[dst] -= 1
          if indeg[dst] == 0:
            ready.append(dst)
    if len(order) != len(self.graph.nodes):
      raise ValueError("the graph has a cycle without a delayed edge")
    return order

  def _apply(self, name, node, x, state):
    kind = type(node).__name__
    if kind == "Conv2d":
      return conv2d(x, node.weight, node.bias, node.stride, node.padding, node.dilation,
                    node.groups)
    if kind == "Linear":
      return x @ np.asarray(node.weight, np.float32).T
    if kind == "Affine":
      return x @ np.asarray(node.weight, np.float32).T + np.asarray(node.bias, np.float32)
    if kind == "Scale":
      return x * np.asarray(node.scale, np.float32)
    if kind == "Flatten":
      nd = x.ndim - 1
      start = node.start_dim % nd + 1
      end = node.end_dim % nd + 1
      return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1:])
    if kind in ("AvgPool2d", "SumPool2d"):
      if kind == "AvgPool2d" and any(_pair(node.padding)):
        raise ValueError(f"{name}: padded AvgPool2d is ambiguous in NIR")
      return pool2d(x, node.kernel_size, node.stride,
                    "mean" if kind == "AvgPool2d" else "sum")
    if kind == "LIF":
      v = state.get(name)
      if v is None:
        v = np.zeros_like(x)
      f32 = lambda a: np.asarray(a, np.float32)
      v = v + np.float32(self.dt) / f32(node.tau) * (f32(node.v_leak) - v + f32(node.r) * x)
      z = (v > f32(node.v_threshold)).astype(np.float32)
      state[name] = np.where(z > 0, f32(node.v_reset), v).astype(np.float32)
      return z
    raise ValueError(f"{name}: node type {kind} is not interpreted")

  def run(self, frames):
    nodes = self.graph.nodes
    state, prev, outputs, spikes = {}, {}, [], {}
    for t in range(frames.shape[0]):
      cur = {}
      for name in self.order:
        node = nodes[name]
        kind = type(node).__name__
        if kind == "Input":
          cur[name] = np.asarray(frames[t], np.float32)
          continue
        terms = []
        for src in self.inputs[name]:
          if (src, name) in self.delayed:
            if src in prev:
              terms.append(prev[src])
          else:
            terms.append(cur[src])
        if not terms:  # only delayed inputs, at t = 0
          terms = [np.zeros((frames.shape[1],) + tuple(int(d) for d in
                                                      node.input_type["input"]), np.float32)]
        x = terms[0]
        for term in terms[1:]:
          x = x + term
        if kind == "Output":
          cur[name] = x
          outputs.append(x)
          continue
        cur[name] = self._apply(name, node, x, state).astype(np.float32)
        if kind == "LIF":
          spikes.setdefault(name, []).append(cur[name])
      prev = cur
    return np.stack(outputs), {k: np.stack(v) for k, v in spikes.items()}
