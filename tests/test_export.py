"""snnax_nas.export: a trained run written as .npz + .json and read back."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from train_helpers import INFO
from train_helpers import separable
from train_helpers import train_workdir
from train_helpers import write_npz_dataset

from snnax_nas import data as data_lib
from snnax_nas import evaluate
from snnax_nas import export
from snnax_nas import memory
from snnax_nas import models


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """A 1-epoch float run of the tiny network (fan-in classifier: it fires)."""
  root = tmp_path_factory.mktemp("export")
  work = str(root / "run")
  train_workdir(work, write_npz_dataset(str(root)), weight_bits=32)
  return work


@pytest.mark.slow
@pytest.mark.parametrize("bits", [32, 8, 4])
def test_reloaded_export_computes_the_same_logits(run, tmp_path, bits):
  paths = export.export_run(run, str(tmp_path / "net"), weight_bits=bits)
  variables, cfg, genotype = export.load_export(paths["json"])
  trained = evaluate.load_trained_run(run)
  assert cfg == trained.config and genotype == trained.genotype
  expect = evaluate.quantized_variables(trained.variables, bits)  # bits 32: unchanged
  model = models.SpikingNetwork(cfg, genotype)
  x = jnp.asarray(data_lib.normalize(separable(8, 5)[0], INFO))
  y_export = model.apply(variables, x, train=False)
  y_expect = model.apply(expect, x, train=False)
  assert float(jnp.abs(y_expect).max()) > 0
  np.testing.assert_array_equal(np.asarray(y_export), np.asarray(y_expect))
  if bits == 32:  # exactly the trained network
    for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(trained.variables)):
      np.testing.assert_array_equal(a, np.asarray(b))
  # Stored weight bytes (codes + scales + float32 1-D params) are the memory model's.
  with np.load(paths["npz"]) as data:
    stored = sum(data[k].nbytes for k in data.files if k.startswith("params/"))
  assert stored == int(memory.quantized_weight_bytes(trained.genotypes[None], cfg, bits)[0])


def test_json_graph_documents_the_network(run, tmp_path):
  paths = export.export_run(run, str(tmp_path / "net.json"), weight_bits=8)
  with open(paths["json"]) as f:
    doc = json.load(f)
  assert doc["format"] == export.FORMAT and doc["weight_bits"] == 8
  assert doc["time"]["timesteps"] == 2 and "every timestep" in doc["time"]["batch_norm"]
  ops = [n["op"] for n in doc["nodes"]]
  assert ops[0] == "input" and ops[-2:] == ["vote", "time_mean"]
  assert {"conv", "bn", "lif", "avgpool", "linear", "cell", "flatten"} <= set(ops)
  names = {n["name"] for n in doc["nodes"]}
  for node in doc["nodes"]:  # every input names an earlier node; every tensor exists
    assert all(i in names for i in node["inputs"])
    for key in ("kernel", "scale", "bias", "mean", "var"):
      if isinstance(node.get(key), str):
        assert node[key] in doc["tensors"], node[key]
  cell = next(n for n in doc["nodes"] if n["op"] == "cell")
  assert [(e["from"], e["to"], e["op"]) for e in cell["edges"]] == [(0, 3, "conv3x3")]
  lif = cell["edges"][0]["layers"][0]
  assert lif["op"] == "lif" and lif["threshold"] == 1.0 and lif["reset"] == "hard"
  kernel = doc["tensors"]["params/head/fc1/kernel"]
  assert kernel["bits"] == 8 and kernel["codes"].endswith(".codes")
  assert doc["tensors"]["params/head/fc2/bias"]["dtype"] == "float32"


@pytest.mark.slow
def test_backward_edges_in_the_graph_and_bad_inputs(tmp_path):
  from snnax_nas import network
  from snnax_nas import train
  cfg = network.network_config(None, width=4, hidden=16, timesteps=2, vote_group=2,
                               backward=True, input_shape=(16, 16, 3))
  text = "0303/0030/2002/0200"
  v = train.init_variables(jax.random.key(0), cfg, text)
  paths = export.export_network(v, cfg, text, str(tmp_path / "b"), 4)
  with open(paths["json"]) as f:
    cells = [n for n in json.load(f)["nodes"] if n["op"] == "cell"]
  back = {(e["from"], e["to"]) for c in cells for e in c["edges"] if e["direction"] == "backward"}
  assert back == {(2, 0), (3, 1)}
  got, cfg2, text2 = export.load_export(paths["npz"])
  assert cfg2 == cfg and text2 == text
  with pytest.raises(ValueError, match="weight_bits"):
    export.export_network(v, cfg, text, str(tmp_path / "c"), 5)
  with pytest.raises(ValueError, match="not those of"):
    export.export_network(v, cfg, "0003/0000/0000/0000", str(tmp_path / "d"), 8)
