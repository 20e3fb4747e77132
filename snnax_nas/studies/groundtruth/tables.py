"""The Markdown tables of the groundtruth study: the score beside the size
baselines, the results per (budget, method), the paired differences and the
op significance; every mean with its interval written by
:func:`snnax_nas.stats.interval_cell`.
"""

from __future__ import annotations

from typing import Sequence

from snnax_nas import stats


def size_markdown(summary: dict) -> str:
  """The score beside the size baselines: Kendall tau, within-size tau and
  tau residualised on size (seed means with 95 % intervals for the score;
  the baselines depend on no seed)."""
  cell = lambda s: (stats.interval_cell(s["mean"], s["lo"], s["hi"], 3) if "mean" in s
                    else f"{s:.3f}")
  lines = ["| ranking | Kendall τ-b | τ, ties broken at random | within-size τ | "
           "τ residualised on size |", "|---|---|---|---|---|",
           f"| score (per seed) | {cell(summary['kendall_tau'])} | (no ties) | "
           f"{cell(summary['within_size_tau'])} | {cell(summary['residual_tau'])} |"]
  for name, row in summary["size_baselines"].items():
    lines.append(f"| {name} (exact) | {row['kendall_tau']:.3f} | {row['tie_broken_tau']:.3f} | "
                 f"{row['within_size_tau']:.3f} | {row['residual_tau']:.3f} |")
  return "\n".join(lines)


def _cell(row: dict, metric: str, digits: int) -> str:
  return stats.interval_cell(row[metric], row[metric + "_lo"], row[metric + "_hi"], digits)


def results_markdown(rows: Sequence[dict]) -> str:
  """The results table in Markdown: one line per (budget, method), each
  metric as mean [95 % interval] over seeds."""
  head = ("| budget | MB | cells in budget | best in budget (%) | method | accuracy (%) | "
          "percentile | regret (points) | scored | search (s) | no pick |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")
  lines = [head]
  for r in rows:
    lines.append(f"| {r['budget']} | {r['budget_mb']:.3f} | {r['in_budget']} | "
                 f"{r['best_in_budget']:.2f} | {r['method']} | {_cell(r, 'accuracy', 2)} | "
                 f"{_cell(r, 'percentile', 1)} | {_cell(r, 'regret', 2)} | "
                 f"{_cell(r, 'scored', 1)} | {_cell(r, 'seconds', 2)} | "
                 f"{r['no_pick']} |")
  return "\n".join(lines)


def paired_markdown(rows: Sequence[dict]) -> str:
  """The paired differences (:func:`snnax_nas.stats.paired_differences`) in Markdown."""
  return stats.paired_markdown(rows, [("budget", "budget")], "95 % bootstrap interval",
                               "points of accuracy")


def ops_markdown(rows: Sequence[dict]) -> str:
  """The op-significance table in Markdown
  (:func:`snnax_nas.studies.groundtruth.op_significance`)."""
  lines = ["| budget | op removed | cells | best (%) | median (%) | best − full | "
           "median − full |", "|---|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(f"| {r['budget']} | {r['removed'] or '(none: full space)'} | {r['cells']} | "
                 f"{r['best']:.2f} | {r['median']:.2f} | {r['best_delta']:+.2f} | "
                 f"{r['median_delta']:+.2f} |")
  return "\n".join(lines)
