"""Bad input to the launchers: one clear line, a non-zero exit, nothing
half-written. One table per launcher; each row is the arguments,
the exit status, words the last stderr line must hold, and whether the
workdir may hold the run's record afterwards.

The launchers run in this process (``main`` behind the launcher's own flag
parser; absl's ``app.run`` would only add ``sys.exit``): a row that fails
before any network is compiled takes milliseconds. An exception other than
``SystemExit`` (the traceback a user would see) fails the test.
"""

from __future__ import annotations

import importlib
import json
import os
import sys

from absl import flags
import numpy as np
import pytest

from launch import common
from snnax_nas import data as data_lib
from snnax_nas import network
from snnax_nas import ops as ops_lib
from snnax_nas import workdir as workdir_lib
from snnax_nas.jobs import common as jobs_common

FLAGS = flags.FLAGS
# Flags the launchers define (launch.common and launch.train); every other
# flag in FLAGS is absl's own.
_LAUNCHER_FLAGS = ("workdir", "coordinator_address", "num_processes", "process_id",
                   "checkpoint_dir", "scores", "truth", "ops", "top_k", "resamples",
                   "bootstrap_seed")
TINY = ["--config.network.width=4", "--config.network.hidden=32",
        "--config.network.timesteps=2", "--config.scoring.batch_size=8",
        "--config.scoring.repeats=1", "--config.scoring.chunk_size=2"]
TRAIN_TINY = ["--config.network.width=4", "--config.network.hidden=32",
              "--config.network.timesteps=2", "--config.training.batch_size=8",
              "--config.training.epochs=2"]
BACKWARD = "0303/0030/2002/0200"  # 2 -> 0 is a backward edge
FORWARD = "0302/0030/0003/0000"


def run_launcher(module: str, args: list[str], monkeypatch, capsys):
  """Runs ``python -m launch.<module> ARGS`` in this process.

  Returns:
    ``(exit status, stdout, stderr)``.
  """
  for name in list(FLAGS):  # a fresh flag set, as a new process has
    if name == "config" or name.startswith("config.") or name in _LAUNCHER_FLAGS:
      delattr(FLAGS, name)
  sys.modules.pop(f"launch.{module}", None)
  monkeypatch.setattr(sys, "argv", [f"launch.{module}", *args])
  # One device per core would change the device count of later tests.
  monkeypatch.setattr(common, "use_cpu_cores", lambda: None)
  monkeypatch.setattr(common, "exit_now", sys.exit)  # os._exit would end pytest
  try:
    # Defining --config reads the overrides: an unknown field exits here.
    launcher = importlib.import_module(f"launch.{module}")
    launcher.main(common.parse_flags(list(sys.argv)))
    status = 0
  except SystemExit as e:
    status = e.code
  out = capsys.readouterr()
  return status, out.out, out.err


def _last_line(err: str) -> str:
  lines = err.strip().splitlines()
  return lines[-1] if lines else ""


@pytest.fixture(scope="module")
def files(tmp_path_factory, random_npz):
  """Input files of the bad-input rows: genotype files, a NaN npz, a folder
  dataset with a corrupt image, a split-less npz, and tonic's DVS layout."""
  root = tmp_path_factory.mktemp("inputs")
  paths = {"npz": random_npz}
  (root / "mixed.txt").write_text(f"# cells\n{FORWARD}\n\n{BACKWARD}\n")
  paths["mixed"] = str(root / "mixed.txt")
  (root / "forward.txt").write_text(f"{FORWARD}\n0303/0030/0003/0000\n")
  paths["forward"] = str(root / "forward.txt")
  rng = np.random.default_rng(0)
  x = rng.random((32, 16, 16, 3)).astype(np.float32)
  x[3, 2, 1, 0] = np.nan
  np.savez(root / "nan.npz", image=x, label=np.arange(32) % 10)
  paths["nan"] = str(root / "nan.npz")
  from PIL import Image
  for label in ("a", "b"):
    d = root / "folder" / "train" / label
    d.mkdir(parents=True)
    for k in range(3):
      Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(d / f"{k}.png")
  (root / "folder" / "train" / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot a png")
  paths["folder"] = str(root / "folder")
  # npz:FILE with no {split}: train and test are the same 32 images.
  np.savez(root / "one.npz", image=rng.integers(0, 255, (32, 16, 16, 3), dtype=np.uint8),
           label=np.arange(32) % 2)
  paths["one"] = str(root / "one.npz")
  (root / "latin1.txt").write_bytes("# café\n0303/0030/0003/0000\n".encode("latin-1"))
  paths["latin1"] = str(root / "latin1.txt")
  np.savez(root / "empty.npz", image=np.zeros((0, 16, 16, 3), np.uint8), label=np.zeros(0, int))
  paths["empty"] = str(root / "empty.npz")
  (root / "text.npz").write_text("not an archive")
  paths["text"] = str(root / "text.npz")
  paths["dvs"] = str(_fake_dvs(root / "dvs", rng))
  return paths


def _fake_dvs(root, rng, users=10):
  """tonic's DVSGesture layout (see tests/test_data_dvs.py), tiny recordings."""
  loc = root / "DVSGesture"
  (loc / "ibmGestureTrain").mkdir(parents=True)
  (loc / "ibmGestureTrain.tar.gz").write_bytes(b"")
  for user in range(1, users + 1):
    d = loc / "ibmGestureTrain" / f"user{user:02d}_led"
    d.mkdir()
    for label in range(11):
      n = int(rng.integers(20, 60))
      ev = np.stack([rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n),
                     np.sort(rng.integers(0, 6000, n))], axis=1).astype(np.int64)
      np.save(d / f"{label}.npy", ev)
  return root


def _args(row_args, files, workdir):
  """Row arguments with NAME placeholders (``{npz}``, ``{mixed}``, ...) filled."""
  return [a.format(**files, workdir=workdir) for a in row_args]


def _check_row(status, err, expected_status, words):
  assert status == expected_status, err
  assert "Traceback" not in err
  last = _last_line(err)
  for word in words:
    assert word in last, err


def _assert_untouched(workdir):
  """Nothing written: no workdir, or one without a record or an output."""
  if os.path.isdir(workdir):
    assert not set(os.listdir(workdir)) & {"config.json", "scores.csv", "summary.json",
                                           "results.sqlite", "metrics.jsonl",
                                           "ops_significance.csv", "scores.part0.csv"}


NO_TONIC = "no_tonic"  # marker: run the row with tonic not importable

SCORE_ROWS = [
    (["--config.scoring.chunk_size=0"], 2, ["chunk_size=0", ">= 1"]),
    (["--config.scoring.chunk_size=-2"], 2, ["chunk_size=-2"]),
    (["--config.scoring.map_batch_size=0"], 2, ["map_batch_size=0"]),
    (["--config.scoring.map_batch_size=-1"], 2, ["map_batch_size=-1"]),
    (["--config.scoring.kernel=foo"], 2, ["foo", "sahd"]),
    (["--config.num_candidates=0"], 2, ["num_candidates=0"]),
    (["{forward}"], 2, ["unexpected arguments", "--config.genotypes=FILE"]),
    (["--config.genotypes={mixed}"], 2, ["line 4", BACKWARD, "--config.network.backward=true"]),
    (["--config.genotypes={workdir}/none.txt"], 2, ["none.txt"]),
    (["--config.dataset=npz:{nan}"], 2, ["NaN"]),
    (["--config.dataset=folder:{folder}"], 2, ["broken.png"]),
    (["--config.dataset=nosuchdata"], 2, ["nosuchdata"]),
    (["--config.scoring.batch_size=1"], 2, ["--config.scoring.batch_size=1", ">= 2"]),
    (["--config.genotypes={latin1}"], 2, ["latin1.txt", "not UTF-8"]),
    (["--config.dataset=npz:{empty}"], 2, ["empty.npz", "the dataset is empty"]),
    (["--config.dataset=npz:{text}"], 2, ["text.npz", "not a readable NumPy"]),
    (["--config.widht=3"], 2, ["unknown --config field", "widht"]),
    (["--config.weight_bits=3"], 2, ["--config.weight_bits=3"]),
    (["--config.dataset=dvs128_gesture", "--config.data_dir={dvs}", NO_TONIC], 2,
     ["pip install tonic"]),
]


def _run_row(module, row_args, files, tmp_path, monkeypatch, capsys):
  workdir = str(tmp_path / "w")
  args = _args([a for a in row_args if a != NO_TONIC], files, workdir)
  if NO_TONIC in row_args:
    monkeypatch.setitem(sys.modules, "tonic", None)  # `import tonic` now fails
  base = TRAIN_TINY if module == "train" else TINY
  if module != "train" and module != "analyze_ops" and not any(
      a.startswith("--config.dataset") for a in args):
    base = [*base, f"--config.dataset=npz:{files['npz']}"]
  return workdir, run_launcher(module, [*base, f"--workdir={workdir}", *args], monkeypatch,
                               capsys)


@pytest.mark.parametrize("row_args, status, words", SCORE_ROWS)
def test_score_bad_inputs(row_args, status, words, files, tmp_path, monkeypatch, capsys):
  workdir, (got, _, err) = _run_row("score", row_args, files, tmp_path, monkeypatch, capsys)
  _check_row(got, err, status, words)
  _assert_untouched(workdir)


SEARCH_ROWS = [
    (["--config.method=evolution"], 2, ["evolution"]),
    (["--config.scoring.chunk_size=0"], 2, ["chunk_size=0"]),
    (["--config.scoring.map_batch_size=-1"], 2, ["map_batch_size=-1"]),
    (["--config.scoring.kernel=foo"], 2, ["foo"]),
    (["--config.num_candidates=0"], 2, ["num_candidates=0"]),
    (["--config.budget.mb=nan"], 2, ["NaN"]),
    (["--config.budget.mb=-1"], 2, ["budget"]),
    (["--config.budget.params=0"], 2, ["budget.params=0"]),
    (["--config.budget.weight_bits=3"], 2, ["weight_bits=3"]),
    (["--config.scoring.batch_size=1"], 2, ["--config.scoring.batch_size=1", ">= 2"]),
    (["--config.method=lightsnn", "--config.budget.mb=1"], 2, ["lightsnn", "budget"]),
    (["--config.method=lightsnn", "--config.budget.fraction=0.5"], 2, ["lightsnn", "fraction"]),
    (["--config.budget.fraction=0.5", "--config.budget.mb=1"], 2, ["give one"]),
    (["--config.budget.fraction=1.5"], 2, ["budget fraction", "1.5"]),
    (["--config.method=random", "--config.genotypes={mixed}"], 2,
     ["line 4", "backward"]),
    (["--config.genotypes={forward}"], 2, ["--config.method=random"]),
    (["{forward}"], 2, ["unexpected arguments"]),
    (["--config.dataset=npz:{nan}"], 2, ["NaN"]),
    (["--config.dataset=dvs128_gesture", "--config.data_dir={dvs}", NO_TONIC], 2,
     ["pip install tonic"]),
]


@pytest.mark.parametrize("row_args, status, words", SEARCH_ROWS)
def test_search_bad_inputs(row_args, status, words, files, tmp_path, monkeypatch, capsys):
  workdir, (got, _, err) = _run_row("search", row_args, files, tmp_path, monkeypatch, capsys)
  _check_row(got, err, status, words)
  _assert_untouched(workdir)


TRAIN_ROWS = [
    (["--config.genotype=" + FORWARD, "--config.training.max_train_examples=-30"], 2,
     ["max_train_examples=-30", ">= 1"]),
    (["--config.genotype=" + FORWARD, "--config.training.max_test_examples=0"], 2,
     ["max_test_examples=0"]),
    (["--config.genotype=" + BACKWARD], 2, [BACKWARD, "--config.network.backward=true"]),
    (["--config.genotype=0303/003/2002/0200"], 2, ["0303/003/2002/0200"]),
    ([], 2, ["--config.genotype", "--config.from_search"]),
    (["--config.genotype=" + FORWARD, "--config.from_search={workdir}"], 2, ["exactly one"]),
    (["--config.from_search={workdir}/nothing"], 2, ["from_search", "nothing"]),
    (["--config.genotype=" + FORWARD, "--config.training.lr=0"], 2, ["lr=0"]),
    (["--config.genotype=" + FORWARD, "--config.training.epochs=0"], 2,
     ["--config.training.epochs=0"]),
    (["--config.genotype=" + FORWARD, "--config.training.loss=foo"], 2, ["foo"]),
    (["--config.genotype=" + FORWARD, "--config.training.batch_size=64"], 2,
     ["fewer than one batch"]),
    (["--config.genotype=" + FORWARD, "--config.dataset=cifar10_sample"], 2, ["test split"]),
    (["--config.genotype=" + FORWARD, "--config.dataset=npz:{nan}"], 2, ["NaN"]),
    (["--config.genotype=" + FORWARD, "extra"], 2, ["unexpected arguments"]),
    (["--config.genotype=" + FORWARD, "--config.dataset=dvs128_gesture",
      "--config.data_dir={dvs}", NO_TONIC], 2, ["pip install tonic"]),
]


@pytest.mark.parametrize("row_args, status, words", TRAIN_ROWS)
def test_train_bad_inputs(row_args, status, words, files, tmp_path, monkeypatch, capsys):
  if not any(a.startswith("--config.dataset") for a in row_args):
    row_args = [f"--config.dataset=npz:{files['one']}", *row_args]
  workdir, (got, _, err) = _run_row("train", row_args, files, tmp_path, monkeypatch, capsys)
  _check_row(got, err, status, words)
  _assert_untouched(workdir)


ANALYZE_ROWS = [
    (["--config.training.max_train_examples=-30"], 2, ["max_train_examples=-30"]),
    (["--config.training.max_test_examples=0"], 2, ["max_test_examples=0"]),
    (["--config.training.seeds=0"], 2, ["--config.training.seeds=0"]),
    (["--config.num_candidates=0"], 2, ["num_candidates=0"]),
    (["--config.scoring.chunk_size=0"], 2, ["chunk_size=0"]),
    (["--config.network.ops=skip,conv9x9"], 2, ["conv9x9"]),
    (["--config.dataset=npz:{nan}"], 2, ["NaN"]),
    (["--config.dataset=dvs128_gesture"], 2, ["static-image"]),
    (["extra"], 2, ["unexpected arguments"]),
]


@pytest.mark.parametrize("row_args, status, words", ANALYZE_ROWS)
def test_analyze_ops_bad_inputs(row_args, status, words, files, tmp_path, monkeypatch, capsys):
  if not any(a.startswith("--config.dataset") for a in row_args):
    row_args = [f"--config.dataset=npz:{files['one']}", *row_args]
  row_args = ["--config.training.batch_size=8", "--config.training.epochs=1", *row_args]
  workdir, (got, _, err) = _run_row("analyze_ops", row_args, files, tmp_path, monkeypatch,
                                    capsys)
  _check_row(got, err, status, words)
  _assert_untouched(workdir)


@pytest.mark.parametrize("config, words", [
    ("snnax_nas/configs/score.py:nope", ["unknown preset 'nope'", "small, reference"]),
    ("{tmp}/nosuch.py", ["cannot load the config file", "nosuch.py"]),
    ("{tmp}/broken.py", ["broken.py line 1", "never closed"]),
])
def test_bad_config_files_are_one_line(config, words, tmp_path, monkeypatch, capsys):
  (tmp_path / "broken.py").write_text("x = (\n")
  got, _, err = run_launcher("score", [f"--config={config.format(tmp=tmp_path)}",
                                       f"--workdir={tmp_path / 'w'}"], monkeypatch, capsys)
  _check_row(got, err, 2, words)
  _assert_untouched(str(tmp_path / "w"))


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
  """A scores CSV (one NaN score) and a truth CSV of five cells."""
  root = tmp_path_factory.mktemp("tables")
  cells = ["0303/0030/2002/0200", "0302/0030/3003/0000", "0104/0040/0003/0000",
           "0111/0011/0001/0000", "0333/0033/0003/0000"]
  scores = ["genotype,score,params"] + [
      f"{g},{'nan' if i == 4 else -50 + i},{1000 * (5 - i)}" for i, g in enumerate(cells)]
  (root / "scores.csv").write_text("\n".join(scores) + "\n")
  truth = ["genotype,accuracy"] + [f"{g},{50 + i}" for i, g in enumerate(cells)]
  (root / "truth.csv").write_text("\n".join(truth) + "\n")
  return {"scores": str(root / "scores.csv"), "truth": str(root / "truth.csv")}


CORRELATE_ROWS = [
    (["{scores}"], 2, ["unexpected arguments", "--scores=CSV"]),
    (["--nosuchflag=1"], 2, ["nosuchflag"]),
    (["--top_k=5"], 2, ["k=5", "4 genotypes"]),
]


@pytest.mark.parametrize("row_args, status, words", CORRELATE_ROWS)
def test_correlate_bad_inputs(row_args, status, words, tables, tmp_path, monkeypatch, capsys):
  args = [a.format(**tables) for a in row_args]
  got, _, err = run_launcher(
      "correlate", [f"--scores={tables['scores']}", f"--truth={tables['truth']}",
                    f"--workdir={tmp_path / 'w'}", "--resamples=0", *args], monkeypatch, capsys)
  _check_row(got, err, status, words)
  assert _last_line(err).startswith("error:")
  assert not (tmp_path / "w" / "correlation.json").exists()


def test_correlate_compares_score_and_baseline_on_the_same_rows(tables, tmp_path, monkeypatch,
                                                                capsys):
  got, out, err = run_launcher(
      "correlate", [f"--scores={tables['scores']}", f"--truth={tables['truth']}",
                    f"--workdir={tmp_path / 'w'}", "--resamples=0", "--top_k=2"],
      monkeypatch, capsys)
  assert got == 0, err
  report = json.loads((tmp_path / "w" / "correlation.json").read_text())
  assert report["excluded_nan"] == 1
  assert report["score"]["n"] == report["params_baseline"]["n"] == 4
  assert report["params_baseline"]["kendall_tau"] == pytest.approx(-1.0)


# ----------------------------------------------------------------------------
# Reruns into a workdir: a run is interrupted (Ctrl-C, stubbed) after it
# claimed its workdir; the rerun must be the same run.

def _interrupt(*args, **kwargs):
  raise KeyboardInterrupt


def _strict_json(path):
  """JSON as other readers read it: Infinity and NaN are errors."""
  def bad(name):
    raise ValueError(f"{path}: non-standard JSON constant {name}")
  with open(path) as f:
    return json.load(f, parse_constant=bad)


def test_score_interrupted_then_edited_genotype_file_is_refused(files, tmp_path, monkeypatch,
                                                                 capsys):
  from snnax_nas import score
  gfile = tmp_path / "g.txt"
  gfile.write_text(f"{FORWARD}\n0303/0030/0003/0000\n")
  args = [f"--config.dataset=npz:{files['npz']}", f"--config.genotypes={gfile}",
          f"--workdir={tmp_path}/w", *TINY]
  monkeypatch.setattr(score, "score_candidates", _interrupt)
  status, _, err = run_launcher("score", args, monkeypatch, capsys)
  assert status == 130 and _last_line(err) == "interrupted; rerun the same command to resume"
  assert "Traceback" not in err and (tmp_path / "w" / "config.json").exists()
  # The file is edited: its old rows must not be reused under new names.
  gfile.write_text("0303/0030/0003/0000\n0003/0000/0000/0000\n0300/0030/0003/0000\n")
  status, _, err = run_launcher("score", args, monkeypatch, capsys)
  _check_row(status, err, 2, ["inputs.genotypes", "--workdir"])
  assert not (tmp_path / "w" / "scores.csv").exists()


def test_score_into_a_search_workdir_is_refused(files, tmp_path, monkeypatch, capsys):
  work = tmp_path / "search"
  cfg = network.network_config(None, width=4, hidden=32, timesteps=2, input_shape=(16, 16, 3))
  workdir_lib.claim(str(work), workdir_lib.make_record(
      "search", {"dataset": f"npz:{files['npz']}", "network": {"width": 4}}, cfg, {}))
  (work / "scores.csv").write_text("the search's scores\n")
  status, _, err = run_launcher("score", [f"--config.dataset=npz:{files['npz']}",
                                          f"--workdir={work}", *TINY], monkeypatch, capsys)
  _check_row(status, err, 2, ["search run", "--workdir"])
  assert (work / "scores.csv").read_text() == "the search's scores\n"


def test_search_budget_inf_is_standard_json_and_ctrl_c_is_one_line(files, tmp_path,
                                                                   monkeypatch, capsys):
  from snnax_nas import search
  monkeypatch.setattr(search, "random_search", _interrupt)
  args = [f"--config.dataset=npz:{files['npz']}", "--config.method=random",
          "--config.num_candidates=2", "--config.budget.mb=inf", f"--workdir={tmp_path}/w",
          *TINY]
  status, _, err = run_launcher("search", args, monkeypatch, capsys)
  assert status == 130 and "Traceback" not in err
  assert _last_line(err) == "interrupted; rerun the same command to resume"
  record = _strict_json(tmp_path / "w" / "config.json")
  assert record["config"]["budget"]["mb"] is None  # inf: no budget
  # The same command resumes (the record compares equal), another is refused.
  status, _, err = run_launcher("search", args, monkeypatch, capsys)
  assert status == 130
  status, _, err = run_launcher("search", [*args, "--config.seed=3"], monkeypatch, capsys)
  _check_row(status, err, 2, ["config.seed 0 -> 3"])


def test_search_budget_fraction_becomes_bytes_of_the_space_range(files, tmp_path, monkeypatch,
                                                                 capsys):
  from snnax_nas import memory
  from snnax_nas import search
  seen = {}

  def capture(*args, **kwargs):
    seen.update(kwargs)
    raise KeyboardInterrupt

  monkeypatch.setattr(search, "spikenas_search", capture)
  args = [f"--config.dataset=npz:{files['npz']}", "--config.budget.fraction=0.5",
          "--config.budget.weight_bits=8", f"--workdir={tmp_path}/w", *TINY]
  status, out, _ = run_launcher("search", args, monkeypatch, capsys)
  assert status == 130
  cfg = network.network_config(None, input_shape=(16, 16, 3), width=4, hidden=32, timesteps=2,
                               ops="spikenas", second_pool=4, cells_per_stage=2)  # small preset
  r = memory.space_range(cfg, 8)
  assert seen["budget_bytes"] == r.budget_bytes(0.5) == (r.min_bytes + r.max_bytes) // 2
  assert f"{r.min_bytes / 1e6:.4f}-{r.max_bytes / 1e6:.4f} MB" in out
  assert f"budget fraction 0.5 -> {r.budget_bytes(0.5) / 1e6:.4f} MB" in out


def test_train_on_one_file_warns_and_extending_a_run_names_the_field(files, tmp_path,
                                                                      monkeypatch, capsys):
  from snnax_nas import train
  monkeypatch.setattr(train, "train_and_evaluate", _interrupt)
  args = [f"--config.dataset=npz:{files['one']}", f"--config.genotype={FORWARD}",
          f"--workdir={tmp_path}/w", *TRAIN_TINY]
  status, _, err = run_launcher("train", args, monkeypatch, capsys)
  assert status == 130 and "Traceback" not in err
  warning = [ln for ln in err.splitlines() if ln.startswith("warning:")]
  assert warning and "TRAINING data" in warning[0] and "{split}" in warning[0]
  status, _, err = run_launcher("train", [*args, "--config.training.epochs=4"], monkeypatch,
                                capsys)
  _check_row(status, err, 2, ["config.training.epochs 2 -> 4"])


def test_analyze_ops_ctrl_c_is_one_line(files, tmp_path, monkeypatch, capsys):
  monkeypatch.setattr(
      importlib.import_module("snnax_nas.search"), "random_search", _interrupt)
  args = [f"--config.dataset=npz:{files['one']}", "--config.training.batch_size=8",
          f"--workdir={tmp_path}/w", "--config.network.width=4", "--config.network.hidden=32"]
  status, _, err = run_launcher("analyze_ops", args, monkeypatch, capsys)
  assert status == 130 and _last_line(err) == "interrupted; rerun the same command to resume"
  assert any("TRAINING data" in ln for ln in err.splitlines() if ln.startswith("warning:"))


# ----------------------------------------------------------------------------
# Event data end to end (item 13): search and score bin the events into the
# network's T frames; the network refuses any other frame count.

def _record_batches(monkeypatch):
  shapes = []
  real = data_lib.score_batches

  def recording(*args, **kwargs):
    out = real(*args, **kwargs)
    shapes.append(out.shape)
    return out

  monkeypatch.setattr(data_lib, "score_batches", recording)
  return shapes


@pytest.mark.slow
@pytest.mark.parametrize("module", ["search", "score"])  # ~10 s together
def test_event_data_is_scored_with_every_frame(module, files, tmp_path, monkeypatch, capsys):
  shapes = _record_batches(monkeypatch)
  args = ["--config.dataset=dvs128_gesture", f"--config.data_dir={files['dvs']}",
          "--config.num_candidates=2", "--config.network.timesteps=3",
          "--config.scoring.batch_size=4", f"--workdir={tmp_path}/w",
          *[a for a in TINY if "timesteps" not in a and "batch_size" not in a]]
  if module == "search":
    args.append("--config.method=random")
  status, out, err = run_launcher(module, args, monkeypatch, capsys)
  assert status in (0, None), err
  assert shapes == [(1, 4, 3, 128, 128, 2)]  # [R, B, T, H, W, P]: T frames, all events
  name = "summary.json" if module == "search" else "scores.csv"
  assert (tmp_path / "w" / name).exists()


@pytest.mark.slow
def test_network_refuses_a_frame_count_other_than_timesteps():
  import jax
  cfg = network.network_config(None, width=4, hidden=32, timesteps=2, vote_group=2,
                               input_shape=(8, 8, 2), dropout=0.0)
  g = np.array([[0, 0, 0, 3], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
  params = network.init_standalone_params(jax.random.key(0), cfg, g)
  for frames in (1, 3):
    with pytest.raises(ValueError, match=f"{frames} frames for 2 timesteps"):
      network.standalone_forward(params, g, np.zeros((2, frames, 8, 8, 2), np.float32), None,
                                 cfg)


def test_genotype_file_byte_order_mark_dropped(tmp_path):
  path = tmp_path / "bom.txt"
  path.write_bytes("\ufeff0303/0030/0003/0000\n0302/0030/0003/0000\n".encode("utf-8"))
  got = jobs_common.read_genotype_file(str(path), ops_lib.op_set("snasnet"), backward=False)
  assert got == ["0303/0030/0003/0000", "0302/0030/0003/0000"]


@pytest.mark.slow
def test_ctrl_c_during_the_first_compile_exits_130_without_a_crash(tmp_path):
  """A real SIGINT while the scorer compiles: the one line and status 130,
  not a segfault in interpreter teardown (7 of 7 before the fix)."""
  import signal
  import subprocess
  import time
  root = os.path.join(os.path.dirname(__file__), "..")
  log = tmp_path / "log.txt"
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=os.path.abspath(root))
  with open(log, "w") as out:
    proc = subprocess.Popen(
        [sys.executable, "-m", "launch.search", f"--workdir={tmp_path / 'w'}",
         "--config.network.width=4", "--config.network.hidden=32",
         "--config.network.timesteps=2", "--config.scoring.batch_size=8"],
        cwd=root, env=env, stdout=out,
        stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while "evaluations to score" not in log.read_text() and time.monotonic() < deadline:
      assert proc.poll() is None, log.read_text()
      time.sleep(0.2)
    time.sleep(2.0)  # inside the first compile of the scorer
    proc.send_signal(signal.SIGINT)
    status = proc.wait(timeout=120)
  text = log.read_text()
  assert status == 130, text[-2000:]
  assert "Fatal Python error" not in text and "Traceback" not in text
  assert text.strip().splitlines()[-1] == "interrupted; rerun the same command to resume"
