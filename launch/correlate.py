r"""Rank correlation of a zero-cost score with trained accuracy.

  python -m launch.correlate --scores=runs/score/scores.csv --truth=bench.csv \
      --ops=skip,conv3x3@0.5,conv3x3,conv3x3@1.5 --workdir=runs/correlate

``--scores``: a CSV as written by ``launch.score`` / ``launch.search``
(columns genotype, score[, params]). ``--truth``: a CSV with columns
genotype, accuracy (genotype in the same string form). Genotypes are matched
by canonical form under ``--ops``.

Prints, for the score and (when the scores CSV has ``params``) the parameter
count as the baseline: Kendall tau, Spearman rho, top-k overlaps and the
percentile of the true accuracy of the row each ranks first, each with a 95 %
bootstrap interval (``--resamples`` resamples of the matched rows, seeded by
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

from absl import app
from absl import flags

from launch import common
from snnax_nas import correlation
from snnax_nas import genotype as genotype_lib
from snnax_nas import io
from snnax_nas import ops as ops_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("scores", None, "Scores CSV (genotype,score[,params]).")
flags.DEFINE_string("truth", None, "Truth CSV (genotype,accuracy).")
flags.DEFINE_string("ops", "snasnet", "Op set the genotype strings use.")
flags.DEFINE_list("top_k", ["10", "50"], "k values (>= 1) for the top-k overlap.")
flags.DEFINE_integer("resamples", correlation.BOOTSTRAP_RESAMPLES,
                     "Bootstrap resamples for the 95 % intervals (0: no intervals).")
flags.DEFINE_integer("bootstrap_seed", correlation.BOOTSTRAP_SEED, "Seed of the resamples.")
flags.DEFINE_string("workdir", "runs/correlate", "Output directory.")


def _read(path: str, needed: tuple[str, ...]) -> list[dict]:
  try:
    with open(path, newline="") as f:
      rows = list(csv.DictReader(f))
  except OSError as e:
    common.fail(f"cannot read {path!r}: {e.strerror}")
  if not rows:
    common.fail(f"{path!r} has no rows")
  missing = [c for c in needed if c not in rows[0]]
  if missing:
    common.fail(f"{path!r} lacks column(s) {', '.join(missing)}")
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
    common.fail(f"{path!r} row {row}: {column} {text!r} is not a number; fix or remove the row")


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
      common.fail(f"{path!r} row {i}: {e}")
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


def main(argv):
  del argv
  if not FLAGS.scores or not FLAGS.truth:
    common.fail("--scores and --truth are required")
  try:
    ks = [int(k) for k in FLAGS.top_k]
  except ValueError:
    common.fail(f"--top_k={','.join(FLAGS.top_k)} must be integers >= 1")
  if not ks or min(ks) < 1:
    common.fail(f"--top_k={','.join(FLAGS.top_k)}: every k must be >= 1 (the size of the "
                "top set compared)")
  if FLAGS.resamples < 0:
    common.fail(f"--resamples={FLAGS.resamples} must be >= 0")
  try:
    ops = ops_lib.op_set(FLAGS.ops)
  except ValueError as e:
    common.fail(str(e))
  scores, merged_scores = _by_canonical(
      FLAGS.scores, _read(FLAGS.scores, ("genotype", "score")), ("score", "params"), ops)
  truth, merged_truth = _by_canonical(
      FLAGS.truth, _read(FLAGS.truth, ("genotype", "accuracy")), ("accuracy",), ops)
  common_keys = sorted(set(scores) & set(truth))
  nan_keys = [k for k in common_keys
              if math.isnan(scores[k]["score"]) or math.isnan(truth[k]["accuracy"])]
  if len(common_keys) - len(nan_keys) < 2:
    common.fail(f"only {len(common_keys) - len(nan_keys)} genotypes appear in both files "
                f"with a numeric score and accuracy")
  acc = [truth[k]["accuracy"] for k in common_keys]
  score = [scores[k]["score"] for k in common_keys]
  rules = {"duplicates": "rows sharing a canonical genotype are merged: mean accuracy, "
                         "mean score and mean params per canonical form",
           "nan": "rows whose score or accuracy is NaN are excluded"}
  out = {"matched": len(common_keys), "excluded_nan": len(nan_keys),
         "excluded_nan_genotypes": nan_keys, "merged_score_rows": merged_scores,
         "merged_truth_rows": merged_truth, "rules": rules}
  try:
    out["score"] = correlation.correlation_report(score, acc, ks, FLAGS.resamples,
                                                  FLAGS.bootstrap_seed)
    has_params = all("params" in scores[k] for k in common_keys)
    if has_params:
      params = [scores[k]["params"] for k in common_keys]
      out["params_baseline"] = correlation.correlation_report(params, acc, ks, FLAGS.resamples,
                                                              FLAGS.bootstrap_seed)
  except ValueError as e:
    common.fail(str(e))
  workdir = common.ensure_workdir(FLAGS.workdir)
  io.write_json(os.path.join(workdir, "correlation.json"), out)

  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  panels = [("score", score)] + ([("params", params)] if has_params else [])
  fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
  for ax, (name, x) in zip(axes[0], panels):
    stats = out["score" if name == "score" else "params_baseline"]
    ax.scatter(x, acc, s=8, alpha=0.6)
    ax.set_xlabel(name)
    ax.set_ylabel("accuracy")
    ax.set_title(f"{name}: tau={stats['kendall_tau']:.3f} rho={stats['spearman_rho']:.3f}")
  fig.tight_layout()
  io.save_figure(fig, os.path.join(workdir, "correlation.png"), dpi=100)
  print(f"matched {len(common_keys)} canonical genotypes; merged duplicate rows: "
        f"{merged_scores} in --scores, {merged_truth} in --truth (mean per canonical form); "
        f"excluded for NaN score or accuracy: {len(nan_keys)}")
  if FLAGS.resamples:
    print(f"[95 % bootstrap intervals, {FLAGS.resamples} resamples, seed {FLAGS.bootstrap_seed}]")
  for name in ("score", "params_baseline"):
    if name in out:
      print(_line(name, out[name], ks))
  print(f"wrote {workdir}/correlation.json and correlation.png")


if __name__ == "__main__":
  app.run(main)
