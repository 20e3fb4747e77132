r"""Synaptic operations and energy per inference, from measured spikes.

A spiking network's arithmetic is event-driven: a spike arriving at a conv or
linear layer adds one weight to each output it reaches (an accumulate, AC,
no multiply). :func:`measure_operations` runs
:class:`snnax_nas.models.SpikingNetwork`, records where every LIF layer
spiked and counts, per layer and per inference (one sample over all T
timesteps, averaged over the samples):

* **SOPs** (synaptic operations, each one AC): for a conv fed by spikes
  (every conv edge of a cell, the reduction conv), a spike at ``(h, w)`` of a
  k x k stride-1 conv padded ``k // 2`` reaches ``r(h) * r(w) * C_out``
  outputs, ``r(i)`` the output rows/columns whose window holds ``i`` inside
  the image: k in the interior, fewer at the border (exact, from
  :func:`window_matrix`). A linear layer: ``out_features`` per spike. The
  head's average pool (``second_pool``) is folded into fc1: pooling then fc1
  is one linear layer on the spikes, each spike adding its pooled unit's
  weights / p² to all ``hidden`` units, so fc1 costs spikes(head/lif) x
  hidden SOPs and the pool nothing. fc2: spikes(head/fc_lif) x outputs.
* **MACs** (real-valued multiply-accumulates): the stem conv, fed by
  real-valued input (static images: once per inference, since the stem runs
  once and its output enters every timestep; event frames: once per frame, T
  times, the frames treated as real-valued counts), counted over the taps
  that fall inside the image (``taps(o_h) * taps(o_w) * C_in * C_out``
  summed over output positions). The two BNs that normalise a sum of edges
  before a LIF (``reduction/bn_in``, ``head/bn``) cannot fold into one
  weight and cost one MAC per element per timestep. Every other BN follows a
  conv (the stem, every conv edge, the reduction conv) and in evaluation
  mode is an affine per channel folded into that conv's weights and a bias
  (exact). An average-pool edge's 1/9 is one multiply per output element,
  counted as one MAC.
* **adds** (real-valued additions, each one AC): a cell node summing ``n``
  incoming terms (forward edges, the cell input for node 0, from t = 1 the
  feedback of backward edges) costs ``n - 1`` per element per timestep (a
  skip edge's whole cost is its term there); a 3x3 pool edge ``window - 1`` per output
  element (additions for avg, comparisons for max), over the in-image part
  of its window; the reduction's 2x2 average pool 3 per output element (its
  1/4 folds into the BN before it).

Every count is of what :class:`snnax_nas.models.SpikingNetwork` computes:
backward edges run at every timestep, the last step's included (whose
feedback no later step reads), and are counted so.

Not counted: neuron updates (leak, threshold, reset, one per neuron and
timestep), bias additions of folded BNs and fc2, the vote and time average
of the logits (fewer than ``num_outputs * T`` additions), and all memory
traffic (reading weights and membrane state), which on real hardware often
costs more than the arithmetic. SOP counts follow the SNN literature's
convention of counting synaptic events only; the adds and MACs are listed
beside them.

**Energy** = ``(SOPs + adds) * E_AC + MACs * E_MAC``, with the per-operation
energies as config (:class:`OperationEnergies`). The defaults are the 45 nm
figures SNN papers quote from Horowitz, "Computing's energy problem (and
what we can do about it)", ISSCC 2014: 0.9 pJ per 32-bit float add and
4.6 pJ per 32-bit float multiply-accumulate (3.7 pJ multiply + 0.9 pJ add).
The **ANN equivalent** is the same network run once as an ANN (no time):
every conv and linear layer dense over its in-image taps as MACs (the head's
pool then fc1, as an ANN computes it), the same unfolded BNs as MACs and the
same node sums and pools as adds, once; its energy
``ann_macs * E_MAC + ann_adds * E_AC`` is given beside the SNN's for scale.

Quantised weights: the counts do not depend on the weight precision (a
b-bit network performs the same operations). The energies are used as
given: the defaults price 32-bit float arithmetic, so for a network
deployed with b-bit integer weights and integer accumulators set them to
that arithmetic's figures (Horowitz's 45 nm table: 0.03 pJ per 8-bit and
0.1 pJ per 32-bit integer add, 0.2 pJ per 8-bit and 3.1 pJ per 32-bit
integer multiply); nothing here rescales them by ``weight_bits``.

Example::

  from snnax_nas import energy
  ops = energy.measure_operations(model, variables, images)   # normalised images
  ops.sops, ops.macs, ops.energy_pj(), ops.ann_energy_pj()     # per inference
  ops.to_json(energy.OperationEnergies(accumulate_pj=0.03, mac_pj=0.23))
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Mapping
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from snnax_nas import data as data_lib
from snnax_nas import genotype as genotype_lib
from snnax_nas import models
from snnax_nas import network as network_lib
from snnax_nas.configs import NetworkConfig
from snnax_nas.network import standalone

# Horowitz, ISSCC 2014, 45 nm: 32-bit float add; 32-bit float mult (3.7) + add (0.9).
DEFAULT_ACCUMULATE_PJ = 0.9
DEFAULT_MAC_PJ = 4.6


@dataclasses.dataclass(frozen=True)
class OperationEnergies:
  """Energy of one operation, in picojoules.

  Attributes:
    accumulate_pj: one accumulate (a synaptic operation or a real-valued
      addition); default 0.9 pJ, a 32-bit float add at 45 nm.
    mac_pj: one multiply-accumulate; default 4.6 pJ, a 32-bit float MAC at
      45 nm (Horowitz, ISSCC 2014).
  """

  accumulate_pj: float = DEFAULT_ACCUMULATE_PJ
  mac_pj: float = DEFAULT_MAC_PJ

  def __post_init__(self):
    for name in ("accumulate_pj", "mac_pj"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
          or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}={value!r} must be a finite number of picojoules >= 0")


def energies_from_config(section, where: str = "--config.energy") -> OperationEnergies:
  """The :class:`OperationEnergies` of a job config's ``energy`` section
  (``accumulate_pj``, ``mac_pj``).

  Raises:
    ValueError: a value that is not a finite number >= 0, named as
      ``{where}.{field}``.
  """
  try:
    return OperationEnergies(accumulate_pj=section.accumulate_pj, mac_pj=section.mac_pj)
  except ValueError as e:
    raise ValueError(f"{where}.{e}") from None


@dataclasses.dataclass(frozen=True)
class LayerOperations:
  """Operations of one layer per inference (one sample, all timesteps).

  Attributes:
    name: the layer (``stem/conv``, ``cell0/edge3/conv``, ``cell0/node3``,
      ``cell1/edge4/avgpool``, ``reduction/bn_in``, ``reduction/conv``,
      ``reduction/avgpool``, ``head/bn``, ``head/avgpool``, ``head/fc1``,
      ``head/fc2``).
    sops: spike-driven accumulates.
    macs: real-valued multiply-accumulates.
    adds: real-valued additions.
    ann_macs, ann_adds: the same layer in the ANN equivalent (one pass).
  """

  name: str
  sops: float = 0.0
  macs: float = 0.0
  adds: float = 0.0
  ann_macs: float = 0.0
  ann_adds: float = 0.0

  def energy_pj(self, energies: OperationEnergies = OperationEnergies()) -> float:
    """``(sops + adds) * E_AC + macs * E_MAC``, pJ per inference."""
    return (self.sops + self.adds) * energies.accumulate_pj + self.macs * energies.mac_pj

  def ann_energy_pj(self, energies: OperationEnergies = OperationEnergies()) -> float:
    """``ann_macs * E_MAC + ann_adds * E_AC``, pJ per ANN-equivalent pass."""
    return self.ann_macs * energies.mac_pj + self.ann_adds * energies.accumulate_pj


_COUNTS = ("sops", "macs", "adds", "ann_macs", "ann_adds")


@dataclasses.dataclass(frozen=True)
class Operations:
  """Operations of a network per inference, per layer in forward order.

  Attributes:
    layers: one :class:`LayerOperations` per layer that computes something.
    num_samples: samples the spikes were measured on (counts are their mean).
    timesteps: T.
  """

  layers: tuple[LayerOperations, ...]
  num_samples: int
  timesteps: int

  def total(self, count: str) -> float:
    """The sum over layers of one count (``sops``, ``macs``, ``adds``,
    ``ann_macs``, ``ann_adds``)."""
    if count not in _COUNTS:
      raise ValueError(f"unknown count {count!r}; choose from {', '.join(_COUNTS)}")
    return float(sum(getattr(layer, count) for layer in self.layers))

  @property
  def sops(self) -> float:
    """Synaptic operations per inference."""
    return self.total("sops")

  @property
  def macs(self) -> float:
    """Real-valued MACs per inference."""
    return self.total("macs")

  @property
  def adds(self) -> float:
    """Real-valued additions per inference."""
    return self.total("adds")

  def energy_pj(self, energies: OperationEnergies = OperationEnergies()) -> float:
    """Energy per inference, pJ: ``(SOPs + adds) * E_AC + MACs * E_MAC``."""
    return float(sum(layer.energy_pj(energies) for layer in self.layers))

  def ann_energy_pj(self, energies: OperationEnergies = OperationEnergies()) -> float:
    """Energy of the ANN-equivalent pass, pJ."""
    return float(sum(layer.ann_energy_pj(energies) for layer in self.layers))

  def to_json(self, energies: OperationEnergies = OperationEnergies()) -> dict:
    """Totals, energies (pJ) and per-layer counts as JSON-ready data."""
    layers = {layer.name: dict({k: getattr(layer, k) for k in _COUNTS},
                               energy_pj=layer.energy_pj(energies),
                               ann_energy_pj=layer.ann_energy_pj(energies))
              for layer in self.layers}
    return dict({k: self.total(k) for k in _COUNTS},
                energy_pj=self.energy_pj(energies), ann_energy_pj=self.ann_energy_pj(energies),
                accumulate_pj=float(energies.accumulate_pj), mac_pj=float(energies.mac_pj),
                num_samples=self.num_samples, timesteps=self.timesteps, layers=layers)


def window_matrix(size: int, kernel: int, stride: int = 1) -> np.ndarray:
  """Which inputs each output of a 1-D window reads: int64 [out, size].

  The window of output ``o`` covers inputs ``o * stride - kernel // 2 ...
  o * stride - kernel // 2 + kernel - 1`` (padding ``kernel // 2`` on each
  side, as :func:`snnax_nas.layers.conv2d` and :func:`snnax_nas.layers.pool3x3`);
  entries are 1 for the inputs inside ``[0, size)``. Row sums are the in-image
  taps of each output, column sums the outputs each input reaches (its
  fan-out along this axis).
  """
  if size < 1 or kernel < 1 or stride < 1:
    raise ValueError(f"size, kernel and stride must be >= 1, got {size}, {kernel}, {stride}")
  pad = kernel // 2
  out = (size + 2 * pad - kernel) // stride + 1
  start = np.arange(out)[:, None] * stride - pad
  i = np.arange(size)[None, :]
  return ((i >= start) & (i < start + kernel)).astype(np.int64)


def conv_synaptic_ops(spike_map, kernel: int, c_out: int) -> float:
  """SOPs of a stride-1 k x k conv (padding k // 2) fed by spikes.

  Args:
    spike_map: spikes per input position [H, W], summed over time, samples
      and input channels.
    kernel: k.
    c_out: output channels.

  Returns:
    ``sum_{h, w} spikes[h, w] * fan(h) * fan(w) * c_out``, fan the column
    sums of :func:`window_matrix`.
  """
  m = np.asarray(spike_map, np.float64)
  fan_h = window_matrix(m.shape[0], kernel).sum(0)
  fan_w = window_matrix(m.shape[1], kernel).sum(0)
  return float(fan_h @ m @ fan_w) * c_out


def conv_dense_macs(h: int, w: int, kernel: int, c_in: int, c_out: int,
                    stride: int = 1) -> float:
  """MACs of one dense pass of a k x k conv on an [h, w, c_in] input: the
  in-image taps of every output position times ``c_in * c_out``."""
  taps_h = window_matrix(h, kernel, stride).sum(1)
  taps_w = window_matrix(w, kernel, stride).sum(1)
  return float(taps_h.sum() * taps_w.sum()) * c_in * c_out


def pool_adds(h: int, w: int, c: int, kernel: int = 3) -> float:
  """Additions (avg) or comparisons (max) of one pass of a stride-1 k x k
  pool padded k // 2 on [h, w, c]: ``in-image window - 1`` per output."""
  taps = np.outer(window_matrix(h, kernel).sum(1), window_matrix(w, kernel).sum(1))
  return float((taps - 1).sum()) * c


def _node_terms(ops) -> tuple[dict[int, int], dict[int, int]]:
  """Non-zero terms each node of a cell sums: ``(forward, backward)``, the
  forward edges into it (node 0: the cell input) and the backward edges
  whose feedback (from the step before, none at t = 0) it adds."""
  forward, backward = {0: 1, 1: 0, 2: 0, 3: 0}, {0: 0, 1: 0, 2: 0, 3: 0}
  for e, op in enumerate(ops):
    if op.kind != "zero":  # forward (i, j) enters j; backward (j, i) enters s_i, read at node i
      (forward if e < 6 else backward)[genotype_lib.EDGES[e][1]] += 1
  return forward, backward


def operations_from_spike_maps(cfg: NetworkConfig, genotype, spike_maps: Mapping,
                               num_samples: int, *, event_input: bool = False) -> Operations:
  """The operations per inference of a network whose LIF layers spiked as
  ``spike_maps`` says (see the module docstring for what is counted).

  Args:
    cfg: the network config.
    genotype: anything :class:`snnax_nas.models.SpikingNetwork` takes (a
      string, per-cell strings, digits); dead edges are pruned as the Module
      prunes them.
    spike_maps: ``{lif layer: spikes}`` summed over time, samples and
      channels: [H, W] for the conv layers' LIFs (``cell{l}/edge{e}/lif``,
      ``reduction/lif``, ``head/lif``), a scalar for ``head/fc_lif``. A
      conv edge's entry may be missing only if it never spiked.
    num_samples: samples summed in ``spike_maps`` (counts are divided by it).
    event_input: the input is T event frames (the stem runs T times) rather
      than a static image (once).

  Returns:
    :class:`Operations`.

  Raises:
    ValueError: ``num_samples`` < 1, or a spike map of the wrong shape.
  """
  if num_samples < 1:
    raise ValueError(f"num_samples={num_samples} must be >= 1")
  n, t = float(num_samples), cfg.timesteps
  ops = standalone.edge_ops(genotype, cfg)

  def spikes(name, shape):
    m = np.asarray(spike_maps.get(name, np.zeros(shape)), np.float64)
    if m.shape != tuple(shape):
      raise ValueError(f"spike map {name!r} has shape {m.shape}; expected {tuple(shape)}")
    return m

  h0, w0, c_in = cfg.input_shape
  (h1, w1, c1), (h2, w2, c2) = cfg.stage_shapes
  stem = conv_dense_macs(h0, w0, 3, c_in, c1, cfg.stem_stride)
  layers = [LayerOperations("stem/conv", macs=stem * (t if event_input else 1), ann_macs=stem)]
  for l in range(cfg.num_cells):
    hh, ww, c = cfg.cell_shapes[l]
    if l == cfg.cells_per_stage:
      elems = float(h1 * w1 * c1)
      conv = conv_dense_macs(h1, w1, 3, c1, c2)
      pooled = float(h2 * w2 * c2)
      layers += [
          LayerOperations("reduction/bn_in", macs=elems * t, ann_macs=elems),
          LayerOperations("reduction/conv",
                          sops=conv_synaptic_ops(spikes("reduction/lif", (h1, w1)), 3, c2) / n,
                          ann_macs=conv),
          LayerOperations("reduction/avgpool", adds=3 * pooled * t, ann_adds=3 * pooled)]
    elems = float(hh * ww * c)
    for e, op in enumerate(ops[l]):
      if op.kind == "conv":
        sop = conv_synaptic_ops(spikes(f"cell{l}/edge{e}/lif", (hh, ww)), op.kernel, c) / n
        layers.append(LayerOperations(f"cell{l}/edge{e}/conv", sops=sop,
                                      ann_macs=conv_dense_macs(hh, ww, op.kernel, c, c)))
      elif op.kind in ("avgpool", "maxpool"):
        adds = pool_adds(hh, ww, c, op.kernel)
        scale = elems if op.kind == "avgpool" else 0.0
        layers.append(LayerOperations(f"cell{l}/edge{e}/{op.kind}", adds=adds * t, macs=scale * t,
                                      ann_adds=adds, ann_macs=scale))
    forward, backward = _node_terms(ops[l])
    for node in forward:
      first = max(forward[node] - 1, 0) * elems                    # t = 0: no feedback yet
      later = max(forward[node] + backward[node] - 1, 0) * elems   # each of the T - 1 others
      if first or later:
        layers.append(LayerOperations(f"cell{l}/node{node}", adds=first + (t - 1) * later,
                                      ann_adds=first))
  elems2 = float(h2 * w2 * c2)
  p = cfg.second_pool
  head_spikes = spikes("head/lif", (h2, w2))
  fc_spikes = float(np.asarray(spike_maps.get("head/fc_lif", 0.0), np.float64))
  layers += [
      LayerOperations("head/bn", macs=elems2 * t, ann_macs=elems2),
      # Folded into fc1 in the SNN; the ANN pools, then runs fc1.
      LayerOperations("head/avgpool", ann_adds=float(p * p - 1) * cfg.classifier_in),
      LayerOperations("head/fc1", sops=float(head_spikes.sum()) * cfg.hidden / n,
                      ann_macs=float(cfg.classifier_in * cfg.hidden)),
      LayerOperations("head/fc2", sops=fc_spikes * cfg.num_outputs / n,
                      ann_macs=float(cfg.hidden * cfg.num_outputs))]
  return Operations(layers=tuple(layers), num_samples=int(num_samples), timesteps=t)


def _spiking(module, method: str) -> bool:
  return method == "__call__" and isinstance(module, (models.ConvEdge, models.Reduction,
                                                      models.Head))


def _maps_of(inter: Mapping, mask: jax.Array) -> dict[str, jax.Array]:
  """Per-layer spike maps (summed over time, masked samples and channels) of
  the captured intermediates of the spiking submodules."""

  def spatial(s):  # [T, B, H, W, C] -> [H, W], integer sums (exact)
    return (s.astype(jnp.int32) * mask[:, None, None, None]).sum((0, 1, 4))

  out = {}
  for name, cell in inter.items():
    if not name.startswith("cell_"):
      continue
    for edge, calls in cell.items():
      e = genotype_lib.EDGES.index(tuple(int(k) for k in edge.split("_")[1:]))
      # A cell with backward edges calls each edge once per timestep.
      out[f"cell{name.split('_')[1]}/edge{e}/lif"] = sum(spatial(c[1]) for c in calls["__call__"])
  if "reduction" in inter:
    out["reduction/lif"] = spatial(inter["reduction"]["__call__"][0][1])
  head = inter["head"]["__call__"][0][1]
  out["head/lif"] = spatial(head["head/lif"])
  out["head/fc_lif"] = (head["head/fc_lif"].astype(jnp.int32) * mask[:, None]).sum()
  return out


# One jitted function per (network, BN mode), kept so that
# repeated measurements (weight draws, bit widths) reuse its compilation.
@functools.lru_cache(maxsize=32)
def _batch_maps(cfg: NetworkConfig, genotype, batch_statistics: bool):
  """``f(variables, x [B, ...], mask int32 [B]) -> {layer: map}`` jitted."""
  model = models.SpikingNetwork(cfg, genotype)

  @jax.jit
  def batch_maps(variables, x, mask):
    if batch_statistics:
      _, state = model.apply(dict(variables), x, train=True, capture_intermediates=_spiking,
                             mutable=["intermediates", "batch_stats"])
    else:
      _, state = model.apply(dict(variables), x, train=False, capture_intermediates=_spiking,
                             mutable=["intermediates"])
    return _maps_of(state["intermediates"], mask)

  return batch_maps


def spike_maps(model: models.SpikingNetwork, variables: Mapping, images, *,
               batch_size: int = 256, batch_statistics: bool = False,
               info=None) -> dict[str, np.ndarray]:
  """Where every LIF layer spiked, summed over time, samples and channels.

  Args:
    model: the network.
    variables: its ``{"params", "batch_stats"}``.
    images: normalised float images [N, H, W, C] or frames [N, T', H, W, C];
      raw ones (uint8, as a dataset's loader gives them) when ``info`` is
      given.
    batch_size: samples per jitted forward (the last batch is padded, and
      the padding masked, in evaluation mode).
    batch_statistics: BN with each batch's statistics (as the training-free
      scorer and a training step run it; nothing is kept) instead of the
      running statistics. Batches are then not padded: the last one runs
      at its own size. Dropout is off either way.
    info: the dataset (:func:`snnax_nas.data.get_info`): each batch is
      normalised with it (:func:`snnax_nas.data.normalize`); None: ``images``
      are normalised already.

  Returns:
    ``{layer: float64 [H, W]}`` (``head/fc_lif``: a scalar), exact integer
    counts.

  Raises:
    ValueError: ``batch_size`` < 1 or no images.
  """
  if batch_size < 1:
    raise ValueError(f"batch_size={batch_size} must be >= 1")
  if not len(images):
    raise ValueError("no images to measure spikes on")
  if batch_statistics and model.config.dropout:
    model = models.SpikingNetwork(model.config.replace(dropout=0.0), model.genotype)

  batch_maps = _batch_maps(model.config, model.genotype, batch_statistics)
  total = {}
  for start in range(0, len(images), batch_size):
    x = np.asarray(images[start:start + batch_size])
    x = np.asarray(x if info is None else data_lib.normalize(x, info), np.float32)
    mask = np.ones(len(x), np.int32)
    if len(x) < batch_size and not batch_statistics and start > 0:
      pad = batch_size - len(x)
      x = np.concatenate([x, x[np.arange(pad) % len(x)]])  # real rows: the mask must act
      mask = np.concatenate([mask, np.zeros(pad, np.int32)])
    got = batch_maps(variables, x, mask)  # summed on device: no sync per batch
    total = got if not total else jax.tree.map(jnp.add, total, got)
  return {k: np.asarray(v, np.float64) for k, v in jax.device_get(total).items()}


def measure_operations(model: models.SpikingNetwork, variables: Mapping, images, *,
                       batch_size: int = 256, batch_statistics: bool = False,
                       info=None) -> Operations:
  """Operations per inference of ``model`` on ``images``, from its spikes.

  Args:
    model, variables: the network and its ``{"params", "batch_stats"}`` (as
      evaluated: quantise them first for a quantised network).
    images: normalised float images [N, H, W, C] or frames [N, T', H, W, C]
      (raw ones with ``info``).
    batch_size, batch_statistics, info: as :func:`spike_maps`.

  Returns:
    :class:`Operations`, averaged over the N samples.
  """
  maps = spike_maps(model, variables, images, batch_size=batch_size,
                    batch_statistics=batch_statistics, info=info)
  return operations_from_spike_maps(model.config, model.genotype, maps, len(images),
                                    event_input=np.ndim(images) == 5)


def initialisation_estimate(cfg: NetworkConfig, genotype, images, key: jax.Array,
                            energies: Optional[OperationEnergies] = None) -> dict:
  """Operations per inference of a freshly initialised network: an estimate
  at initialisation, not a trained network's figure.

  The network is initialised from ``key`` as the training code initialises
  it (:func:`snnax_nas.network.init_standalone_params`, in the Module's
  layout) and run with batch statistics in
  BN (as the training-free scorer runs it; a fresh network's running
  statistics are 0 and 1), dropout off.

  Args:
    cfg, genotype: the network.
    images: normalised images [N, H, W, C] (or frames), one batch.
    key: the weight draw.
    energies: per-operation energies (default :class:`OperationEnergies`).

  Returns:
    :meth:`Operations.to_json` with ``"estimate": "initialisation"``.
  """
  cfg = cfg.replace(dropout=0.0)
  genotypes = standalone.network_genotypes(genotype, cfg)
  model = models.SpikingNetwork.for_genotypes(cfg, genotypes)
  images = np.asarray(images, np.float32)
  # The training code's initialisation (one draw over the weight inventory),
  # without tracing a forward pass as Module.init does.
  variables = network_lib.variables_from_standalone(
      network_lib.init_standalone_params(key, cfg, genotypes))
  ops = measure_operations(model, variables, images, batch_size=len(images),
                           batch_statistics=True)
  return dict(ops.to_json(energies or OperationEnergies()), estimate="initialisation")


def summary_lines(ops: Mapping, *, indent: str = "  ", per_layer: bool = True) -> list[str]:
  """Printable lines of :meth:`Operations.to_json`'s output: the totals and
  energies (µJ per inference), then one line per layer."""
  uj = 1e-6
  lines = [f"{indent}operations per inference: {ops['sops']:,.0f} SOPs, {ops['macs']:,.0f} MACs, "
           f"{ops['adds']:,.0f} adds -> {ops['energy_pj'] * uj:.4g} uJ at "
           f"{ops['accumulate_pj']:g} pJ/AC, {ops['mac_pj']:g} pJ/MAC; ANN equivalent "
           f"{ops['ann_macs']:,.0f} MACs + {ops['ann_adds']:,.0f} adds -> "
           f"{ops['ann_energy_pj'] * uj:.4g} uJ"]
  if per_layer:
    layers = ops["layers"]
    width = max((len(k) for k in layers), default=0)
    lines.append(f"{indent}  {'layer':<{width}}  {'SOPs':>14} {'MACs':>12} {'adds':>12} "
                 f"{'uJ':>9} {'ANN uJ':>9}")
    lines += [f"{indent}  {name:<{width}}  {v['sops']:>14,.0f} {v['macs']:>12,.0f} "
              f"{v['adds']:>12,.0f} {v['energy_pj'] * uj:>9.4f} {v['ann_energy_pj'] * uj:>9.4f}"
              for name, v in layers.items()]
  return lines


__all__ = ["DEFAULT_ACCUMULATE_PJ", "DEFAULT_MAC_PJ", "LayerOperations", "OperationEnergies",
           "Operations", "conv_dense_macs", "conv_synaptic_ops", "initialisation_estimate",
           "measure_operations", "operations_from_spike_maps", "pool_adds", "spike_maps",
           "summary_lines", "window_matrix"]
