"""snnax_nas.stats: the t and bootstrap intervals, paired differences, the
interval cell and paired table, and the best-index rule."""

import math

import numpy as np
import pytest

from snnax_nas import stats


def test_t_interval_is_the_student_t_interval_and_counts_what_it_leaves_out():
  ci = stats.t_interval([1.0, 2.0, 3.0, None, float("nan")])
  # mean 2, sd 1, t(0.975, 2) = 4.3027: half width 4.3027 / sqrt(3).
  assert ci["n"] == 3 and ci["missing"] == 2 and ci["mean"] == pytest.approx(2.0)
  assert ci["hi"] - ci["mean"] == pytest.approx(4.302653 / 3 ** 0.5, rel=1e-5)
  assert ci["mean"] - ci["lo"] == pytest.approx(ci["hi"] - ci["mean"])
  one = stats.t_interval([4.0])
  assert one["mean"] == 4.0 and math.isnan(one["lo"]) and math.isnan(one["hi"])
  none = stats.t_interval([])
  assert none["n"] == 0 and math.isnan(none["mean"])


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
  s = stats.bootstrap_interval([1.0, 2.0, 3.0, np.nan])
  assert s["mean"] == 2.0 and s["missing"] == 1 and s["n"] == 3
  assert 1.0 <= s["lo"] < 2.0 < s["hi"] <= 3.0
  assert stats.bootstrap_interval([1.0, 2.0, 3.0], seed=7) == stats.bootstrap_interval(
      [1.0, 2.0, 3.0], seed=7)
  assert stats.bootstrap_interval([4.0] * 5)["lo"] == 4.0
  assert math.isnan(stats.bootstrap_interval([np.nan])["mean"])
  with pytest.raises(ValueError, match="resamples=0"):
    stats.bootstrap_interval([1.0], resamples=0)


def test_paired_differences_pair_by_seed_within_each_group_and_skip_missing():
  rows = [dict(budget=b, method=m, seed=s, accuracy=a) for b, m, s, a in (
      ("x", "spikenas", 0, 55.0), ("x", "random", 0, 50.0), ("x", "spikenas", 1, 52.0),
      ("x", "random", 1, 51.0), ("x", "spikenas", 2, float("nan")), ("x", "random", 2, 40.0),
      ("y", "spikenas", 0, 1.0), ("y", "random", 1, 2.0))]  # y: no seed has both
  (d,) = stats.paired_differences(rows, "spikenas", "random", "accuracy", "budget",
                                  stats.bootstrap_interval)
  assert d["budget"] == "x" and d["metric"] == "accuracy"
  assert d["mean"] == 3.0 and d["n"] == 2 and d["missing"] == 1 and d["wins"] == 2
  assert 1.0 <= d["lo"] and d["hi"] <= 5.0
  t = stats.paired_difference({0: 0.5, 1: 0.45}, {0: 0.4, 1: 0.46, 2: 0.3}, scale=100)
  assert t["n"] == 2 and t["wins"] == 1 and t["mean"] == pytest.approx((10 - 1) / 2)
  assert stats.paired_difference({0: 1.0}, {1: 1.0}) is None


def test_interval_cell_and_paired_markdown():
  assert stats.interval_cell(0.1234, 0.1, 0.15, 2, 100) == "12.34 [10.00, 15.00]"
  assert stats.interval_cell(1.5, math.nan, math.nan, 1) == "1.5"
  assert stats.interval_cell(None, math.nan, math.nan, 1) == "—"
  assert stats.interval_cell(math.nan, 0.0, 1.0, 1) == "—"
  assert stats.interval_cell(-0.5, -1.0, 0.25, 2, signed=True) == "-0.50 [-1.00, +0.25]"
  rows = [dict(budget_mb=0.5, bits=8, a="spikenas", b="random", mean=1.25, lo=0.5, hi=2.0,
               n=3, wins=2)]
  text = stats.paired_markdown(rows, [("budget (MB)", "budget_mb"), ("bits", "bits")],
                               "95 % t interval")
  assert text.splitlines() == [
      "| budget (MB) | bits | difference | mean [95 % t interval] (points) | seeds | wins |",
      "|---|---|---|---|---|---|",
      "| 0.5 | 8 | spikenas − random | +1.25 [+0.50, +2.00] | 3 | 2 of 3 |"]


def test_best_index_takes_the_highest_nan_as_minus_inf_first_of_equals():
  assert stats.best_index([1.0, 3.0, np.nan, 3.0, 2.0]) == 1
  assert stats.best_index([np.nan, -np.inf, -5.0]) == 2
  assert stats.best_index([-np.inf, -np.inf]) == 0
  assert stats.best_index(np.zeros(0)) == -1
