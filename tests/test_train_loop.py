"""snnax_nas.train.loop: train_and_evaluate (progress, ETA, silent layers,
plots), the train job and the analyze_ops study in process, and launch.train killed and
resumed (subprocesses, marked slow)."""

from __future__ import annotations

import csv
import json
import logging as std_logging
import os
import re
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

from snnax_nas import configs
from snnax_nas import network
from snnax_nas import stats
from snnax_nas import train
from snnax_nas import workdir as workdir_lib
from snnax_nas.jobs import train as train_job
from snnax_nas.studies import analyze_ops as analyze_job


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
  compiled = train.CompileCache()
  res = train.train_and_evaluate(
      CFG1, G, INFO, (images, labels), (images[:8], labels[:8]), epochs=2, batch_size=16,
      workdir=str(tmp_path), log_every=1, plot_title="tiny", augment=False,
      compile_cache=compiled)
  assert len(compiled) == 3  # the steps, the compiled train and eval steps
  assert res.summary["silent_layers_at_init"] is not None
  assert "head/fc_lif" in res.summary["silent_layers_at_init"]
  assert "head/fc_lif" in res.warnings[0]
  assert "--config.network.linear_init=fan_in" in res.warnings[0]
  # Still silent in the last evaluation: the end of training says so too.
  silent_at_end = [k for k, r in res.history[-1]["rates"].items() if r == 0.0]
  assert res.summary["silent_layers_at_end"] == silent_at_end and silent_at_end
  assert len(res.warnings) == 2 and "never fire in evaluation mode" in res.warnings[1]
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
      workdir=str(tmp_path), log_every=1, plot_title="tiny", augment=False,
      compile_cache=compiled)
  assert len(compiled) == 3  # compiled once for both calls
  assert again.summary["silent_layers_at_init"] is None
  assert again.warnings == res.warnings[1:]  # only the end-of-training check
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


def _train_config(dataset, **training):
  config = configs.get_config("train")
  config.dataset = dataset
  config.network.update(width=4, hidden=32, timesteps=2)
  config.training.update(batch_size=16, **training)
  return config


@pytest.mark.slow
def test_train_job_from_search(tmp_path, tiny_npz):
  search = str(tmp_path / "search")
  cfg = network.network_config(None, width=8, timesteps=2, hidden=32, input_shape=(32, 32, 3))
  section = {"ops": "snasnet", "backward": False, "cells_per_stage": 1, "width": 8,
             "timesteps": 2, "hidden": 32}
  workdir_lib.claim(search, workdir_lib.make_record(
      "search", {"dataset": "cifar10_sample", "network": section}, cfg, {}))
  (tmp_path / "search" / "summary.json").write_text(json.dumps({"genotype": GENOTYPE}))
  config = _train_config(tiny_npz, epochs=4, lr=0.5)
  config.from_search = search
  # The fields a launcher user gave on the command line win over the search's.
  given = {"dataset", "network.width", "training.epochs", "training.lr",
           "training.batch_size"}
  summary = train_job.run(config, str(tmp_path / "w"), given=given)
  assert summary["genotype"] == GENOTYPE
  assert summary["config"]["width"] == 4 and summary["dataset"] == tiny_npz  # given wins
  assert summary["config"]["timesteps"] == 2 and summary["config"]["hidden"] == 32  # search's
  assert "command" not in summary and config.genotype is None  # the caller's config unchanged
  assert summary["checkpoint_dir"] == "checkpoints"  # relative: a copy owns its own
  assert summary["num_classes"] == 2 and summary["classes_inferred"]
  assert "2 classes inferred from the labels" in train_job.report(summary, str(tmp_path / "w"))
  # The run trained its checkpoints in the workdir: another --checkpoint_dir
  # would find none and train again over it.
  with pytest.raises(ValueError, match="rerun with --checkpoint_dir=.*checkpoints to resume"):
    train_job.run(config, str(tmp_path / "w"), given=given,
                  checkpoint_dir=str(tmp_path / "elsewhere"))
  (tmp_path / "afile").write_text("")
  with pytest.raises(ValueError, match="is a file, not a directory"):
    train_job.run(config, str(tmp_path / "w2"), given=given,
                  checkpoint_dir=str(tmp_path / "afile"))
  into_search = _train_config(tiny_npz, epochs=1)
  into_search.genotype = GENOTYPE
  with pytest.raises(ValueError, match="holds a search run, not a train run"):
    train_job.run(into_search, search)


@pytest.mark.parametrize("fields, word", [
    ({"genotype": "0303/003/0003/0000"}, "0303/003/0003/0000"),
    ({"genotype": "0303/0030/0003/0000", "dataset": "nosuchdata"}, "nosuchdata"),
    ({"from_search": "/nonexistent/search"}, "/nonexistent/search"),
    ({"genotype": "0303/0030/0003/0000", "loss": "hinge"}, "hinge"),
])
def test_train_job_refuses_bad_input_with_one_line(tmp_path, tiny_npz, fields, word):
  fields = dict(fields)
  config = _train_config(fields.pop("dataset", tiny_npz))
  if "loss" in fields:
    config.training.loss = fields.pop("loss")
  config.update(fields)
  with pytest.raises(ValueError, match=re.escape(word)) as info:
    train_job.run(config, str(tmp_path / "w"))
  assert "\n" not in str(info.value)
  assert not (tmp_path / "w" / "config.json").exists()


@pytest.mark.slow
def test_analyze_job_end_to_end(tmp_path, tiny_npz):
  work = str(tmp_path / "ops")
  config = configs.get_config("analyze_ops")
  config.update(dataset=tiny_npz, num_candidates=2)
  config.network.update(ops="zero,conv3x3", width=4, hidden=32, timesteps=1)
  config.scoring.update(batch_size=8, chunk_size="2")
  config.training.update(epochs=1, seeds=2, batch_size=16)
  rows = analyze_job.run(config, work)
  with open(os.path.join(work, "ops_significance.csv")) as f:
    assert [r["variant"] for r in csv.DictReader(f)] == [r["variant"] for r in rows]
  # Removing conv3x3 would leave only 'zero' (no network): skipped.
  assert [r["variant"] for r in rows] == ["full", "-zero"]
  assert rows[0]["op_set"] == "zero,conv3x3" and rows[1]["op_set"] == "conv3x3"
  assert float(rows[0]["delta_vs_full"]) == 0.0
  for r in rows:
    assert len(r["accs"].split()) == 2 and 0 <= float(r["acc_mean"]) <= 1
    assert int(r["params"]) > 0
    assert r["acc_lo"] <= r["acc_mean"] <= r["acc_hi"]
  # The delta's interval is over the per-seed differences (paired by seed).
  diffs = [float(a) - float(b) for a, b in zip(rows[1]["accs"].split(), rows[0]["accs"].split())]
  want = stats.t_interval(diffs)
  assert rows[1]["delta_lo"] == pytest.approx(want["lo"], abs=1e-3)
  assert rows[1]["delta_hi"] == pytest.approx(want["hi"], abs=1e-3)
  assert rows[0]["delta_lo"] == rows[0]["delta_hi"] == 0.0
  # Without 'zero' every forward edge holds conv3x3 (digit 1 of that set).
  assert rows[1]["genotype"] == "0111/0011/0001/0000"
  assert os.path.getsize(os.path.join(work, "ops_significance.png")) > 0
  assert "-zero" in analyze_job.report(rows, work)


@pytest.mark.slow
def test_a_diverging_run_stops_in_one_line_and_saves_no_nan_checkpoint(tmp_path):
  images, labels = separable(32)
  with pytest.raises(train.TrainingDivergedError,
                     match=r"diverged in epoch 1.*nothing was saved.*--config.training.lr"):
    train.train_and_evaluate(CFG1, G, INFO, (images, labels), (images[:8], labels[:8]),
                             epochs=2, batch_size=16, lr=float("inf"), workdir=str(tmp_path),
                             log_every=0, augment=False)
  with pytest.raises(FileNotFoundError):
    train.restore_checkpoint(str(tmp_path))
