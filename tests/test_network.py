
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnax_nas import genotype as genotype_lib
from snnax_nas import genotype_space
from snnax_nas import memory
from snnax_nas import network
from snnax_nas import score

CFG = network.network_config(None, width=4, hidden=32, timesteps=3, vote_group=2,
                             backward=True, input_shape=(16, 16, 3))
GENOTYPES = ["0303/0030/2002/0200", "0302/0030/3003/0000", "0104/0040/0003/0000",
             "0411/0002/0000/0000"]


def _images(b=8, seed=0, shape=(16, 16, 3)):
  return jax.random.normal(jax.random.key(seed), (b,) + shape)


def test_config_validation_names_values():
  with pytest.raises(ValueError, match="width"):
    network.network_config(None, width=0)
  with pytest.raises(ValueError, match="not divisible"):
    network.network_config(None, input_shape=(30, 30, 3))
  with pytest.raises(ValueError, match="nosuch"):
    network.network_config("nosuch")
  with pytest.raises(ValueError, match="bogus"):
    network.network_config(None, bogus=1)
  with pytest.raises(ValueError, match="conv7x7"):
    network.network_config(None, ops="skip,conv7x7")


def test_presets():
  c10 = network.network_config("cifar10")
  assert (c10.width, c10.second_pool, c10.classifier_in, c10.num_outputs) == (256, 4, 8192, 100)
  c100 = network.network_config("cifar100")
  assert (c100.classifier_in, c100.num_outputs) == (16384, 500)
  tin = network.network_config("tinyimagenet")
  assert tin.stage_shapes == ((32, 32, 128), (16, 16, 256)) and tin.classifier_in == 16384
  three = network.network_config("cifar100", cells_per_stage=3)
  assert three.num_cells == 6 and len(three.cell_shapes) == 6


def test_cell_wiring_matches_reference_equations():
  # Edge e multiplies its input by (e + 2): check x3 and the feedback states
  # against the reference cell's equations (node i sums its incoming edges, plus
  # feedback computed at t-1) over two timesteps.
  def edge_fn(e, u):
    return u * (e + 2)

  f = {e: e + 2 for e in range(12)}
  x0 = jnp.ones(())
  fb = None
  s = (0.0, 0.0, 0.0)
  for _ in range(2):
    x3, fb = network.cell_wiring(x0, fb, edge_fn, backward=True)
    s0, s1, s2 = s
    x1 = f[0] * (1 + s0)
    x2 = f[1] * (1 + s0) + f[2] * (x1 + s1)
    ex3 = f[3] * (1 + s0) + f[4] * (x1 + s1) + f[5] * (x2 + s2)
    s = (f[6] * (x1 + s1) + f[7] * (x2 + s2) + f[8] * ex3,
         f[9] * (x2 + s2) + f[10] * ex3, f[11] * ex3)
    np.testing.assert_allclose(float(x3), ex3, rtol=1e-6)
    np.testing.assert_allclose([float(v) for v in fb], s, rtol=1e-6)
  x3, fb = network.cell_wiring(x0, None, edge_fn, backward=False)
  assert fb is None and float(x3) == f[3] + f[4] * f[0] + f[5] * (f[1] + f[2] * f[0])


@pytest.mark.slow
@pytest.mark.parametrize("text", GENOTYPES)
def test_supernet_one_hot_equals_standalone(text):
  g = genotype_lib.parse_genotype(text, CFG.ops)
  params = network.init_supernet_params(jax.random.key(1), CFG)
  alone = network.standalone_from_supernet(params, CFG, g)
  arch = genotype_lib.arch_of(genotype_lib.canonical(g)[None, None], CFG)[0, 0]
  x, key = _images(), jax.random.key(3)
  y_super, _ = jax.jit(lambda p, a, x: network.supernet_forward(p, a, x, key, CFG))(params, arch, x)
  y_alone, _ = jax.jit(lambda p, x: network.standalone_forward(p, g, x, key, CFG))(alone, x)
  np.testing.assert_allclose(y_super, y_alone, rtol=1e-5, atol=1e-6)
  assert y_super.shape == (8, CFG.num_classes)


def test_standalone_tree_equals_its_specs_and_extraction():
  g = genotype_lib.parse_genotype("0303/0030/2002/0200", CFG.ops)
  fresh = network.init_standalone_params(jax.random.key(0), CFG, g)
  picked = network.standalone_from_supernet(
      network.init_supernet_params(jax.random.key(0), CFG), CFG, g)
  shapes = lambda t: jax.tree.map(lambda a: a.shape, t)
  assert shapes(fresh) == shapes(picked)
  assert sorted(fresh["cells"][0], key=int) == ["0", "2", "3", "5", "7", "10"]


@pytest.mark.slow
def test_backward_edge_changes_output_only_after_first_step():
  # Identical forward parts; the second genotype adds a feedback edge 3->0.
  cfg1 = network.network_config(None, width=4, hidden=32, timesteps=1, vote_group=2,
                                backward=True, input_shape=(16, 16, 3), dropout=0.0)
  cfg3 = network.network_config(None, width=4, hidden=32, timesteps=3, vote_group=2,
                                backward=True, input_shape=(16, 16, 3), dropout=0.0)
  fwd = genotype_lib.parse_genotype("0303/0030/0003/0000", cfg1.ops)
  bwd = genotype_lib.parse_genotype("0303/0030/0003/1000", cfg1.ops)
  x = _images()
  outs = {}
  for name, cfg in (("t1", cfg1), ("t3", cfg3)):
    params = network.init_supernet_params(jax.random.key(5), cfg)
    for gname, g in (("f", fwd), ("b", bwd)):
      arch = genotype_lib.arch_of(g[None, None], cfg)[0, 0]
      # Observe the spikes of the LIF after the last cell.
      aux = network.supernet_forward(params, arch, x, None, cfg, train=False,
                                     probe=lambda s: s.sum(), per_layer=True)[1]
      outs[name, gname] = float(aux["probes"]["values"]["head/lif"])
  assert outs["t1", "f"] == outs["t1", "b"]
  assert outs["t3", "f"] != outs["t3", "b"]


@pytest.mark.slow
def test_training_mode_updates_running_stats_and_eval_uses_them():
  cfg = network.network_config(None, width=4, hidden=32, timesteps=2, vote_group=2,
                               input_shape=(16, 16, 3))
  g = genotype_lib.parse_genotype("0303/0030/0003/0000", cfg.ops)
  params = network.init_standalone_params(jax.random.key(0), cfg, g)
  stats = network.init_batch_stats(params)
  x = _images() + 3.0
  _, aux = network.standalone_forward(params, g, x, jax.random.key(1), cfg, batch_stats=stats)
  new = aux["batch_stats"]
  assert jax.tree.structure(new) == jax.tree.structure(stats)
  # The stem BN runs once: its running mean moves 10% of the way to the batch mean.
  assert float(jnp.abs(new["stem"]["bn"]["mean"]).max()) > 0
  # Per-timestep BNs update T times.
  assert not np.allclose(new["cells"][0]["0"]["mean"], 0)
  y_eval, aux_eval = network.standalone_forward(params, g, x, None, cfg, train=False,
                                                batch_stats=new)
  assert y_eval.shape == (8, 10)
  with pytest.raises(ValueError, match="running statistics"):
    network.standalone_forward(params, g, x, None, cfg, train=False)


@pytest.mark.slow
def test_gradients_flow_through_surrogate():
  cfg = network.network_config(None, width=4, hidden=32, timesteps=2, vote_group=2,
                               input_shape=(16, 16, 3))
  g = genotype_lib.parse_genotype("0303/0030/0003/0000", cfg.ops)
  params = network.init_standalone_params(jax.random.key(0), cfg, g)
  x = _images() * 3

  def loss(p):
    y, _ = network.standalone_forward(p, g, x, jax.random.key(1), cfg)
    return jnp.mean(jnp.square(y - 1.0))

  grads = jax.grad(loss)(params)
  assert float(jnp.abs(grads["cells"][0]["0"]["kernel"]).sum()) > 0
  assert float(jnp.abs(grads["stem"]["conv"]["kernel"]).sum()) > 0


@pytest.mark.slow
def test_per_layer_probes_report_every_lif():
  g = genotype_lib.parse_genotype("0303/0030/2002/0200", CFG.ops)
  params = network.init_standalone_params(jax.random.key(0), CFG, g)
  probe = lambda s: jnp.float32(s[0].size)
  _, aux = network.standalone_forward(params, g, _images(), jax.random.key(1), CFG, probe=probe)
  counts = aux["probes"]["counts"]
  assert len(counts) == 2 * 6 + 3  # 6 conv edges in each of 2 cells + 3 fixed LIFs
  assert all(float(c) == CFG.timesteps for c in counts.values())


@pytest.mark.slow
def test_event_frames_run_the_stem_per_timestep():
  cfg = network.network_config(None, width=4, hidden=32, timesteps=3, vote_group=2,
                               input_shape=(16, 16, 2), dropout=0.0)
  g = genotype_lib.parse_genotype("0303/0030/0003/0000", cfg.ops)
  params = network.init_standalone_params(jax.random.key(0), cfg, g)
  stats = network.init_batch_stats(params)
  frame = jax.random.normal(jax.random.key(1), (4, 16, 16, 2)) * 3
  probe = lambda s: s.sum()
  # Identical frames at every step = the static-image network.
  y_frames, aux_f = network.standalone_forward(
      params, g, jnp.repeat(frame[:, None], 3, axis=1), None, cfg, batch_stats=stats, probe=probe)
  y_static, aux_s = network.standalone_forward(params, g, frame, None, cfg, batch_stats=stats,
                                               probe=probe)
  np.testing.assert_allclose(y_frames, y_static, atol=1e-6)
  np.testing.assert_allclose(aux_f["probes"]["values"]["head/lif"],
                             aux_s["probes"]["values"]["head/lif"])
  assert jax.tree.structure(aux_f["batch_stats"]) == jax.tree.structure(stats)
  # The stem BN of frames updates T times, the static stem once.
  m_f = aux_f["batch_stats"]["stem"]["bn"]["mean"]
  m_s = aux_s["batch_stats"]["stem"]["bn"]["mean"]
  np.testing.assert_allclose(m_f, m_s * (1 - 0.9 ** 3) / 0.1, rtol=1e-4, atol=1e-6)
  # Different frames change the output.
  moving = jax.random.normal(jax.random.key(2), (4, 3, 16, 16, 2)) * 3
  _, aux_m = network.standalone_forward(params, g, moving, None, cfg, batch_stats=stats,
                                        probe=probe)
  assert float(aux_m["probes"]["values"]["head/lif"]) != float(aux_s["probes"]["values"]["head/lif"])
  with pytest.raises(ValueError, match="2 frames"):
    network.standalone_forward(params, g, moving[:, :2], None, cfg, batch_stats=stats)


@pytest.mark.slow
def test_supernet_shared_lifs_report_each_edge_like_standalone():
  # The supernet runs one LIF per (source node, threshold) for all the edges
  # leaving that node; per edge it must report exactly the standalone LIF.
  text = "0303/0030/2002/0200"
  g = genotype_lib.parse_genotype(text, CFG.ops)
  params = network.init_supernet_params(jax.random.key(1), CFG)
  alone = network.standalone_from_supernet(params, CFG, g)
  arch = genotype_lib.arch_of(genotype_lib.canonical(g)[None, None], CFG)[0, 0]
  x, key = _images(), jax.random.key(3)
  probe = lambda s: s.reshape(s.shape[0], -1).sum(1)  # per-sample spike counts
  sup = network.supernet_forward(params, arch, x, key, CFG, probe=probe, per_layer=True)[1]
  sta = network.standalone_forward(alone, g, x, key, CFG, probe=probe)[1]
  for l in range(CFG.num_cells):
    for e in range(CFG.num_edges):
      name = f"cell{l}/edge{e}/lif"
      if name in sta["probes"]["values"]:
        np.testing.assert_array_equal(sup["probes"]["values"][name + "0"],
                                      sta["probes"]["values"][name])
        assert float(sup["probes"]["counts"][name + "0"]) == CFG.timesteps
      else:
        assert float(sup["probes"]["counts"][name + "0"]) == 0


def test_one_genotype_normaliser_serves_network_score_and_memory():
  text, per_cell = "0303/0030/2002/0200", "0303/0030/2002/0200|0302/0030/3003/0000"
  g = genotype_lib.parse_genotype(text, CFG.ops)
  g2 = genotype_lib.parse_genotype(per_cell.split("|")[1], CFG.ops)
  batch = genotype_lib.cell_genotypes([text, per_cell], CFG.ops, CFG.num_cells,
                                      allow_backward=True)
  assert batch.shape == (2, 2, 4, 4) and batch.dtype == np.int8
  np.testing.assert_array_equal(batch[0], [g, g])
  np.testing.assert_array_equal(batch[1], [g, g2])
  # Arrays [N, 4, 4] broadcast to every cell; [N, L, 4, 4] are per cell.
  np.testing.assert_array_equal(genotype_lib.cell_genotypes(
      np.stack([g, g2]), CFG.ops, 2, allow_backward=True)[1], [g2, g2])
  np.testing.assert_array_equal(genotype_lib.as_genotypes([text, per_cell], CFG), batch)
  np.testing.assert_array_equal(network.network_genotypes(per_cell, CFG), batch[1])
  np.testing.assert_array_equal(network.network_genotypes(tuple(per_cell.split("|")), CFG),
                                batch[1])
  np.testing.assert_array_equal(network.network_genotypes(g, CFG), batch[0])
  np.testing.assert_array_equal(memory.param_count(batch, CFG),
                                [memory.param_count(g, CFG), memory.param_count([per_cell], CFG)[0]])
  # Dead edges are pruned: node 2 feeds nothing reaching node 3.
  dead = genotype_lib.cell_genotypes(["0023/0000/0000/0000"], CFG.ops, 1, allow_backward=False)
  np.testing.assert_array_equal(dead[0, 0], genotype_lib.parse_genotype("0003/0000/0000/0000",
                                                                         CFG.ops))
  assert genotype_lib.cell_genotypes([], CFG.ops, 2, allow_backward=False).shape == (0, 2, 4, 4)


@pytest.mark.parametrize("bad, match", [
    ("0303/0030/2002/0200", "list"),
    (["0303/0030/2002/0200|0303/0030/2002/0200|0303/0030/2002/0200"], "3 cells"),
    (np.zeros((2, 3, 4, 4), np.int8), "shape"),
    (np.full((1, 4, 4), 7, np.int8), "digit 7"),
    (np.eye(4, dtype=np.int8)[None], "diagonal"),
    (["0303/0030/2002/0200"], "backward"),
])
def test_normaliser_names_bad_input(bad, match):
  with pytest.raises(ValueError, match=match):
    genotype_lib.cell_genotypes(bad, CFG.ops, 2, allow_backward=False)


@pytest.mark.slow
def test_traced_genotype_raises_a_type_error_asking_for_a_static_one():
  cfg = network.network_config(None, width=4, hidden=32, timesteps=1, vote_group=2,
                               input_shape=(16, 16, 3))
  text = "0303/0030/0003/0000"
  g = genotype_lib.parse_genotype(text, cfg.ops)
  params = network.init_standalone_params(jax.random.key(0), cfg, g)
  x = _images(2)
  with pytest.raises(TypeError, match="static_argnames"):
    jax.jit(lambda g: network.standalone_forward(params, g, x, jax.random.key(1), cfg)[0])(g)
  # The static form works.
  f = jax.jit(lambda p, genotypes: network.standalone_forward(p, genotypes, x, jax.random.key(1),
                                                              cfg)[0],
              static_argnames="genotypes")
  assert f(params, genotypes=text).shape == (2, cfg.num_classes)


# The time-batched supernet (forward-only spaces): every op set, per-cell
# genotypes sampled from the space, all score kernels' probes per LIF.
def _forward_cfg(ops, **kw):
  return network.network_config(None, **dict(dict(width=4, hidden=32, timesteps=3, vote_group=2,
                                                  input_shape=(16, 16, 3), ops=ops), **kw))


@pytest.mark.parametrize("ops", ["snasnet"] + [
    pytest.param(o, marks=pytest.mark.slow) for o in ("spikenas", "spikenas3", "lightsnn")])
def test_time_batched_supernet_equals_per_step(ops):
  from snnax_nas import kernels  # pylint: disable=g-import-not-at-top
  cfg = _forward_cfg(ops)
  rng = np.random.default_rng(0)
  gs = genotype_space.sample_genotypes(rng, 3 * cfg.num_cells, cfg.ops, backward=False)
  arch = genotype_lib.arch_of(genotype_lib.as_genotypes(gs.reshape(3, cfg.num_cells, 4, 4), cfg), cfg)
  params = network.init_supernet_params(jax.random.key(1), cfg)
  x, key = _images(), jax.random.key(3)
  probe = kernels.KernelProbe(kernels.KERNELS)

  @jax.jit
  def both(a):
    out = {}
    for tb in (False, True):
      logits, aux = network.supernet_forward(params, a, x, key, cfg, probe=probe,
                                             per_layer=True, time_batched=tb)
      out[tb] = logits, aux["probes"], kernels.scores_from_probes(aux["probes"], probe.kernels,
                                                                  per_layer=True)
    return out

  for a in arch:
    out = both(a)
    (y0, p0, (s0, bad0)), (y1, p1, (s1, bad1)) = out[False], out[True]
    np.testing.assert_allclose(y1, y0, rtol=1e-5, atol=1e-6)
    assert jax.tree.structure(p1) == jax.tree.structure(p0)
    # Spike codes: the per-LIF Hamming / Gram / pattern terms are integer-valued
    # sums, identical unless a spike flipped; the membranes agree to rounding.
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-5), p1, p0)
    np.testing.assert_array_equal(bad1, bad0)
    np.testing.assert_allclose(s1, s0, rtol=1e-5, atol=1e-4)


@pytest.mark.slow
def test_time_batched_supernet_equals_per_step_on_event_frames():
  cfg = _forward_cfg("snasnet", input_shape=(16, 16, 2))
  g = genotype_lib.as_genotypes(["0104/0040/0003/0000"], cfg)
  arch = genotype_lib.arch_of(g, cfg)[0]
  params = network.init_supernet_params(jax.random.key(1), cfg)
  frames = jax.random.normal(jax.random.key(2), (8, 3, 16, 16, 2)) * 2
  probe = lambda s: s.reshape(s.shape[0], -1).sum(1)  # per-sample spike counts
  run = jax.jit(lambda tb: network.supernet_forward(params, arch, frames, jax.random.key(3), cfg,
                                                    probe=probe, per_layer=True,
                                                    time_batched=tb), static_argnums=0)
  (y0, a0), (y1, a1) = run(False), run(True)
  np.testing.assert_allclose(y1, y0, rtol=1e-5, atol=1e-6)
  jax.tree.map(np.testing.assert_array_equal, a1["probes"], a0["probes"])
  with pytest.raises(ValueError, match="2 frames"):
    network.supernet_forward(params, arch, frames[:, :2], None, cfg, train=False,
                             time_batched=True)


def test_scorer_runs_time_batched_only_on_request_and_without_backward_edges(monkeypatch):
  from snnax_nas.network import supernet  # pylint: disable=g-import-not-at-top
  calls = []
  real = supernet.forward_time_batched
  monkeypatch.setattr(supernet, "forward_time_batched",
                      lambda *a, **k: calls.append(1) or real(*a, **k))
  images = jax.ShapeDtypeStruct((1, 4, 16, 16, 3), jnp.float32)
  for backward, asked, expect in ((False, True, 1), (False, False, 0), (True, True, 0)):
    calls.clear()
    cfg = _forward_cfg("snasnet", backward=backward)
    arch = jnp.zeros((cfg.num_cells, cfg.num_edges, len(cfg.ops.nonzero_ops)))
    jax.eval_shape(lambda x: score._candidate_score(  # traced, never compiled
        arch, 0, x, jax.random.key(0), cfg, ("sahd",), time_batched=asked), images)
    assert len(calls) == expect, (backward, asked)
  # Backward edges feed step t - 1 into step t: never time-batched.
  params = jax.eval_shape(lambda: network.init_supernet_params(jax.random.key(0), cfg))
  with pytest.raises(ValueError, match="backward"):
    jax.eval_shape(lambda p, x: network.supernet_forward(p, arch, x, None, cfg, train=False,
                                                         time_batched=True), params, images)


@pytest.mark.parametrize("batch_axis", [0, 1])
def test_spike_counts_are_exact_counts(batch_axis):
  rng = np.random.default_rng(0)
  spikes = (rng.random((3, 5, 6, 6, 4)) < 0.3).astype(np.float32)
  got = network.spike_counts(jnp.asarray(spikes), batch_axis=batch_axis)
  assert float(got["spikes"]) == spikes.sum() and float(got["neurons"]) == spikes.size
  mask = np.array([1, 1, 0, 1, 0], np.float32)[:spikes.shape[batch_axis]]
  got = network.spike_counts(jnp.asarray(spikes), jnp.asarray(mask), batch_axis=batch_axis)
  shape = [1] * spikes.ndim
  shape[batch_axis] = -1
  assert float(got["spikes"]) == (spikes * mask.reshape(shape)).sum()
  assert float(got["neurons"]) == spikes.size / spikes.shape[batch_axis] * mask.sum()
