"""A trained network as a NIR graph (Neuromorphic Intermediate Representation).

NIR (the ``nir`` package, an optional extra: ``pip install 'snnax_nas[nir]'``)
is the graph format snnTorch, Norse, Sinabs, Rockpool, Lava and SpiNNaker2
tooling read. :func:`to_nir` turns a :class:`snnax_nas.models.SpikingNetwork`
with its evaluation-mode variables into a ``nir.NIRGraph``;
:func:`export_network` / :func:`export_run` write it to a ``.nir`` file (HDF5),
from variables in memory or from a ``launch.train`` run's checkpoint, at any
weight precision; :func:`from_nir` reads a graph this module wrote back into
Module variables (an edited or converted graph evaluated here again).

Why this is exact. In evaluation mode every batch norm uses its running
statistics, the same at every timestep, so it is a fixed per-channel affine
``y = a x + b`` (``a = scale / sqrt(var + eps)``, ``b = bias - mean a``); the
vote (mean over groups of output neurons) is a fixed linear map; the LIF is
NIR's ``LIF`` under forward Euler. Nothing is approximated.

Node by node (one NIR node per Module layer; NIR tensors are channel-first,
``(C, H, W)`` per sample, the batch axis implicit):

* input: ``Input`` ``(C_in, H, W)``, fed once per timestep.
* conv (stem, reduction, a conv edge's conv): ``Conv2d``, weight
  ``(C_out, C_in, k, k)`` (the HWIO kernel transposed), padding ``k // 2``,
  bias 0; at 16/8/4 bits the weight is the dequantised ``code * scale`` and
  the node's metadata holds ``weight_bits`` and ``weight_scale`` ``[C_out]``
  (the integer codes are ``weight / scale``).
* batch norm: a per-channel 1x1 ``Conv2d`` (a diagonal weight ``a``, bias
  ``b``; diagonal rather than ``groups = C`` because NIR 1.0.8's type
  inference ignores ``groups``). It is not folded into the conv before it, so quantised weights stay
  on their grid (and a BN that follows no conv needs no special case).
* LIF: ``LIF`` with ``tau = tau_steps * dt``, ``r = 1``,
  ``v_leak = v_reset`` (this project's neuron leaks towards ``v_reset``),
  ``v_reset``, and ``v_threshold`` the largest float32 below the threshold
  (see the differences below); its metadata names the Module's layer
  (``probe``, as in the firing rates) and the threshold it fires at.
  A conv edge's own threshold (``conv3x3@0.5``) goes to its LIF.
* a cell node (node 0 to 3 of a cell): a per-channel 1x1 ``Conv2d`` with
  weight 1 and bias 0, an exact identity. NIR sums all edges into a node, so
  this junction is where a cell node sums its incoming edges and from where
  it fans out. A skip edge is an edge between two junctions.
* avgpool3x3 edge: a per-channel 3x3 ``Conv2d``, weights 1/9, padding 1.
* reduction and head pools (no padding): ``AvgPool2d``.
* flatten: ``Flatten`` of ``(C, H, W)``, ``start_dim=0`` (per sample); fc1's
  rows are permuted from this project's (H, W, C) order to (C, H, W).
* fc1: ``Linear``; fc2 with the vote folded in: ``Affine`` with weight
  ``mean_g fc2[:, k g + g']`` and the bias likewise.
* output: ``Output`` ``(num_classes,)``, one vector per timestep.

Time, and the graph's metadata (flat keys, as NIR's HDF5 files store them):

* ``dt``: seconds per timestep (NIR stores none; every LIF's ``tau`` is
  ``(4/3) dt`` for the default neuron). The default 1e-4 s is what snnTorch's
  importer assumes.
* ``timesteps``, ``readout`` (the logits are the mean over the T timesteps
  of the output node) and ``input`` (static images: the same image at every
  timestep, as the stem is direct encoding; event frames: frame t at step t).
* ``delayed_edges``: a JSON list of ``[source, target]`` edges that carry
  one timestep of delay: the backward (feedback) edges of the cells. Without
  them the graph is acyclic; an interpreter computes the nodes in
  topological order of the remaining edges, and a delayed edge delivers the
  source's output of the previous timestep (zeros at t = 0). This is the
  cell's rule ``r_i = n_i + f_i`` with ``f_i`` from ``t - 1``.
* ``weight_bits``, ``format``/``version``, and ``snnax_nas``: a JSON string
  with the network config and the genotype (what :func:`from_nir` rebuilds).

Known semantic differences and how each is handled:

* Threshold equality: NIR fires on ``v > v_threshold``, this project on
  ``v >= threshold``. The exported ``v_threshold`` is
  ``nextafter(threshold, -inf)`` in float32, so for every float32 membrane
  ``v > v_threshold`` exactly when ``v >= threshold``.
* Padding in average pooling: NIR's ``AvgPool2d`` does not say whether the
  zero padding counts in the divisor (PyTorch's ``count_include_pad``). The
  padded 3x3 pool is written as a per-channel conv with 1/9 weights, which
  has one meaning; the unpadded pools are ``AvgPool2d``, where the question
  does not arise.
* dt: recorded in the metadata (above); ``tau / dt`` is the time constant
  in timesteps.
* Soft reset (``reset="soft"``) and max pooling (``maxpool3x3``) have no
  NIR 1.0 primitive: :func:`to_nir` refuses them in one line. Dropout is
  training only and not exported.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import numpy as np

from snnax_nas import configs
from snnax_nas import genotype as genotype_lib
from snnax_nas import layers
from snnax_nas import models
from snnax_nas import network
from snnax_nas import quant
from snnax_nas import workdir as workdir_lib

FORMAT = "snnax_nas.nir"
VERSION = 1
DEFAULT_DT = 1e-4  # seconds per timestep; what snnTorch's NIR importer assumes
NIR_INSTALL = "pip install 'snnax_nas[nir]'  (or: pip install nir==1.0.8)"


def require_nir():
  """The ``nir`` module.

  Raises:
    ModuleNotFoundError: ``nir`` is not installed; the message says how to
      install it, in one line.
  """
  try:
    import nir  # optional extra
  except ImportError:
    raise ModuleNotFoundError(f"NIR export needs the nir package: {NIR_INSTALL}") from None
  return nir


def threshold_below(threshold: float) -> np.float32:
  """The largest float32 below ``threshold``: NIR's ``v > v_threshold`` is
  then this project's ``v >= threshold`` for every float32 ``v``."""
  return np.nextafter(np.float32(threshold), np.float32(-np.inf))


def _hwio_to_oihw(kernel) -> np.ndarray:
  return np.ascontiguousarray(np.transpose(np.asarray(kernel, np.float32), (3, 2, 0, 1)))


def bn_affine(params: dict, stats: dict) -> tuple[np.ndarray, np.ndarray]:
  """``(a, b)`` float32 [C] with ``BN(x) = a x + b`` in evaluation mode.

  Args:
    params: ``{"scale", "bias"}`` [C]; stats: ``{"mean", "var"}`` [C].
  """
  r = (np.float32(1) / np.sqrt(np.asarray(stats["var"], np.float32) + np.float32(layers.BN_EPS)))
  a = (r * np.asarray(params["scale"], np.float32)).astype(np.float32)
  b = (np.asarray(params["bias"], np.float32) - np.asarray(stats["mean"], np.float32) * a)
  return a, b.astype(np.float32)


class _Builder:
  """Accumulates the nodes, edges and delayed edges of the graph."""

  def __init__(self, nir, dt: float, weight_bits: int, scales: dict):
    self.nir, self.dt, self.bits, self.scales = nir, dt, weight_bits, scales
    self.nodes: dict[str, Any] = {}
    self.edges: list[tuple[str, str]] = []
    self.delayed: list[tuple[str, str]] = []

  def add(self, name: str, node, inputs=()) -> str:
    if name in self.nodes:
      raise AssertionError(f"node {name} added twice")
    self.nodes[name] = node
    self.edges += [(src, name) for src in inputs]
    return name

  def connect(self, src: str, dst: str, delayed: bool = False):
    self.edges.append((src, dst))
    if delayed:
      self.delayed.append((src, dst))

  def conv(self, name, src, kernel_path, kernel, hw, stride=1) -> str:
    """A bias-free conv of an HWIO kernel (quantisation metadata attached)."""
    w = _hwio_to_oihw(kernel)
    meta = {"param": kernel_path}
    if kernel_path in self.scales:
      meta.update(weight_bits=self.bits, weight_scale=self.scales[kernel_path])
    k = w.shape[-1]
    node = self.nir.Conv2d(input_shape=tuple(hw), weight=w, stride=stride, padding=k // 2,
                           dilation=1, groups=1, bias=np.zeros(w.shape[0], np.float32),
                           metadata=meta)
    return self.add(name, node, [src])

  def per_channel(self, name, srcs, weight, bias, hw, padding=0, meta=None) -> str:
    """A per-channel conv: channel ``c`` of the output is ``weight[c]``
    ([C, k, k]) applied to input channel ``c``, plus ``bias[c]``. Written as
    a full conv with a diagonal weight (``groups=1``): NIR 1.0.8's type
    inference ignores ``groups``, so a grouped conv fails ``nir.read``."""
    c, k = weight.shape[0], weight.shape[-1]
    full = np.zeros((c, c, k, k), np.float32)
    full[np.arange(c), np.arange(c)] = weight
    node = self.nir.Conv2d(input_shape=tuple(hw), weight=full, stride=1, padding=padding,
                           dilation=1, groups=1, bias=np.asarray(bias, np.float32),
                           metadata=meta or {})
    return self.add(name, node, srcs)

  def bn(self, name, src, path, variables, hw) -> str:
    p = _get(variables["params"], path)
    a, b = bn_affine(p, _get(variables["batch_stats"], path))
    return self.per_channel(name, [src], a[:, None, None], b, hw, meta={"batch_norm": path})

  def junction(self, name, c, hw) -> str:
    return self.per_channel(name, [], np.ones((c, 1, 1), np.float32), np.zeros(c, np.float32),
                          hw, meta={"junction": True})

  def lif(self, name, src, shape, lif, probe) -> str:
    full = lambda v: np.full(shape, v, np.float32)
    node = self.nir.LIF(tau=full(lif.tau * self.dt), r=full(1.0), v_leak=full(lif.v_reset),
                        v_threshold=np.full(shape, threshold_below(lif.threshold), np.float32),
                        v_reset=full(lif.v_reset),
                        metadata={"probe": probe, "threshold": float(lif.threshold),
                                  "fires_on": "v >= threshold (v_threshold = threshold - 1 ulp)"})
    return self.add(name, node, [src])

  def avgpool(self, name, src, size) -> str:
    node = self.nir.AvgPool2d(kernel_size=np.array([size, size]), stride=np.array([size, size]),
                              padding=np.array([0, 0]))
    return self.add(name, node, [src])


def _get(tree, path: str):
  for k in path.split("/"):
    tree = tree[k]
  return tree


def _check_supported(cfg: configs.NetworkConfig, edge_ops) -> None:
  """Raises ValueError (one line) for what NIR 1.0 cannot express."""
  if cfg.lif.reset != "hard":
    raise ValueError(f"LIF reset={cfg.lif.reset!r} has no NIR primitive (NIR's LIF resets to "
                     "v_reset): export a network with reset='hard'")
  for cell in edge_ops:
    for op in cell:
      if op.kind == "maxpool":
        raise ValueError(f"op {op.name!r} has no NIR primitive (NIR 1.0 has no max pooling): "
                         "choose a genotype without it")


def _quantized(variables: dict, weight_bits: int):
  """``(variables with dequantised kernels, {kernel path: scale [C_out]})``."""
  if weight_bits not in quant.WEIGHT_BITS:
    raise ValueError(f"weight_bits={weight_bits!r} must be one of "
                     f"{', '.join(map(str, quant.WEIGHT_BITS))}")
  params = jax.device_get(variables["params"])
  if weight_bits == 32:
    return dict(variables, params=params), {}
  scales = {}

  def walk(tree, prefix):
    out = {}
    for k, v in tree.items():
      path = f"{prefix}/{k}" if prefix else k
      if hasattr(v, "items"):
        out[k] = walk(v, path)
      elif quant.is_weight(np.asarray(v)):
        q = quant.quantize_tensor(np.asarray(v, np.float32), weight_bits)
        scales[path] = np.asarray(q.scale, np.float32)
        out[k] = np.asarray(quant.dequantize_tensor(q), np.float32)
      else:
        out[k] = v
    return out

  return dict(variables, params=walk(params, "")), scales


def _cell(g: _Builder, variables, cfg, l: int, ops, src: str, shape) -> str:
  """Adds cell ``l`` reading ``src``; returns its output junction (node 3)."""
  h, w, c = shape
  hw, chw = (h, w), (c, h, w)
  present = [(e, op) for e, op in enumerate(ops) if op.kind != "zero"]
  targets = {genotype_lib.EDGES[e][1] for e, _ in present}
  if 3 not in targets:
    raise ValueError(f"cell {l} has no edge into its output node")
  node = {0: g.junction(f"cell{l}_node0", c, hw)}
  g.connect(src, node[0])
  for j in (1, 2, 3):
    if j in targets:
      node[j] = g.junction(f"cell{l}_node{j}", c, hw)
  for e, op in present:
    i, j = genotype_lib.EDGES[e]
    if i not in node:  # an edge out of a node nothing feeds: its input is zeros
      node[i] = g.junction(f"cell{l}_node{i}", c, hw)
    stem = f"cell{l}_edge{i}{j}"
    path = f"cell_{l}/{network.edge_name(e)}"
    if op.kind == "conv":
      x = g.lif(f"{stem}_lif", node[i], chw, cfg.lif.with_threshold(op.threshold),
                f"cell{l}/edge{e}/lif")
      x = g.conv(f"{stem}_conv", x, f"{path}/conv/kernel",
                 _get(variables["params"], f"{path}/conv/kernel"), hw)
      out = g.bn(f"{stem}_bn", x, f"{path}/bn", variables, hw)
    elif op.kind == "avgpool":
      out = g.per_channel(f"{stem}_avgpool", [node[i]], np.full((c, 3, 3), 1 / 9, np.float32),
                        np.zeros(c, np.float32), hw, padding=1,
                        meta={"op": "avgpool3x3, zero padding counted (count_include_pad)"})
    else:  # skip
      out = node[i]
    g.connect(out, node[j], delayed=i > j)
  return node[3]


def to_nir(variables: dict, config: configs.NetworkConfig, genotype, *,
           weight_bits: int = 32, dt: float = DEFAULT_DT):
  """The NIR graph of a network in evaluation mode (see the module docstring).

  Args:
    variables: ``{"params", "batch_stats"}`` of
      :class:`snnax_nas.models.SpikingNetwork` (float32, trained).
    config: its network config.
    genotype: its genotype (any form the Module takes).
    weight_bits: 32, or 16 / 8 / 4: every kernel quantised per output channel
      (post-training, :func:`snnax_nas.quant.quantize_tensor`) and written
      dequantised, the bits and scales in the conv/linear node's metadata.
    dt: seconds per timestep, recorded in the metadata (every LIF's ``tau``
      is ``config.lif.tau * dt``).

  Returns:
    ``nir.NIRGraph``.

  Raises:
    ModuleNotFoundError: ``nir`` is not installed (the message says how).
    ValueError: bad ``weight_bits`` / ``dt``, or a network NIR cannot express
      (soft reset, max pooling), in one line.
  """
  nir = require_nir()
  if not (isinstance(dt, (int, float)) and dt > 0):
    raise ValueError(f"dt={dt!r} must be a positive number of seconds per timestep")
  model = models.SpikingNetwork.for_genotypes(config, genotype)
  edge_ops = network.edge_ops(model.genotype, config)
  _check_supported(config, edge_ops)
  variables, scales = _quantized(variables, weight_bits)
  cfg = config
  g = _Builder(nir, float(dt), weight_bits, scales)
  (h1, w1, c1), (h2, w2, c2) = cfg.stage_shapes
  h0, w0, cin = cfg.input_shape
  x = g.add("input", nir.Input(input_type={"input": np.array([cin, h0, w0])}))
  x = g.conv("stem_conv", x, "stem/conv/kernel", variables["params"]["stem"]["conv"]["kernel"],
             (h0, w0), cfg.stem_stride)
  x = g.bn("stem_bn", x, "stem/bn", variables, (h1, w1))
  for l, shape in enumerate(cfg.cell_shapes):
    if l == cfg.cells_per_stage:
      x = g.bn("reduction_bn_in", x, "reduction/bn_in", variables, (h1, w1))
      x = g.lif("reduction_lif", x, (c1, h1, w1), cfg.lif, "reduction/lif")
      x = g.conv("reduction_conv", x, "reduction/conv/kernel",
                 variables["params"]["reduction"]["conv"]["kernel"], (h1, w1))
      x = g.bn("reduction_bn_out", x, "reduction/bn_out", variables, (h1, w1))
      x = g.avgpool("reduction_pool", x, 2)
    x = _cell(g, variables, cfg, l, edge_ops[l], x, shape)
  x = g.bn("head_bn", x, "head/bn", variables, (h2, w2))
  x = g.lif("head_lif", x, (c2, h2, w2), cfg.lif, "head/lif")
  s2 = cfg.second_pool
  if s2 > 1:
    x = g.avgpool("head_pool", x, s2)
  hp, wp = h2 // s2, w2 // s2
  x = g.add("head_flatten", nir.Flatten(input_type={"input": np.array([c2, hp, wp])},
                                        start_dim=0, end_dim=-1), [x])
  head = variables["params"]["head"]
  w_fc1 = np.asarray(head["fc1"]["kernel"], np.float32)  # [(H, W, C), hidden]
  w_fc1 = w_fc1.reshape(hp, wp, c2, -1).transpose(2, 0, 1, 3).reshape(c2 * hp * wp, -1)
  meta = {"param": "head/fc1/kernel", "flatten_order": "CHW (rows permuted from HWC)"}
  if "head/fc1/kernel" in scales:
    meta.update(weight_bits=weight_bits, weight_scale=scales["head/fc1/kernel"])
  x = g.add("head_fc1", nir.Linear(weight=np.ascontiguousarray(w_fc1.T), metadata=meta), [x])
  x = g.lif("head_fc_lif", x, (cfg.hidden,), cfg.lif, "head/fc_lif")
  k, grp = cfg.num_classes, cfg.vote_group
  w_fc2 = np.asarray(head["fc2"]["kernel"], np.float32)
  w_vote = w_fc2.reshape(-1, k, grp).mean(-1).astype(np.float32)  # [hidden, K]
  b_vote = np.asarray(head["fc2"]["bias"], np.float32).reshape(k, grp).mean(-1)
  meta = {"param": "head/fc2 with the vote folded in", "vote_group": grp}
  if "head/fc2/kernel" in scales:
    # The folded weight is a mean of dequantised weights: the codes are the
    # fc2 kernel's, not this node's; its scales are still recorded.
    meta.update(weight_bits=weight_bits, weight_scale=scales["head/fc2/kernel"])
  x = g.add("head_fc2_vote", nir.Affine(weight=np.ascontiguousarray(w_vote.T),
                                        bias=b_vote.astype(np.float32), metadata=meta), [x])
  g.add("output", nir.Output(output_type={"output": np.array([k])}), [x])
  metadata = {
      "format": FORMAT, "version": VERSION, "dt": float(dt), "timesteps": cfg.timesteps,
      "weight_bits": weight_bits,
      "readout": "logits = mean over the T timesteps of the output node",
      "input": ("static images: the same (C, H, W) image at each of the T timesteps; "
                "event frames: frame t at timestep t"),
      "delayed_edges": json.dumps(g.delayed),
      "snnax_nas": json.dumps(workdir_lib.json_ready(
          {"config": configs.network_to_json(cfg), "genotype": model.genotype,
           "weight_bits": weight_bits, "dt": float(dt)})),
  }
  return nir.NIRGraph(nodes=g.nodes, edges=g.edges, metadata=metadata, type_check=False)


def export_network(variables: dict, config: configs.NetworkConfig, genotype, path: str, *,
                   weight_bits: int = 32, dt: float = DEFAULT_DT) -> str:
  """Writes :func:`to_nir`'s graph to ``path`` (a ``.nir`` HDF5 file, written
  atomically; parent folders created). Returns the path."""
  nir = require_nir()
  graph = to_nir(variables, config, genotype, weight_bits=weight_bits, dt=dt)
  if os.path.dirname(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
  # HDF5 needs a seekable, readable file: write a temporary file, then rename.
  tmp = f"{path}.tmp{os.getpid()}"
  try:
    nir.write(tmp, graph)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return path


def export_run(workdir: str, path: str, *, weight_bits: int = 32,
               dt: float = DEFAULT_DT) -> str:
  """Exports a ``launch.train`` run's latest checkpoint (see
  :func:`export_network`).

  Raises:
    ModuleNotFoundError: no ``nir``. ValueError: no checkpointed training run
    in ``workdir``, bad bits, or a network NIR cannot express.
  """
  require_nir()
  from snnax_nas import evaluate  # evaluate imports the training stack
  trained = evaluate.load_trained_run(workdir)
  return export_network(jax.device_get(trained.variables), trained.config, trained.genotype,
                        path, weight_bits=weight_bits, dt=dt)


def _check_structure(graph, cfg: configs.NetworkConfig, genotype: str, dt: float) -> None:
  """Refuses a graph that is not the one :func:`to_nir` writes for the
  network its metadata records: nodes missing or added, a node of another
  type, an array of another shape, or edges changed. Only the values of the
  arrays may differ (edited weights are read back as they are).

  Raises:
    ValueError: one line naming the first difference.
  """
  zeros = jax.tree.map(lambda s: np.zeros(s.shape, np.float32),
                       network.variable_shapes(cfg, genotype))
  want = to_nir(zeros, cfg, genotype, dt=dt)
  missing = sorted(set(want.nodes) - set(graph.nodes))
  extra = sorted(set(graph.nodes) - set(want.nodes))
  if missing or extra:
    raise ValueError(f"the graph's nodes differ from network {genotype!r}: "
                     f"missing {missing[:3]}, not of the network {extra[:3]}")
  for name, ref in want.nodes.items():
    got = graph.nodes[name]
    if type(got).__name__ != type(ref).__name__:
      raise ValueError(f"node {name!r} is a {type(got).__name__}; network {genotype!r} has "
                       f"a {type(ref).__name__} there")
    for field, value in vars(ref).items():
      if isinstance(value, np.ndarray):
        shape = np.shape(getattr(got, field, None))
        if shape != value.shape:
          raise ValueError(f"node {name!r}: {field} has shape {shape}; network {genotype!r} "
                           f"needs {value.shape}")
  edges = lambda g: sorted((str(a), str(b)) for a, b in g.edges)  # noqa: E731
  if edges(graph) != edges(want):
    diff = sorted(set(edges(graph)) ^ set(edges(want)))
    raise ValueError(f"the graph's edges differ from network {genotype!r}: {diff[:3]}")


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


def from_nir(graph) -> tuple[dict, configs.NetworkConfig, str]:
  """Reads a graph written by :func:`to_nir` back into Module variables.

  The network's structure (config and genotype) comes from the ``snnax_nas``
  metadata; every weight, bias and batch-norm affine is read from the graph's
  nodes, so a graph whose weights another tool changed is evaluated with
  those weights. A batch-norm node becomes a BN with ``scale = a``,
  ``bias = b``, mean 0 and a variance with ``var + eps == 1``; fc2 becomes
  the folded vote weight repeated over each class's group (same logits).
  The graph must have the recorded network's structure: its nodes, their
  types, the weights' shapes and the edges are checked against the graph
  :func:`to_nir` builds from the metadata, and a difference is refused.

  Args:
    graph: a ``nir.NIRGraph`` or the path of a ``.nir`` file.

  Returns:
    ``(variables, config, genotype)`` for ``SpikingNetwork(config,
    genotype).apply(variables, x, train=False)``.

  Raises:
    ModuleNotFoundError: no ``nir``. ValueError: an unreadable file, not a
    graph of this format, a structure (nodes, node types, weight shapes,
    edges) other than the recorded network's, or neuron constants that
    differ from it.
  """
  nir = require_nir()
  if isinstance(graph, (str, os.PathLike)):
    try:
      graph = nir.read(graph)
    except Exception as e:  # noqa: BLE001 (h5py and nir raise many kinds on a bad file)
      raise ValueError(f"cannot read {os.fspath(graph)!r} as a NIR graph "
                       f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
                       ) from None
  meta = graph.metadata or {}
  if _text(meta.get("format", "")) != FORMAT:
    raise ValueError(f"not a {FORMAT} graph (metadata format={meta.get('format')!r})")
  try:
    info = json.loads(_text(meta["snnax_nas"]))
    cfg = configs.network_from_json(info["config"])
    text, dt = info["genotype"], float(info["dt"])
  except (KeyError, TypeError, ValueError) as e:
    raise ValueError(f"the graph's snnax_nas metadata is not a network record ({e})") from None
  _check_structure(graph, cfg, text, dt)
  node = graph.nodes.__getitem__  # every node exists: _check_structure refused a missing one

  def kernel(name):  # OIHW -> HWIO
    return np.transpose(np.asarray(node(name).weight, np.float32), (2, 3, 1, 0))

  var_one = np.float32(1) - np.float32(layers.BN_EPS)
  if np.float32(var_one + np.float32(layers.BN_EPS)) != np.float32(1):
    raise AssertionError("no float32 variance gives var + eps == 1")

  def bn(name):
    n = node(name)
    c = n.weight.shape[0]
    return ({"scale": np.diagonal(np.asarray(n.weight, np.float32)[:, :, 0, 0]).copy(),
             "bias": np.asarray(n.bias, np.float32)},
            {"mean": np.zeros(c, np.float32), "var": np.full(c, var_one, np.float32)})

  def check_lif(name, lif):
    n = node(name)
    want = {"tau": lif.tau * dt, "v_threshold": threshold_below(lif.threshold),
            "v_reset": lif.v_reset, "v_leak": lif.v_reset, "r": 1.0}
    for field, value in want.items():
      got = np.asarray(getattr(n, field), np.float32)
      if not np.allclose(got, np.float32(value), rtol=1e-6, atol=0):
        raise ValueError(f"LIF {name}: {field} differs from the recorded network's "
                         f"({np.unique(got)[:3]} vs {value}); only weights can be edited")

  params, stats = {}, {}

  def put(path, p, s=None):
    tree, st = params, stats
    *parents, leaf = path.split("/")
    for k in parents:
      tree, st = tree.setdefault(k, {}), st.setdefault(k, {})
    tree[leaf] = p
    if s is not None:
      st[leaf] = s

  put("stem/conv", {"kernel": kernel("stem_conv")})
  put("stem/bn", *bn("stem_bn"))
  put("reduction/bn_in", *bn("reduction_bn_in"))
  check_lif("reduction_lif", cfg.lif)
  put("reduction/conv", {"kernel": kernel("reduction_conv")})
  put("reduction/bn_out", *bn("reduction_bn_out"))
  for l, ops in enumerate(network.edge_ops(text, cfg)):
    for e, op in enumerate(ops):
      if op.kind != "conv":
        continue
      i, j = genotype_lib.EDGES[e]
      stem, path = f"cell{l}_edge{i}{j}", f"cell_{l}/{network.edge_name(e)}"
      check_lif(f"{stem}_lif", cfg.lif.with_threshold(op.threshold))
      put(f"{path}/conv", {"kernel": kernel(f"{stem}_conv")})
      put(f"{path}/bn", *bn(f"{stem}_bn"))
  put("head/bn", *bn("head_bn"))
  check_lif("head_lif", cfg.lif)
  check_lif("head_fc_lif", cfg.lif)
  (_, _, c2), s2 = cfg.stage_shapes[1], cfg.second_pool
  hp, wp = cfg.stage_shapes[1][0] // s2, cfg.stage_shapes[1][1] // s2
  w_fc1 = np.asarray(node("head_fc1").weight, np.float32).T  # [(C, H, W), hidden]
  w_fc1 = w_fc1.reshape(c2, hp, wp, -1).transpose(1, 2, 0, 3).reshape(hp * wp * c2, -1)
  put("head/fc1", {"kernel": np.ascontiguousarray(w_fc1)})
  fc2 = node("head_fc2_vote")
  grp = cfg.vote_group
  put("head/fc2", {"kernel": np.repeat(np.asarray(fc2.weight, np.float32).T, grp, axis=1),
                   "bias": np.repeat(np.asarray(fc2.bias, np.float32), grp)})
  return {"params": params, "batch_stats": stats}, cfg, text


__all__ = ["DEFAULT_DT", "FORMAT", "NIR_INSTALL", "VERSION", "bn_affine", "export_network",
           "export_run", "from_nir", "require_nir", "threshold_below", "to_nir"]
