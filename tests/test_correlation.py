import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from snnax_nas import configs
from snnax_nas import correlation
from snnax_nas.studies import correlate as correlate_job


def _brute_kendall_tau_b(x, y):
  n, c, d, tx, ty = len(x), 0, 0, 0, 0
  for i in range(n):
    for j in range(i + 1, n):
      a, b = np.sign(x[j] - x[i]), np.sign(y[j] - y[i])
      c += a * b > 0
      d += a * b < 0
      tx += a == 0 and b != 0
      ty += b == 0 and a != 0
  return (c - d) / np.sqrt((c + d + tx) * (c + d + ty))


def test_rank_statistics_against_definitions():
  rng = np.random.default_rng(0)
  x = rng.integers(0, 6, 40).astype(float)  # with ties
  y = x + rng.normal(0, 2, 40)
  assert abs(correlation.kendall_tau(x, y) - _brute_kendall_tau_b(x, y)) < 1e-12
  assert correlation.kendall_tau(x, x) == pytest.approx(1.0)
  assert correlation.kendall_tau(x, -x) == pytest.approx(-1.0)
  np.testing.assert_array_equal(correlation.rankdata([3, 1, 3, 2]), [3.5, 1, 3.5, 2])
  # Spearman = Pearson of ranks; a monotone transform keeps rho = 1.
  assert correlation.spearman_rho(y, np.exp(y)) == pytest.approx(1.0)
  rho = correlation.spearman_rho(x, y)
  r = np.corrcoef(correlation.rankdata(x), correlation.rankdata(y))[0, 1]
  assert rho == pytest.approx(r)


@pytest.mark.slow
def test_top_k_and_report():
  truth = np.arange(100.0)
  assert correlation.top_k_overlap(truth, truth, 10) == 1.0
  assert correlation.top_k_overlap(-truth, truth, 10) == 0.0
  score = truth.copy()
  score[-1] = -np.inf  # singular kernel ranks last
  rep = correlation.correlation_report(score, truth, ks=(5,))
  assert rep["n"] == 100 and rep["top5_overlap"] == 0.8
  with pytest.raises(ValueError, match="1-D"):
    correlation.correlation_report([1, 2], [1, 2, 3])


def _job(tmp_path, workdir="out", **fields):
  config = configs.get_config("correlate")
  config.update(scores=f"{tmp_path}/scores.csv", truth=f"{tmp_path}/truth.csv", **fields)
  return correlate_job.run(config, str(tmp_path / workdir))


def test_correlate_job_end_to_end(tmp_path):
  gs = ["0303/0030/2002/0200", "0302/0030/3003/0000", "0104/0040/0003/0000",
        "0111/0011/0001/0000", "0333/0033/0003/0000"]
  with open(tmp_path / "scores.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["genotype", "score", "params"])
    for i, g in enumerate(gs):
      w.writerow([g, -50 + i, 1000 * (5 - i)])
  with open(tmp_path / "truth.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["genotype", "accuracy"])
    for i, g in enumerate(gs):
      w.writerow([g.replace("/", " "), 0.5 + 0.1 * i])
  _job(tmp_path, top_k="2", resamples=100)
  rep = json.loads((tmp_path / "out" / "correlation.json").read_text())
  assert rep["matched"] == 5
  assert rep["score"]["kendall_tau"] == pytest.approx(1.0)
  assert rep["params_baseline"]["kendall_tau"] == pytest.approx(-1.0)
  # This score is a linear function of params: nothing beyond size (NaN), and
  # no two cells share a size (no within-size pairs).
  assert rep["beyond_size"]["equal_size_groups"] == 5
  assert math.isnan(rep["beyond_size"]["within_size_tau"])
  assert math.isnan(rep["beyond_size"]["residual_tau"])
  assert (tmp_path / "out" / "correlation.png").stat().st_size > 1000
  config = configs.get_config("correlate")
  config.update(scores=f"{tmp_path}/nope.csv", truth=f"{tmp_path}/truth.csv")
  with pytest.raises(ValueError, match="nope.csv"):
    correlate_job.run(config, str(tmp_path / "out2"))


def test_argmax_percentile_bootstrap_and_nan_exclusion():
  truth = np.arange(11.0)
  assert correlation.argmax_percentile(truth, truth) == 100.0
  assert correlation.argmax_percentile(-truth, truth) == 0.0
  tied = np.r_[np.zeros(9), 1.0, 1.0]  # the two top scores share their mean percentile
  assert correlation.argmax_percentile(tied, truth) == pytest.approx(95.0)
  rng = np.random.default_rng(0)
  score = truth + rng.normal(0, 3, 11)
  a = correlation.correlation_report(score, truth, ks=(3,), resamples=200, seed=1)
  b = correlation.correlation_report(score, truth, ks=(3,), resamples=200, seed=1)
  assert a == b and a["resamples"] == 200 and a["bootstrap_seed"] == 1
  for stat in ("kendall_tau", "spearman_rho", "top3_overlap", "argmax_percentile"):
    lo, hi = a[f"{stat}_ci"]
    assert lo <= hi
  assert a["kendall_tau_ci"][0] <= a["kendall_tau"] <= a["kendall_tau_ci"][1]
  boot = correlation.bootstrap_statistics(score, truth, ks=(3,), resamples=50, seed=1)
  assert boot["kendall_tau"].shape == (50,)
  # NaN rows are dropped and counted, never used.
  nan_score = np.r_[score, np.nan, 3.0]
  nan_truth = np.r_[truth, 1.0, np.nan]
  c = correlation.correlation_report(nan_score, nan_truth, ks=(3,), resamples=0)
  assert c["n"] == 11 and c["excluded_nan"] == 2
  assert c["kendall_tau"] == pytest.approx(correlation.kendall_tau(score, truth))
  with pytest.raises(ValueError, match="top-k"):
    correlation.correlation_report(score, truth, ks=(0,))


def _write(path, header, rows):
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(header)
    w.writerows(rows)


def _correlate(tmp_path, *extra):
  return subprocess.run([sys.executable, "-m", "launch.correlate",
                         f"--scores={tmp_path}/scores.csv", f"--truth={tmp_path}/truth.csv",
                         f"--workdir={tmp_path}/out", "--resamples=20", *extra],
                        capture_output=True, text=True, timeout=300)


def test_correlate_job_input_rules(tmp_path):
  gs = ["0303/0030/2002/0200", "0012/0000/3003/0000", "0104/0040/0003/0000",
        "0111/0011/0001/0000", "0333/0033/0003/0000"]
  # Two raw forms of the second cell (an edge on a dead path differs) and a NaN row.
  _write(tmp_path / "scores.csv", ["genotype", "score"],
         [[g, i] for i, g in enumerate(gs)] + [["0312/0000/3003/0000", 1.0]])
  _write(tmp_path / "truth.csv", ["genotype", "accuracy"],
         [[g, 10.0 * i] for i, g in enumerate(gs[:4])] + [[gs[4], "nan"],
                                                          ["0312/0000/3003/0000", 20.0]])
  result = _job(tmp_path, top_k="2", resamples=20)
  text = correlate_job.report(result, str(tmp_path / "out"))
  rep = json.loads((tmp_path / "out" / "correlation.json").read_text())
  assert rep["matched"] == 5 and rep["excluded_nan"] == 1
  assert rep["merged_truth_rows"] == 1 and rep["merged_score_rows"] == 1
  assert rep["score"]["n"] == 4 and "mean accuracy" in rep["rules"]["duplicates"]
  assert "excluded for NaN" in text and "merged duplicate rows: 1" in text
  # The merged cell's accuracy is the mean (10 + 20) / 2 = 15, between its neighbours: tau 1.
  assert rep["score"]["kendall_tau"] == pytest.approx(1.0)
  assert "kendall_tau_ci" in rep["score"] and "argmax_percentile" in rep["score"]
  with pytest.raises(ValueError, match="--top_k=0"):
    _job(tmp_path, top_k="0")
  _write(tmp_path / "scores.csv", ["genotype", "score"],
         [[g, i] for i, g in enumerate(gs)] + [[gs[0], "high"]])
  with pytest.raises(ValueError, match="row 7: score 'high'"):
    _job(tmp_path, resamples=20)


@pytest.mark.slow
def test_launch_correlate_bad_input_is_one_line(tmp_path):
  _write(tmp_path / "scores.csv", ["genotype", "score"], [["0303/0030/2002/0200", 1.0]])
  _write(tmp_path / "truth.csv", ["genotype", "accuracy"], [["0303/0030/2002/0200", 0.5]])
  bad_k = _correlate(tmp_path, "--top_k=0")
  assert bad_k.returncode == 2 and "--top_k=0" in bad_k.stderr
  assert len(bad_k.stderr.strip().splitlines()) == 1


def test_within_group_tau_weights_groups_by_pairs():
  # Group a (3 rows, 3 pairs): concordant throughout, tau 1. Group b (2 rows,
  # 1 pair): discordant, tau -1. Group c: one row, no pair. Weighted: (3 - 1) / 4.
  groups = np.array([0, 0, 0, 1, 1, 2])
  score = np.array([1.0, 2.0, 3.0, 2.0, 1.0, 9.0])
  truth = np.array([10.0, 20.0, 30.0, 1.0, 2.0, 0.0])
  assert correlation.within_group_tau(score, truth, groups) == pytest.approx(0.5)
  # A score constant inside every group (size itself) says nothing there.
  assert np.isnan(correlation.within_group_tau(groups, truth, groups))


def test_residual_tau_removes_a_linear_size_trend():
  rng = np.random.default_rng(0)
  size = rng.integers(0, 6, 200).astype(float)
  extra = rng.normal(size=200)
  truth = 2.0 * size + extra
  assert np.isnan(correlation.residual_tau(3.0 * size + 1.0, truth, size))
  # A score carrying the part of the truth that size does not explain.
  assert correlation.residual_tau(size + extra, truth, size) > 0.95
  assert abs(correlation.residual_tau(size + rng.normal(size=200), truth, size)) < 0.15


def test_tie_broken_tau_is_the_mean_over_every_tie_breaking():
  import itertools
  x = np.array([1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 0.0])
  y = np.array([0.5, 0.2, 0.9, 0.9, 0.1, 0.7, 0.3])
  groups = [np.flatnonzero(x == v) for v in np.unique(x)]
  taus = []
  for perms in itertools.product(*[itertools.permutations(range(len(g))) for g in groups]):
    broken = x.copy()
    for g, p in zip(groups, perms):
      broken[g] = x[g] + 0.01 * np.array(p)
    taus.append(correlation.kendall_tau(broken, y))
  assert correlation.tie_broken_tau(x, y) == pytest.approx(np.mean(taus), abs=1e-12)
  assert correlation.tie_broken_tau(x, y) < correlation.kendall_tau(x, y)  # ties credited by b
  z = np.array([0.3, 0.1, 0.7, 0.2, 0.9, 0.4, 0.8])  # no ties: tau-b itself
  assert correlation.tie_broken_tau(z, x) == pytest.approx(correlation.kendall_tau(z, x))
