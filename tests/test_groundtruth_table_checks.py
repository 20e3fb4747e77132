"""A trained-architecture table is checked against what it claims
(snnax_nas.jobs.groundtruth.read_table / check_params), on tiny generated
tables: its params column against the analytic count at the trained network,
its accuracies against [0, 100], its duplicate rows against a tolerance."""

import json

import numpy as np
import pytest

from snnax_nas import genotype as genotype_lib
from snnax_nas import memory
from snnax_nas import network
from snnax_nas import ops as ops_lib
from snnax_nas.configs import groundtruth as gt_config
from snnax_nas.studies import groundtruth

OPS = ops_lib.op_set(gt_config.TABLE_OPS)
# Four live forward cells (row i of a genotype: the edges out of node i; node
# 3 the output); rows 0 and 2 are written with a dead conv edge too (out of
# node 0 to a node with no way on to the output: pruned, still a conv there).
CELLS = ["0002/0000/0000/0000", "0003/0000/0000/0000", "0004/0000/0000/0000",
         "0302/0003/0000/0000"]
DEAD = ["0202/0000/0000/0000", "0003/0000/0000/0000", "0034/0000/0000/0000",
        "0302/0003/0000/0000"]


def _net(preset):
  return network.network_config(preset, ops=OPS)


def _write(path, genotypes, accuracy, params=None):
  head = "genotype,accuracy" + (",params" if params is not None else "")
  rows = [f"{g},{a}" + (f",{p}" if params is not None else "")
          for g, a, p in zip(genotypes, accuracy,
                             params if params is not None else [None] * len(genotypes))]
  path.write_text("\n".join([head, *rows]) + "\n")
  return str(path)


def _parsed(genotypes):
  return np.stack([genotype_lib.parse_genotype(g, OPS) for g in genotypes])


def test_dead_path_convs_are_real_in_the_fixture():
  raw = _parsed(DEAD)
  can = genotype_lib.canonical(raw)
  assert [genotype_lib.format_genotype(c) for c in can] == CELLS
  net = _net("cifar100")
  extra = memory.unpruned_param_count(raw, net) - memory.param_count(raw, net)
  conv = memory.op_params(OPS.op_of_digit(3), 128) + memory.op_params(OPS.op_of_digit(3), 256)
  assert list(extra) == [conv, 0, conv, 0]  # 738,048: one conv per stage, as logged


@pytest.mark.parametrize("count", ["pruned", "unpruned"])
def test_params_of_the_trained_network_pass_with_or_without_dead_path_convs(tmp_path, count):
  raw, net = _parsed(DEAD), _net("cifar100")
  params = (memory.param_count if count == "pruned" else memory.unpruned_param_count)(raw, net)
  table = groundtruth.read_table(_write(tmp_path / "t.csv", DEAD, [50, 51, 52, 53], params), OPS)
  groundtruth.check_params(table, net)  # no error
  assert list(table.row_params) == list(params)


def test_params_of_another_preset_are_refused_naming_it(tmp_path):
  raw = _parsed(DEAD)
  logged = memory.unpruned_param_count(raw, _net("cifar10"))
  table = groundtruth.read_table(_write(tmp_path / "t.csv", DEAD, [50, 51, 52, 53], logged), OPS)
  with pytest.raises(ValueError) as e:
    groundtruth.check_params(table, _net("cifar100"))
  msg = str(e.value)
  assert "\n" not in msg and "4 of 4 rows" in msg and "row 2" in msg
  assert f"{int(logged[0]):,}" in msg and "--config.trained.preset=cifar10 " in msg
  groundtruth.check_params(table, _net("cifar10"))  # the preset it names passes


def test_params_off_by_anything_but_dead_path_convs_are_refused(tmp_path):
  raw, net = _parsed(DEAD), _net("cifar100")
  logged = memory.unpruned_param_count(raw, net)
  logged[1] += 1  # one row off by one parameter
  table = groundtruth.read_table(_write(tmp_path / "t.csv", DEAD, [50, 51, 52, 53], logged), OPS)
  with pytest.raises(ValueError, match=r"1 of 4 rows: row 3 .*no network preset.*trained.width"):
    groundtruth.check_params(table, net)
  # A wider trained network than the preset's: only the fields can say so.
  wide = net.replace(width=64)
  table = groundtruth.read_table(_write(tmp_path / "w.csv", DEAD, [50, 51, 52, 53],
                                        memory.param_count(raw, wide)), OPS)
  with pytest.raises(ValueError, match="no network preset"):
    groundtruth.check_params(table, net)
  groundtruth.check_params(table, wide)


def test_blank_params_are_not_checked_and_bad_ones_are_refused(tmp_path):
  net = _net("cifar100")
  params = [str(p) for p in memory.param_count(_parsed(CELLS), net)]
  params[2] = ""
  table = groundtruth.read_table(_write(tmp_path / "t.csv", CELLS, [50, 51, 52, 53], params), OPS)
  groundtruth.check_params(table, net)
  assert table.row_params[2] == -1
  for bad in ("-3", "1.5", "many"):
    params[2] = bad
    with pytest.raises(ValueError, match=f"row 4: params '{bad}'"):
      groundtruth.read_table(_write(tmp_path / "t.csv", CELLS, [50, 51, 52, 53], params), OPS)
  # No params column: nothing to check.
  groundtruth.check_params(groundtruth.read_table(
      _write(tmp_path / "n.csv", CELLS, [50, 51, 52, 53]), OPS), net)


@pytest.mark.parametrize("value", ["150", "-5", "100.001"])
def test_accuracy_outside_0_100_is_refused_naming_row_and_value(tmp_path, value):
  acc = ["50", "51", value, "53"]
  with pytest.raises(ValueError, match=rf"row 4: accuracy {value} is outside \[0, 100\]"):
    groundtruth.read_table(_write(tmp_path / "t.csv", CELLS, acc), OPS)
  acc[2] = "100"  # the ends are accuracies
  groundtruth.read_table(_write(tmp_path / "t.csv", CELLS, acc), OPS)


def test_duplicates_beyond_the_tolerance_are_reported_with_their_rows(tmp_path):
  tol = groundtruth.DUPLICATE_TOLERANCE
  # Rows 2 and 6 are one cell within the tolerance; rows 4 and 7 one cell beyond it.
  genotypes = DEAD + [CELLS[0], CELLS[2]]
  acc = [50.0, 51.0, 52.0, 53.0, 50.0 + tol / 2, 52.0 + 2 * tol]
  table = groundtruth.read_table(_write(tmp_path / "t.csv", genotypes, acc), OPS)
  assert table.merged_rows == 2
  assert table.duplicates == [dict(genotype=CELLS[2], rows=[4, 7], accuracies=[52.0, 54.0],
                                   spread=2 * tol)]
  np.testing.assert_allclose(table.accuracy, [50.0 + tol / 4, 51.0, 52.0 + tol, 53.0])


def test_the_job_refuses_a_wrong_preset_before_claiming_and_reports_duplicates(
    tmp_path, monkeypatch):
  """The whole job: a table of the CIFAR-10 network run at the default
  trained preset is refused and nothing is written; at its own preset it
  runs, and the summary and report carry the duplicate rows. The scorer is
  replaced by a cheap stand-in (the checks happen before any scoring)."""
  from snnax_nas import score
  genotypes = DEAD + [CELLS[2]]
  logged = memory.unpruned_param_count(_parsed(genotypes), _net("cifar10"))
  path = _write(tmp_path / "t.csv", genotypes, [50, 51, 52, 53, 56], logged)
  c = gt_config.get_config()
  c.table, c.num_seeds = path, 1
  c.network.width, c.network.hidden, c.network.timesteps = 4, 16, 2
  c.scoring.batch_size, c.scoring.repeats = 4, 1
  work = tmp_path / "run"
  with pytest.raises(ValueError, match="--config.trained.preset=cifar10 "):
    groundtruth.run(c, str(work))
  assert not (work / "config.json").exists()

  class Fake:
    def __init__(self, n):
      self.scores = np.arange(n, dtype=np.float64)

  def fake(genotypes, images, key, cfg, arch=None, **kwargs):
    return Fake(len(genotypes) if genotypes is not None else len(arch))
  monkeypatch.setattr(score, "score_candidates", fake)
  c.trained.preset = "cifar10"
  summary = groundtruth.run(c, str(work))
  assert summary["merged_rows"] == 1 and summary["min_params"] == int(
      memory.param_count(_parsed(CELLS), _net("cifar10")).min())
  (d,) = summary["duplicates"]["over_tolerance"]
  assert d["rows"] == [4, 6] and d["spread"] == 4.0
  assert json.loads((work / "summary.json").read_text())["duplicates"]["over_tolerance"] == [d]
  assert "the rows of 1 cell(s) differ by more than 1 points" in groundtruth.report(
      summary, str(work))
