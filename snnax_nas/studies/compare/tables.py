"""The tables and plots of the compare study: one row per found network read
from the stage outputs, as CSV, Markdown and an accuracy-vs-memory plot; over
several seeds, the mean and 95 % interval per (method, budget) and the
SpikeNAS - random differences paired by seed.
"""

from __future__ import annotations

import math
import os
from typing import Any
from typing import Optional
from typing import Sequence

from snnax_nas import configs
from snnax_nas import energy as energy_lib
from snnax_nas import files
from snnax_nas import stats
from snnax_nas.budget import Budget
from snnax_nas.jobs import search as search_job
from snnax_nas.jobs import train as train_job
from snnax_nas.studies.compare import stages
from snnax_nas.studies.compare.stages import Entry

TABLE_CSV, TABLE_MD, PLOT_PNG = "results.csv", "results.md", "accuracy_vs_memory.png"
# A study of several seeds: the mean and interval over seeds, the paired differences.
SUMMARY_CSV, PAIRED_CSV = "summary.csv", "paired.csv"


# ----------------------------------------------------------------------------
# The table.

def _search_time(search_dir: str) -> tuple[float, bool, dict]:
  summary = files.read_json(os.path.join(search_dir, search_job.SUMMARY), required=True)
  timing = summary.get("timing") or {}
  return float(timing["wall_seconds"]), bool(timing.get("loaded_from_store", 0)), summary


def table_rows(config, workdir: str, rows: Sequence[Entry],
               eval_bits: Sequence[int], budgets: Sequence[float]) -> list[dict]:
  """One dict per found network, read from the stage outputs.

  Keys: method, budget_mb, budget_bits, genotype, ops, params,
  ``weight_mb_w<B>`` (exact bytes of the quantised network, from the
  evaluation), evaluations, draws_within_budget, search_s, search_process_s,
  search_resumed, time_ratio_vs_random (random search time / this search
  time), ``test_acc_w<B>`` (fraction), ``sar_w<B>``, sar (at the widest
  precision evaluated), ``energy_uj_w<B>`` (energy per image in µJ at
  ``config.energy``'s pJ per operation, from the evaluation's operation
  counts, :mod:`snnax_nas.energy`; None for an evaluation without them),
  ann_energy_uj (the ANN equivalent's), fits_budgets, train_epochs,
  test_examples.
  """
  energies = energy_lib.energies_from_config(config.get("energy") or configs.sections.energy())
  random_s = None
  random_dirs = [e.search_dir for e in rows if e.method == "random"]
  if random_dirs:
    random_s = _search_time(random_dirs[0])[0]
  out = []
  for e in rows:
    seconds, resumed, summary = _search_time(e.search_dir)
    stage = stages.stage_record_path(workdir, "search/" + os.path.basename(e.search_dir))
    process_s = files.read_json(stage, required=True).get("seconds") if os.path.exists(
        stage) else None
    train_dir = os.path.join(workdir, "train", e.name)
    train_summary = files.read_json(os.path.join(train_dir, train_job.SUMMARY), required=True)
    row = dict(method=e.method, budget_mb=e.budget_mb, budget_bits=config.budget_bits,
               genotype=e.genotype, ops=e.network.get("ops"), params=e.params)
    evals = {b: files.read_json(stages.eval_path(train_dir, b, config.eval_max_examples), required=True)
             for b in eval_bits}
    for b in eval_bits:
      row[f"weight_mb_w{b}"] = evals[b]["weight_bytes"] / 1e6
    row.update(evaluations=int(summary["evaluations"]), draws_within_budget=e.draws_within_budget,
               search_s=seconds, search_process_s=process_s, search_resumed=resumed,
               time_ratio_vs_random=(random_s / seconds if random_s is not None and seconds > 0
                                     else None))
    for b in eval_bits:
      row[f"test_acc_w{b}"] = float(evals[b]["accuracy"])
    for b in eval_bits:
      row[f"sar_w{b}"] = float(evals[b]["sar"])
    row["sar"] = row[f"sar_w{max(eval_bits)}"]
    for b in eval_bits:
      row[f"energy_uj_w{b}"] = _energy_uj(evals[b].get("operations"), energies)
    row["ann_energy_uj"] = _energy_uj(evals[max(eval_bits)].get("operations"), energies, ann=True)
    row["fits_budgets"] = ",".join(
        f"{mb:g}" for mb in budgets
        if Budget.from_mb(mb, config.budget_bits).fits_params(e.params))
    row.update(train_epochs=train_summary.get("epochs"),
               test_examples=evals[max(eval_bits)].get("num_examples"))
    out.append(row)
  return out


def _energy_uj(ops: Optional[dict], energies, ann: bool = False) -> Optional[float]:
  """µJ per image of an evaluation's operation counts at ``energies``."""
  if not ops:
    return None
  counts = energy_lib.LayerOperations("total", **{k: ops[k] for k in energy_lib._COUNTS})
  return (counts.ann_energy_pj(energies) if ann else counts.energy_pj(energies)) * 1e-6


def _fmt(value: Any, digits: int) -> str:
  if value is None:
    return "—"
  return f"{value:.{digits}f}"


def markdown(rows: Sequence[dict], eval_bits: Sequence[int]) -> str:
  """The table as GitHub Markdown (accuracy in %, memory in MB, times in s)."""
  head = (["method", "budget (MB)", "genotype", "params"]
          + [f"MB w{b}" for b in eval_bits]
          + ["evaluations", "search (s)", "random / this"]
          + [f"acc w{b} (%)" for b in eval_bits] + ["SAR"]
          + [f"µJ/image w{b}" for b in eval_bits] + ["ANN µJ"])
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for r in rows:
    budget = ("none (LightSNN takes no budget)" if r["budget_mb"] is None
              else f"{r['budget_mb']:g} @ {r['budget_bits']}-bit")
    evals = str(r["evaluations"])
    if r.get("draws_within_budget") is not None:
      evals += f" ({r['draws_within_budget']} fit)"
    seconds = _fmt(r["search_s"], 1) + (" (resumed)" if r["search_resumed"] else "")
    ratio = "—" if r["time_ratio_vs_random"] is None else f"{r['time_ratio_vs_random']:.1f}×"
    cells = ([r["method"], budget, f"`{r['genotype']}`", f"{r['params']:,}"]
             + [_fmt(r[f"weight_mb_w{b}"], 3) for b in eval_bits]
             + [evals, seconds, ratio]
             + [_fmt(100 * r[f"test_acc_w{b}"], 2) for b in eval_bits]
             + [_fmt(r["sar"], 4)]
             + [_fmt(r.get(f"energy_uj_w{b}"), 3) for b in eval_bits]
             + [_fmt(r.get("ann_energy_uj"), 3)])
    lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
  return "\n".join(lines) + "\n"


def plot(path: str, rows: Sequence[dict], eval_bits: Sequence[int],
         budgets: Sequence[float], budget_bits: int, title: str = "") -> None:
  """Accuracy vs weight memory, two panels. Left: every network at every
  bit width (marker: method, colour: bit width; log memory axis, the bit
  widths being factors apart). Right, when ``budget_bits`` is evaluated: the
  networks at the budgets' precision on a linear axis, with the budget lines
  (dashed, MB at ``budget_bits``)."""
  plt = files.pyplot()
  markers = {"spikenas": "o", "random": "s", "lightsnn": "^"}
  colors = dict(zip(sorted(eval_bits, reverse=True), ["C0", "C1", "C2", "C3", "C4"]))
  zoom = budget_bits in eval_bits
  with_energy = any(r.get(f"energy_uj_w{b}") is not None for r in rows for b in eval_bits)
  ncols = (2 if zoom else 1) + with_energy
  fig, axes = plt.subplots(1, ncols, figsize=(5.5 * ncols + 1, 4.8), squeeze=False)
  panels = [(axes[0, 0], eval_bits, "log")] + ([(axes[0, 1], [budget_bits], "linear")]
                                              if zoom else [])
  for ax, bits, scale in panels:
    for r in rows:
      for b in bits:
        ax.scatter(r[f"weight_mb_w{b}"], 100 * r[f"test_acc_w{b}"],
                   marker=markers[r["method"]], color=colors[b], s=60, edgecolors="black",
                   linewidths=0.5, zorder=3)
    for mb in budgets:
      ax.axvline(mb, color="red", ls="--", lw=1)
      ax.text(mb, 0.02, f" {mb:g} MB", color="red", fontsize=7, rotation=90, va="bottom",
              transform=ax.get_xaxis_transform())
    ax.set_xscale(scale)
    ax.set_ylabel("test accuracy (%)")
    ax.grid(True, which="both", alpha=0.3)
  for method, m in markers.items():
    if any(r["method"] == method for r in rows):
      axes[0, 0].scatter([], [], marker=m, color="white", edgecolors="black", label=method)
  for b in eval_bits:
    axes[0, 0].scatter([], [], marker="o", color=colors[b], label=f"{b}-bit weights")
  axes[0, 0].legend(fontsize=8, loc="best")
  axes[0, 0].set_xlabel(f"weight memory (MB); budgets (red) at {budget_bits}-bit")
  axes[0, 0].set_title(title or "found networks: accuracy vs weight memory", fontsize=9)
  if zoom:
    axes[0, 1].set_xlabel(f"weight memory at {budget_bits}-bit (MB)")
    axes[0, 1].set_title(f"at the budgets' precision ({budget_bits}-bit)", fontsize=9)
  if with_energy:
    _energy_panel(axes[0, -1], rows, eval_bits, markers, colors)
  fig.tight_layout()
  files.save_figure(fig, path, dpi=110)
  plt.close(fig)


def _energy_panel(ax, rows, eval_bits, markers, colors, summary=None) -> None:
  """Accuracy vs energy per image (µJ, :mod:`snnax_nas.energy`) of every
  network at every bit width; with ``summary``, the seeds' means with 95 %
  interval error bars at the widest precision."""
  for r in rows:
    for b in eval_bits:
      if r.get(f"energy_uj_w{b}") is not None:
        ax.scatter(r[f"energy_uj_w{b}"], 100 * r[f"test_acc_w{b}"], marker=markers[r["method"]],
                   color=colors[b] if summary is None else colors[r["method"]],
                   alpha=1.0 if summary is None else 0.25, s=60 if summary is None else 18,
                   edgecolors="black" if summary is None else None, linewidths=0.5, zorder=3)
  bits = max(eval_bits)
  for r in summary or ():
    e, acc = f"energy_uj_w{bits}", f"test_acc_w{bits}"
    if r[e] is None or math.isnan(r[e]):
      continue
    xerr = None if math.isnan(r[f"{e}_lo"]) else [[r[e] - r[f"{e}_lo"]], [r[f"{e}_hi"] - r[e]]]
    yerr = (None if math.isnan(r[f"{acc}_lo"])
            else [[100 * (r[acc] - r[f"{acc}_lo"])], [100 * (r[f"{acc}_hi"] - r[acc])]])
    ax.errorbar(r[e], 100 * r[acc], xerr=xerr, yerr=yerr, marker=markers[r["method"]],
                color=colors[r["method"]], ms=7, mec="black", mew=0.5, capsize=3, lw=1, zorder=4)
  ax.set_xlabel("energy per image (µJ; SOPs and adds x E_AC + MACs x E_MAC)")
  ax.set_ylabel("test accuracy (%)")
  ax.set_title("accuracy vs energy" + ("" if summary is None else f" ({bits}-bit means)"),
               fontsize=9)
  ax.grid(True, alpha=0.3)


def write_table(workdir: str, rows: Sequence[dict], eval_bits: Sequence[int],
                budgets: Sequence[float], budget_bits: int, title: str = "") -> str:
  """Writes ``results.csv``, ``results.md`` and ``accuracy_vs_memory.png``
  into ``workdir`` (atomically); returns the Markdown."""
  files.write_dict_csv(os.path.join(workdir, TABLE_CSV), rows)
  text = markdown(rows, eval_bits)
  files.write_text(os.path.join(workdir, TABLE_MD), text)
  plot(os.path.join(workdir, PLOT_PNG), rows, eval_bits, budgets, budget_bits, title)
  return text


# ----------------------------------------------------------------------------
# Several seeds: mean and interval over seeds, paired differences.


def _metrics(eval_bits: Sequence[int]) -> list[str]:
  return ([f"test_acc_w{b}" for b in eval_bits] + [f"weight_mb_w{b}" for b in eval_bits]
          + ["sar", "search_s", "evaluations", "time_ratio_vs_random"]
          + [f"energy_uj_w{b}" for b in eval_bits])


def seed_summary(rows: Sequence[dict], eval_bits: Sequence[int]) -> list[dict]:
  """Per (method, budget): each metric's :func:`snnax_nas.stats.t_interval`
  over seeds.

  Args:
    rows: :func:`table_rows` of every seed, each with its ``seed``.
    eval_bits: the evaluated weight precisions.

  Returns:
    One dict per (method, budget) in the rows' order: method, budget_mb,
    seeds, and ``<metric>``, ``<metric>_lo``, ``<metric>_hi`` for test
    accuracy and weight MB per bit width, SAR, search time, evaluations and
    the time ratio to random search; ``genotypes``: distinct genotypes found.
  """
  groups: dict = {}
  for r in rows:
    groups.setdefault((r["method"], r["budget_mb"]), []).append(r)
  out = []
  for (method, mb), group in groups.items():
    row = dict(method=method, budget_mb=mb, seeds=len(group),
               genotypes=len({r["genotype"] for r in group}))
    for metric in _metrics(eval_bits):
      ci = stats.t_interval([r.get(metric) for r in group])
      row.update({metric: ci["mean"], f"{metric}_lo": ci["lo"], f"{metric}_hi": ci["hi"]})
    out.append(row)
  return out


def paired_differences(rows: Sequence[dict], eval_bits: Sequence[int],
                       a: str = "spikenas", b: str = "random") -> list[dict]:
  """Per budget and bit width, test accuracy of ``a`` minus ``b`` paired by
  seed (same seed, same budget), in points with its 95 % t interval
  (:func:`snnax_nas.stats.paired_differences`).

  Pairing removes what a seed does to both (its training batches and the
  test split are shared), so it separates smaller gaps than two unpaired
  intervals.

  Returns:
    One dict per (budget, bits): budget_mb, bits, a, b, metric, mean, lo,
    hi, n (seeds with both rows), missing, wins (seeds where ``a`` is more
    accurate).
  """
  budgeted = [r for r in rows if r["budget_mb"] is not None]
  per_bits = {bits: stats.paired_differences(budgeted, a, b, f"test_acc_w{bits}", "budget_mb",
                                             stats.t_interval, scale=100)
              for bits in eval_bits}
  first = per_bits[eval_bits[0]] if eval_bits else []
  return [{"budget_mb": first[i]["budget_mb"], "bits": bits, **per_bits[bits][i]}
          for i in range(len(first)) for bits in eval_bits]


def _ci(row: dict, metric: str, digits: int, scale: float = 1.0) -> str:
  return stats.interval_cell(row[metric], row[f"{metric}_lo"], row[f"{metric}_hi"], digits,
                             scale)


def summary_markdown(summary: Sequence[dict], eval_bits: Sequence[int], num_seeds: int) -> str:
  """:func:`seed_summary` as Markdown: mean [95 % interval] over seeds
  (accuracy in %, memory in MB, search time in s)."""
  head = (["method", "budget (MB)", "seeds", "genotypes", "MB w" + str(max(eval_bits))]
          + [f"acc w{b} (%)" for b in eval_bits]
          + ["SAR", "evaluations", "search (s)", "random / this"]
          + [f"µJ/image w{b}" for b in eval_bits])
  lines = [f"Mean [95 % t interval] over {num_seeds} seeds (search and training seeds both "
           "vary).", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for r in summary:
    budget = ("none (LightSNN takes no budget)" if r["budget_mb"] is None
              else f"{r['budget_mb']:g}")
    cells = ([r["method"], budget, str(r["seeds"]), str(r["genotypes"]),
              _ci(r, f"weight_mb_w{max(eval_bits)}", 3)]
             + [_ci(r, f"test_acc_w{b}", 2, 100) for b in eval_bits]
             + [_ci(r, "sar", 4), _ci(r, "evaluations", 0), _ci(r, "search_s", 1),
                _ci(r, "time_ratio_vs_random", 1)]
             + [_ci(r, f"energy_uj_w{b}", 3) for b in eval_bits])
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def paired_markdown(paired: Sequence[dict]) -> str:
  """:func:`paired_differences` as Markdown (points of test accuracy)."""
  return stats.paired_markdown(paired, [("budget (MB)", "budget_mb"), ("bits", "bits")],
                               "95 % t interval")


def plot_seeds(path: str, rows: Sequence[dict], summary: Sequence[dict],
               eval_bits: Sequence[int], budgets: Sequence[float], budget_bits: int,
               title: str = "") -> None:
  """Accuracy vs weight MB over seeds: one panel per bit width, each
  (method, budget) at its mean with 95 % interval error bars on both axes,
  each seed's network as a faint dot; the budget lines (MB at
  ``budget_bits``) on that precision's panel."""
  plt = files.pyplot()
  markers = {"spikenas": "o", "random": "s", "lightsnn": "^"}
  colors = {"spikenas": "C0", "random": "C1", "lightsnn": "C2"}
  with_energy = any(r.get(f"energy_uj_w{b}") is not None for r in rows for b in eval_bits)
  ncols = len(eval_bits) + with_energy
  fig, axes = plt.subplots(1, ncols, figsize=(5.2 * ncols, 4.6), squeeze=False)
  if with_energy:
    _energy_panel(axes[0, -1], rows, eval_bits, markers, colors, summary)
  for ax, bits in zip(axes[0], eval_bits):
    acc, mb = f"test_acc_w{bits}", f"weight_mb_w{bits}"
    for r in rows:
      ax.scatter(r[mb], 100 * r[acc], marker=markers[r["method"]], color=colors[r["method"]],
                 alpha=0.25, s=18, zorder=2)
    for r in summary:
      def err(metric, scale=1.0, r=r):
        if math.isnan(r[f"{metric}_lo"]):
          return None
        return [[scale * (r[metric] - r[f"{metric}_lo"])], [scale * (r[f"{metric}_hi"] - r[metric])]]
      ax.errorbar(r[mb], 100 * r[acc], xerr=err(mb), yerr=err(acc, 100),
                  marker=markers[r["method"]], color=colors[r["method"]], ms=7,
                  mec="black", mew=0.5, capsize=3, lw=1, zorder=3)
    if bits == budget_bits:
      for budget in budgets:
        ax.axvline(budget, color="red", ls="--", lw=1)
        ax.text(budget, 0.02, f" {budget:g} MB", color="red", fontsize=7, rotation=90,
                va="bottom", transform=ax.get_xaxis_transform())
    ax.set_xlabel(f"weight memory at {bits}-bit (MB)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{bits}-bit weights" + (" (budgets in red)" if bits == budget_bits else ""),
                 fontsize=9)
    ax.grid(True, alpha=0.3)
  for method, m in markers.items():
    if any(r["method"] == method for r in rows):
      axes[0, 0].errorbar([], [], marker=m, color=colors[method], label=method)
  axes[0, 0].legend(fontsize=8, loc="best")
  fig.suptitle((title + ": " if title else "") + "mean and 95 % interval over seeds",
               fontsize=9)
  fig.tight_layout()
  files.save_figure(fig, path, dpi=110)
  plt.close(fig)
