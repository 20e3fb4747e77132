r"""The correlate job: rank correlation of a zero-cost score with trained accuracy,
as ``run(config, workdir)`` (config: :mod:`snnax_nas.configs.correlate`);
``launch.correlate`` is its command line.

``config.scores`` is a scores CSV of the score or search job (columns
genotype, score[, params]); ``config.truth`` a CSV with columns genotype,
accuracy, in the same string form. Genotypes are matched by canonical form
under ``config.ops``.

Reports, for the score and (when the scores CSV has ``params``) the parameter
count as the baseline: Kendall tau, Spearman rho, top-k overlaps and the
percentile of the true accuracy of the row each ranks first, each with a 95 %
bootstrap interval, and what the score says beyond size: Kendall tau inside
groups of equal parameter count (pair-weighted) and tau residualised on the
parameter count (``--resamples`` resamples of the matched rows, seeded by
``--bootstrap_seed``; see :mod:`snnax_nas.correlation`). Writes
``correlation.json`` and a scatter PNG.

Input rules, stated in the output: rows whose score or accuracy is NaN are
excluded and counted; several raw rows with the same canonical genotype are
merged into one by the mean of their accuracies (truth) or of their scores
and parameter counts (scores), and the number merged is reported. A
non-numeric value stops the run with one line naming the file and row.
"""

from __future__ import annotations

import csv
import math
import os

from snnax_nas import correlation
from snnax_nas import files
from snnax_nas import genotype as genotype_lib
from snnax_nas import ops as ops_lib

RESULT_JSON, PLOT = "correlation.json", "correlation.png"


def _read(path: str, needed: tuple[str, ...]) -> list[dict]:
  try:
    with open(path, newline="") as f:
      rows = list(csv.DictReader(f))
  except OSError as e:
    raise ValueError(f"cannot read {path!r}: {e.strerror}") from None
  if not rows:
    raise ValueError(f"{path!r} has no rows")
  missing = [c for c in needed if c not in rows[0]]
  if missing:
    raise ValueError(f"{path!r} lacks column(s) {', '.join(missing)}")
  return rows


def _key(text: str, ops) -> str:
  cells = [genotype_lib.format_genotype(genotype_lib.canonical(genotype_lib.parse_genotype(c, ops)))
           for c in text.split("|")]
  return "|".join(cells)


def _number(path: str, row: int, column: str, text) -> float:
  """``float(text)`` or one clear error line naming the file, row and value."""
  try:
    return float(text)
  except (TypeError, ValueError):
    raise ValueError(f"{path!r} row {row}: {column} {text!r} is not a number; fix or remove "
                     "the row") from None


def _by_canonical(path: str, rows: list[dict], columns: tuple[str, ...], ops):
  """``({canonical key: {column: mean value}}, number of raw rows merged)``.

  Row numbers in errors count the header as row 1, as a spreadsheet does.
  NaN values are kept here (averaging a NaN gives NaN, so a form with any NaN
  row is excluded later and counted once).
  """
  groups: dict[str, list[dict]] = {}
  for i, r in enumerate(rows, start=2):
    try:
      key = _key(r["genotype"], ops)
    except ValueError as e:
      raise ValueError(f"{path!r} row {i}: {e}") from None
    groups.setdefault(key, []).append(
        {c: _number(path, i, c, r[c]) for c in columns if c in r})
  merged = len(rows) - len(groups)
  out = {k: {c: sum(v[c] for v in vs) / len(vs) for c in vs[0]} for k, vs in groups.items()}
  return out, merged


def _line(name: str, s: dict, ks) -> str:
  def fmt(stat, digits=3):
    ci = s.get(f"{stat}_ci")
    v = f"{s[stat]:.{digits}f}"
    return v + (f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else "")
  tops = " ".join(f"top{k}={fmt(f'top{k}_overlap', 2)}" for k in ks)
  return (f"{name:16s} n={s['n']} kendall_tau={fmt('kendall_tau')} "
          f"spearman_rho={fmt('spearman_rho')} {tops} "
          f"argmax_percentile={fmt('argmax_percentile', 1)}")


def top_ks(text) -> list[int]:
  """The k values of ``config.top_k`` (``"10,50"`` or a sequence).

  Raises:
    ValueError: a value that is not an integer >= 1, or none.
  """
  items = [i.strip() for i in text.split(",")] if isinstance(text, str) else list(text)
  shown = ",".join(map(str, items))
  try:
    ks = [int(k) for k in items]
  except ValueError:
    raise ValueError(f"--top_k={shown} must be integers >= 1") from None
  if not ks or min(ks) < 1:
    raise ValueError(f"--top_k={shown}: every k must be >= 1 (the size of the top set "
                     "compared)")
  return ks


def _plot(path: str, out: dict, score, params, acc) -> None:
  plt = files.pyplot()
  panels = [("score", score)] + ([("params", params)] if params is not None else [])
  fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
  for ax, (name, x) in zip(axes[0], panels):
    stats = out["score" if name == "score" else "params_baseline"]
    ax.scatter(x, acc, s=8, alpha=0.6)
    ax.set_xlabel(name)
    ax.set_ylabel("accuracy")
    ax.set_title(f"{name}: tau={stats['kendall_tau']:.3f} rho={stats['spearman_rho']:.3f}")
  fig.tight_layout()
  files.save_figure(fig, path, dpi=100)
  plt.close(fig)


def report(out: dict, workdir: str) -> str:
  """The lines ``launch.correlate`` prints."""
  lines = [f"matched {out['matched']} canonical genotypes; merged duplicate rows: "
           f"{out['merged_score_rows']} in --scores, {out['merged_truth_rows']} in --truth "
           f"(mean per canonical form); excluded for NaN score or accuracy: "
           f"{out['excluded_nan']}"]
  if out["resamples"]:
    lines.append(f"[95 % bootstrap intervals, {out['resamples']} resamples, seed "
                 f"{out['bootstrap_seed']}]")
  for name in ("score", "params_baseline"):
    if name in out:
      lines.append(_line(name, out[name], out["top_k"]))
  if "beyond_size" in out:
    b = out["beyond_size"]
    lines.append(f"score beyond size: within-size kendall_tau={b['within_size_tau']:.3f} "
                 f"({b['equal_size_groups']} distinct parameter counts), kendall_tau residualised "
                 f"on params={b['residual_tau']:.3f}; params with its ties broken at random: "
                 f"kendall_tau={b['params_tie_broken_tau']:.3f}")
  lines.append(f"wrote {workdir}/{RESULT_JSON} and {PLOT}")
  return "\n".join(lines)


def run(config, workdir: str) -> dict:
  """Correlates ``config.scores`` with ``config.truth`` and writes
  ``correlation.json`` and ``correlation.png`` into ``workdir``.

  Args:
    config: a :mod:`snnax_nas.configs.correlate` config.
    workdir: the output directory (created).

  Returns:
    What ``correlation.json`` holds, with the ``top_k``, ``resamples`` and
    ``bootstrap_seed`` used (for :func:`report`).

  Raises:
    ValueError: a missing or unreadable file, a non-numeric value, fewer
      than two matched genotypes, a bad ``top_k`` / ``resamples`` / ``ops``.
  """
  if not config.scores or not config.truth:
    raise ValueError("--scores and --truth are required")
  ks = top_ks(config.top_k)
  if config.resamples < 0:
    raise ValueError(f"--resamples={config.resamples} must be >= 0")
  ops = ops_lib.op_set(config.ops)
  scores, merged_scores = _by_canonical(
      config.scores, _read(config.scores, ("genotype", "score")), ("score", "params"), ops)
  truth, merged_truth = _by_canonical(
      config.truth, _read(config.truth, ("genotype", "accuracy")), ("accuracy",), ops)
  common_keys = sorted(set(scores) & set(truth))
  nan_keys = [k for k in common_keys
              if math.isnan(scores[k]["score"]) or math.isnan(truth[k]["accuracy"])]
  # One row set for the score and the parameter baseline alike.
  kept = [k for k in common_keys if k not in set(nan_keys)]
  if len(kept) < 2:
    raise ValueError(f"only {len(kept)} genotypes appear in both files "
                     "with a numeric score and accuracy")
  too_big = [k for k in ks if k > len(kept)]
  if too_big:
    raise ValueError(f"--top_k={','.join(map(str, ks))}: k={too_big[0]} is larger than the "
                     f"{len(kept)} genotypes matched with a numeric score and accuracy")
  acc = [truth[k]["accuracy"] for k in kept]
  score = [scores[k]["score"] for k in kept]
  rules = {"duplicates": "rows sharing a canonical genotype are merged: mean accuracy, "
                         "mean score and mean params per canonical form",
           "nan": "rows whose score or accuracy is NaN are excluded"}
  out = {"matched": len(common_keys), "excluded_nan": len(nan_keys),
         "excluded_nan_genotypes": nan_keys, "merged_score_rows": merged_scores,
         "merged_truth_rows": merged_truth, "rules": rules}
  out["score"] = correlation.correlation_report(score, acc, ks, config.resamples,
                                                config.bootstrap_seed)
  params = None
  if all("params" in scores[k] for k in kept):
    params = [scores[k]["params"] for k in kept]
    out["params_baseline"] = correlation.correlation_report(params, acc, ks, config.resamples,
                                                            config.bootstrap_seed)
    # What the score says beyond size: among cells of equal parameter count,
    # and after a linear size trend is removed from score and accuracy.
    out["beyond_size"] = dict(within_size_tau=correlation.within_group_tau(score, acc, params),
                              residual_tau=correlation.residual_tau(score, acc, params),
                              equal_size_groups=len(set(params)),
                              params_tie_broken_tau=correlation.tie_broken_tau(params, acc))
  try:
    os.makedirs(workdir, exist_ok=True)
    files.write_json(os.path.join(workdir, RESULT_JSON), out)
  except OSError as e:
    raise ValueError(f"workdir {workdir!r} is not writable: {e.strerror}") from None
  _plot(os.path.join(workdir, PLOT), out, score, params, acc)
  return dict(out, top_k=ks, resamples=config.resamples, bootstrap_seed=config.bootstrap_seed)
