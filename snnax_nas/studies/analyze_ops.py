r"""The analyze_ops study (SpikeNAS step 1): how much each operation matters to accuracy,
as ``run(config, workdir)``; ``launch.analyze_ops`` is its command line.

  python -m launch.analyze_ops --config.network.ops=snasnet --config.training.epochs=5 \
      --config.training.seeds=3 --workdir=runs/analyze_ops

The config is :mod:`snnax_nas.configs.analyze_ops` (presets ``small``, the default, and
``reference``). For the full op set (``network.ops``) and for each op removed
from it ("-conv3x3" = the space without conv3x3), a training-free search
picks the best architecture of that space (SNASNet random search:
``num_candidates`` sampled genotypes scored with the SAHD kernel, argmax;
:func:`snnax_nas.search.random_search`), and the pick is trained for
``training.epochs`` epochs with each of ``training.seeds`` seeds. An op is
significant when removing it lowers the accuracy: ``delta`` = accuracy
without the op - accuracy of the full space.

Writes to ``workdir``: ``config.json`` (the workdir record:
:mod:`snnax_nas.workdir`), ``ops_significance.csv`` (variant, removed op, op
set, genotype, score, params, per-seed test accuracy with its mean, std and
95 % Student-t interval over seeds, and ``delta`` with its 95 % interval,
paired by training seed),
``ops_significance.png`` (bar chart with the full space as a line), and one
``runs/<variant>/seed<k>.json`` per training run. Resumable at run
granularity: finished runs are read back, not retrained.
"""

from __future__ import annotations

import os

from absl import logging
import jax
import numpy as np

from snnax_nas import autotune
from snnax_nas import configs
from snnax_nas import data as data_lib
from snnax_nas import files
from snnax_nas import genotype as genotype_lib
from snnax_nas import network
from snnax_nas import ops as ops_lib
from snnax_nas import search as search_lib
from snnax_nas import stats
from snnax_nas import train
from snnax_nas import workdir as workdir_lib
from snnax_nas.jobs import common

COLUMNS = ["variant", "removed_op", "op_set", "genotype", "score", "params", "acc_mean",
           "acc_std", "acc_lo", "acc_hi", "accs", "delta_vs_full", "delta_lo", "delta_hi"]
TABLE_CSV, PLOT = "ops_significance.csv", "ops_significance.png"


def variants(ops: ops_lib.OpSet) -> list[tuple[str, str, ops_lib.OpSet]]:
  """``(variant, removed op, op set)``: the full set, then each op removed.

  An op whose removal leaves no op but ``zero`` is skipped (no network).
  """
  out = [("full", "", ops)]
  for op in ops.ops:
    rest = [o.name for o in ops.ops if o.name != op.name]
    if not any(ops_lib.parse_op(n).kind != "zero" for n in rest):
      logging.warning("removing %s leaves no op: skipped", op.name)
      continue
    out.append((f"-{op.name}", op.name, ops_lib.op_set(rest)))
  return out


def search_best(images, cfg: network.NetworkConfig, num_candidates: int, seed: int,
                scoring):
  """Best genotype of the space of ``cfg`` by SAHD random search
  (:func:`snnax_nas.search.random_search`).

  Args:
    images: scoring batches [R, B, H, W, C].
    cfg: the network (its op set is the space).
    num_candidates: genotypes sampled and scored.
    seed: seed of the sample, the weights and the scorer.
    scoring: a config's ``scoring`` section (kernel, chunk layout; its
      batch size and repeats are those of ``images``).

  Returns:
    ``(genotype string, score)``.
  """
  res = search_lib.random_search(images, jax.random.key(seed), cfg,
                                 num_candidates=num_candidates, seed=seed,
                                 scorer=common.scorer_options(scoring, cfg))
  return res.genotype, float(res.score)


def _write_json(path, obj):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  files.write_json(path, workdir_lib.json_ready(obj))  # a -inf score: null


def plot(rows: list[dict], path: str, title: str):
  """Bar chart of mean test accuracy per variant, 95 % interval error bars
  (std where a variant has one seed)."""
  plt = files.pyplot()
  fig, ax = plt.subplots(figsize=(1.2 * len(rows) + 2, 4))
  names = [r["variant"] for r in rows]
  means = [100 * r["acc_mean"] for r in rows]
  stds = [100 * (r["acc_hi"] - r["acc_mean"] if np.isfinite(r["acc_hi"]) else r["acc_std"])
          for r in rows]
  colors = ["tab:gray" if r["variant"] == "full" else "tab:blue" for r in rows]
  ax.bar(names, means, yerr=stds, color=colors, capsize=4)
  ax.axhline(means[0], color="k", ls="--", lw=1, label="full space")
  for i, r in enumerate(rows):
    ax.text(i, means[i], f"{means[i]:.1f}", ha="center", va="bottom", fontsize=8)
  ax.set_ylabel("test accuracy (%)")
  ax.set_title(title, fontsize=9)
  ax.legend()
  fig.tight_layout()
  files.save_figure(fig, path, dpi=100)
  plt.close(fig)


def report(rows: list[dict], workdir: str) -> str:
  """The table ``launch.analyze_ops`` prints."""
  lines = [f"{'variant':<16} {'genotype':<22} {'params':>10} {'acc % [95 % interval]':>24} "
           f"{'delta [95 % interval, paired by seed]':>38}"]
  for r in rows:
    acc = f"{100 * r['acc_mean']:.2f} [{100 * r['acc_lo']:.2f}, {100 * r['acc_hi']:.2f}]"
    delta = (f"{100 * r['delta_vs_full']:+.2f} [{100 * r['delta_lo']:+.2f}, "
             f"{100 * r['delta_hi']:+.2f}]")
    lines.append(f"{r['variant']:<16} {r['genotype']:<22} {r['params']:>10,} {acc:>24} "
                 f"{delta:>38}")
  lines.append(f"wrote {os.path.join(workdir, TABLE_CSV)}")
  return "\n".join(lines)


def run(config, workdir: str) -> list[dict]:
  """Runs (or resumes) the op-significance analysis and writes its table
  and plot into ``workdir``.

  Args:
    config: a :mod:`snnax_nas.configs.analyze_ops` config.
    workdir: the run's directory (claimed: see :mod:`snnax_nas.workdir`).

  Returns:
    One row per variant (the columns of :data:`COLUMNS`).

  Raises:
    ValueError: a bad config value, an unusable dataset or a workdir
      holding another run (one line naming the field).
  """
  config = common.own_config(config)
  tr, scoring = config.training, config.scoring
  common.check_training(tr, "epochs", "seeds", "batch_size")
  common.check_positive(config, "num_candidates", "scoring.batch_size", "scoring.repeats")
  try:
    autotune.scoring_options(scoring)  # kernel, draws, layout, conv dtype
  except ValueError as e:
    raise ValueError(f"--config.{e}") from None
  full = ops_lib.op_set(config.network.ops)
  info = data_lib.get_info(config.dataset)
  if info.is_event:
    raise ValueError("analyze_ops supports static-image datasets")
  full_cfg = configs.network_from_job_config(config.network, info)  # validates it
  common.check_example_limits(tr)
  images = data_lib.score_batches(config.dataset, scoring.repeats, scoring.batch_size,
                                  config.seed, config.data_dir)
  train_x, train_y = data_lib.first_examples(
      *data_lib.load_arrays(config.dataset, "train", config.data_dir), tr.max_train_examples)
  test_x, test_y = data_lib.first_examples(
      *data_lib.load_arrays(config.dataset, train.default_test_split(config.dataset),
                            config.data_dir), tr.max_test_examples)
  if len(train_y) < tr.batch_size or not len(test_y):
    raise ValueError(f"{len(train_y)} train / {len(test_y)} test examples: need at least one "
                     f"batch of {tr.batch_size} and one test example")
  if not data_lib.has_separate_splits(config.dataset):
    common.warn(f"--config.dataset={config.dataset} is one file for every split: the "
                "accuracies are measured on the TRAINING data (put '{split}' in the path for "
                "separate train/test files)")
  train_data = (train_x, np.asarray(train_y, np.int32))
  test_data = (test_x, np.asarray(test_y, np.int32))
  common.claim_workdir("analyze_ops", config, full_cfg, workdir)

  rows, per_seed = [], []  # per_seed: each variant's accuracy per training seed
  for variant, removed, ops in variants(full):
    cfg = configs.network_from_job_config(config.network, info, ops=ops)
    pick_path = os.path.join(workdir, "runs", variant, "pick.json")
    pick = files.read_json(pick_path)
    if pick is None or pick.get("op_set") != str(ops):
      text, best = search_best(images, cfg, config.num_candidates, config.seed, scoring)
      pick = {"op_set": str(ops), "genotype": text, "score": best}
      _write_json(pick_path, pick)
    genotypes = genotype_lib.as_genotypes([pick["genotype"]], cfg)[0]
    accs, params = [], None
    compiled = train.CompileCache()  # the seeds of one architecture compile once
    for s in range(tr.seeds):
      path = os.path.join(workdir, "runs", variant, f"seed{s}.json")
      done = files.read_json(path)
      if done is None or done.get("genotype") != pick["genotype"]:
        logging.info("%s: training %s (ops %s), seed %d", variant, pick["genotype"], ops, s)
        res = train.train_and_evaluate(
            cfg, genotypes, info, train_data, test_data, epochs=tr.epochs,
            batch_size=tr.batch_size, lr=tr.lr, loss=tr.loss, seed=s,
            eval_every=tr.epochs, log_every=0, compile_cache=compiled)
        done = {"genotype": pick["genotype"], "seed": s, **res.summary}
        _write_json(path, done)
      accs.append(done["final_test_accuracy"])
      params = done["params"]
    rows.append({"variant": variant, "removed_op": removed, "op_set": str(ops),
                 "genotype": pick["genotype"], "score": pick["score"], "params": params,
                 "acc_mean": float(np.mean(accs)), "acc_std": float(np.std(accs)),
                 "accs": " ".join(f"{a:.4f}" for a in accs)})
    per_seed.append(accs)
  for r, accs in zip(rows, per_seed):
    interval = stats.t_interval(accs)
    # Paired by training seed: seed s of every variant shares its init key and
    # batch order, so the per-seed differences cancel part of that noise.
    delta = stats.t_interval(np.subtract(accs, per_seed[0]))
    r.update(acc_lo=interval["lo"], acc_hi=interval["hi"],
             delta_vs_full=r["acc_mean"] - rows[0]["acc_mean"],
             delta_lo=delta["lo"], delta_hi=delta["hi"])
  files.write_csv(os.path.join(workdir, TABLE_CSV), COLUMNS,
               ([r[c] for c in COLUMNS] for r in rows))
  plot(rows, os.path.join(workdir, PLOT),
       f"{config.dataset}: op removed -> accuracy ({tr.epochs} epochs x {tr.seeds} seeds)")
  return rows
