"""Ground truth from a trained-architecture table (snnax_nas.studies.groundtruth), on a
tiny generated table."""

import os

import numpy as np
import pytest

from snnax_nas import genotype as genotype_lib
from snnax_nas import memory
from snnax_nas import network
from snnax_nas import ops as ops_lib
from snnax_nas.configs import groundtruth as gt_config
from snnax_nas.search import space as space_lib
from snnax_nas.studies import groundtruth

OPS = ops_lib.op_set(gt_config.TABLE_OPS)


def _write_table(path, n=12, seed=0, duplicate=True):
  """A table of ``n`` distinct forward cells of the development op set with
  made-up accuracies; with ``duplicate``, one extra raw row whose canonical
  form repeats the first cell (its accuracy is merged by the mean)."""
  rng = np.random.default_rng(seed)
  space = space_lib.search_space(OPS, False)
  cells = space[rng.choice(len(space), n, replace=False)]
  acc = rng.uniform(40, 60, n).round(3)
  params = memory.param_count(cells, network.network_config("cifar100", ops=OPS))
  lines = ["genotype,accuracy,params"]  # the default trained network's counts
  lines += [f"{s},{a},{p}" for s, a, p in zip(genotype_lib.format_genotypes(cells), acc, params)]
  if duplicate:
    # A dead node-1 edge 0->1 with no way on to the output: pruned away, the
    # same canonical cell as row 0 when row 0 does not use node 1 otherwise.
    raw = cells[0].copy()
    if not raw[1].any() and not raw[:, 1].any():
      raw[0, 1] = 1
      lines.append(f"{genotype_lib.format_genotype(raw)},{acc[0] + 2}")
  path.write_text("\n".join(lines) + "\n")
  return cells, acc


def test_read_table_merges_canonical_duplicates_and_names_bad_rows(tmp_path):
  p = tmp_path / "t.csv"
  p.write_text("genotype,accuracy\n0001/0000/0000/0000,50\n0101/0000/0000/0000,54\n"
               "0002/0000/0000/0000,60\n")
  t = groundtruth.read_table(str(p), OPS)
  # 0101/.. has a dead node 1 (no path on to the output): the same cell as 0001/..
  assert t.names == ["0001/0000/0000/0000", "0002/0000/0000/0000"]
  np.testing.assert_allclose(t.accuracy, [52.0, 60.0])
  assert t.merged_rows == 1
  p.write_text("genotype,accuracy\n0001/0000/0000/0000,50\n0002/0000/0000/0000,abc\n")
  with pytest.raises(ValueError, match="row 3"):
    groundtruth.read_table(str(p), OPS)
  p.write_text("genotype,acc\n0001/0000/0000/0000,50\n")
  with pytest.raises(ValueError, match="accuracy"):
    groundtruth.read_table(str(p), OPS)


def test_methods_pick_by_their_rules():
  scores = np.array([5.0, 9.0, 1.0, 7.0, -np.inf, 8.0])
  params = np.array([10, 50, 30, 40, 20, 60])
  fits = params <= 40
  rng = np.random.default_rng(0)
  # SpikeNAS: the whole table is its pool here; over-budget cells are never scored.
  pick, scored = groundtruth.pick_spikenas(scores, fits, rng, 64)
  assert set(scored) == {0, 2, 3, 4} and pick == 3
  # A smaller pool: distinct cells, still only the in-budget ones scored.
  for seed in range(20):
    pick, scored = groundtruth.pick_spikenas(scores, fits, np.random.default_rng(seed), 3)
    assert len(scored) <= 3 and fits[scored].all() and len(set(scored)) == len(scored)
    assert pick == -1 or scores[pick] == scores[scored].max()
  # SNASNet random: every draw scored (repeats too), best in-budget draw kept.
  pick, scored = groundtruth.pick_random(scores, fits, np.array([1, 1, 5, 0, 2]))
  assert pick == 0 and len(scored) == 5
  assert groundtruth.pick_random(scores, fits, np.array([1, 5]))[0] == -1
  assert groundtruth.pick_largest(params, fits, rng) == 3
  assert all(fits[groundtruth.pick_random_cell(fits, np.random.default_rng(s))]
             for s in range(10))


def test_pick_quality():
  acc = np.array([50.0, 60.0, 55.0, 70.0])
  fits = np.array([True, True, True, False])
  q = groundtruth.pick_quality(acc, fits, 2)
  assert q == dict(accuracy=55.0, percentile=pytest.approx(200 / 3), regret=5.0)
  assert groundtruth.pick_quality(acc, fits, 1)["regret"] == 0.0
  assert np.isnan(groundtruth.pick_quality(acc, fits, -1)["accuracy"])
  with pytest.raises(ValueError, match="cell 3"):
    groundtruth.pick_quality(acc, fits, 3)


def test_op_significance_is_exact_on_a_hand_table():
  g = [genotype_lib.parse_genotype(t, OPS) for t in
       ("0001/0000/0000/0000", "0002/0000/0000/0000", "0203/0003/0000/0000",
        "0004/0000/0000/0000")]
  acc = np.array([40.0, 50.0, 60.0, 45.0])
  fits = np.array([True, True, True, False])
  rows = groundtruth.op_significance(np.stack(g), acc, OPS, [("all", fits)])
  by = {r["removed"]: r for r in rows}
  assert by[""]["best"] == 60.0 and by[""]["median"] == 50.0 and by[""]["cells"] == 3
  assert by["skip"]["best"] == 60.0 and by["skip"]["cells"] == 2       # 0203/0003 has no skip
  assert by["conv3x3@0.5"]["best"] == 40.0 and by["conv3x3@0.5"]["best_delta"] == -20.0
  assert by["conv3x3"]["cells"] == 2 and by["conv3x3"]["median"] == 45.0
  assert by["conv3x3@1.5"]["cells"] == 3  # only the over-budget cell uses it


def test_budgets_span_the_table_range():
  params = np.array([100, 150, 300])
  b = groundtruth.budgets_bytes(params, 8, [0.0, 0.5, 1.0], [0.0002])
  assert b == [("f=0", 100), ("f=0.5", 200), ("f=1", 300), ("0.0002 MB", 200)]
  with pytest.raises(ValueError, match="1.5"):
    groundtruth.budgets_bytes(params, 8, [1.5])


def _config(table, **overrides):
  c = gt_config.get_config()
  c.table = str(table)
  c.num_seeds = 2
  c.network.width = 4
  c.network.hidden = 16
  c.network.timesteps = 2
  c.scoring.batch_size = 4
  c.scoring.repeats = 1
  c.scoring.chunk_size = "2"
  c.scoring.map_batch_size = "1"
  c.spikenas_candidates = 5
  c.random_draws = 6
  c.budget.fraction = "0.5,1"
  for k, v in overrides.items():
    c[k] = v
  return c


def test_run_end_to_end_resumes_without_rescoring(tmp_path):
  table = tmp_path / "table.csv"
  cells, acc = _write_table(table)
  work = str(tmp_path / "run")
  summary = groundtruth.run(_config(table), work)
  assert summary["cells"] == len(cells)
  rows = summary["results"]
  assert [(r["budget"], r["method"]) for r in rows[:4]] == [
      ("f=0.5", m) for m in groundtruth.METHODS]
  for r in rows:
    assert 0 <= r["regret"] and 0 <= r["percentile"] <= 100
    assert r["regret_lo"] <= r["regret"] <= r["regret_hi"]
  full = {r["method"]: r for r in rows if r["budget"] == "f=1"}
  # Under the whole range every cell fits: SpikeNAS scores its full pool of 5,
  # random all 6 draws, and the largest cell is a largest one of the table.
  assert full["spikenas"]["scored"] == 5 and full["random"]["scored"] == 6
  trained = network.network_config("cifar100", ops=OPS)
  params = memory.param_count(cells, trained)
  assert full["largest"]["accuracy"] <= acc[params == params.max()].max()
  seeds = sorted(os.listdir(os.path.join(work, "scores")))
  assert "seed_0000.npz" in seeds and "seed_0001.npz" in seeds
  with np.load(os.path.join(work, "scores", "seed_0000.npz")) as z:
    assert np.isclose(z["seconds"].sum(), z["wall"])  # the measured wall, shared out
  stamp = os.path.getmtime(os.path.join(work, "scores", "seed_0001.npz"))
  again = groundtruth.run(_config(table), work)
  assert os.path.getmtime(os.path.join(work, "scores", "seed_0001.npz")) == stamp
  assert again["results"] == rows
  with pytest.raises(ValueError, match="num_seeds"):
    groundtruth.run(_config(table, num_seeds=3), work)  # another config: refused
  for name in ("per_seed.csv", "results.csv", "results.md", "ops.csv", "summary.json"):
    assert os.path.exists(os.path.join(work, name))


def test_every_scoring_field_reaches_the_scorer(tmp_path, monkeypatch):
  """The job passes each ``scoring.*`` field on (they change the scores), and
  reports the score beside the exact size baselines."""
  from snnax_nas import score
  table = tmp_path / "table.csv"
  _write_table(table, n=6, duplicate=False)
  seen = []
  real = score.score_candidates

  def spy(*args, **kwargs):
    seen.append(kwargs)
    return real(*args, **kwargs)

  monkeypatch.setattr(score, "score_candidates", spy)
  runs = {}
  for field, value in [(None, None), ("weights", "common"), ("draws", 2),
                       ("conv_dtype", "bfloat16"), ("time_batched", True)]:
    c = _config(table, num_seeds=1)
    if field:
      c.scoring[field] = value
    seen.clear()
    summary = groundtruth.run(c, str(tmp_path / f"run_{field}"))
    got = {k: seen[-1][k] for k in ("common_weights", "draws", "conv_dtype", "time_batched")}
    with np.load(tmp_path / f"run_{field}" / "scores" / "seed_0000.npz") as z:
      runs[field] = z["scores"], got
  base_scores, base_args = runs[None]
  assert base_args == dict(common_weights=False, draws=1, conv_dtype="float32",
                           time_batched=False)
  expected = {"weights": ("common_weights", True), "draws": ("draws", 2),
              "conv_dtype": ("conv_dtype", "bfloat16"), "time_batched": ("time_batched", True)}
  for field, (arg, value) in expected.items():
    scores, args = runs[field]
    assert args == dict(base_args, **{arg: value}), field
    if field != "time_batched":  # the same scores up to rounding by design
      assert not np.array_equal(scores, base_scores), field
  np.testing.assert_allclose(runs["time_batched"][0], base_scores, rtol=1e-4)
  base = summary["size_baselines"]
  assert set(base) == {"params", "flops", "conv_depth"}
  assert np.isnan(base["params"]["within_size_tau"])  # constant inside its own groups
  assert -1 <= summary["within_size_tau"]["mean"] <= 1
  assert "within-size τ" in groundtruth.report(summary, str(tmp_path / "run_time_batched"))
