"""Export of a trained network: weights in ``.npz``, the graph in ``.json``.

:func:`export_run` writes a ``launch.train`` run's latest checkpoint,
:func:`export_network` any :class:`snnax_nas.models.SpikingNetwork`
variables; :func:`load_export` reads an export back as ``(variables, config,
genotype)`` for :class:`~snnax_nas.models.SpikingNetwork`. Everything needed
to rebuild the network in another simulator is in the two files, described
here.

This is the project's own format, with batch norm and the vote as written
in training. For the SNN ecosystem's shared format, NIR, see
:mod:`snnax_nas.nir_graph`: in evaluation mode each batch norm is a fixed
per-channel affine and the vote a fixed linear map, so the same network is
written there exactly.

``PATH.npz`` — tensors, named by the Module variable path joined with ``/``
(``params/stem/conv/kernel``, ``params/cell_0/edge_0_3/bn/scale``,
``batch_stats/head/bn/mean``). Layouts: conv kernels HWIO ``[k, k, C_in,
C_out]``, dense kernels ``[in, out]``, everything else ``[C]``. At 32 bits
every tensor is float32. At 16 / 8 / 4 bits each conv or dense kernel is
stored as two arrays:

* ``NAME.codes``: uint8, the packed integer codes in row-major order of the
  kernel's shape (:func:`snnax_nas.quant.pack_codes`: 16 bits little-endian
  int16, 8 bits int8, 4 bits two's-complement nibbles with element ``2i`` in
  the low nibble of byte ``i``); values in ``[-(2^(b-1) - 1), 2^(b-1) - 1]``;
* ``NAME.scale``: float32 ``[C_out]``; the weight is ``code * scale[c_out]``
  (symmetric, per output channel, no zero point).

BN scale/bias, BN running mean/var and the fc2 bias are always float32 (BN
is not folded into the convs). The byte count of the codes plus scales plus
float32 leaves is :func:`snnax_nas.memory.quantized_weight_bytes`.

``PATH.json`` — the network:

* ``format`` ``"snnax_nas.export"``, ``version`` 1, ``weight_bits``,
  ``genotype`` (the canonical string, ``|`` between per-cell genotypes),
  ``config`` (every :class:`~snnax_nas.configs.NetworkConfig` field).
* ``tensors``: ``{NAME: {"shape", "dtype": "float32"}}`` or, for a quantised
  kernel, ``{"shape", "bits", "codes": "NAME.codes", "scale": "NAME.scale"}``.
* ``time``: the time semantics (below), ``T`` = ``timesteps``.
* ``nodes``: the layers in execution order, one timestep. Each node has
  ``name``, ``op``, ``inputs`` (node names) and ``shape`` (its output per
  sample, ``[H, W, C]`` or ``[features]``). Ops:

  - ``input``: the image ``[H, W, C_in]`` (or the frame of timestep t).
  - ``conv``: ``kernel`` (tensor name), ``kernel_size``, ``stride``,
    ``padding`` (zeros on every side: ``kernel_size // 2``), no bias.
  - ``bn``: ``y = (x - mean) / sqrt(var + eps) * scale + bias`` per channel,
    tensors ``scale``, ``bias``, ``mean``, ``var``; ``eps``.
  - ``lif``: a leaky integrate-and-fire neuron per element with a membrane
    ``v`` (0 at t = 0, carried from step to step): ``v = v + (x - (v -
    v_reset)) / tau``; spike ``s = 1 if v >= threshold else 0``; reset
    ``v = v_reset`` where it spiked (``reset: "hard"``; ``"soft"``:
    ``v = v - threshold``). The output is the spikes. Constants ``tau``,
    ``threshold``, ``v_reset``, ``reset``.
  - ``avgpool`` / ``maxpool``: ``window``, ``stride``, ``padding``;
    ``count_include_pad`` (an average over the padded window counts the
    zero padding: the cells' 3x3 pools).
  - ``flatten``: ``[H, W, C]`` to ``[H * W * C]`` in row-major (H, W, C) order.
  - ``linear``: ``y = x @ kernel (+ bias)``, ``kernel`` ``[in, out]``,
    ``bias`` a tensor name or null.
  - ``vote``: ``logit[k] = mean_g x[k * group + g]`` over ``group``
    consecutive outputs per class.
  - ``time_mean``: the network's output, the mean over the T timesteps of
    its input.
  - ``cell``: a searched cell (``edges`` below); its input is node 0 and its
    output node 3.

* A ``cell`` node's ``edges``: one entry per present edge, ``from`` node,
  ``to`` node, ``direction`` (``forward``: from < to; ``backward``:
  from > to), ``op`` (``conv3x3``, ``conv1x1``, ``skip``, ``avgpool``,
  ``maxpool``; a conv may carry its threshold, ``conv3x3@0.5``) and
  ``layers``: for a conv edge the nodes ``lif`` (with the op's threshold),
  ``conv`` (stride 1) and ``bn``, applied in that order; a pool edge one
  pool node (3x3, stride 1, padding 1); a skip edge none. Every conv edge
  has its own LIF membranes. Per timestep t, with feedback states
  ``f_0, f_1, f_2`` (zeros at t = 0)::

    r_0 = x + f_0                      (x: the cell input at t)
    n_j = sum over forward edges (i -> j) of edge(r_i)   for j = 1, 2, 3 in order
    r_1 = n_1 + f_1,  r_2 = n_2 + f_2,  r_3 = n_3
    f_i <- sum over backward edges (j -> i) of edge(r_j)  (used at t + 1)
    output = n_3

  A node without incoming edges is zeros; a cell without backward edges has
  ``f = 0`` throughout.

Time semantics (``time`` in the JSON). The network runs T timesteps and its
output is the time mean of the vote. Static images (``input`` ``[B, H, W,
C]``): the stem (conv + bn, no LIF: direct encoding) runs once and its analog
output is the input of the first cell at every timestep. Event data
(``[B, T, H, W, C]`` frames, e.g. DVS counts binned to T frames): the stem runs
on frame t at timestep t. Batch norm is applied at every timestep on its own:
at inference with the running statistics stored here (the same at every t);
in training each timestep is normalised with its own batch statistics.
Dropout (before fc1, training only) is not part of the exported graph.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import numpy as np

from snnax_nas import configs
from snnax_nas import files
from snnax_nas import genotype as genotype_lib
from snnax_nas import layers
from snnax_nas import models
from snnax_nas import network
from snnax_nas import quant
from snnax_nas import workdir as workdir_lib

FORMAT = "snnax_nas.export"
VERSION = 1


def _base(path: str) -> str:
  """``path`` without a ``.npz`` / ``.json`` suffix."""
  for ext in (".npz", ".json"):
    if path.endswith(ext):
      return path[:-len(ext)]
  return path


def _flat(tree: Any, prefix: str) -> dict[str, np.ndarray]:
  """``{"prefix/a/b": array}`` of a nested dict of arrays."""
  out = {}
  for key, value in tree.items():
    name = f"{prefix}/{key}"
    if hasattr(value, "items"):
      out.update(_flat(value, name))
    else:
      out[name] = np.asarray(value, np.float32)
  return out


def _nest(flat: dict[str, np.ndarray]) -> dict:
  """Inverse of :func:`_flat` over all prefixes."""
  out: dict = {}
  for name, value in flat.items():
    *parents, leaf = name.split("/")
    node = out
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = value
  return out


class _Graph:
  """Builds the ``nodes`` list of the JSON (one timestep, in order)."""

  def __init__(self, cfg: configs.NetworkConfig):
    self.cfg = cfg
    self.nodes: list[dict] = []

  def add(self, node: dict) -> str:
    self.nodes.append(node)
    return node["name"]

  def lif(self, name, inputs, shape, lif) -> dict:
    return {"name": name, "op": "lif", "inputs": inputs, "shape": list(shape),
            "tau": lif.tau, "threshold": lif.threshold, "v_reset": lif.v_reset,
            "reset": lif.reset}

  @staticmethod
  def conv(name, inputs, shape, kernel, size, stride=1) -> dict:
    return {"name": name, "op": "conv", "inputs": inputs, "shape": list(shape),
            "kernel": f"params/{kernel}", "kernel_size": size, "stride": stride,
            "padding": size // 2, "bias": None}

  @staticmethod
  def bn(name, inputs, shape, path) -> dict:
    return {"name": name, "op": "bn", "inputs": inputs, "shape": list(shape),
            "scale": f"params/{path}/scale", "bias": f"params/{path}/bias",
            "mean": f"batch_stats/{path}/mean", "var": f"batch_stats/{path}/var",
            "eps": layers.BN_EPS}


def _cell_node(g: _Graph, l: int, ops, inputs: list, shape) -> dict:
  """The ``cell`` node of cell ``l`` with its edges and their layers."""
  cfg = g.cfg
  edges = []
  for e, op in enumerate(ops):
    if op.kind == "zero":
      continue
    i, j = genotype_lib.EDGES[e]
    path = f"cell_{l}/{network.edge_name(e)}"
    if op.kind == "conv":
      lif = cfg.lif.with_threshold(op.threshold)
      body = [g.lif(f"{path}/lif", [f"r_{i}"], shape, lif),
              g.conv(f"{path}/conv", [f"{path}/lif"], shape, f"{path}/conv/kernel", op.kernel),
              g.bn(f"{path}/bn", [f"{path}/conv"], shape, f"{path}/bn")]
    elif op.kind in ("avgpool", "maxpool"):
      body = [{"name": f"{path}/pool", "op": op.kind, "inputs": [f"r_{i}"], "shape": list(shape),
               "window": 3, "stride": 1, "padding": 1, "count_include_pad": True}]
    else:  # skip
      body = []
    edges.append({"from": i, "to": j, "direction": "forward" if i < j else "backward",
                  "op": op.name, "layers": body})
  return {"name": f"cell_{l}", "op": "cell", "inputs": inputs, "shape": list(shape),
          "edges": edges}


def graph(cfg: configs.NetworkConfig, genotype) -> list[dict]:
  """The ``nodes`` of the JSON for a network (see the module docstring).

  Args:
    cfg: the network config.
    genotype: any form :class:`snnax_nas.models.SpikingNetwork` takes.
  """
  g = _Graph(cfg)
  ops = network.edge_ops(genotype, cfg)
  (h1, w1, c1), (h2, w2, c2) = cfg.stage_shapes
  x = g.add({"name": "input", "op": "input", "inputs": [], "shape": list(cfg.input_shape)})
  x = g.add(g.conv("stem/conv", [x], (h1, w1, c1), "stem/conv/kernel", 3, cfg.stem_stride))
  x = g.add(g.bn("stem/bn", [x], (h1, w1, c1), "stem/bn"))
  for l, shape in enumerate(cfg.cell_shapes):
    if l == cfg.cells_per_stage:
      x = g.add(g.bn("reduction/bn_in", [x], (h1, w1, c1), "reduction/bn_in"))
      x = g.add(g.lif("reduction/lif", [x], (h1, w1, c1), cfg.lif))
      x = g.add(g.conv("reduction/conv", [x], (h1, w1, c2), "reduction/conv/kernel", 3))
      x = g.add(g.bn("reduction/bn_out", [x], (h1, w1, c2), "reduction/bn_out"))
      x = g.add({"name": "reduction/pool", "op": "avgpool", "inputs": [x],
                 "shape": [h2, w2, c2], "window": 2, "stride": 2, "padding": 0,
                 "count_include_pad": True})
    x = g.add(_cell_node(g, l, ops[l], [x], shape))
  s2 = cfg.second_pool
  x = g.add(g.bn("head/bn", [x], (h2, w2, c2), "head/bn"))
  x = g.add(g.lif("head/lif", [x], (h2, w2, c2), cfg.lif))
  if s2 > 1:
    x = g.add({"name": "head/pool", "op": "avgpool", "inputs": [x],
               "shape": [h2 // s2, w2 // s2, c2], "window": s2, "stride": s2, "padding": 0,
               "count_include_pad": True})
  x = g.add({"name": "head/flatten", "op": "flatten", "inputs": [x],
             "shape": [cfg.classifier_in], "order": "HWC"})
  x = g.add({"name": "head/fc1", "op": "linear", "inputs": [x], "shape": [cfg.hidden],
             "kernel": "params/head/fc1/kernel", "bias": None})
  x = g.add(g.lif("head/fc_lif", [x], (cfg.hidden,), cfg.lif))
  x = g.add({"name": "head/fc2", "op": "linear", "inputs": [x], "shape": [cfg.num_outputs],
             "kernel": "params/head/fc2/kernel", "bias": "params/head/fc2/bias"})
  x = g.add({"name": "head/vote", "op": "vote", "inputs": [x], "shape": [cfg.num_classes],
             "classes": cfg.num_classes, "group": cfg.vote_group})
  g.add({"name": "output", "op": "time_mean", "inputs": [x], "shape": [cfg.num_classes]})
  return g.nodes


def _time_section(cfg: configs.NetworkConfig) -> dict:
  return {
      "timesteps": cfg.timesteps,
      "static_input": "images [B, H, W, C]: stem (conv + bn) once; its output is the first "
                      "cell's input at every one of the T timesteps (direct encoding)",
      "event_input": "frames [B, T, H, W, C]: the stem runs on frame t at timestep t",
      "batch_norm": "applied at every timestep on its own; inference uses the running "
                    "mean/var stored here (the same at every t); training normalises each "
                    "timestep with its own batch statistics",
      "state": "LIF membranes and cell feedback states start at 0 for each sample and "
               "carry from timestep t to t + 1",
      "readout": "the vote output averaged over the T timesteps",
      "dropout": "training only (before fc1), not part of the graph",
  }


def export_network(variables: dict, config: configs.NetworkConfig, genotype,
                   path: str, weight_bits: int = 32) -> dict[str, str]:
  """Writes ``PATH.npz`` and ``PATH.json`` (format in the module docstring).

  Args:
    variables: ``{"params", "batch_stats"}`` of
      :class:`snnax_nas.models.SpikingNetwork` (float32).
    config: its network config.
    genotype: its genotype (any form the Module takes).
    path: the file path without extension (a ``.npz`` / ``.json`` suffix is
      dropped); parent folders are created.
    weight_bits: 32 (float32 weights), or 16 / 8 / 4: every kernel stored as
      packed per-channel codes and float32 scales (post-training
      quantisation, :func:`snnax_nas.quant.quantize_params`).

  Returns:
    ``{"npz": path, "json": path}`` of the files written (atomically).

  Raises:
    ValueError: bad ``weight_bits``, or variables that are not this
      network's.
  """
  quant.check_weight_bits(weight_bits)
  model = models.SpikingNetwork.for_genotypes(config, genotype)
  got = jax.tree.map(lambda x: tuple(np.shape(x)), dict(variables))
  want = jax.tree.map(lambda x: tuple(x.shape), network.variable_shapes(config, model.genotype))
  if got != want:
    raise ValueError(f"the variables are not those of {model.genotype!r} with this config "
                     "(tree or shapes differ)")
  flat = {**_flat(variables["params"], "params"),
          **_flat(variables["batch_stats"], "batch_stats")}
  arrays, tensors = {}, {}
  for name, value in flat.items():
    if weight_bits < 32 and name.startswith("params/") and value.ndim >= 2:
      q = quant.quantize_tensor(value, weight_bits)
      arrays[f"{name}.codes"] = quant.pack_codes(np.asarray(q.codes), weight_bits)
      arrays[f"{name}.scale"] = np.asarray(q.scale, np.float32)
      tensors[name] = {"shape": list(value.shape), "bits": weight_bits,
                       "codes": f"{name}.codes", "scale": f"{name}.scale"}
    else:
      arrays[name] = value
      tensors[name] = {"shape": list(value.shape), "dtype": "float32"}
  doc = {"format": FORMAT, "version": VERSION, "weight_bits": weight_bits,
         "genotype": model.genotype, "config": configs.network_to_json(config),
         "time": _time_section(config), "tensors": tensors,
         "nodes": graph(config, model.genotype)}
  base = _base(path)
  if os.path.dirname(base):
    os.makedirs(os.path.dirname(base), exist_ok=True)
  with files.atomic_open(base + ".npz", "wb") as f:
    np.savez(f, **arrays)
  files.write_json(base + ".json", workdir_lib.json_ready(doc))
  return {"npz": base + ".npz", "json": base + ".json"}


def export_run(workdir: str, path: str, *, weight_bits: int = 32) -> dict[str, str]:
  """Exports a ``launch.train`` run's latest checkpoint (restored on this
  process's devices) with :func:`export_network`.

  Raises:
    ValueError: no checkpointed training run in ``workdir``, bad bits.
  """
  from snnax_nas import evaluate  # evaluate imports the training stack
  trained = evaluate.load_trained_run(workdir)
  return export_network(jax.device_get(trained.variables), trained.config, trained.genotype,
                        path, weight_bits)


def load_export(path: str) -> tuple[dict, configs.NetworkConfig, str]:
  """Reads an export back.

  Args:
    path: ``PATH`` as given to :func:`export_network` (with or without
      ``.npz`` / ``.json``).

  Returns:
    ``(variables, config, genotype)``: float32 numpy ``{"params",
    "batch_stats"}`` (quantised kernels dequantised, ``code * scale``) for
    ``SpikingNetwork(config, genotype).apply``.

  Raises:
    ValueError: not an export of this format, or a tensor missing.
  """
  base = _base(path)
  with open(base + ".json") as f:
    doc = json.load(f)
  if doc.get("format") != FORMAT or doc.get("version") != VERSION:
    raise ValueError(f"{base}.json is not a {FORMAT} version {VERSION} file")
  flat = {}
  with np.load(base + ".npz") as data:
    for name, spec in doc["tensors"].items():
      shape = tuple(spec["shape"])
      try:
        if "codes" in spec:
          codes = quant.unpack_codes(data[spec["codes"]], spec["bits"], shape)
          flat[name] = codes.astype(np.float32) * data[spec["scale"]].astype(np.float32)
        else:
          flat[name] = np.asarray(data[name], np.float32).reshape(shape)
      except KeyError as e:
        raise ValueError(f"{base}.npz lacks tensor {e}") from None
  variables = _nest(flat)
  return ({"params": variables["params"], "batch_stats": variables["batch_stats"]},
          configs.network_from_json(doc["config"]), doc["genotype"])


def bytes_of(path: str) -> int:
  """Bytes of the tensors of an export as stored (packed codes, scales and
  float32 arrays; the npz container's headers excluded)."""
  base = _base(path)
  with np.load(base + ".npz") as data:
    return int(sum(data[k].nbytes for k in data.files))


__all__ = ["FORMAT", "VERSION", "bytes_of", "export_network", "export_run", "graph",
           "load_export"]
