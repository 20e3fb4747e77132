"""Training: optimiser, losses, spike rates, data parallelism, the launchers.

Tiny settings throughout (width 4, hidden 32, T 2, 16x16 images): compile
time dominates, so in-process tests share one config and subprocess tests
share a persistent JAX compilation cache.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from snnax_nas import data as data_lib
from snnax_nas import network
from snnax_nas import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Small architectures compile fast: one conv3x3 edge (0->3) per cell for the
# training tests, four (0->1, 0->3, 1->2, 2->3) for the spike-count check.
GENOTYPE = "0003/0000/0000/0000"
G = np.array([[0, 0, 0, 3], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
G4 = np.array([[0, 3, 0, 3], [0, 0, 3, 0], [0, 0, 0, 3], [0, 0, 0, 0]])
CFG = network.network_config(None, input_shape=(16, 16, 3), num_classes=2, width=4, hidden=32,
                             timesteps=2, vote_group=2)
CFG1 = dataclasses.replace(CFG, timesteps=1)  # compiles faster where T does not matter
INFO = data_lib.DatasetInfo("synthetic", (16, 16, 3), 2, (0.5,) * 3, (0.25,) * 3, None, 2)
TINY_FLAGS = ["--width=4", "--hidden=32", "--timesteps=2", "--batch_size=16"]


def separable(n: int, seed: int = 0):
  """Two classes: dark vs bright noisy uint8 images [n, 16, 16, 3], balanced."""
  rng = np.random.default_rng(seed)
  labels = (np.arange(n) % 2).astype(np.int32)
  base = np.where(labels == 1, 170, 70).astype(np.uint8)[:, None, None, None]
  images = (base + rng.integers(0, 40, (n, 16, 16, 3))).astype(np.uint8)
  return images, labels


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory):
  """``npz:.../{split}.npz`` with 96 train and 24 test separable images."""
  d = tmp_path_factory.mktemp("npz")
  for split, n, seed in (("train", 96, 0), ("test", 24, 1)):
    x, y = separable(n, seed)
    np.savez(d / f"{split}.npz", image=x, label=y)
  return f"npz:{d}/{{split}}.npz"


# ----------------------------------------------------------------------------
# Optimiser and schedule.

def test_weight_decay_is_applied_as_decay():
  params = {"w": jnp.full((3,), 2.0)}
  zero = {"w": jnp.zeros(3)}
  lr, wd = 0.1, 5e-4
  # With momentum, the first step is exactly p * (1 - lr * wd).
  opt = train.make_optimizer(lr, epochs=10, steps_per_epoch=10, weight_decay=wd)
  upd, _ = opt.update(zero, opt.init(params), params)
  np.testing.assert_allclose(optax.apply_updates(params, upd)["w"], 2.0 * (1 - lr * wd),
                             rtol=1e-7)
  # Without momentum, every step shrinks by 1 - lr_t * wd.
  opt = train.make_optimizer(lr, epochs=2, steps_per_epoch=3, momentum=0.0, weight_decay=wd)
  sched = train.lr_schedule(lr, 2, 3)
  state, p, expect = opt.init(params), params, 2.0
  for t in range(6):
    upd, state = opt.update(zero, state, p)
    p = optax.apply_updates(p, upd)
    expect *= 1 - float(sched(t)) * wd
  np.testing.assert_allclose(p["w"], expect, rtol=1e-6)
  # weight_decay=0: a zero gradient leaves the parameter alone.
  opt = train.make_optimizer(lr, 2, 3, weight_decay=0.0)
  upd, _ = opt.update(zero, opt.init(params), params)
  np.testing.assert_array_equal(optax.apply_updates(params, upd)["w"], params["w"])


@pytest.mark.parametrize("per_epoch", [False, True])
def test_cosine_schedule_ends_at_one_percent(per_epoch):
  s = train.lr_schedule(0.1, epochs=4, steps_per_epoch=5, per_epoch=per_epoch)
  assert float(s(0)) == pytest.approx(0.1)
  assert float(s(20)) == pytest.approx(0.001, rel=1e-5)
  values = [float(s(t)) for t in range(21)]
  assert all(a >= b - 1e-9 for a, b in zip(values, values[1:]))  # non-increasing
  if per_epoch:  # constant within an epoch, as CosineAnnealingLR stepped per epoch
    assert values[0] == values[4] and values[5] < values[4]


def test_losses():
  logits = jnp.array([[2.0, -1.0], [0.5, 0.5]])
  labels = jnp.array([0, 1])
  ce = train.loss_value(logits, labels, "ce")
  np.testing.assert_allclose(ce, -jax.nn.log_softmax(logits)[jnp.arange(2), labels], rtol=1e-6)
  mse = train.loss_value(logits, labels, "mse")
  np.testing.assert_allclose(mse, [((2 - 1) ** 2 + 1) / 2, (0.25 + 0.25) / 2], rtol=1e-6)
  with pytest.raises(ValueError, match="hinge"):
    train.loss_value(logits, labels, "hinge")


# ----------------------------------------------------------------------------
# Steps.

def _alive_state(opt, g=G, cfg=CFG):
  """A fresh state whose classifier LIF fires.

  With the reference init (Linear N(0, 0.01^2)) and a 128-input classifier,
  the hidden LIF of this tiny network never reaches threshold and the output
  is the bias alone; scaling fc1 makes the tiny problem learnable in a few
  steps (the full-size network has 64x more classifier inputs).
  """
  state = train.create_train_state(jax.random.PRNGKey(0), cfg, g, opt)
  params = jax.tree.map(lambda x: x, state.params)
  params["head"]["fc1"]["kernel"] = params["head"]["fc1"]["kernel"] * 30.0
  return state.replace(params=params)


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_loss_decreases_on_separable_data(loss):
  images, labels = separable(32)
  lr = 0.5 if loss == "ce" else 0.2
  opt = train.make_optimizer(lr, epochs=1, steps_per_epoch=10)
  cfg = CFG if loss == "ce" else CFG1
  steps = train.make_steps(cfg, G, opt, INFO, loss=loss, augment=False)
  state = _alive_state(opt, G, cfg)
  batch = train.put_batch({"image": images, "label": labels}, steps.batch_sharding)
  losses, accs = [], []
  for _ in range(10):
    state, m = steps.train(state, batch)
    losses.append(float(m["loss"]) / 32)
    accs.append(float(m["correct"]) / 32)
  assert int(state.step) == 10
  assert np.mean(losses[-3:]) < 0.8 * losses[0], losses
  assert np.mean(accs[-3:]) > 0.8, accs
  # The batch-norm running statistics moved off their (0, 1) start.
  assert float(jnp.abs(state.batch_stats["stem"]["bn"]["mean"]).max()) > 0


def test_sar_and_layer_rates_match_direct_spike_counts():
  images, labels = separable(10)
  opt = train.make_optimizer(0.1, 1, 1)
  steps = train.make_steps(CFG, G4, opt, INFO, augment=False)
  state = _alive_state(opt, G4)
  # Batches of 4: the last holds 2 real images and 2 padded ones.
  got = train.evaluate(steps, state, images, labels, batch_size=4)
  assert got["count"] == 10
  # Count spikes directly with a bare probe on the whole set at once.
  x = data_lib.normalize(images, INFO)
  _, aux = network.standalone_forward(state.params, G4, jnp.asarray(x), None, CFG, train=False,
                                      batch_stats=state.batch_stats, probe=lambda s: s.sum(),
                                      per_layer=True)
  spikes = {k: float(v) for k, v in aux["probes"]["values"].items()}
  # Neurons per sample of each LIF, by hand: cells at 16x16x4 and 8x8x8.
  (h1, w1, c1), (h2, w2, c2) = CFG.stage_shapes
  neurons = {"reduction/lif": h1 * w1 * c1, "head/lif": h2 * w2 * c2, "head/fc_lif": 32}
  for e in (0, 2, 3, 5):
    neurons[f"cell0/edge{e}/lif"] = h1 * w1 * c1
    neurons[f"cell1/edge{e}/lif"] = h2 * w2 * c2
  assert set(got["rates"]) == set(neurons)
  t, n = CFG.timesteps, len(labels)
  for k, per_sample in neurons.items():
    assert got["rates"][k] == pytest.approx(spikes[k] / (per_sample * t * n), rel=1e-5), k
  sar = sum(spikes.values()) / (sum(neurons.values()) * t * n)
  assert got["sar"] == pytest.approx(sar, rel=1e-5)
  assert 0 < got["sar"] < 1
  # firing_rates on a hand-made case.
  sar2, rates = train.firing_rates({"a": {"spikes": 3.0, "neurons": 10.0},
                                    "b": {"spikes": 1.0, "neurons": 30.0}})
  assert sar2 == pytest.approx(4 / 40) and rates == {"a": 0.3, "b": pytest.approx(1 / 30)}


_DP = textwrap.dedent("""
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    sys.path.insert(0, sys.argv[1])
    from snnax_nas import train, network, data as data_lib
    from tests.test_train import CFG1 as CFG, G, INFO, separable
    assert jax.device_count() == 2, jax.devices()
    images, labels = separable(16)
    opt = train.make_optimizer(0.5, 1, 3)
    out = {}
    for n in (1, 2):
      mesh = train.make_mesh(jax.devices()[:n])
      steps = train.make_steps(CFG, G, opt, INFO, mesh=mesh)  # dropout and augmentation on
      state = train.create_train_state(jax.random.PRNGKey(0), CFG, G, opt)
      p = state.params
      p["head"]["fc1"]["kernel"] = p["head"]["fc1"]["kernel"] * 30.0
      state = jax.device_put(state.replace(params=p), steps.state_sharding)
      losses = []
      for i in range(3):
        b = train.put_batch({"image": images, "label": labels}, steps.batch_sharding)
        assert len(b["image"].sharding.device_set) == n
        state, m = steps.train(state, b)
        losses.append(float(m["loss"]))
      out[n] = (losses, [np.asarray(x) for x in jax.tree.leaves((state.params, state.batch_stats))])
    np.testing.assert_allclose(out[1][0], out[2][0], rtol=1e-4)
    for a, b in zip(out[1][1], out[2][1]):
      np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    print("OK", out[1][0], out[2][0])
""")


def test_data_parallel_two_devices_equals_one(env):
  e = dict(env, XLA_FLAGS="--xla_force_host_platform_device_count=2")
  out = subprocess.run([sys.executable, "-c", _DP, ROOT], capture_output=True, text=True,
                       timeout=300, env=e, cwd=ROOT)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "OK" in out.stdout


# ----------------------------------------------------------------------------
# The launchers.

def _launch(module, args, env, timeout=300):
  return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                        timeout=timeout, env=env, cwd=ROOT)


# The killed run: launch.train with a pause after every checkpoint save, so
# that the kill lands after the first checkpoint and before the end.
_SLOW = textwrap.dedent("""
    import runpy, sys, time
    from snnax_nas import train
    save = train.Checkpointer.save
    def slow_save(self, *a, **k):
      save(self, *a, **k)
      self.manager.wait_until_finished()
      time.sleep(3.0)
    train.Checkpointer.save = slow_save
    sys.argv = ["launch.train"] + sys.argv[1:]
    runpy.run_module("launch.train", run_name="__main__")
""")


def _tb_scalars(logdir) -> dict:
  """{tag: {step: value}} of the TensorBoard event files in ``logdir`` (a
  minimal TFRecord reader; later files win, as after a purge)."""
  from tensorboardX.proto import event_pb2
  out = {}
  for name in sorted(os.listdir(logdir)):
    with open(os.path.join(logdir, name), "rb") as f:
      raw = f.read()
    pos = 0
    while pos + 12 <= len(raw):
      n = int.from_bytes(raw[pos:pos + 8], "little")
      event = event_pb2.Event.FromString(raw[pos + 12:pos + 12 + n])
      pos += 12 + n + 4  # length, its crc, data, data crc
      for v in event.summary.value:
        out.setdefault(v.tag, {})[event.step] = v.simple_value
  return out


def _epochs(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def test_launch_train_resumes_after_kill_9(tmp_path, tiny_npz, env):
  args = [f"--dataset={tiny_npz}", f"--genotype={GENOTYPE}", "--epochs=4", "--lr=0.5",
          *TINY_FLAGS]
  work = str(tmp_path / "run")
  proc = subprocess.Popen([sys.executable, "-c", _SLOW, *args, f"--workdir={work}"], env=env,
                          cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  ckpt = os.path.join(work, "checkpoints", "1")
  deadline = time.time() + 200
  while not os.path.isdir(ckpt) and time.time() < deadline and proc.poll() is None:
    time.sleep(0.05)
  time.sleep(0.5)  # inside the 3 s pause after the first save
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  assert os.path.isdir(ckpt), "the first checkpoint was never written"
  assert not os.path.exists(os.path.join(work, "summary.json"))
  done = max(int(d) for d in os.listdir(os.path.join(work, "checkpoints")) if d.isdigit())
  assert 1 <= done < 4

  out = _launch("launch.train", [*args, f"--workdir={work}"], env)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "resumed from the checkpoint of epoch" in out.stderr
  hist = _epochs(work)
  assert [e["epoch"] for e in hist] == [1, 2, 3, 4]  # every epoch exactly once
  # Epochs up to the checkpoint come from the killed process, the rest from
  # the resumed one: nothing was redone from scratch.
  assert [e["session"] for e in hist] == [0] * done + [1] * (4 - done)
  assert all(a["elapsed_s"] < b["elapsed_s"] for a, b in zip(hist, hist[1:]))
  with open(os.path.join(work, "metrics.csv")) as f:
    rows = list(csv.DictReader(f))
  assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
  assert {"train_accuracy", "test_accuracy", "sar", "images_per_sec", "epoch_time",
          "rate/head/fc_lif"} <= set(rows[0])
  with open(os.path.join(work, "summary.json")) as f:
    summary = json.load(f)
  assert summary["epochs"] == 4 and summary["sessions"] == 2
  assert summary["params"] == summary["params_in_tree"] > 0
  assert summary["weight_bytes"] == 4 * summary["params"]
  assert 0 <= summary["final_test_accuracy"] <= 1 and 0 < summary["sar"] < 1
  assert summary["genotype"] == GENOTYPE
  assert os.path.getsize(os.path.join(work, "accuracy.png")) > 0
  scalars = _tb_scalars(os.path.join(work, "tb"))
  assert sorted(scalars["epoch/train_loss"]) == [1, 2, 3, 4]
  assert scalars["epoch/test_accuracy"][4] == pytest.approx(hist[-1]["test_accuracy"])
  assert "rate/head/fc_lif" in scalars
  # Only the last keep_checkpoints (3) remain.
  assert sorted(os.listdir(os.path.join(work, "checkpoints")), key=str) == ["2", "3", "4"]

  # The same run uninterrupted ends identically (order, dropout and crops are
  # functions of seed, epoch and step).
  ref = _launch("launch.train", [*args, f"--workdir={tmp_path / 'ref'}"], env)
  assert ref.returncode == 0, ref.stderr[-3000:]
  for a, b in zip(_epochs(tmp_path / "ref"), hist):
    assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
    assert a["test_accuracy"] == pytest.approx(b["test_accuracy"])


def test_launch_train_from_search_summary(tmp_path, tiny_npz, env):
  search = tmp_path / "search"
  search.mkdir()
  # The network the other launcher tests compiled (a compilation-cache hit).
  (search / "summary.json").write_text(json.dumps(
      {"genotype": GENOTYPE, "config": {"dataset": "cifar10_sample", "ops": "snasnet",
                                        "backward": False, "cells_per_stage": 1, "width": 8,
                                        "timesteps": 2, "hidden": 32}}))
  out = _launch("launch.train", [f"--dataset={tiny_npz}", f"--from_search={search}",
                                 "--epochs=4", "--lr=0.5", "--batch_size=16", "--width=4",
                                 f"--workdir={tmp_path / 'w'}"], env)
  assert out.returncode == 0, out.stderr[-3000:]
  with open(tmp_path / "w" / "summary.json") as f:
    s = json.load(f)
  assert s["genotype"] == GENOTYPE
  assert s["config"]["width"] == 4 and s["dataset"] == tiny_npz  # the command line wins
  assert s["config"]["timesteps"] == 2 and s["config"]["hidden"] == 32  # from the search


@pytest.mark.parametrize("extra, word", [
    (["--genotype=0303/003/0003/0000"], "0303/003/0003/0000"),
    (["--genotype=0303/0030/0003/0000", "--dataset=nosuchdata"], "nosuchdata"),
    (["--from_search=/nonexistent/search"], "/nonexistent/search"),
    (["--genotype=0303/0030/0003/0000", "--loss=hinge"], "hinge"),
])
def test_launch_train_bad_input_exits_with_one_line(tmp_path, tiny_npz, env, extra, word):
  args = [f"--dataset={tiny_npz}", *TINY_FLAGS, f"--workdir={tmp_path}", *extra]
  out = _launch("launch.train", args, env, timeout=120)
  assert out.returncode != 0
  last = out.stderr.strip().splitlines()[-1]
  assert word in last
  assert "Traceback" not in out.stderr


def test_analyze_ops_end_to_end(tmp_path, tiny_npz, env):
  work = tmp_path / "ops"
  out = _launch("launch.analyze_ops", [
      f"--dataset={tiny_npz}", "--ops=zero,conv3x3", "--width=4", "--hidden=32",
      "--timesteps=1", "--num_candidates=2", "--score_batch_size=8", "--chunk_size=2",
      "--epochs=1", "--seeds=2", "--batch_size=16", f"--workdir={work}"], env)
  assert out.returncode == 0, out.stderr[-3000:]
  with open(work / "ops_significance.csv") as f:
    rows = list(csv.DictReader(f))
  # Removing conv3x3 would leave only 'zero' (no network): skipped.
  assert [r["variant"] for r in rows] == ["full", "-zero"]
  assert rows[0]["op_set"] == "zero,conv3x3" and rows[1]["op_set"] == "conv3x3"
  assert float(rows[0]["delta_vs_full"]) == 0.0
  for r in rows:
    assert len(r["accs"].split()) == 2 and 0 <= float(r["acc_mean"]) <= 1
    assert int(r["params"]) > 0
  # Without 'zero' every forward edge holds conv3x3 (digit 1 of that set).
  assert rows[1]["genotype"] == "0111/0011/0001/0000"
  assert os.path.getsize(work / "ops_significance.png") > 0
  assert "-zero" in out.stdout
