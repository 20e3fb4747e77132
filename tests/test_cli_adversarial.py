"""Adversarial input to the newer launchers and paths (the ground-truth job,
budget fractions of search and compare, compare's seeds, odd paths), in the
table-driven form of ``tests/test_cli_bad_inputs.py``: each row is the
arguments, the exit status and words the last stderr line must hold; a row
that is refused leaves no run record behind."""

from __future__ import annotations

import os

import numpy as np
import pytest
from test_cli_bad_inputs import _check_row
from test_cli_bad_inputs import _last_line
from test_cli_bad_inputs import run_launcher

from snnax_nas import memory
from snnax_nas import network
from snnax_nas.configs import groundtruth as gt_config

CELLS = ["0002/0000/0000/0000", "0003/0000/0000/0000", "0004/0000/0000/0000",
         "0302/0003/0000/0000"]
GT_TINY = ["--config.network.width=4", "--config.network.hidden=16",
           "--config.network.timesteps=2", "--config.scoring.batch_size=4",
           "--config.scoring.repeats=1", "--config.num_seeds=1",
           "--config.spikenas_candidates=2", "--config.random_draws=2"]


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
  """Ground-truth tables, good and bad, some under odd names."""
  root = tmp_path_factory.mktemp("gt tables é")  # a space and a non-ASCII letter
  good = "genotype,accuracy\n" + "".join(f"{g},{50 + i}\n" for i, g in enumerate(CELLS))
  files = {
      "good": good,
      "header_only": "genotype,accuracy\n",
      "empty": "",
      "one_cell": f"genotype,accuracy\n{CELLS[0]},50\n0202/0000/0000/0000,51\n",
      "over_100": good + "0102/0003/0000/0000,150\n",
      "negative": good.replace(",51\n", ",-5\n"),
      "bom": "\ufeff" + good,
  }
  paths = {}
  for name, text in files.items():
    (root / f"{name}.csv").write_text(text, encoding="utf-8")
    paths[name] = str(root / f"{name}.csv")
  (root / "latin1.csv").write_bytes("genotype,accuracy # café\n".encode("latin-1"))
  paths["latin1"] = str(root / "latin1.csv")
  cifar10 = network.network_config("cifar10", ops=gt_config.TABLE_OPS)
  from snnax_nas import genotype as genotype_lib
  params = memory.param_count(
      np.stack([genotype_lib.parse_genotype(g, cifar10.ops) for g in CELLS]), cifar10)
  (root / "cifar10.csv").write_text("genotype,accuracy,params\n" + "".join(
      f"{g},{50 + i},{p}\n" for i, (g, p) in enumerate(zip(CELLS, params))))
  paths["cifar10"] = str(root / "cifar10.csv")
  paths["dir"] = str(root)
  (root / "a file").write_text("not a directory\n")
  paths["file"] = str(root / "a file")
  return paths


GROUNDTRUTH_ROWS = [
    ([], 2, ["config.table is required"]),
    (["--config.table={header_only}"], 2, ["header_only.csv", "no rows"]),
    (["--config.table={empty}"], 2, ["empty.csv", "genotype and accuracy"]),
    (["--config.table={one_cell}"], 2, ["1 distinct cell", "at least 2"]),
    (["--config.table={over_100}"], 2, ["row 6", "accuracy 150", "[0, 100]"]),
    (["--config.table={negative}"], 2, ["row 3", "accuracy -5"]),
    (["--config.table={latin1}"], 2, ["latin1.csv", "not UTF-8"]),
    (["--config.table={dir}/none.csv"], 2, ["none.csv"]),
    (["--config.table={dir}"], 2, ["is a directory"]),
    (["--config.table={good}", "--config.network.dropout=0.1"], 2,
     ["network.dropout=0.1", "without dropout"]),
    (["--config.table={cifar10}"], 2, ["params column", "--config.trained.preset=cifar10"]),
    (["--config.table={good}", "--config.num_seeds=0"], 2, ["num_seeds=0", ">= 1"]),
    (["--config.table={good}", "--config.num_seeds=-1"], 2, ["num_seeds=-1"]),
    (["--config.table={good}", "--config.spikenas_candidates=0"], 2, ["spikenas_candidates=0"]),
    (["--config.table={good}", "--config.methods=spikenas,evolution"], 2, ["evolution"]),
    (["--config.table={good}", "--config.methods=spikenas,spikenas"], 2,
     ["spikenas", "more than once"]),
    (["--config.table={good}", "--config.budget.fraction=1.5"], 2, ["1.5", "[0, 1]"]),
    (["--config.table={good}", "--config.budget.fraction=-0.1"], 2, ["-0.1"]),
    (["--config.table={good}", "--config.budget.fraction=abc"], 2, ["'abc'", "not a number"]),
    (["--config.table={good}", "--config.budget.fraction=", "--config.budget.mb=abc"], 2,
     ["budget.mb", "'abc'"]),
    (["--config.table={good}", "--config.budget.fraction=", "--config.budget.mb=-1"], 2,
     ["budget.mb", "-1"]),
    (["--config.table={good}", "--config.budget.fraction=", "--config.budget.mb=nan"], 2,
     ["budget.mb", "nan"]),
    (["--config.table={good}", "--config.budget.fraction=", "--config.budget.mb=0.001"], 2,
     ["0.001 MB", "no cell of the table fits"]),
    (["--config.table={good}", "--config.budget.fraction="], 2,
     ["budget.fraction", "budget.mb"]),
    (["--config.table={good}", "--config.budget.weight_bits=3"], 2, ["weight_bits=3"]),
    (["--config.table={good}", "--config.trained.preset=nope"], 2, ["nope", "cifar100"]),
    (["--config.table={good}", "--config.scoring.weights=shared"], 2, ["shared"]),
    # The table is read under network.ops: a smaller op set refuses its digits.
    (["--config.table={good}", "--config.network.ops=skip,conv3x3"], 2, ["row 3", "digit 3"]),
    (["--config.table={good}", "--workdir={file}"], 2, ["a file", "cannot be used"]),
]


@pytest.mark.parametrize("row_args, status, words", GROUNDTRUTH_ROWS)
def test_groundtruth_bad_inputs(row_args, status, words, tables, tmp_path, monkeypatch,
                                capsys):
  workdir = str(tmp_path / "w")
  args = [a.format(**tables) for a in row_args]
  if not any(a.startswith("--workdir") for a in args):
    args.append(f"--workdir={workdir}")
  got, _, err = run_launcher("groundtruth", [*GT_TINY, *args], monkeypatch, capsys)
  _check_row(got, err, status, words)
  assert not os.path.exists(os.path.join(workdir, "config.json"))


def _fake_scores(genotypes, images, key, cfg, arch=None, **kwargs):
  class Scored:
    scores = np.arange(len(genotypes) if genotypes is not None else len(arch), dtype=float)
  return Scored()


def test_groundtruth_on_odd_paths_runs_and_a_second_config_is_refused(tables, tmp_path,
                                                                       monkeypatch, capsys):
  """A table and a workdir whose paths hold a space and a non-ASCII letter,
  and a UTF-8 byte-order mark in the table: the run finishes; the same
  command resumes; another config into the same workdir is refused naming
  the field. The scorer is a stand-in (the paths are under test)."""
  from snnax_nas import score
  monkeypatch.setattr(score, "score_candidates", _fake_scores)
  work = tmp_path / "runs é" / "gt 1"
  args = [*GT_TINY, f"--config.table={tables['bom']}", f"--workdir={work}"]
  got, out, err = run_launcher("groundtruth", args, monkeypatch, capsys)
  assert got == 0, err
  assert "4 distinct cells" in out and (work / "summary.json").exists()
  got, out2, err = run_launcher("groundtruth", args, monkeypatch, capsys)
  assert got == 0, err
  got, _, err = run_launcher("groundtruth", [*args, f"--config.table={tables['good']}"],
                             monkeypatch, capsys)
  _check_row(got, err, 2, ["config.table", "--workdir"])


SEARCH_FRACTION_ROWS = [
    (["--config.budget.fraction=-0.5"], 2, ["budget fraction", "-0.5"]),
    (["--config.budget.fraction=nan"], 2, ["budget fraction", "nan"]),
    # budget.fraction is a float field: the flag parser names a non-number.
    (["--config.budget.fraction=0.2,0.4"], 2, ["--config.budget.fraction=0.2,0.4"]),
    (["--config.budget.fraction=half"], 2, ["--config.budget.fraction=half"]),
]


@pytest.mark.parametrize("row_args, status, words", SEARCH_FRACTION_ROWS)
def test_search_budget_fraction_edges(row_args, status, words, random_npz, tmp_path,
                                      monkeypatch, capsys):
  workdir = str(tmp_path / "w")
  got, _, err = run_launcher("search", [
      f"--config.dataset=npz:{random_npz}", "--config.network.width=4",
      "--config.network.hidden=16", "--config.network.timesteps=2",
      "--config.scoring.batch_size=4", "--config.scoring.repeats=1", f"--workdir={workdir}",
      *row_args], monkeypatch, capsys)
  _check_row(got, err, status, words)
  assert not os.path.exists(os.path.join(workdir, "config.json"))


COMPARE_ROWS = [
    (["--config.num_seeds=0"], 2, ["num_seeds=0", ">= 1"]),
    (["--config.num_seeds=-1"], 2, ["num_seeds=-1"]),
    (["--config.budget.fraction=0"], 2, ["0 admits only the smallest"]),
    (["--config.budget.fraction=1.5"], 2, ["1.5", "[0, 1]"]),
    (["--config.budget.fraction=0.5,nan"], 2, ["nan"]),
    (["--config.budget.fraction=", "--config.budgets_mb="], 2, ["no budget"]),
    (["--config.methods=lightsnn", "--config.budget.fraction=0.5"], 2,
     ["none of lightsnn takes a budget"]),
]


@pytest.mark.parametrize("row_args, status, words", COMPARE_ROWS)
def test_compare_seed_and_fraction_edges(row_args, status, words, random_npz, tmp_path,
                                         monkeypatch, capsys):
  workdir = str(tmp_path / "w")
  got, _, err = run_launcher("compare", [
      f"--config.dataset=npz:{random_npz}", "--config.network.width=4",
      "--config.network.hidden=16", "--config.network.timesteps=2", f"--workdir={workdir}",
      *row_args], monkeypatch, capsys)
  _check_row(got, err, status, words)
  assert not os.path.exists(os.path.join(workdir, "config.json"))
  assert _last_line(err).startswith("error:")


EVALUATE_ROWS = [
    (["--config.raster=-1"], 2, ["--config.raster=-1", ">= 0"]),
    ([f"--config.raster={10**6}"], 2, [f"--config.raster={10**6}", "<= 16"]),
    (["--config.raster=17"], 2, ["--config.raster=17", "<= 16"]),
]


@pytest.mark.parametrize("row_args, status, words", EVALUATE_ROWS)
def test_evaluate_raster_edges(row_args, status, words, tmp_path, monkeypatch, capsys):
  """Refused before the run is read (the workdir holds no run here)."""
  got, _, err = run_launcher("evaluate", [f"--workdir={tmp_path}", *row_args], monkeypatch,
                             capsys)
  _check_row(got, err, status, words)


def test_a_run_raster_draws_every_input_asked_for(tmp_path, monkeypatch):
  """``--config.raster=N`` draws N inputs, not the plot's default 4; more
  than the split holds is refused naming both."""
  import types

  import jax
  import jax.numpy as jnp

  from snnax_nas import data as data_lib
  from snnax_nas import evaluate
  from snnax_nas import models
  from snnax_nas import raster
  cfg = network.network_config(None, input_shape=(8, 8, 3), num_classes=2, width=4, hidden=8,
                               timesteps=2, vote_group=2, ops="spikenas")
  genotype = "0002/0000/0000/0000"
  model = models.SpikingNetwork.for_genotypes(cfg, genotype)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)), train=False)

  trained = types.SimpleNamespace(config=cfg, genotype=genotype, variables=variables, run=None)
  images = np.random.default_rng(0).integers(0, 255, (6, 8, 8, 3)).astype(np.uint8)
  info = data_lib.DatasetInfo(name="tiny", image_shape=(8, 8, 3), num_classes=2,
                              mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
  monkeypatch.setattr(evaluate, "load_trained_run", lambda w: trained)
  monkeypatch.setattr(evaluate, "load_split",
                      lambda run, c, split, n: (info, images[:n], np.zeros(len(images[:n]))))
  drawn = {}
  monkeypatch.setattr(raster, "plot_spike_raster",
                      lambda spikes, path, inputs=None, **k: drawn.update(inputs=list(inputs)))
  raster.plot_run_raster(str(tmp_path), str(tmp_path / "r.png"), num_inputs=6)
  assert drawn["inputs"] == list(range(6))
  monkeypatch.setattr(evaluate, "load_split",
                      lambda run, c, split, n: (info, images[:3], np.zeros(3)))
  with pytest.raises(ValueError, match="num_inputs=6: the test split holds 3 inputs"):
    raster.plot_run_raster(str(tmp_path), str(tmp_path / "r.png"), num_inputs=6)


# Paths that are not what a field needs: a directory for a file, a file for a
# folder. {dir} and {file} sit under a name with a space and a non-ASCII letter.
PATH_ROWS = [
    ("score", ["--config.genotypes={dir}"], ["--config.genotypes", "Is a directory"]),
    ("search", ["--config.method=random", "--config.genotypes={dir}"], ["Is a directory"]),
    ("correlate", ["--scores={dir}", "--truth={dir}"], ["Is a directory"]),
    ("train", ["--config.from_search={file}"], ["--config.from_search", "a file"]),
    ("score", ["--workdir={file}/sub"], ["a file/sub", "Not a directory"]),
    ("groundtruth", ["--config.table={file}"], ["a file", "genotype and accuracy"]),
]


@pytest.mark.parametrize("module, row_args, words", PATH_ROWS)
def test_paths_of_the_wrong_kind(module, row_args, words, tables, random_npz, tmp_path,
                                 monkeypatch, capsys):
  args = [a.format(**tables) for a in row_args]
  if not any(a.startswith("--workdir") for a in args):
    args.append(f"--workdir={tmp_path / 'w'}")
  if module in ("score", "search"):
    args.append(f"--config.dataset=npz:{random_npz}")
  got, _, err = run_launcher(module, args, monkeypatch, capsys)
  _check_row(got, err, 2, words)
  assert not (tmp_path / "w" / "config.json").exists()


def _tables_without_times(work):
  import csv
  out = {}
  for name in ("per_seed.csv", "results.csv", "ops.csv"):
    with open(work / name) as f:
      out[name] = [{k: v for k, v in r.items() if "seconds" not in k} for r in csv.DictReader(f)]
  return out


def test_groundtruth_interrupted_mid_run_resumes_to_the_same_tables(tables, tmp_path,
                                                                    monkeypatch, capsys):
  """Ctrl-C while seed 2 of 3 is scored, then the same command: the final
  tables equal those of a run never interrupted (finished seeds are loaded;
  the scorer is a deterministic stand-in)."""
  from snnax_nas import score
  calls = []

  def scorer(*args, **kwargs):
    calls.append(1)
    if interrupt_at and len(calls) == interrupt_at:
      raise KeyboardInterrupt
    return _fake_scores(*args, **kwargs)

  monkeypatch.setattr(score, "score_candidates", scorer)
  base = [a for a in GT_TINY if "num_seeds" not in a] + [
      "--config.num_seeds=3", f"--config.table={tables['good']}"]
  interrupt_at = 0
  got, _, err = run_launcher("groundtruth", [*base, f"--workdir={tmp_path / 'once'}"],
                             monkeypatch, capsys)
  assert got == 0, err
  calls.clear()
  interrupt_at = 4  # compile + seeds 0 and 1, then seed 2
  work = tmp_path / "twice"
  got, _, err = run_launcher("groundtruth", [*base, f"--workdir={work}"], monkeypatch, capsys)
  assert got == 130 and _last_line(err) == "interrupted; rerun the same command to resume"
  assert sorted(os.listdir(work / "scores"))[-2:] == ["seed_0000.npz", "seed_0001.npz"]
  interrupt_at = 0
  got, _, err = run_launcher("groundtruth", [*base, f"--workdir={work}"], monkeypatch, capsys)
  assert got == 0, err
  assert _tables_without_times(work) == _tables_without_times(tmp_path / "once")


def test_groundtruth_refuses_a_workdir_in_use_by_another_run(tables, tmp_path, monkeypatch,
                                                            capsys):
  from snnax_nas import workdir as workdir_lib
  work = tmp_path / "busy"
  with workdir_lib.lock(str(work)):  # another job holds it
    got, _, err = run_launcher("groundtruth", [*GT_TINY, f"--config.table={tables['good']}",
                                               f"--workdir={work}"], monkeypatch, capsys)
  _check_row(got, err, 2, ["in use by another running job"])
  assert not (work / "config.json").exists()


def test_compare_stopped_between_seeds_resumes_to_the_same_rows(tmp_path):
  """A study of 3 seeds whose second seed's first stage fails (as a kill
  there leaves it), then rerun: every seed's rows equal an unbroken study's
  (the fake stages of tests/test_compare.py; measured stage times left out)."""
  from test_compare import FakeRunner
  from test_compare import _config

  from snnax_nas.studies.compare import stages
  from snnax_nas.studies.compare import study

  def rows(where, runner):
    got, _ = study.run_study(_config(num_seeds=3, seed=5), str(where), runner=runner,
                             log=lambda s: None)
    return [{k: v for k, v in r.items() if k != "search_process_s"} for r in got]

  once = rows(tmp_path / "once", FakeRunner())
  with pytest.raises(stages.StageError, match="seed6"):
    rows(tmp_path / "twice", FakeRunner(fail_on="seed6"))
  assert (tmp_path / "twice" / "seed5" / "results.csv").exists()
  assert rows(tmp_path / "twice", FakeRunner()) == once


def test_a_full_disk_is_one_line_and_the_rerun_finishes(tables, tmp_path, monkeypatch,
                                                        capsys):
  """The disk fills while a seed's scores are written (simulated: the write
  raises ENOSPC, as on a full tmpfs): one line with the system's reason,
  status 2, and the same command afterwards finishes the run."""
  import errno

  from snnax_nas import score
  monkeypatch.setattr(score, "score_candidates", _fake_scores)
  real = np.savez

  def full(file, **arrays):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), getattr(file, "name", str(file)))

  monkeypatch.setattr(np, "savez", full)
  args = [*GT_TINY, f"--config.table={tables['good']}", f"--workdir={tmp_path / 'w'}"]
  got, _, err = run_launcher("groundtruth", args, monkeypatch, capsys)
  _check_row(got, err, 2, ["No space left on device", "seed_0000", "rerun"])
  monkeypatch.setattr(np, "savez", real)
  got, _, err = run_launcher("groundtruth", args, monkeypatch, capsys)
  assert got == 0, err
  assert (tmp_path / "w" / "summary.json").exists()


def test_score_with_odd_paths_runs(tables, random_npz, tmp_path, monkeypatch, capsys):
  """A genotype file and a workdir under names with a space and a non-ASCII
  letter: the score job runs and writes its table (the scorer is a stand-in)."""
  from snnax_nas import score

  def scorer(genotypes, images, key, cfg, arch=None, candidate_ids=None, **kwargs):
    class Scored:
      scores = np.arange(len(arch), dtype=float)
      singular = np.zeros(len(arch), bool)
      compile_seconds = run_seconds = 0.0
    return Scored()

  monkeypatch.setattr(score, "score_candidates", scorer)
  gfile = os.path.join(tables["dir"], "cells é.txt")
  with open(gfile, "w", encoding="utf-8") as f:
    f.write("0302/0030/0003/0000\n0303/0030/0003/0000\n")
  work = tmp_path / "scores é" / "run 1"
  got, _, err = run_launcher("score", [
      f"--config.dataset=npz:{random_npz}", f"--config.genotypes={gfile}",
      "--config.network.width=4", "--config.network.hidden=16", "--config.network.timesteps=2",
      "--config.scoring.batch_size=4", "--config.scoring.repeats=1", f"--workdir={work}"],
      monkeypatch, capsys)
  assert got == 0, err
  assert (work / "scores.csv").read_text().count("\n") == 3  # header and both cells
