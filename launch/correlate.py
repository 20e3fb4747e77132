r"""Rank correlation of a zero-cost score with trained accuracy.

  python -m launch.correlate --scores=runs/score/scores.csv --truth=bench.csv \
      --workdir=runs/correlate

``--scores``: a CSV as written by ``launch.score`` / ``launch.search``
(columns genotype, score, params). ``--truth``: a CSV with columns
genotype, accuracy (genotype in the same string form). Genotypes are matched
by canonical form under ``--ops``. Prints Kendall tau, Spearman rho and top-k
overlap for the score and, as the baseline, for the parameter count; writes
``correlation.json`` and a scatter PNG.
"""

from __future__ import annotations

import csv
import json
import os

from absl import app
from absl import flags

from launch import common
from snnax_nas import correlation
from snnax_nas import genotype as genotype_lib
from snnax_nas import ops as ops_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("scores", None, "Scores CSV (genotype,score[,params]).")
flags.DEFINE_string("truth", None, "Truth CSV (genotype,accuracy).")
flags.DEFINE_string("ops", "snasnet", "Op set the genotype strings use.")
flags.DEFINE_list("top_k", ["10", "50"], "k values for the top-k overlap.")
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


def main(argv):
  del argv
  if not FLAGS.scores or not FLAGS.truth:
    common.fail("--scores and --truth are required")
  try:
    ops = ops_lib.op_set(FLAGS.ops)
    ks = [int(k) for k in FLAGS.top_k]
    scores = {_key(r["genotype"], ops): r for r in _read(FLAGS.scores, ("genotype", "score"))}
    truth = {_key(r["genotype"], ops): float(r["accuracy"])
             for r in _read(FLAGS.truth, ("genotype", "accuracy"))}
  except ValueError as e:
    common.fail(str(e))
  common_keys = sorted(set(scores) & set(truth))
  if len(common_keys) < 2:
    common.fail(f"only {len(common_keys)} genotypes appear in both files")
  acc = [truth[k] for k in common_keys]
  score = [float(scores[k]["score"]) for k in common_keys]
  out = {"matched": len(common_keys), "score": correlation.correlation_report(score, acc, ks)}
  if "params" in scores[common_keys[0]]:
    params = [float(scores[k]["params"]) for k in common_keys]
    out["params_baseline"] = correlation.correlation_report(params, acc, ks)
  workdir = common.ensure_workdir(FLAGS.workdir)
  tmp = os.path.join(workdir, "correlation.json.tmp")
  with open(tmp, "w") as f:
    json.dump(out, f, indent=2)
  os.replace(tmp, os.path.join(workdir, "correlation.json"))

  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  panels = [("score", score)] + ([("params", params)] if "params_baseline" in out else [])
  fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
  for ax, (name, x) in zip(axes[0], panels):
    stats = out["score" if name == "score" else "params_baseline"]
    ax.scatter(x, acc, s=8, alpha=0.6)
    ax.set_xlabel(name)
    ax.set_ylabel("accuracy")
    ax.set_title(f"{name}: tau={stats['kendall_tau']:.3f} rho={stats['spearman_rho']:.3f}")
  fig.tight_layout()
  png = os.path.join(workdir, "correlation.png")
  fig.savefig(png + ".tmp.png", dpi=100)
  os.replace(png + ".tmp.png", png)
  for name in ("score", "params_baseline"):
    if name in out:
      s = out[name]
      extra = " ".join(f"top{k}={s[f'top{k}_overlap']:.2f}" for k in ks)
      print(f"{name:16s} n={s['n']} kendall_tau={s['kendall_tau']:.4f} "
            f"spearman_rho={s['spearman_rho']:.4f} {extra}")
  print(f"wrote {workdir}/correlation.json and correlation.png")


if __name__ == "__main__":
  app.run(main)
