r"""What ``launch.train`` delivers, per preset: its own img/s, and its step against the README loop.

  python benchmarks/launch_train_bench.py                       # small and reference, ~10 min
  python benchmarks/launch_train_bench.py --presets=small --report=benchmarks/reports/train.md

Per preset of ``snnax_nas.configs.train`` (``small``: width 16, hidden 128,
``second_pool`` 4, two cells per stage; ``reference``: the paper's CIFAR-10
network, width 256), one run of this script measures, on the bundled offline
``cifar10_sample`` (1,024 training, 500 test images), T ``--timesteps``,
batch 64 (the job's default), genotype ``--genotype`` (``reference``:
``--reference_genotype``) over the op set ``--ops`` (``spikenas``, the search's):

1. **the job**: ``snnax_nas.jobs.train.run`` as ``launch.train`` calls it
   (data parallel over one XLA device per core, augmentation, checkpoints,
   metrics files, test evaluation every epoch), for ``--epochs`` epochs on
   ``--train_examples`` images (``reference``: ``--reference_train_examples``;
   a width-256 step of 64 images takes about a minute on two cores). Printed: the job's own
   figure ``images_per_sec`` (training steps only, what its log lines show),
   and end to end: trained images over the job's wall time from its call to
   its return (compilation, evaluation, checkpoints included);
2. **the step**: the job's compiled train step (``make_steps``, fed with
   ``put_batch`` as its loop feeds it) and the README's plain jitted loop over
   the flax Module (``SpikingNetwork.apply`` + optax, one device), built by
   ``train_bench.py``'s ``Launcher`` and ``Module`` on the same network and
   batch, timed interleaved (every repeat runs each once, in turn):
   img/s as the median over ``--reps`` repeats of ``--steps`` steps, and the
   ratio launcher / module.

The load average is printed before and after each preset: the machine may be
shared, so read the spread.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import jax  # noqa: E402
import numpy as np  # noqa: E402
import train_bench  # noqa: E402  (sets one XLA:CPU device per core, as launch.train)

from snnax_nas import configs  # noqa: E402
from snnax_nas import data as data_lib  # noqa: E402
from snnax_nas.jobs import train as train_job  # noqa: E402

# What the README's quick-start search picks (153,364 params at small).
QUICK_START_PICK = "0211/0021/0002/0000|0212/0011/0002/0000|0211/0021/0002/0000|0211/0021/0002/0000"


def _parse(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--presets", default="small,reference")
  p.add_argument("--genotype", default=QUICK_START_PICK,
                 help="small: as launch.train's --config.genotype, one genotype for every "
                 "cell or per-cell genotypes joined with '|'")
  p.add_argument("--reference_genotype", default=QUICK_START_PICK.split("|")[0],
                 help="reference (two cells): the same")
  p.add_argument("--ops", default="spikenas", help="the op set the genotype's digits name")
  p.add_argument("--timesteps", type=int, default=5)
  p.add_argument("--epochs", type=int, default=2)
  p.add_argument("--train_examples", type=int, default=1024)
  p.add_argument("--reference_train_examples", type=int, default=128)
  p.add_argument("--test_examples", type=int, default=500)
  p.add_argument("--reference_test_examples", type=int, default=64)
  p.add_argument("--reps", type=int, default=5, help="interleaved step repeats (small)")
  p.add_argument("--reference_reps", type=int, default=2)
  p.add_argument("--steps", type=int, default=3, help="steps per repeat (reference: 1)")
  p.add_argument("--json", default=None, help="write the figures here")
  p.add_argument("--report", default=None, help="write the Markdown table here")
  return p.parse_args(argv)


def job_config(preset: str, args):
  """``launch.train``'s config at ``preset`` for this benchmark's run."""
  config = configs.get_config("train", preset)
  reference = preset == "reference"
  config.genotype = args.reference_genotype if reference else args.genotype
  config.dataset = "cifar10_sample"
  config.network.ops = args.ops
  config.network.timesteps = args.timesteps
  config.network.linear_init = "fan_in"
  config.training.epochs = args.epochs
  config.training.max_train_examples = (args.reference_train_examples if reference
                                        else args.train_examples)
  config.training.max_test_examples = (args.reference_test_examples if reference
                                       else args.test_examples)
  config.training.keep_checkpoints = 1
  return config


def measure_job(config) -> dict:
  """``jobs.train.run`` once in a fresh workdir: the job's img/s and end to end."""
  with tempfile.TemporaryDirectory() as workdir:
    t0 = time.perf_counter()
    summary = train_job.run(config, workdir)
    wall = time.perf_counter() - t0
  trained = summary["epochs"] * config.training.max_train_examples
  return {"job_img_s": summary["images_per_sec"], "end_to_end_img_s": trained / wall,
          "wall_s": wall, "compile_s": summary["compile_s"], "eval_s": summary["eval_time_s"],
          "train_s": summary["train_time_s"], "images": trained,
          "peak_rss_mb": summary["peak_rss_mb"]}


def measure_step(config, reps: int, steps: int) -> dict:
  """The job's step and the README loop on the same network and batch, interleaved."""
  cfg, genotypes = train_job.parse_architecture(config, data_lib.get_info("cifar10"))
  batch = config.training.batch_size
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (batch, 32, 32, 3), dtype=np.uint8)
  labels = rng.integers(0, 10, batch).astype(np.int32)
  ways = {"launcher": train_bench.Launcher(cfg, genotypes, images, labels),
          "module": train_bench.Module(cfg, genotypes, images, labels)}
  for way in ways.values():
    way.run(1)
  out = train_bench.time_interleaved(ways, reps, steps, batch)
  out["launcher_over_module"] = out["launcher"]["img_s"] / out["module"]["img_s"]
  out.update(reps=reps, steps=steps, batch=batch,
             params=int(sum(x.size for x in jax.tree.leaves(ways["module"].carry[0]))))
  return out


def markdown(results, args) -> str:
  try:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=HERE.parent, check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    commit = "unknown"
  lines = [
      "# `launch.train` throughput", "",
      f"`python benchmarks/launch_train_bench.py {' '.join(sys.argv[1:])}` at commit {commit}, "
      f"{datetime.date.today().isoformat()}, XLA:CPU, {os.cpu_count()} cores; genotype "
      f"`{args.genotype}` (small), `{args.reference_genotype}` (reference), ops `{args.ops}`, T {args.timesteps}, batch 64, bundled `cifar10_sample`.",
      "", "| preset | params | job img/s (training steps) | end to end img/s (wall) | "
      "job wall (compile, eval) | step: launcher img/s | step: README loop img/s | "
      "launcher / loop | load before–after |",
      "|---|---|---|---|---|---|---|---|---|"]
  for r in results:
    j, s = r["job"], r["step"]
    lines.append(
        f"| {r['preset']} | {s['params']:,} | {j['job_img_s']:.1f} | {j['end_to_end_img_s']:.1f} "
        f"({j['images']} images) | {j['wall_s']:.0f} s ({j['compile_s']:.0f} s, "
        f"{j['eval_s']:.0f} s) | {s['launcher']['img_s']:.1f} "
        f"[{s['launcher']['min']:.1f}–{s['launcher']['max']:.1f}] | {s['module']['img_s']:.1f} "
        f"[{s['module']['min']:.1f}–{s['module']['max']:.1f}] | "
        f"{s['launcher_over_module']:.2f} | {r['load'][0]:.1f}–{r['load'][1]:.1f} |")
  lines += ["", "Step img/s: median [min–max] over the interleaved repeats "
            f"({results[0]['step']['reps']} × {results[0]['step']['steps']} steps at the first "
            "preset), compilation excluded. End to end: trained images over the job's wall "
            "time, compilation, the test evaluation every epoch and checkpoints included.", ""]
  return "\n".join(lines)


def main(argv=None):
  args = _parse(argv)
  results = []
  for preset in args.presets.split(","):
    reference = preset == "reference"
    config = job_config(preset, args)
    load0 = os.getloadavg()[0]
    print(f"{preset}: launch.train on {config.training.max_train_examples} images x "
          f"{args.epochs} epochs; load {load0:.2f}", flush=True)
    job = measure_job(config)
    print(f"{preset}: job {job['job_img_s']:.1f} img/s (training steps), end to end "
          f"{job['end_to_end_img_s']:.1f} img/s ({job['wall_s']:.0f} s wall, compile "
          f"{job['compile_s']:.0f} s, eval {job['eval_s']:.0f} s)", flush=True)
    step = measure_step(config, args.reference_reps if reference else args.reps,
                        1 if reference else args.steps)
    load1 = os.getloadavg()[0]
    print(f"{preset}: step launcher {step['launcher']['img_s']:.1f} img/s "
          f"[{step['launcher']['min']:.1f}-{step['launcher']['max']:.1f}], README loop "
          f"{step['module']['img_s']:.1f} [{step['module']['min']:.1f}-"
          f"{step['module']['max']:.1f}]; launcher / loop {step['launcher_over_module']:.2f}; "
          f"load after {load1:.2f}", flush=True)
    results.append({"preset": preset, "job": job, "step": step, "load": [load0, load1]})
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(results, indent=1))
  if args.report:
    pathlib.Path(args.report).write_text(markdown(results, args))
    print(f"wrote {args.report}")


if __name__ == "__main__":
  main()
