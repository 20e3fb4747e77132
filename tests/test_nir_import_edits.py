"""NIR import (snnax_nas.nir_graph.from_nir) of graphs that are not what they
claim: a truncated file, a node removed or added, a node of another type, a
weight of the wrong shape, an edge changed, a foreign graph. Each is refused
in one line naming what differs; an edited weight value is still read back."""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest

nir = pytest.importorskip("nir")

from snnax_nas import models  # noqa: E402
from snnax_nas import network  # noqa: E402
from snnax_nas import nir_graph  # noqa: E402

CFG = network.network_config(None, input_shape=(8, 8, 3), num_classes=2, width=4, hidden=8,
                             timesteps=2, vote_group=2, backward=False,
                             ops="skip,conv3x3,avgpool3x3")
GENOTYPE = "0123/0021/0002/0000"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  model = models.SpikingNetwork.for_genotypes(CFG, GENOTYPE)
  variables = model.init(jax.random.key(0), jnp.zeros((1,) + CFG.input_shape), train=False)
  path = str(tmp_path_factory.mktemp("nir") / "net.nir")
  nir_graph.export_network(variables, CFG, GENOTYPE, path)
  return path


def _one_line(match, graph):
  with pytest.raises(ValueError, match=match) as e:
    nir_graph.from_nir(graph)
  assert "\n" not in str(e.value)


def test_the_export_reads_back_and_an_edited_weight_value_is_kept(exported):
  graph = nir.read(exported)
  graph.nodes["head_fc2_vote"].bias = graph.nodes["head_fc2_vote"].bias + np.float32(2.0)
  variables, cfg, genotype = nir_graph.from_nir(graph)
  assert cfg == CFG and genotype == GENOTYPE
  np.testing.assert_allclose(variables["params"]["head"]["fc2"]["bias"],
                             np.repeat(graph.nodes["head_fc2_vote"].bias, 2))


def test_a_truncated_or_foreign_file_is_refused(exported, tmp_path):
  data = open(exported, "rb").read()
  cut = tmp_path / "cut.nir"
  cut.write_bytes(data[: len(data) // 2])
  _one_line("cannot read .*cut.nir.* as a NIR graph", str(cut))
  text = tmp_path / "text.nir"
  text.write_text("not hdf5\n")
  _one_line("cannot read .*text.nir", str(text))
  foreign = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}),
                                "output": nir.Output(output_type={"output": np.array([3])})},
                         edges=[("input", "output")], metadata={}, type_check=False)
  _one_line("not a snnax_nas.nir graph", foreign)


def test_structural_edits_are_refused_naming_the_node(exported):
  base = nir.read(exported)
  conv = next(k for k in base.nodes if k.startswith("cell0_edge") and k.endswith("_conv"))
  lif = conv.replace("_conv", "_lif")

  removed = copy.deepcopy(base)
  del removed.nodes[conv]
  _one_line(f"missing \\['{conv}'\\]", removed)

  added = copy.deepcopy(base)
  added.nodes["extra_lif"] = copy.deepcopy(base.nodes[lif])
  added.edges = list(added.edges) + [(lif, "extra_lif")]
  _one_line("not of the network \\['extra_lif'\\]", added)

  retyped = copy.deepcopy(base)
  old = retyped.nodes[lif]
  retyped.nodes[lif] = nir.CubaLIF(tau_syn=old.tau, tau_mem=old.tau, r=old.r,
                                   v_leak=old.v_leak, v_threshold=old.v_threshold)
  _one_line(f"node '{lif}' is a CubaLIF", retyped)

  reshaped = copy.deepcopy(base)
  w = reshaped.nodes[conv].weight
  reshaped.nodes[conv].weight = np.zeros((w.shape[0] + 1,) + w.shape[1:], np.float32)
  _one_line(f"node '{conv}': weight has shape", reshaped)

  rewired = copy.deepcopy(base)
  rewired.edges = [e for e in rewired.edges if tuple(e) != tuple(rewired.edges[0])]
  _one_line("edges differ", rewired)
