"""snnax_nas.train.loop: train_and_evaluate (progress, ETA, silent layers,
plots) and the launchers that drive it (subprocesses, marked slow)."""

from __future__ import annotations

import csv
import json
import logging as std_logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from train_helpers import CFG1
from train_helpers import GENOTYPE
from train_helpers import INFO
from train_helpers import ROOT
from train_helpers import TINY_FLAGS
from train_helpers import G
from train_helpers import launch
from train_helpers import separable

from snnax_nas import train


def test_format_duration_and_time_left():
  assert train.format_duration(59.6) == "1:00"
  assert train.format_duration(3 * 3600 + 62) == "3:01:02"
  assert train.format_duration(None) == "?" and train.format_duration(float("inf")) == "?"
  assert train.time_left(done=10, left=30, elapsed=5.0) == pytest.approx(15.0)
  assert train.time_left(done=0, left=30, elapsed=0.0) is None


@pytest.mark.slow
def test_train_and_evaluate_reports_eta_silent_layers_and_rate_plot(tmp_path, caplog):
  """A tiny run with the reference init: the classifier's hidden LIF is
  silent at initialisation (see test_train_steps._alive_state), the run says
  so, logs steps/s and times left, and draws firing_rates.png per layer."""
  caplog.set_level(std_logging.INFO, logger="absl")
  images, labels = separable(32)
  res = train.train_and_evaluate(
      CFG1, G, INFO, (images, labels), (images[:8], labels[:8]), epochs=2, batch_size=16,
      workdir=str(tmp_path), log_every=1, plot_title="tiny", augment=False)
  assert res.summary["silent_layers_at_init"] is not None
  assert "head/fc_lif" in res.summary["silent_layers_at_init"]
  assert len(res.warnings) == 1 and "head/fc_lif" in res.warnings[0]
  assert "--config.network.linear_init=fan_in" in res.warnings[0]
  text = caplog.text
  assert res.warnings[0] in text
  assert "steps/s" in text and "epoch left" in text and "run left" in text
  assert [e["epoch"] for e in res.history] == [1, 2]
  rates = res.history[0]["train_rates"]
  assert "head/fc_lif" in rates and set(rates) == set(res.history[-1]["rates"])
  for name in ("accuracy.png", "firing_rates.png", "metrics.csv", "metrics.jsonl"):
    assert os.path.getsize(tmp_path / name) > 0
  # Rerun in place: resumed from the last checkpoint, no training, no check.
  again = train.train_and_evaluate(
      CFG1, G, INFO, (images, labels), (images[:8], labels[:8]), epochs=2, batch_size=16,
      workdir=str(tmp_path), log_every=1, plot_title="tiny", augment=False)
  assert again.warnings == [] and again.summary["silent_layers_at_init"] is None
  assert [e["epoch"] for e in again.history] == [1, 2]


# ----------------------------------------------------------------------------
# The launchers.

@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory):
  """``npz:.../{split}.npz`` with 96 train and 24 test separable images."""
  d = tmp_path_factory.mktemp("npz")
  for split, n, seed in (("train", 96, 0), ("test", 24, 1)):
    x, y = separable(n, seed)
    np.savez(d / f"{split}.npz", image=x, label=y)
  return f"npz:{d}/{{split}}.npz"


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


@pytest.mark.slow
def test_launch_train_resumes_after_kill_9(tmp_path, tiny_npz, env):
  args = [f"--config.dataset={tiny_npz}", f"--config.genotype={GENOTYPE}",
          "--config.training.epochs=4", "--config.training.lr=0.5", *TINY_FLAGS]
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

  out = launch("launch.train", [*args, f"--workdir={work}"], env)
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
  assert os.path.getsize(os.path.join(work, "firing_rates.png")) > 0
  scalars = _tb_scalars(os.path.join(work, "tb"))
  assert sorted(scalars["epoch/train_loss"]) == [1, 2, 3, 4]
  assert scalars["epoch/test_accuracy"][4] == pytest.approx(hist[-1]["test_accuracy"])
  assert "rate/head/fc_lif" in scalars
  # Only the last keep_checkpoints (3) remain.
  assert sorted(os.listdir(os.path.join(work, "checkpoints")), key=str) == ["2", "3", "4"]

  # The same run uninterrupted ends identically (order, dropout and crops are
  # functions of seed, epoch and step).
  ref = launch("launch.train", [*args, f"--workdir={tmp_path / 'ref'}"], env)
  assert ref.returncode == 0, ref.stderr[-3000:]
  for a, b in zip(_epochs(tmp_path / "ref"), hist):
    assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
    assert a["test_accuracy"] == pytest.approx(b["test_accuracy"])


@pytest.mark.slow
def test_launch_train_from_search_summary(tmp_path, tiny_npz, env):
  search = tmp_path / "search"
  search.mkdir()
  # The network the other launcher tests compiled (a compilation-cache hit).
  (search / "summary.json").write_text(json.dumps(
      {"genotype": GENOTYPE, "config": {"dataset": "cifar10_sample", "ops": "snasnet",
                                        "backward": False, "cells_per_stage": 1, "width": 8,
                                        "timesteps": 2, "hidden": 32}}))
  out = launch("launch.train", [f"--config.dataset={tiny_npz}",
                                 f"--config.from_search={search}",
                                 "--config.training.epochs=4", "--config.training.lr=0.5",
                                 "--config.training.batch_size=16", "--config.network.width=4",
                                 f"--workdir={tmp_path / 'w'}"], env)
  assert out.returncode == 0, out.stderr[-3000:]
  with open(tmp_path / "w" / "summary.json") as f:
    s = json.load(f)
  assert s["genotype"] == GENOTYPE
  assert s["config"]["width"] == 4 and s["dataset"] == tiny_npz  # the command line wins
  assert s["config"]["timesteps"] == 2 and s["config"]["hidden"] == 32  # from the search


@pytest.mark.slow
@pytest.mark.parametrize("extra, word", [
    (["--config.genotype=0303/003/0003/0000"], "0303/003/0003/0000"),
    (["--config.genotype=0303/0030/0003/0000", "--config.dataset=nosuchdata"], "nosuchdata"),
    (["--config.from_search=/nonexistent/search"], "/nonexistent/search"),
    (["--config.genotype=0303/0030/0003/0000", "--config.training.loss=hinge"], "hinge"),
])
def test_launch_train_bad_input_exits_with_one_line(tmp_path, tiny_npz, env, extra, word):
  args = [f"--config.dataset={tiny_npz}", *TINY_FLAGS, f"--workdir={tmp_path}", *extra]
  out = launch("launch.train", args, env, timeout=120)
  assert out.returncode != 0
  last = out.stderr.strip().splitlines()[-1]
  assert word in last
  assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_analyze_ops_end_to_end(tmp_path, tiny_npz, env):
  work = tmp_path / "ops"
  out = launch("launch.analyze_ops", [
      f"--config.dataset={tiny_npz}", "--config.network.ops=zero,conv3x3",
      "--config.network.width=4", "--config.network.hidden=32", "--config.network.timesteps=1",
      "--config.num_candidates=2", "--config.scoring.batch_size=8",
      "--config.scoring.chunk_size=2", "--config.training.epochs=1", "--config.training.seeds=2",
      "--config.training.batch_size=16", f"--workdir={work}"], env)
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
