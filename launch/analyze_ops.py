r"""SpikeNAS step 1: how much each operation matters to accuracy.

  python -m launch.analyze_ops --ops=snasnet --dataset=cifar10 --epochs=5 --seeds=3 \
      --workdir=runs/analyze_ops

For the full op set and for each op removed from it ("-conv3x3" = the space
without conv3x3), a training-free search picks the best architecture of that
space (SNASNet random search: ``--num_candidates`` sampled genotypes scored
with the SAHD kernel, argmax; :func:`snnax_nas.search.random_search`), and the
pick is trained for ``--epochs`` epochs with each of ``--seeds`` seeds. An op
is significant when removing it lowers the accuracy: ``delta`` = accuracy
without the op - accuracy of the full space.

Writes to ``--workdir``: ``ops_significance.csv`` (variant, removed op, op
set, genotype, score, params, per-seed and mean/std test accuracy, delta),
``ops_significance.png`` (bar chart with the full space as a line), and one
``runs/<variant>/seed<k>.json`` per training run. Resumable at run
granularity: finished runs are read back, not retrained.
"""

from __future__ import annotations

import json
import os

from absl import app
from absl import flags
from absl import logging
import jax
import numpy as np

from launch import common
from snnax_nas import data as data_lib
from snnax_nas import network
from snnax_nas import ops as ops_lib
from snnax_nas import score
from snnax_nas import search as search_lib
from snnax_nas import train

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "cifar10", "cifar10, cifar100, tinyimagenet, npz:PATH, "
                    "folder:PATH (needs a test split).")
flags.DEFINE_string("data_dir", None, "Where the dataset lives.")
flags.DEFINE_string("ops", "snasnet", "The full op set (a preset or a comma list).")
flags.DEFINE_integer("width", 16, "Stem / stage-1 width C.")
flags.DEFINE_integer("cells", 1, "Cells per stage.")
flags.DEFINE_integer("timesteps", 5, "Timesteps T.")
flags.DEFINE_integer("hidden", 1024, "Classifier hidden width.")
flags.DEFINE_integer("second_pool", 2, "Avg-pool size s2 after the last LIF.")
flags.DEFINE_boolean("backward", False, "Search backward cells.")
flags.DEFINE_integer("num_candidates", 100, "Genotypes sampled and scored per space.")
flags.DEFINE_integer("score_batch_size", 64, "Images per scoring batch (reference 256).")
flags.DEFINE_integer("repeats", 2, "Scoring batches per candidate.")
flags.DEFINE_integer("chunk_size", 8, "Candidates per compiled scorer call.")
flags.DEFINE_integer("epochs", 5, "Training epochs of each pick (a fixed short budget).")
flags.DEFINE_integer("seeds", 3, "Training seeds per pick.")
flags.DEFINE_integer("batch_size", 64, "Training batch size.")
flags.DEFINE_float("lr", 0.1, "Initial learning rate.")
flags.DEFINE_string("loss", "ce", "Training loss.")
flags.DEFINE_integer("max_train_examples", None, "Use only the first N training examples.")
flags.DEFINE_integer("max_test_examples", None, "Use only the first N test examples.")
flags.DEFINE_integer("seed", 0, "Seed of the search (sampling, weights, score batches).")
flags.DEFINE_string("workdir", "runs/analyze_ops", "Output directory.")

COLUMNS = ["variant", "removed_op", "op_set", "genotype", "score", "params", "acc_mean",
           "acc_std", "accs", "delta_vs_full"]


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


def search_best(images, cfg: network.NetworkConfig, num_candidates: int, seed: int):
  """Best genotype of the space of ``cfg`` by SAHD random search
  (:func:`snnax_nas.search.random_search`).

  Returns:
    ``(genotype string, score)``.
  """
  res = search_lib.random_search(images, jax.random.key(seed), cfg,
                                 num_candidates=num_candidates, seed=seed,
                                 chunk_size=FLAGS.chunk_size)
  return res.genotype, float(res.score)


def _config(info, ops) -> network.NetworkConfig:
  return network.network_config(
      None, input_shape=info.image_shape, num_classes=info.num_classes, width=FLAGS.width,
      cells_per_stage=FLAGS.cells, timesteps=FLAGS.timesteps, hidden=FLAGS.hidden,
      vote_group=5 if info.num_classes > 10 else 10, second_pool=FLAGS.second_pool,
      stem_stride=2 if info.image_shape[0] >= 64 else 1, ops=ops, backward=FLAGS.backward)


def _read_json(path):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError):
    return None


def _write_json(path, obj):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path + ".tmp", "w") as f:
    json.dump(obj, f, indent=2)
  os.replace(path + ".tmp", path)


def plot(rows: list[dict], path: str, title: str):
  """Bar chart of mean test accuracy (std error bars) per variant."""
  import matplotlib  # lazy
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(1.2 * len(rows) + 2, 4))
  names = [r["variant"] for r in rows]
  means = [100 * r["acc_mean"] for r in rows]
  stds = [100 * r["acc_std"] for r in rows]
  colors = ["tab:gray" if r["variant"] == "full" else "tab:blue" for r in rows]
  ax.bar(names, means, yerr=stds, color=colors, capsize=4)
  ax.axhline(means[0], color="k", ls="--", lw=1, label="full space")
  for i, r in enumerate(rows):
    ax.text(i, means[i], f"{means[i]:.1f}", ha="center", va="bottom", fontsize=8)
  ax.set_ylabel("test accuracy (%)")
  ax.set_title(title, fontsize=9)
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main(argv):
  if len(argv) > 1:
    common.fail(f"unexpected arguments {argv[1:]}")
  common.use_cpu_cores()
  common.check_training_flags("epochs", "seeds", "num_candidates", "batch_size",
                              "score_batch_size", "repeats", "chunk_size")
  try:
    full = ops_lib.op_set(FLAGS.ops)
    info = data_lib.get_info(FLAGS.dataset, FLAGS.data_dir)
    if info.is_event:
      raise ValueError("analyze_ops supports static-image datasets")
    _config(info, full)  # validates the network flags
    images = data_lib.score_batches(FLAGS.dataset, FLAGS.repeats, FLAGS.score_batch_size,
                                    FLAGS.seed, FLAGS.data_dir)
    train_x, train_y = data_lib.load_arrays(FLAGS.dataset, "train", FLAGS.data_dir)
    test_x, test_y = data_lib.load_arrays(FLAGS.dataset,
                                            train.default_test_split(FLAGS.dataset),
                                            FLAGS.data_dir)
  except (ValueError, FileNotFoundError) as e:
    common.fail(str(e))
  train_x, train_y = train_x[:FLAGS.max_train_examples], train_y[:FLAGS.max_train_examples]
  test_x, test_y = test_x[:FLAGS.max_test_examples], test_y[:FLAGS.max_test_examples]
  if len(train_y) < FLAGS.batch_size or not len(test_y):
    common.fail(f"{len(train_y)} train / {len(test_y)} test examples: need at least one "
                f"batch of {FLAGS.batch_size} and one test example")
  train_data = (train_x, np.asarray(train_y, np.int32))
  test_data = (test_x, np.asarray(test_y, np.int32))
  workdir = common.ensure_workdir(FLAGS.workdir)

  rows = []
  for variant, removed, ops in variants(full):
    cfg = _config(info, ops)
    pick_path = os.path.join(workdir, "runs", variant, "pick.json")
    pick = _read_json(pick_path)
    if pick is None or pick.get("op_set") != str(ops):
      text, best = search_best(images, cfg, FLAGS.num_candidates, FLAGS.seed)
      pick = {"op_set": str(ops), "genotype": text, "score": best}
      _write_json(pick_path, pick)
    genotypes = score.as_genotypes([pick["genotype"]], cfg)[0]
    accs, params = [], None
    for s in range(FLAGS.seeds):
      path = os.path.join(workdir, "runs", variant, f"seed{s}.json")
      done = _read_json(path)
      if done is None or done.get("genotype") != pick["genotype"]:
        logging.info("%s: training %s (ops %s), seed %d", variant, pick["genotype"], ops, s)
        res = train.train_and_evaluate(
            cfg, genotypes, info, train_data, test_data, epochs=FLAGS.epochs,
            batch_size=FLAGS.batch_size, lr=FLAGS.lr, loss=FLAGS.loss, seed=s,
            eval_every=FLAGS.epochs, log_every=0)
        done = {"genotype": pick["genotype"], "seed": s, **res.summary}
        _write_json(path, done)
      accs.append(done["final_test_accuracy"])
      params = done["params"]
    rows.append({"variant": variant, "removed_op": removed, "op_set": str(ops),
                 "genotype": pick["genotype"], "score": pick["score"], "params": params,
                 "acc_mean": float(np.mean(accs)), "acc_std": float(np.std(accs)),
                 "accs": " ".join(f"{a:.4f}" for a in accs)})
  for r in rows:
    r["delta_vs_full"] = r["acc_mean"] - rows[0]["acc_mean"]
  common.write_csv_atomic(os.path.join(workdir, "ops_significance.csv"), COLUMNS,
                          ([r[c] for c in COLUMNS] for r in rows))
  plot(rows, os.path.join(workdir, "ops_significance.png"),
       f"{FLAGS.dataset}: op removed -> accuracy ({FLAGS.epochs} epochs x {FLAGS.seeds} seeds)")
  print(f"{'variant':<16} {'genotype':<22} {'params':>10} {'acc %':>14} {'delta':>7}")
  for r in rows:
    print(f"{r['variant']:<16} {r['genotype']:<22} {r['params']:>10,} "
          f"{100 * r['acc_mean']:>7.2f} +- {100 * r['acc_std']:<4.2f} "
          f"{100 * r['delta_vs_full']:>+7.2f}")
  print(f"wrote {os.path.join(workdir, 'ops_significance.csv')}")


if __name__ == "__main__":
  app.run(main)
