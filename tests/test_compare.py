"""launch.compare / snnax_nas.studies.compare: table, resume and errors, on fake stage outputs
(no search, training or evaluation runs here, but for one refused stage run in
process)."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys

import pytest

from snnax_nas import files
from snnax_nas.configs import compare as compare_config
from snnax_nas.studies.compare import stages
from snnax_nas.studies.compare import study
from snnax_nas.studies.compare import tables

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Search wall times of the fake searches (s): the ratios follow from them.
WALL = {"random": 600.0, "spikenas_8.86MB": 20.0, "spikenas_8.94MB": 30.0, "lightsnn": 40.0}
# Random draws (candidate_id, genotype, score, params). Budget 8.86 MB at
# 32-bit = 2,215,000 params: ids 0 and 3 fit, 3 scores higher; 2 fits 8.94
# MB (2,235,000) and scores best of all; 1 fits neither; 4 is singular.
DRAWS = [(0, "0001/0000/0000/0000", -50.0, 2_210_000), (1, "0344/0023/0002/0000", -10.0, 2_270_000),
         (2, "0301/0001/0000/0000", -20.0, 2_230_000), (3, "0101/0001/0000/0000", -30.0, 2_212_000),
         (4, "0201/0001/0000/0000", None, 2_205_000)]


class FakeRunner:
  """Writes what each launcher would; records the stages it ran."""

  def __init__(self, fail_on: str | None = None):
    self.calls, self.fail_on = [], fail_on

  def __call__(self, stage, log_path):
    module, f, where = stage.job, dict(stage.overrides), stage.workdir
    self.calls.append((module, where, f))
    if self.fail_on and self.fail_on in where + str(f.get("weight_bits", "")):
      with open(log_path, "a") as log:
        log.write("error: something broke\n")
      return 2
    os.makedirs(where, exist_ok=True)
    if module == "search":
      self._search(where, f)
    elif module == "train":
      files.write_json(os.path.join(where, "summary.json"), {"epochs": int(f["training.epochs"])})
    else:
      bits = int(f["weight_bits"])
      params = 2_220_000
      limit = f.get("max_examples")
      path = stages.eval_path(where, bits, None if limit is None else int(limit))
      os.makedirs(os.path.dirname(path), exist_ok=True)
      ops = dict(sops=1e6 * bits, macs=2e5, adds=3e5, ann_macs=5e6, ann_adds=1e5)
      files.write_json(path, dict(accuracy=0.5 - (32 - bits) / 1000, loss=1.0, sar=0.1 + bits / 1000,
                         firing_rates={}, weight_bits=bits, weight_bytes=params * bits // 8,
                         params=params, num_examples=10000, split="test", operations=ops))
    return 0

  def _search(self, where, f):
    method = f["method"]
    name = os.path.basename(where)
    ops = {"spikenas": "spikenas", "random": "snasnet", "lightsnn": "lightsnn"}[method]
    files.write_json(os.path.join(where, "config.json"),
                     {"job": "search", "config": {"network": {
                         "ops": ops, "width": int(f["network.width"]),
                         "backward": method == "lightsnn", "linear_init": None}}})
    genotype, params = {"spikenas": ("0222/0012/0002/0000|0222/0011/0002/0000", 2_214_000),
                        "random": (DRAWS[1][1], DRAWS[1][3]),
                        "lightsnn": ("0222/2020/2202/2220", 2_260_000)}[method]
    if method == "spikenas" and name.endswith("8.94MB"):
      genotype, params = "0222/0022/0002/0000|0222/0021/0002/0000", 2_234_000
    evaluations = {"spikenas": 128, "random": len(DRAWS), "lightsnn": 60}[method]
    if method == "random":
      files.write_csv(os.path.join(where, "scores.csv"),
                      ["genotype", "score", "singular", "params", "memory_bytes",
                       "neuron_state_bytes", "step", "candidate_id"],
                      [[g, "" if s is None else repr(s), int(s is None), p, p * 4, "", 0, i]
                       for i, g, s, p in DRAWS])
    files.write_json(os.path.join(where, "summary.json"), dict(
        genotype=genotype, params=params, evaluations=evaluations,
        timing=dict(wall_seconds=WALL[name], loaded_from_store=0)))


def _config(**overrides):
  c = compare_config.get_config()
  c.budget.fraction, c.budgets_mb = None, "8.86,8.94"
  c.training.epochs = 2
  for k, v in overrides.items():
    c[k] = v
  return c


def _run(tmp_path, runner, config=None):
  return study.run_study(config or _config(), str(tmp_path / "cmp"), runner=runner,
                         log=lambda s: None)


def test_fake_study_writes_the_table_csv_markdown_and_plot(tmp_path):
  rows, text = _run(tmp_path, FakeRunner())
  assert [(r["method"], r["budget_mb"]) for r in rows] == [
      ("spikenas", 8.86), ("random", 8.86), ("spikenas", 8.94), ("random", 8.94),
      ("lightsnn", None)]
  by = {(r["method"], r["budget_mb"]): r for r in rows}
  # Random: the best-scoring draw within each budget of the ONE search.
  assert by["random", 8.86]["genotype"] == DRAWS[3][1]
  assert by["random", 8.94]["genotype"] == DRAWS[2][1]
  assert by["random", 8.86]["draws_within_budget"] == 3  # ids 0, 3 and the singular 4
  # Ratio = random search time / this search's time, from the recorded times.
  assert by["spikenas", 8.86]["time_ratio_vs_random"] == pytest.approx(600 / 20)
  assert by["spikenas", 8.94]["time_ratio_vs_random"] == pytest.approx(600 / 30)
  assert by["lightsnn", None]["time_ratio_vs_random"] == pytest.approx(600 / 40)
  assert by["random", 8.94]["time_ratio_vs_random"] == pytest.approx(1.0)
  assert by["random", 8.86]["evaluations"] == len(DRAWS)
  # Memory per bit width is the evaluation's exact weight_bytes.
  r = by["spikenas", 8.86]
  assert (r["weight_mb_w32"], r["weight_mb_w8"], r["weight_mb_w4"]) == (8.88, 2.22, 1.11)
  assert r["test_acc_w32"] == 0.5 and r["test_acc_w4"] == pytest.approx(0.472)
  assert r["sar"] == r["sar_w32"] and r["train_epochs"] == 2
  assert by["lightsnn", None]["fits_budgets"] == ""  # 2.26 M params fit neither budget
  assert by["spikenas", 8.94]["fits_budgets"] == "8.94"
  # Energy per image from the evaluation's counts at 0.9 pJ/AC and 4.6 pJ/MAC.
  assert r["energy_uj_w8"] == pytest.approx(((8e6 + 3e5) * 0.9 + 2e5 * 4.6) * 1e-6)
  assert r["ann_energy_uj"] == pytest.approx((5e6 * 4.6 + 1e5 * 0.9) * 1e-6)
  out = tmp_path / "cmp"
  with open(out / tables.TABLE_CSV) as f:
    table = list(csv.DictReader(f))
  assert len(table) == 5 and table[0]["method"] == "spikenas"
  for col in ("genotype", "params", "weight_mb_w32", "weight_mb_w8", "weight_mb_w4",
              "evaluations", "search_s", "time_ratio_vs_random", "test_acc_w32", "test_acc_w8",
              "test_acc_w4", "sar"):
    assert col in table[0]
  assert (out / tables.TABLE_MD).read_text() == text
  lines = text.splitlines()
  assert len(lines) == 2 + 5 and lines[0].startswith("| method | budget (MB)")
  assert "µJ/image w32 | µJ/image w8 | µJ/image w4 | ANN µJ |" in lines[0]
  assert lines[2].endswith(f"| {((32e6 + 3e5) * 0.9 + 2e5 * 4.6) * 1e-6:.3f} | "
                           f"{((8e6 + 3e5) * 0.9 + 2e5 * 4.6) * 1e-6:.3f} | "
                           f"{((4e6 + 3e5) * 0.9 + 2e5 * 4.6) * 1e-6:.3f} | 23.090 |")
  assert "30.0×" in lines[2] and "0222/0012/0002/0000\\|0222/0011/0002/0000" in lines[2]
  assert "| none (LightSNN takes no budget) |" in lines[-1]
  assert os.path.getsize(out / tables.PLOT_PNG) > 1000


def test_the_energy_config_prices_the_tables_operations(tmp_path):
  config = _config()
  config.energy.update(accumulate_pj=1.0, mac_pj=0.0)  # accumulates alone, MACs free
  rows, _ = _run(tmp_path, FakeRunner(), config)
  assert rows[0]["energy_uj_w4"] == pytest.approx((4e6 + 3e5) * 1e-6)
  assert rows[0]["ann_energy_uj"] == pytest.approx(1e5 * 1e-6)


def test_rerun_skips_finished_stages_and_keeps_their_times(tmp_path):
  first = FakeRunner()
  _run(tmp_path, first)
  # 1 random + 2 spikenas + 1 lightsnn searches, 5 trainings, 5 x 3 evaluations.
  assert len(first.calls) == 4 + 5 + 15
  record = tmp_path / "cmp" / stages.STAGES_DIR / "search__random.json"
  before = json.loads(record.read_text())
  again = FakeRunner()
  rows, _ = _run(tmp_path, again)
  assert again.calls == [] and json.loads(record.read_text()) == before
  assert before["seconds"] is not None and "launch.search" in before["command"]
  assert len(rows) == 5


def test_a_failed_stage_stops_the_study_and_a_rerun_resumes_there(tmp_path):
  with pytest.raises(stages.StageError, match=r"train/random_8.94MB exited with status 2.*"
                     r"something broke"):
    _run(tmp_path, FakeRunner(fail_on="random_8.94MB"))
  rest = FakeRunner()
  _run(tmp_path, rest)
  modules = [c[0] for c in rest.calls]
  assert "search" not in modules  # every search had finished
  assert modules.count("train") == 2  # the failed one and lightsnn
  assert modules.count("evaluate") == 15


def test_output_without_record_is_run_again(tmp_path):
  # An output the study did not record (made by hand, or killed before the
  # record) is never taken as the study's: the stage runs (its job resumes).
  config, runner = _config(), FakeRunner()
  workdir = str(tmp_path / "cmp")
  stage = stages.search_stage(config, workdir, "random", None)
  FakeRunner()(stage, os.devnull)
  record = stages.run_stage(stage, workdir, runner=runner, log=lambda s: None)
  assert len(runner.calls) == 1 and record["seconds"] is not None
  again = FakeRunner()
  assert stages.run_stage(stage, workdir, runner=again, log=lambda s: None) == record
  assert again.calls == []  # recorded: finished


@pytest.mark.parametrize("field, value, match", [
    ("training.epochs", 0, "training.epochs=0"),
    ("training.lr", 0.0, "training.lr=0.0"),
    ("training.max_test_examples", 0, "max_test_examples=0"),
    ("scoring.kernel", "foo", "scoring.kernel='foo'"),
    ("eval_max_examples", 0, "eval_max_examples=0"),
    ("energy.mac_pj", -1.0, "--config.energy.mac_pj=-1.0"),
])
def test_every_stage_field_is_checked_before_the_first_stage(tmp_path, field, value, match):
  config, runner = _config(), FakeRunner()
  section, _, name = field.rpartition(".")
  (config[section] if section else config)[name] = value
  with pytest.raises(ValueError, match=re.escape(match)):
    _run(tmp_path, runner, config)
  assert runner.calls == [] and not (tmp_path / "cmp" / "config.json").exists()


def test_workdir_of_another_config_is_refused(tmp_path):
  _run(tmp_path, FakeRunner())
  other = _config()
  other.training.epochs = 3
  with pytest.raises(ValueError, match="training.epochs 2 -> 3"):
    _run(tmp_path, FakeRunner(), other)


@pytest.mark.parametrize("budgets, match", [
    ("", "holds no budget"), ("8.9,abc", "'abc' is not a number"), ("8.9,-1", "'-1' must be"),
    ("8.9,nan", "'nan' must be"), ("8.9,8.9", "repeats"),
    ("0.1", r"0.1 MB is below the smallest spikenas network .*0.3347 MB")])
def test_bad_budgets_are_refused_before_anything_runs(tmp_path, budgets, match):
  runner = FakeRunner()
  with pytest.raises(ValueError, match=match):
    _run(tmp_path, runner, _config(budgets_mb=budgets))
  assert runner.calls == [] and not (tmp_path / "cmp").exists()


@pytest.mark.parametrize("field, value, match", [
    ("eval_bits", "32,3", "'3' is not one of"), ("eval_bits", "8,8", "repeats"),
    ("methods", "spikenas,grid", "give some of"), ("budget_bits", 12, "budget_bits=12")])
def test_bad_lists_are_refused(tmp_path, field, value, match):
  with pytest.raises(ValueError, match=match):
    _run(tmp_path, FakeRunner(), _config(**{field: value}))


def test_budget_fractions_replace_budgets_mb_within_the_spaces_range():
  from snnax_nas import configs
  from snnax_nas import data as data_lib
  from snnax_nas import memory
  c = _config(budgets_mb=None)
  c.budget.fraction = "0.75,0.25"
  _, budgets, _ = study.check_config(c)
  cfg = configs.network_from_job_config(c.network, data_lib.get_info(c.dataset),
                                       ops="spikenas", backward=False)
  r = memory.space_range(cfg, 32)  # the snasnet space spans the same range
  assert budgets == (r.budget_bytes(0.25) / 1e6, r.budget_bytes(0.75) / 1e6)
  assert r.min_bytes < budgets[0] * 1e6 < budgets[1] * 1e6 < r.max_bytes
  for bad, match in (("0", "only the smallest"), ("0.5,2", "budget fraction")):
    c.budget.fraction = bad
    with pytest.raises(ValueError, match=match):
      study.check_config(c)
  c.budget.fraction, c.budgets_mb = "0.5", "0.6"
  with pytest.raises(ValueError, match="both set the budgets; give one"):
    study.check_config(c)


def test_the_small_preset_budgets_bind():
  """The default budgets are fractions of a range where cells hold most weights."""
  c = compare_config.get_config()
  assert c.budgets_mb is None
  _, budgets, _ = study.check_config(c)
  assert len(budgets) == 3 and budgets[-1] / budgets[0] > 1.4


def test_budgets_parse_sorted():
  assert stages.parse_budgets("8.94, 8.86") == (8.86, 8.94)
  assert stages.parse_bits("32,8,4") == (32, 8, 4)
  assert stages.parse_methods("lightsnn,spikenas") == ("spikenas", "lightsnn")


def test_no_random_draw_within_budget_names_the_cheapest(tmp_path):
  path = str(tmp_path / "scores.csv")
  files.write_csv(path, ["genotype", "score", "params", "candidate_id"],
                  [["0001/0000/0000/0000", "-1.0", 3_000_000, 0]])
  with pytest.raises(ValueError, match="cheapest draw has 3,000,000 params"):
    stages.best_within_budget(path, 8.86, 32)


def test_launcher_refuses_a_bad_budget_with_one_line(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "launch.compare", "--config.budgets_mb=x",
                         "--config.budget.fraction=",
                         f"--workdir={tmp_path / 'w'}"], cwd=REPO, capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1].startswith("error: budgets_mb='x'")


def test_stage_configs_carry_the_budget_network_and_eval_cap(tmp_path):
  config = _config(eval_max_examples=500)
  workdir = str(tmp_path / "cmp")
  spikenas = stages.search_stage(config, workdir, "spikenas", 8.86)
  assert spikenas.config().budget.mb == 8.86 and spikenas.config().method == "spikenas"
  assert spikenas.config().network.ops is None  # each method's own op set
  assert "--config.budget.mb=8.86" in spikenas.command()
  random = stages.search_stage(config, workdir, "random", None)
  assert random.config().num_candidates == 5000 and random.config().budget.mb is None
  entry = stages.Entry("lightsnn", None, "0222/2020/2202/2220", 1, random.output,
                      {"ops": "lightsnn", "backward": True, "width": 16})
  train = stages.train_stage(config, workdir, entry)
  c = train.config()
  assert (c.network.ops, c.network.backward, c.training.epochs) == ("lightsnn", True, 2)
  assert "--config.network.backward=true" in train.command()
  evaluate = stages.eval_stage(config, workdir, entry, 4)
  assert evaluate.config().max_examples == 500 and evaluate.config().weight_bits == 4
  # The name carries the cap: a whole-split evaluation is never taken for it.
  assert evaluate.output.endswith(os.path.join("train", "lightsnn", "eval",
                                               "test_w4_first500.json"))


def test_a_stage_runs_its_job_in_process_and_a_refusal_is_status_2(tmp_path):
  # A backward edge without backward cells: the train job refuses before
  # loading any data; the stage's log holds the job's one-line error.
  entry = stages.Entry("random", 8.86, "0303/0030/2002/0200", 1, str(tmp_path / "s"),
                      {"ops": "snasnet", "backward": False, "width": 4})
  stage = stages.train_stage(_config(), str(tmp_path / "cmp"), entry)
  log = tmp_path / "train.log"
  assert stages.run_in_process(stage, str(log)) == 2
  lines = log.read_text().splitlines()
  assert lines[0].startswith("$ python -m launch.train --workdir=")
  assert lines[-1].startswith("error: '0303/0030/2002/0200' has a backward edge")
  assert not (tmp_path / "cmp" / "train" / "random_8.86MB" / "config.json").exists()


def test_several_seeds_give_intervals_paired_differences_and_error_bars(tmp_path):
  config = _config(num_seeds=3, seed=5)
  runner = FakeRunner()
  rows, text = _run(tmp_path, runner, config)
  out = tmp_path / "cmp"
  # Each seed is a whole one-seed study in its own folder, run with its seed.
  assert sorted(p.name for p in out.iterdir() if p.name.startswith("seed")) == [
      "seed5", "seed6", "seed7"]
  assert {f["seed"] for _, _, f in runner.calls if "seed" in f} == {5, 6, 7}
  assert len(rows) == 15 and {r["seed"] for r in rows} == {5, 6, 7}
  with open(out / tables.SUMMARY_CSV) as f:
    summary = list(csv.DictReader(f))
  assert [(r["method"], r["seeds"]) for r in summary][:2] == [("spikenas", "3"), ("random", "3")]
  # The fake's accuracy is the same for every seed: a zero-width interval.
  assert float(summary[0]["test_acc_w32"]) == pytest.approx(0.5)
  assert float(summary[0]["test_acc_w32_lo"]) == pytest.approx(0.5)
  with open(out / tables.PAIRED_CSV) as f:
    paired = list(csv.DictReader(f))
  assert len(paired) == 2 * 3  # budgets x bit widths
  assert float(paired[0]["mean"]) == pytest.approx(0.0) and paired[0]["n"] == "3"
  assert "Mean [95 % t interval] over 3 seeds" in text and "spikenas − random" in text
  assert "µJ/image w32" in text and "energy_uj_w32_lo" in summary[0]
  assert os.path.getsize(out / tables.PLOT_PNG) > 1000
  # Resumes: a rerun runs no stage again.
  again = FakeRunner()
  assert _run(tmp_path, again, config)[1] == text and again.calls == []


def test_paired_differences_pair_spikenas_and_random_by_seed_per_budget_and_bits():
  rows = [dict(method=m, budget_mb=1.0, seed=s, test_acc_w32=a)
          for m, s, a in [("spikenas", 0, 0.50), ("random", 0, 0.40), ("spikenas", 1, 0.45),
                          ("random", 1, 0.46), ("random", 2, 0.3)]]
  (diff,) = tables.paired_differences(rows, [32])
  assert diff["n"] == 2 and diff["wins"] == 1 and diff["mean"] == pytest.approx((10 - 1) / 2)
