"""The flax Module (snnax_nas.models) against the functional standalone network."""

import dataclasses
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnax_nas import configs
from snnax_nas import genotype as genotype_lib
from snnax_nas import layers
from snnax_nas import memory
from snnax_nas import models
from snnax_nas import network

CFG = network.network_config(None, width=4, hidden=32, timesteps=2, vote_group=2,
                             backward=True, input_shape=(16, 16, 3), dropout=0.0)
FORWARD = "0303/0030/0003/0000"
BACKWARD = "0303/0030/2002/0200"  # conv1x1 and conv3x3, backward edges 2->0 and 3->1
# Per cell: skip, avgpool and conv3x3; then a cell of skips and an avgpool only
# (no conv edge, so no variables).
POOL_SKIP = "0104/0040/0003/0000|0401/0001/0000/0000"


def _images(shape=(4, 16, 16, 3), seed=1):
  return jax.random.normal(jax.random.key(seed), shape) * 2


def _standalone(cfg, text, seed=0):
  """Functional params (classifier scaled up so that the tiny network's
  hidden LIF fires and the logits are not all zero) and fresh statistics."""
  params = network.init_standalone_params(jax.random.key(seed), cfg, text)
  for fc in ("fc1", "fc2"):
    params["head"][fc]["kernel"] = params["head"][fc]["kernel"] * 30
  return params, layers.init_batch_stats(params)


_spike_probe = network.spike_counts  # the probe the Module's return_probes sums


def _assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol), a, b)


@pytest.mark.slow
@pytest.mark.parametrize("text,linear_init", [(FORWARD, "reference"), (BACKWARD, "reference"),
                                              (POOL_SKIP, "reference"), (BACKWARD, "fan_in")])
def test_module_equals_standalone_forward(text, linear_init):
  cfg = dataclasses.replace(CFG, linear_init=linear_init)
  model = models.SpikingNetwork(cfg, text)
  x = _images()
  params, stats = _standalone(cfg, text)
  if linear_init == "fan_in":
    # Both networks draw the classifier from N(0, gain^2 / fan_in), which fires
    # without the scaling _standalone applies for the reference init.
    params = network.init_standalone_params(jax.random.key(0), cfg, text)
    init = model.init(jax.random.key(0), _images(), train=False)["params"]["head"]
    for fc, fan_in in (("fc1", cfg.classifier_in), ("fc2", cfg.hidden)):
      want = configs.LINEAR_FAN_IN_GAIN / np.sqrt(fan_in)
      for kernel in (params["head"][fc]["kernel"], init[fc]["kernel"]):
        assert abs(float(kernel.std()) / want - 1) < 0.15, (fc, float(kernel.std()), want)
  variables = models.variables_from_standalone(params, stats)

  # The Module's own initialisation has the functional network's tree and size.
  init = model.init(jax.random.key(0), x, train=False)
  assert jax.tree.structure(init) == jax.tree.structure(variables)
  assert memory.tree_param_count(init["params"]) == int(memory.param_count([text], cfg)[0])
  assert float(init["batch_stats"]["head"]["bn"]["var"].min()) == 1.0

  # Train mode: logits, probes and updated running statistics.
  y_f, aux = network.standalone_forward(params, text, x, None, cfg, batch_stats=stats,
                                        probe=_spike_probe)
  apply = jax.jit(lambda v, x: model.apply(v, x, train=True, return_probes=True,
                                           mutable=["batch_stats"]))
  (y_m, probes), updated = apply(variables, x)
  assert float(jnp.abs(y_f).max()) > 0  # the comparison is not vacuous
  np.testing.assert_allclose(y_m, y_f, rtol=1e-5, atol=1e-6)
  _assert_trees_close(probes, aux["probes"]["values"], rtol=0, atol=0)
  trained = {"params": variables["params"], "batch_stats": updated["batch_stats"]}
  _, stats_m = models.standalone_from_variables(trained, cfg)
  _assert_trees_close(stats_m, aux["batch_stats"])

  # Eval mode with running statistics that make the network fire.
  running = jax.tree_util.tree_map_with_path(
      lambda path, s: jnp.full_like(s, 0.05) if path[-1].key == "var" else s, aux["batch_stats"])
  y_f, _ = network.standalone_forward(params, text, x, None, cfg, train=False,
                                      batch_stats=running)
  y_m = model.apply(models.variables_from_standalone(params, running), x, train=False)
  assert float(jnp.abs(y_f).max()) > 0
  np.testing.assert_allclose(y_m, y_f, rtol=1e-5, atol=1e-6)

  # Gradients with respect to the parameters.
  def loss_f(p):
    return jnp.sum(jnp.sin(3 * network.standalone_forward(p, text, x, None, cfg,
                                                          batch_stats=stats)[0]))

  def loss_m(p):
    v = {"params": p, "batch_stats": variables["batch_stats"]}
    return jnp.sum(jnp.sin(3 * model.apply(v, x, train=True, mutable=["batch_stats"])[0]))

  g_f = jax.jit(jax.grad(loss_f))(params)
  g_m = jax.jit(jax.grad(loss_m))(variables["params"])
  g_m, none = models.standalone_from_variables({"params": g_m}, cfg)
  assert none is None
  assert jax.tree.structure(g_m) == jax.tree.structure(g_f)
  # Summation order differs (T x B images per convolution here), so entries
  # that are zero up to rounding (e.g. the bias of a BN before another BN)
  # are compared on the scale of the whole gradient.
  scale = max(float(jnp.abs(b).max()) for b in jax.tree.leaves(g_f))
  for a, b in zip(jax.tree.leaves(g_m), jax.tree.leaves(g_f)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * scale)
  assert float(jnp.abs(g_f["stem"]["conv"]["kernel"]).sum()) > 0


@pytest.mark.slow
@pytest.mark.parametrize("text", [FORWARD, BACKWARD, POOL_SKIP])
def test_supernet_scores_the_module_it_selects(text):
  """The scorer's batched supernet, one-hot on a genotype, computes the
  Module built from the weights that genotype selects (BN on batch
  statistics, as in scoring)."""
  params = network.init_supernet_params(jax.random.key(1), CFG)
  for fc in ("fc1", "fc2"):  # make the tiny network's hidden LIF fire
    params["head"][fc]["kernel"] = params["head"][fc]["kernel"] * 30
  cells = genotype_lib.as_genotypes([text], CFG)
  arch = genotype_lib.arch_of(cells, CFG)[0]
  x = _images()
  y_super, _ = jax.jit(lambda p, a: network.supernet_forward(p, a, x, None, CFG, train=False))(
      params, arch)
  model = models.SpikingNetwork(CFG, text)
  variables = models.variables_from_standalone(
      network.standalone_from_supernet(params, CFG, cells[0]))
  y_module, _ = jax.jit(lambda v: model.apply(v, x, train=True, mutable=["batch_stats"]))(
      variables)
  assert float(jnp.abs(y_module).max()) > 0  # the comparison is not vacuous
  np.testing.assert_allclose(y_super, y_module, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_event_frames_and_dropout_match_standalone(monkeypatch):
  cfg = network.network_config(None, width=4, hidden=32, timesteps=2, vote_group=2,
                               backward=True, input_shape=(16, 16, 2), dropout=0.3)
  model = models.SpikingNetwork(cfg, BACKWARD)
  params, stats = _standalone(cfg, BACKWARD)
  frames = _images((4, 2, 16, 16, 2))
  keys = []
  draw = layers.dropout_mask

  def recording_mask(key, rate, shape):
    keys.append(key)
    return draw(key, rate, shape)

  monkeypatch.setattr(layers, "dropout_mask", recording_mask)
  variables = models.variables_from_standalone(params, stats)
  (y_m, probes), updated = model.apply(
      variables, frames, train=True, return_probes=True,
      mutable=["batch_stats"], rngs={"dropout": jax.random.key(7)})
  # The Module drew one mask for the whole sequence; the functional network
  # given the same key computes the same function.
  assert len(keys) == 1
  y_f, aux = network.standalone_forward(params, BACKWARD, frames, keys[0], cfg,
                                        batch_stats=stats, probe=_spike_probe)
  assert float(jnp.abs(y_f).max()) > 0
  np.testing.assert_allclose(y_m, y_f, rtol=1e-5, atol=1e-6)
  _assert_trees_close(probes, aux["probes"]["values"], rtol=0, atol=0)
  _, stats_m = models.standalone_from_variables(
      {"params": variables["params"], "batch_stats": updated["batch_stats"]}, cfg)
  _assert_trees_close(stats_m, aux["batch_stats"])
  with pytest.raises(ValueError, match="1 frames for 2 timesteps"):
    model.apply(variables, frames[:, :1], train=False)


@pytest.mark.slow
def test_probe_mask_weights_rows_like_the_training_probe():
  model = models.SpikingNetwork(CFG, FORWARD)
  params, stats = _standalone(CFG, FORWARD)
  variables = models.variables_from_standalone(params, stats)
  x = _images()
  mask = jnp.array([1.0, 1.0, 0.0, 0.0])
  _, full = model.apply(variables, x[:2], train=False, return_probes=True)
  _, masked = model.apply(variables, x, train=False, return_probes=True, probe_mask=mask)
  _assert_trees_close(masked, full)


def test_converters_round_trip_and_genotype_forms():
  params, stats = _standalone(CFG, POOL_SKIP)
  variables = models.variables_from_standalone(params, stats)
  assert "cell_1" not in variables["params"]  # skips and a pool: no weights
  kernel = variables["params"]["cell_0"]["edge_2_3"]["conv"]["kernel"]
  assert kernel is params["cells"][0]["5"]["kernel"]
  back = models.standalone_from_variables(variables, CFG)
  _assert_trees_close(back, (params, stats), rtol=0, atol=0)
  fresh = models.variables_from_standalone(params)
  _assert_trees_close(fresh["batch_stats"], variables["batch_stats"], rtol=0, atol=0)
  with pytest.raises(ValueError, match="cell_5"):
    models.standalone_from_variables(
        {"params": dict(variables["params"], cell_5={}), "batch_stats": {}}, CFG)

  g = genotype_lib.parse_genotype("0023/0000/0000/0000", CFG.ops)  # node 2 is dead
  assert models.SpikingNetwork.for_genotypes(CFG, g).genotype == "0003/0000/0000/0000"
  per_cell = models.SpikingNetwork.for_genotypes(CFG, POOL_SKIP.split("|"))
  assert per_cell.genotype == POOL_SKIP
  with pytest.raises(ValueError, match="backward"):
    models.SpikingNetwork(network.network_config(None, width=4, input_shape=(16, 16, 3)),
                          BACKWARD)
  with pytest.raises(ValueError, match="images of shape"):
    models.SpikingNetwork(CFG, FORWARD).init(jax.random.key(0), jnp.zeros((2, 8, 8, 3)),
                                             train=False)


@pytest.mark.slow
def test_docstring_training_step_runs():
  doc = models.__doc__
  code = textwrap.dedent(doc[doc.rindex("::\n") + 3:doc.index(":func:`variables_from_standalone`")])
  scope = {}
  exec(compile(code, "models docstring", "exec"), scope)  # noqa: S102
  assert np.isfinite(float(scope["loss"]))
  before = scope["variables"]
  moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), before["params"],
                       scope["params"])
  assert max(jax.tree.leaves(moved)) > 0
  assert not np.allclose(scope["batch_stats"]["stem"]["bn"]["mean"],
                         before["batch_stats"]["stem"]["bn"]["mean"])
