"""snnax_nas.energy: synaptic operations, MACs, adds and energy per inference.

Hand-computed counts on a 2-layer network (a spiking conv feeding a spiking
linear layer) and on a one-conv-edge network, then the vectorised count of
whole networks (forward and backward cells) against a slow per-layer loop
over :func:`snnax_nas.raster.record_spikes`.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from snnax_nas import configs
from snnax_nas import energy
from snnax_nas import models
from snnax_nas import neurons
from snnax_nas import raster
from snnax_nas.network import standalone


def test_hand_counts_of_a_two_layer_network():
  """Layer 1: a 3x3 conv (C_out 2) fed by spikes on a 3x3 map; layer 2: a
  linear layer of 7 outputs fed by 5 spikes."""
  spikes = np.zeros((3, 3))
  spikes[0, 0] = 1   # corner: reaches 2 x 2 outputs per channel -> 8
  spikes[1, 1] = 2   # centre: 3 x 3 outputs, twice -> 2 * 9 * 2 = 36
  spikes[0, 1] = 1   # edge: 2 x 3 outputs -> 12
  conv = energy.conv_synaptic_ops(spikes, kernel=3, c_out=2)
  assert conv == 8 + 36 + 12
  linear = 5 * 7
  # A 1x1 conv reaches one position per spike.
  assert energy.conv_synaptic_ops(spikes, kernel=1, c_out=2) == 4 * 2
  # Dense: in-image taps per output are 4 (corners), 6 (edges), 9 (centre).
  assert energy.conv_dense_macs(3, 3, 3, c_in=1, c_out=2) == (4 * 4 + 4 * 6 + 9) * 2
  # Stride 2 on 4 pixels, padding 1: windows [-1, 1] and [1, 3] hold 2 and 3.
  np.testing.assert_array_equal(energy.window_matrix(4, 3, 2).sum(1), [2, 3])
  assert energy.conv_dense_macs(4, 4, 3, c_in=3, c_out=5, stride=2) == 25 * 15
  # A 3x3 pool's in-image window minus one, per output: 3 at corners, 5 at edges, 8.
  assert energy.pool_adds(3, 3, c=2) == (4 * 3 + 4 * 5 + 8) * 2
  layers = (energy.LayerOperations("conv", sops=conv), energy.LayerOperations("fc", sops=linear))
  ops = energy.Operations(layers=layers, num_samples=1, timesteps=1)
  assert ops.sops == 91 and ops.macs == 0
  assert ops.energy_pj() == pytest.approx(91 * 0.9)
  assert ops.energy_pj(energy.OperationEnergies(accumulate_pj=2.0)) == pytest.approx(182)


def _tiny(**overrides):
  fields = dict(input_shape=(4, 4, 1), num_classes=2, width=1, hidden=3, timesteps=2,
                vote_group=1, second_pool=1)
  fields.update(overrides)
  return configs.network_config(None, **fields)


def test_hand_counts_of_a_network_from_its_spike_maps():
  """A 4x4x1 input, width 1, one cell per stage of conv3x3 0->3, skip 0->2,
  skip 2->3: every layer's count by hand from given spike maps."""
  cfg = _tiny()
  genotype = "0013/0000/0001/0000"  # 0->2 skip, 0->3 conv3x3, 2->3 skip
  ops = standalone.edge_ops(genotype, cfg)
  conv_slot = next(e for e, op in enumerate(ops[0]) if op.kind == "conv")
  s1 = np.zeros((4, 4))
  s1[0, 0], s1[1, 2] = 2, 1                      # fans: corner 2 x 2, interior 3 x 3
  red = np.zeros((4, 4))
  red[3, 3] = 4                                  # corner, C_out 2: 4 * 4 * 2
  s2 = np.zeros((2, 2))
  s2[0, 1] = 1                                   # 2x2 map: every position reaches 2 x 2
  head = np.full((2, 2), 1.0)
  maps = {f"cell0/edge{conv_slot}/lif": s1, "reduction/lif": red,
          f"cell1/edge{conv_slot}/lif": s2, "head/lif": head, "head/fc_lif": 6.0}
  got = {x.name: x for x in energy.operations_from_spike_maps(cfg, genotype, maps, 2).layers}
  t, n = 2, 2
  assert got["stem/conv"].macs == 10 * 10          # taps per axis 2 + 3 + 3 + 2, once
  assert got[f"cell0/edge{conv_slot}/conv"].sops == (2 * 4 + 9) / n
  assert got["cell0/node3"].adds == 16 * t        # two terms into node 3
  assert "cell0/node2" not in got                # one term: no addition
  assert got["reduction/bn_in"].macs == 16 * t
  assert got["reduction/conv"].sops == 4 * 4 * 2 / n
  assert got["reduction/avgpool"].adds == 3 * (2 * 2 * 2) * t
  assert got[f"cell1/edge{conv_slot}/conv"].sops == 4 * 2 / n
  assert got["head/bn"].macs == 8 * t
  assert got["head/fc1"].sops == 4 * 3 / n       # 4 spikes x hidden 3
  assert got["head/fc2"].sops == 6 * 2 / n       # 6 spikes x 2 outputs
  # The ANN equivalent: one pass, dense.
  assert got[f"cell0/edge{conv_slot}/conv"].ann_macs == 10 * 10
  assert got["head/fc1"].ann_macs == 8 * 3 and got["head/fc2"].ann_macs == 3 * 2
  # Event frames: the stem runs once per timestep.
  frames = energy.operations_from_spike_maps(cfg, genotype, maps, 2, event_input=True)
  assert frames.layers[0].macs == 100 * t
  with pytest.raises(ValueError, match="expected"):
    energy.operations_from_spike_maps(cfg, genotype, dict(maps, **{"head/lif": np.ones(3)}), 2)
  with pytest.raises(ValueError, match="num_samples=0"):
    energy.operations_from_spike_maps(cfg, genotype, maps, 0)


def _slow_operations(cfg, genotype, spikes, num_samples):
  """Per-layer SOPs, by loops over output positions and window taps of
  ``record_spikes``' [T, B, H, W, C] trains (the gather view: each output
  sums the spikes in its window, C_out times)."""
  out = {}
  ops = standalone.edge_ops(genotype, cfg)

  def conv(s, k, c_out):
    t, b, h, w, c = s.shape
    total = 0.0
    for oh in range(h):
      for ow in range(w):
        for dh in range(-(k // 2), k // 2 + 1):
          for dw in range(-(k // 2), k // 2 + 1):
            if 0 <= oh + dh < h and 0 <= ow + dw < w:
              total += float(s[:, :, oh + dh, ow + dw, :].sum()) * c_out
    return total / num_samples

  for l in range(cfg.num_cells):
    for e, op in enumerate(ops[l]):
      if op.kind == "conv":
        s = spikes[f"cell{l}/edge{e}/lif"]
        out[f"cell{l}/edge{e}/conv"] = conv(s, op.kernel, s.shape[-1])
  if "reduction/lif" in spikes:
    out["reduction/conv"] = conv(spikes["reduction/lif"], 3, 2 * cfg.width)
  out["head/fc1"] = float(spikes["head/lif"].sum()) * cfg.hidden / num_samples
  out["head/fc2"] = float(spikes["head/fc_lif"].sum()) * cfg.num_outputs / num_samples
  return out


@pytest.mark.parametrize("backward,genotype", [
    (False, "0243/0001/0003/0000"),
    (True, "0303/0030/2002/0200"),
])
def test_vectorised_counts_equal_a_slow_loop_over_record_spikes(backward, genotype):
  """Every spiking layer's SOPs from the jitted spike maps equal the slow
  loop's, on a network where every layer spikes (low thresholds)."""
  lif = neurons.LIFConfig(threshold=0.05)
  cfg = configs.network_config(None, input_shape=(8, 8, 3), num_classes=2, width=4, hidden=8,
                               timesteps=2, vote_group=2, ops="snasnet",
                               lif=lif, linear_init="fan_in", backward=backward)
  model = models.SpikingNetwork(cfg, genotype)
  x = np.random.default_rng(0).normal(size=(5, 8, 8, 3)).astype(np.float32)
  variables = model.init(jax.random.key(0), x, train=False)
  spikes = raster.record_spikes(model, variables, x)
  assert all(s.sum() > 0 for s in spikes.values()), {k: s.sum() for k, s in spikes.items()}
  want = _slow_operations(cfg, genotype, spikes, len(x))
  # batch 3 over 5 images: the padded rows of the second batch are masked.
  ops = energy.measure_operations(model, variables, x, batch_size=3)
  got = {layer.name: layer.sops for layer in ops.layers if layer.sops or layer.name in want}
  assert got == pytest.approx(want, rel=1e-12)
  assert ops.sops == pytest.approx(sum(want.values()), rel=1e-12)
  assert ops.num_samples == 5 and ops.timesteps == 2
  if backward:  # feedback enters node 0 from t = 1: more adds than the ANN's one pass x T
    node0 = next(x for x in ops.layers if x.name == "cell0/node0")
    assert node0.ann_adds == 0 and node0.adds == 8 * 8 * 4


def test_energies_act_and_bad_energies_are_refused():
  cfg = _tiny()
  maps = {"head/lif": np.ones((2, 2)), "head/fc_lif": 2.0}
  ops = energy.operations_from_spike_maps(cfg, "0003/0000/0000/0000", maps, 1)
  assert ops.energy_pj(energy.OperationEnergies(1.0, 0.0)) == pytest.approx(ops.sops + ops.adds)
  assert ops.energy_pj(energy.OperationEnergies(0.0, 1.0)) == pytest.approx(ops.macs)
  assert ops.ann_energy_pj(energy.OperationEnergies(0.0, 1.0)) == pytest.approx(
      ops.total("ann_macs"))
  default = ops.to_json()
  assert default["accumulate_pj"] == 0.9 and default["mac_pj"] == 4.6
  assert default["energy_pj"] == pytest.approx(0.9 * (ops.sops + ops.adds) + 4.6 * ops.macs)
  half = ops.to_json(energy.OperationEnergies(0.45, 2.3))
  assert half["energy_pj"] == pytest.approx(default["energy_pj"] / 2)
  assert sum(v["energy_pj"] for v in half["layers"].values()) == pytest.approx(half["energy_pj"])
  for bad in (-1.0, float("nan"), float("inf"), "1"):
    with pytest.raises(ValueError, match="accumulate_pj"):
      energy.OperationEnergies(accumulate_pj=bad)
  with pytest.raises(ValueError, match="unknown count"):
    ops.total("flops")


def test_initialisation_estimate_is_labelled_and_uses_batch_statistics():
  cfg = configs.network_config(None, input_shape=(8, 8, 3), num_classes=2, width=4, hidden=8,
                               timesteps=2, vote_group=2, linear_init="fan_in", dropout=0.5)
  x = np.random.default_rng(1).normal(size=(6, 8, 8, 3)).astype(np.float32)
  est = energy.initialisation_estimate(cfg, "0003/0000/0000/0000", x, jax.random.key(0),
                                       energy.OperationEnergies(1.0, 0.0))
  assert est["estimate"] == "initialisation" and est["num_samples"] == 6
  assert est["sops"] > 0 and est["energy_pj"] == pytest.approx(est["sops"] + est["adds"])
