"""NIR export (snnax_nas.nir_graph) checked by an independent interpreter.

Each exported graph is written to a ``.nir`` file, read back with ``nir.read``
and run by ``tests/nir_reference.py`` (numpy, written from the NIR
specification); its spikes must equal the Module's, layer by layer and
timestep by timestep, and its time-averaged output the Module's logits.
Tiny networks (width 4, 8x8 inputs, T 3, three images).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

nir = pytest.importorskip("nir")

import nir_reference  # noqa: E402
from train_helpers import ROOT  # noqa: E402
from train_helpers import launch  # noqa: E402
from train_helpers import train_workdir  # noqa: E402
from train_helpers import write_npz_dataset  # noqa: E402

from snnax_nas import models  # noqa: E402
from snnax_nas import network  # noqa: E402
from snnax_nas import nir_graph  # noqa: E402
from snnax_nas import quant  # noqa: E402
from snnax_nas import raster  # noqa: E402

CFG = network.network_config(None, input_shape=(8, 8, 3), num_classes=2, width=4, hidden=8,
                             timesteps=3, vote_group=2, backward=True, ops="snasnet")
# Every op of the snasnet set on forward and on backward edges, one genotype
# per cell: cell 0 has conv3x3 0->1, conv1x1 0->2, avgpool 0->3, avgpool
# 1->2, skip 1->3, conv1x1 2->3 and backward conv1x1 2->0 and 3->1; cell 1
# has skip 0->2, backward skip 1->0 and 3->1, backward avgpool 2->0.
ALL_OPS = "0324/0041/2002/0200|0314/1043/4002/0100"
# Per-op LIF thresholds (conv3x3 fires at 0.5, conv1x1 at 1.5), forward only.
THRESHOLDS = dataclasses.replace(
    CFG, backward=False, ops=network.network_config(
        None, ops="skip,conv3x3@0.5,conv1x1@1.5,avgpool3x3").ops)
THRESHOLD_GENOTYPE = "0234/0031/0002/0000"


def trained_like(model, seed=0):
  """Variables with BN statistics and affines away from their initial values
  and a classifier that spikes (a fresh network's hidden LIF is silent)."""
  x = jnp.zeros((1,) + model.config.input_shape)
  v = model.init(jax.random.key(seed), x, train=False)
  rng = np.random.default_rng(seed)

  def perturb(path, a):
    name = "/".join(str(getattr(k, "key", k)) for k in path)
    draw = {"var": lambda: rng.uniform(0.5, 2.0, a.shape),
            "mean": lambda: rng.normal(0.0, 0.3, a.shape),
            "scale": lambda: rng.uniform(0.5, 1.5, a.shape),
            "bias": lambda: rng.normal(0.3, 0.3, a.shape)}.get(name.rsplit("/", 1)[-1])
    if "fc1" in name:
      draw = lambda: rng.normal(0.1, 0.5, a.shape)
    if draw is not None:
      return jnp.asarray(draw(), jnp.float32)
    return a * 2.0

  return jax.tree_util.tree_map_with_path(perturb, v)


def images(n=3, seed=1):
  return jax.random.normal(jax.random.key(seed), (n,) + CFG.input_shape)


def run_graph(path, x, cfg):
  """The reference interpreter on a written file: ``(logits [B, K], spikes by
  Module layer name, NHWC [T, B, ...])``."""
  graph = nir.read(path)
  x = np.asarray(x)
  if x.ndim == 4:  # static images: the same image at every timestep
    frames = np.broadcast_to(x.transpose(0, 3, 1, 2)[None], (cfg.timesteps,) + x.shape[:1]
                             + (x.shape[3], x.shape[1], x.shape[2]))
  else:
    frames = x[:, :cfg.timesteps].transpose(1, 0, 4, 2, 3)
  out, spikes = nir_reference.Interpreter(graph).run(frames)
  named = {}
  for node_name, s in spikes.items():
    probe = graph.nodes[node_name].metadata["probe"]
    probe = probe.decode() if isinstance(probe, bytes) else str(probe)
    named[probe] = np.moveaxis(s, 2, -1) if s.ndim == 5 else s
  return out.mean(0), named


def assert_matches(model, variables, x, path):
  logits = np.asarray(model.apply(variables, x, train=False))
  got, spikes = run_graph(path, x, model.config)
  want = raster.record_spikes(model, variables, x)
  assert set(spikes) == set(want)
  total = 0
  for name, s in want.items():
    assert s.shape == spikes[name].shape, name
    mismatches = int((s != spikes[name]).sum())
    assert mismatches == 0, f"{name}: {mismatches} of {s.size} spikes differ"
    total += int(s.sum())
  # Non-trivial: every layer's activity is compared, the classifier fires and
  # the logits depend on the input.
  assert want["head/fc_lif"].any() and total > 0
  assert np.ptp(logits, axis=0).max() > 1e-3
  np.testing.assert_allclose(got, logits, rtol=0, atol=1e-5)
  return logits


def assert_round_trip(model, variables, x, path):
  """The graph read back into the Module computes ``variables``' logits."""
  back, cfg, genotype = nir_graph.from_nir(path)
  assert cfg == model.config and genotype == model.genotype
  logits = model.apply(back, x, train=False)
  np.testing.assert_allclose(logits, model.apply(variables, x, train=False), rtol=0, atol=1e-5)
  return logits


@pytest.mark.parametrize("cfg,genotype", [(CFG, ALL_OPS), (THRESHOLDS, THRESHOLD_GENOTYPE)],
                         ids=["all_ops_backward", "per_op_thresholds"])
def test_graph_runs_like_the_module_and_reads_back(cfg, genotype, tmp_path):
  model = models.SpikingNetwork.for_genotypes(cfg, genotype)
  variables = trained_like(model)
  path = nir_graph.export_network(variables, cfg, genotype, str(tmp_path / "net.nir"))
  x = images()
  logits = assert_matches(model, variables, x, path)
  graph = nir.read(path)
  delayed = [tuple(e) for e in json.loads(graph.metadata["delayed_edges"])]
  if cfg.backward:
    assert ("cell0_edge20_bn", "cell0_node0") in delayed
    assert ("cell1_node1", "cell1_node0") in delayed  # a backward skip
    assert_round_trip(model, variables, x, path)
  else:
    assert not delayed
    thresholds = {k: float(n.metadata["threshold"]) for k, n in graph.nodes.items()
                  if k.endswith("_lif")}
    assert thresholds["cell0_edge01_lif"] == 0.5 and thresholds["cell0_edge02_lif"] == 1.5
    # An edited weight is what the imported network computes with.
    graph.nodes["head_fc2_vote"].bias = graph.nodes["head_fc2_vote"].bias + np.float32(1.0)
    edited, _, _ = nir_graph.from_nir(graph)
    np.testing.assert_allclose(model.apply(edited, x, train=False), logits + 1.0, rtol=0,
                               atol=1e-5)
  assert float(graph.metadata["dt"]) == nir_graph.DEFAULT_DT
  np.testing.assert_allclose(graph.nodes["head_lif"].tau, cfg.lif.tau * nir_graph.DEFAULT_DT,
                             rtol=1e-6)


@pytest.mark.parametrize("bits,cfg,genotype", [(8, THRESHOLDS, THRESHOLD_GENOTYPE),
                                               (4, CFG, ALL_OPS)], ids=["8bit", "4bit"])
def test_quantised_export_runs_like_the_quantised_module(bits, cfg, genotype, tmp_path):
  model = models.SpikingNetwork.for_genotypes(cfg, genotype)
  variables = trained_like(model, seed=2)
  path = nir_graph.export_network(variables, cfg, genotype, str(tmp_path / "q.nir"),
                                  weight_bits=bits)
  deq = dict(variables, params=quant.dequantize(quant.quantize_params(variables["params"], bits)))
  x = images()
  assert_matches(model, deq, x, path)
  assert_round_trip(model, deq, x, path)
  graph = nir.read(path)
  assert int(graph.metadata["weight_bits"]) == bits
  conv = graph.nodes["cell0_edge01_conv"]
  assert int(conv.metadata["weight_bits"]) == bits
  codes = conv.weight / conv.metadata["weight_scale"][:, None, None, None]
  np.testing.assert_allclose(codes, np.round(codes), atol=1e-3)
  assert np.abs(np.round(codes)).max() <= quant.qmax(bits)


def test_event_frames_and_dt(tmp_path):
  cfg = dataclasses.replace(CFG, backward=False)
  genotype = "0324/0041/0002/0000"
  model = models.SpikingNetwork.for_genotypes(cfg, genotype)
  variables = trained_like(model, seed=3)
  path = nir_graph.export_network(variables, cfg, genotype, str(tmp_path / "ev.nir"), dt=1e-3)
  frames = jax.random.normal(jax.random.key(4), (3, cfg.timesteps) + cfg.input_shape)
  assert_matches(model, variables, frames, path)
  graph = nir.read(path)
  assert float(graph.metadata["dt"]) == 1e-3
  np.testing.assert_allclose(graph.nodes["head_lif"].tau, cfg.lif.tau * 1e-3, rtol=1e-6)


def test_refusals_are_one_line(tmp_path, monkeypatch):
  model = models.SpikingNetwork.for_genotypes(CFG, ALL_OPS)
  variables = trained_like(model)
  with pytest.raises(ValueError, match=r"weight_bits=5"):
    nir_graph.to_nir(variables, CFG, ALL_OPS, weight_bits=5)
  with pytest.raises(ValueError, match=r"dt=0"):
    nir_graph.to_nir(variables, CFG, ALL_OPS, dt=0)
  soft = dataclasses.replace(CFG, lif=dataclasses.replace(CFG.lif, reset="soft"))
  with pytest.raises(ValueError, match=r"reset='soft' has no NIR primitive") as e:
    nir_graph.to_nir(variables, soft, ALL_OPS)
  assert "\n" not in str(e.value)
  maxpool = dataclasses.replace(CFG, ops=network.network_config(
      None, ops="zero,skip,conv3x3,maxpool3x3").ops)
  with pytest.raises(ValueError, match=r"'maxpool3x3' has no NIR primitive"):
    nir_graph.to_nir(variables, maxpool, "0303/0000/0000/0000")
  with pytest.raises(ValueError, match=r"not a snnax_nas.nir graph"):
    nir_graph.from_nir(nir.NIRGraph(nodes={}, edges=[], metadata={}, type_check=False))
  monkeypatch.setitem(sys.modules, "nir", None)
  with pytest.raises(ModuleNotFoundError, match=r"pip install 'snnax_nas\[nir\]'"):
    nir_graph.to_nir(variables, CFG, ALL_OPS)


def test_spike_raster(tmp_path):
  model = models.SpikingNetwork.for_genotypes(THRESHOLDS, THRESHOLD_GENOTYPE)
  variables = trained_like(model)
  x = images()
  spikes = raster.record_spikes(model, variables, x)
  _, probes = model.apply(variables, x, train=False, return_probes=True)
  assert list(spikes)[-2:] == ["head/lif", "head/fc_lif"] and set(spikes) == set(probes)
  for name, s in spikes.items():  # the same spikes as the Module's own counts
    assert s.shape[:2] == (THRESHOLDS.timesteps, 3)
    assert s.sum() == float(probes[name]["spikes"]), name
  path = raster.plot_spike_raster(spikes, str(tmp_path / "raster.png"), inputs=[0, 2])
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  with pytest.raises(ValueError, match=r"inputs \[3\] must be batch rows in \[0, 3\)"):
    raster.plot_spike_raster(spikes, str(tmp_path / "bad.png"), inputs=[3])


@pytest.mark.slow
def test_snntorch_runs_the_export_like_the_module(tmp_path):
  """The independent consumer (benchmarks/requirements-nir.txt): snnTorch's
  NIR importer through nirtorch, on a forward graph (nirtorch 2.6 cannot run
  cycles; see benchmarks/nir_consumer_bench.py)."""
  for name in ("torch", "snntorch", "nirtorch"):
    pytest.importorskip(name)
  spec = importlib.util.spec_from_file_location(
      "nir_consumer_bench", os.path.join(ROOT, "benchmarks", "nir_consumer_bench.py"))
  bench = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(bench)
  model = models.SpikingNetwork.for_genotypes(THRESHOLDS, THRESHOLD_GENOTYPE)
  for bits in (32, 4):
    variables = trained_like(model, seed=7)
    deq = dict(variables,
               params=quant.dequantize(quant.quantize_params(variables["params"], bits)))
    path = nir_graph.export_network(variables, THRESHOLDS, THRESHOLD_GENOTYPE,
                                    str(tmp_path / f"w{bits}.nir"), weight_bits=bits)
    x = images()
    logits = np.asarray(model.apply(deq, x, train=False))
    got = bench.compare(path, raster.record_spikes(model, deq, x), logits, np.asarray(x),
                        "snntorch")
    assert got["layers"] == 11 and got["classifier_spikes"] > 0 and got["logit_spread"] > 1e-3
    assert got["mismatches"] == 0, got
    assert got["max_logit_diff"] <= 1e-5, got


@pytest.mark.slow
def test_launch_evaluate_draws_the_raster_and_exports_nir(tmp_path, env):
  work = str(tmp_path / "run")
  train_workdir(work, write_npz_dataset(str(tmp_path)), weight_bits=32)
  out = launch("launch.evaluate", [f"--workdir={work}", "--config.weight_bits=8",
                                   "--config.batch_size=16", "--config.raster=2",
                                   "--config.nir=true"], env)
  assert out.returncode == 0, out.stderr[-3000:]
  png = os.path.join(work, "spike_raster_test_w8.png")
  assert os.path.exists(png)
  path = os.path.join(work, "eval", "network_w8.nir")
  assert f"wrote {path}" in out.stdout
  from snnax_nas import evaluate
  trained = evaluate.load_trained_run(work)
  want = evaluate.quantized_variables(trained.variables, 8)
  back, cfg, genotype = nir_graph.from_nir(path)
  model = models.SpikingNetwork(cfg, genotype)
  x = jax.random.normal(jax.random.key(0), (2,) + cfg.input_shape)
  np.testing.assert_allclose(model.apply(back, x, train=False),
                             model.apply(want, x, train=False), rtol=0, atol=1e-5)
  out = launch("launch.evaluate", [f"--workdir={work}", "--config.raster=-1"], env)
  assert out.returncode == 2 and "--config.raster=-1 must be >= 0" in out.stderr
