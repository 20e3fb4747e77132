"""Every field of every job's config acts or is refused.

For each job of :data:`snnax_nas.configs.JOBS` + :data:`snnax_nas.configs.TOOLS`
the test walks every field of ``configs.get_config(job)`` (nested sections
included), changes it to another valid value on a tiny run, and requires one
of:

* **acts**: the job's fingerprint changes. The fingerprint is what the job
  hands to its expensive steps (the searcher, scorer, trainer, evaluator,
  exporter, or a compare study's stage commands: the *resolved options*),
  the images and arrays those steps receive (hashed), and the job's own
  deterministic outputs. The expensive steps are stand-ins that record their
  arguments, so the whole walk runs in seconds. A field that only reaches
  ``config.json`` changes nothing here.
* **refused**: the job raises a one-line ``ValueError`` naming the value
  (only the fields of :data:`REFUSED` with the reason there);
* **allow-listed** (:data:`NO_EFFECT_BY_DESIGN`, with the reason beside
  each): the field cannot change this tiny run by design.

A field missing from the tables below and with no rule for another value
fails the test (a new field must say what it does).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil

import jax
import numpy as np
import pytest

from snnax_nas import configs
from snnax_nas import data as data_lib
from snnax_nas import network
from snnax_nas import workdir as workdir_lib

FORWARD = "0302/0030/0003/0000"
OTHER = "0303/0030/0003/0000"
GT_OPS = "skip,conv3x3@0.5,conv3x3,conv3x3@1.5"
GT_CELLS = ["0002/0000/0000/0000", "0003/0000/0000/0000", "0004/0000/0000/0000",
            "0302/0003/0000/0000", "0102/0003/0000/0000", "0204/0001/0000/0000"]

# Fields that cannot change the tiny run by design: (job, field) -> reason.
NO_EFFECT_BY_DESIGN = {
    # The walk's datasets are npz:PATH files and the bundled sample: data_dir
    # is where the folder datasets (cifar10, tinyimagenet, dvs128_gesture)
    # live, and is read only for them.
    **{(job, "data_dir"): "read only by the folder datasets (cifar10, tinyimagenet, "
       "dvs128_gesture); the walk's data are npz files or bundled"
       for job in ("search", "score", "train", "analyze_ops", "compare", "groundtruth")},
}

# Fields whose changed value the job refuses in one line: (job, field) -> reason.
REFUSED = {
    ("train", "dvs.frames"): "event-data binning: refused on static images",
    ("train", "dvs.size"): "event-data binning: refused on static images",
    ("compare", "network.ops"): "each method searches its own space",
    ("compare", "network.backward"): "each method searches its own space",
    # A score at initialisation runs without dropout (it changes no score:
    # test_the_scorer_reads_every_network_field_but_dropout below measures it).
    ("score", "network.dropout"): "scoring runs without dropout; the job trains nothing",
    ("groundtruth", "network.dropout"): "scoring runs without dropout; the job trains nothing",
    # Genotypes are matched by canonical form, the same under every op set:
    # the op set bounds the digits, so a smaller one refuses the tables.
    ("correlate", "ops"): "bounds the genotype digits; matching does not depend on it",
}


# ----------------------------------------------------------------------------
# Fingerprints.

def fingerprint(obj):
  """A hashable, comparable summary of ``obj``: arrays by shape, dtype and a
  hash of their bytes; dataclasses and dicts by their fields; config dicts
  by their dict; other objects (progress callbacks, stores) by type."""
  if isinstance(obj, (str, int, float, bool, type(None))):
    return obj
  if isinstance(obj, jax.Array) and jax.dtypes.issubdtype(obj.dtype, jax.dtypes.prng_key):
    obj = jax.random.key_data(obj)
  if isinstance(obj, (np.ndarray, jax.Array, np.generic)):
    a = np.asarray(obj)
    return ("array", a.shape, str(a.dtype), hashlib.sha1(a.tobytes()).hexdigest())
  if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
    return (type(obj).__name__,
            tuple((f.name, fingerprint(getattr(obj, f.name))) for f in dataclasses.fields(obj)))
  if hasattr(obj, "to_dict"):
    return fingerprint(obj.to_dict())
  if isinstance(obj, dict):
    return tuple(sorted((str(k), fingerprint(v)) for k, v in obj.items()))
  if isinstance(obj, (list, tuple)):
    return tuple(fingerprint(v) for v in obj)
  return ("object", type(obj).__name__)


class Stop(Exception):
  """Raised by a recording stand-in: the job got as far as its expensive step."""


class Probe:
  """Replaces a job's expensive steps by stand-ins that record what they get,
  and records the outputs of the cheap steps it lets run."""

  def __init__(self, monkeypatch):
    self.calls = []
    self._mp = monkeypatch

  def stand_in(self, module, name, result=None):
    """``module.name`` records its arguments, then returns ``result(*args,
    **kwargs)`` (None: raises :class:`Stop`)."""
    def call(*args, **kwargs):
      self.calls.append((name, fingerprint(args), fingerprint(kwargs)))
      if result is None:
        raise Stop
      return result(*args, **kwargs)
    self._mp.setattr(module, name, call)

  def watch(self, module, name):
    """``module.name`` runs as it is; its output is recorded."""
    real = getattr(module, name)

    def call(*args, **kwargs):
      out = real(*args, **kwargs)
      self.calls.append((name, "->", fingerprint(out)))
      return out
    self._mp.setattr(module, name, call)


def _outputs(workdir, names, drop=()):
  """The deterministic outputs: files of ``names`` (JSON without the keys of
  ``drop``, which hold measured times; text as it is)."""
  out = []
  for name in names:
    path = os.path.join(workdir, name)
    if not os.path.exists(path):
      out.append((name, None))
    elif name.endswith(".json"):
      with open(path) as f:
        out.append((name, fingerprint(_without(json.load(f), drop))))
    else:
      with open(path) as f:
        out.append((name, f.read()))
  return out


def _without(obj, drop):
  if isinstance(obj, dict):
    return {k: _without(v, drop) for k, v in obj.items() if not any(d in k for d in drop)}
  if isinstance(obj, list):
    return [_without(v, drop) for v in obj]
  return obj


# ----------------------------------------------------------------------------
# The fields and their other values.

def walk(config, prefix=""):
  """Every leaf field of a config: ``[(dotted name, value)]``."""
  out = []
  for key in sorted(config.keys()):
    value = config[key]
    if hasattr(value, "keys") and hasattr(value, "to_dict"):
      out += walk(value, f"{prefix}{key}.")
    else:
      out.append((f"{prefix}{key}", value))
  return out


def other_value(job, field, value, inputs):
  """Another valid value of ``field`` and the fields set with it (a context
  in which the field can act): ``(value, {field: value})``."""
  specific = {
      "dataset": f"npz:{inputs['npz2']}",
      "genotypes": (inputs["genotypes"], {"method": "random"} if job == "search" else {}),
      "network.ops": {"search": "snasnet", "score": "spikenas", "train": "spikenas3",
                      "compare": "snasnet",
                      "analyze_ops": "spikenas", "groundtruth": "skip,conv3x3@0.5,conv3x3,conv3x3@2.0"}.get(job),
      "network.linear_init": "fan_in",
      "scoring.kernel": "sahd_time",
      "scoring.weights": "common",
      "scoring.conv_dtype": "bfloat16",
      "scoring.chunk_size": "3",
      "scoring.map_batch_size": "3",
      "budget.fraction": "0.25" if job == "search" else "0.5",
      "budget.mb": "75.0" if job == "groundtruth" else (0.5, {"budget.fraction": None}),
      "budget.params": (200_000, {"budget.fraction": None}),
      "num_candidates": 3,
      "method": "random",
      "methods": "spikenas,random" if job == "compare" else "spikenas,largest",
      "training.loss": "mse",
      "training.max_train_examples": 16,
      "training.max_test_examples": 4,
      "training.weight_bits": 8,
      "from_search": (inputs["search_run"], {"genotype": None}),
      "genotype": OTHER,
      "split": "train",
      "max_examples": 4,
      "nir": True,
      "nir_dt": (2e-4, {"nir": True}),
      "raster": 2,
      "weight_bits": 8,
      "score_duplicates": (True, {"genotypes": inputs["duplicates"]}),
      "eval_bits": "32,8",
      "eval_max_examples": 100,
      "budgets_mb": ("9.0", {"budget.fraction": None}),
      "budget_bits": 8,
      "table": inputs["table2"],
      "trained.preset": "cifar10",
      "trained.width": 64,
      "trained.hidden": 512,
      "trained.second_pool": 4,
      "scores": inputs["scores2"],
      "truth": inputs["truth2"],
      "ops": "spikenas",
      "top_k": "2",
      "dvs.frames": 8,
      "dvs.size": 16,
  }
  if field.endswith("weight_bits") or field == "budget_bits":
    return (8 if value != 8 else 4), {}
  if field.endswith("batch_size") and isinstance(value, int):
    return 2 * value, {}  # a multiple of any device count the process has
  if field == "network.second_pool":
    return (2 if value != 2 else 4), {}
  if field == "network.backward" and value is None:
    return True, {}
  if field in specific and specific[field] is not None:
    got = specific[field]
    return got if isinstance(got, tuple) else (got, {})
  if isinstance(value, bool):
    return not value, {}
  if isinstance(value, int):
    return value + 1, {}
  if isinstance(value, float):
    return value / 2 if value else 0.25, {}
  return None, {}


# ----------------------------------------------------------------------------
# The jobs on tiny inputs, their expensive steps stood in for.

@pytest.fixture(scope="module")
def inputs(tmp_path_factory, random_npz):
  root = tmp_path_factory.mktemp("walk")
  rng = np.random.default_rng(1)
  np.savez(root / "npz2.npz", image=rng.integers(0, 255, (32, 24, 24, 3), dtype=np.uint8),
           label=np.arange(32) % 10)
  (root / "g.txt").write_text(f"{FORWARD}\n{OTHER}\n0301/0030/0003/0000\n")
  (root / "dup.txt").write_text(f"{FORWARD}\n{FORWARD}\n{OTHER}\n")
  paths = {"npz": random_npz, "npz2": str(root / "npz2.npz"), "genotypes": str(root / "g.txt"),
           "duplicates": str(root / "dup.txt")}
  for name, cells, acc in (("table", GT_CELLS, range(50, 56)),
                           ("table2", GT_CELLS[:5], [55, 51, 53, 52, 50])):
    (root / f"{name}.csv").write_text("genotype,accuracy\n" + "".join(
        f"{g},{a}\n" for g, a in zip(cells, acc)))
    paths[name] = str(root / f"{name}.csv")
  cells = ["0303/0030/2002/0200", "0302/0030/3003/0000", "0104/0040/0003/0000",
           "0111/0011/0001/0000", "0333/0033/0003/0000", "0300/0030/0003/0000"]
  for k, order in ((1, range(6)), (2, [5, 0, 1, 3, 2, 4])):
    (root / f"scores{k}.csv").write_text("genotype,score,params\n" + "".join(
        f"{g},{-50 + i},{1000 * (6 - i)}\n" for i, g in zip(order, cells)))
    (root / f"truth{k}.csv").write_text("genotype,accuracy\n" + "".join(
        f"{g},{50 + (i * 7 + k) % 6}\n" for i, g in enumerate(cells)))
    paths[f"scores{'' if k == 1 else 2}"] = str(root / f"scores{k}.csv")
    paths[f"truth{'' if k == 1 else 2}"] = str(root / f"truth{k}.csv")
  # A finished search: its record and the genotype it found.
  search = root / "search"
  cfg = network.network_config(None, width=4, hidden=16, timesteps=2, input_shape=(16, 16, 3))
  sc = configs.get_config("search")
  sc.network.ops, sc.network.backward, sc.network.width = "snasnet", False, 6
  sc.dataset = f"npz:{random_npz}"
  workdir_lib.claim(str(search), workdir_lib.make_record("search", sc, cfg, {}))
  (search / "summary.json").write_text(json.dumps({"genotype": "0300/0030/0003/0000"}))
  paths["search_run"] = str(search)
  # A finished training run for evaluate: its record.
  trained = root / "trained"
  tc = configs.get_config("train")
  tc.genotype, tc.dataset = FORWARD, f"npz:{random_npz}"
  workdir_lib.claim(str(trained), workdir_lib.make_record("train", tc, cfg, {}))
  paths["trained"] = str(trained)
  return paths


def _tiny(config, inputs):
  net = config.get("network")
  if net is not None:
    net.width, net.hidden, net.timesteps = 4, 16, 2
  if "scoring" in config:
    config.scoring.batch_size, config.scoring.repeats = 4, 1
  if "training" in config:
    config.training.batch_size, config.training.epochs = 8, 2
  if "dataset" in config:
    config.dataset = f"npz:{inputs['npz']}"
  return config


def _fake_search_result(*args, **kwargs):
  class Found:
    genotype, score = "0001/0000/0000/0000", 1.0
  return Found()


def _fake_training(*args, **kwargs):
  class Trained:
    summary = {"final_test_accuracy": 0.5, "params": 10}
  return Trained()


def _fake_scores(genotypes, images, key, cfg, arch=None, candidate_ids=None, **kwargs):
  n = len(genotypes) if genotypes is not None else len(arch)

  class Scored:
    scores = np.arange(n, dtype=np.float64) * (1 + int(np.asarray(images).sum()) % 7)
    singular = np.zeros(n, bool)
    compile_seconds = run_seconds = 0.0
  return Scored()


def _fake_evaluation(workdir, **kwargs):
  class Evaluation:
    def to_json(self):
      return {k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v
              for k, v in kwargs.items()}
  return Evaluation()


def setup_job(job, probe, inputs):
  """``(base config, run(config, workdir), output names, keys to drop)``."""
  from snnax_nas import evaluate
  from snnax_nas import jobs
  from snnax_nas import nir_graph
  from snnax_nas import raster
  from snnax_nas import score
  from snnax_nas import search
  from snnax_nas import studies
  from snnax_nas import train
  config = _tiny(configs.get_config(job), inputs)
  probe.watch(data_lib, "score_batches")
  outputs, drop = [], ()
  module = jobs.get(job) if job in jobs.JOBS else studies.get(job)
  run = module.run
  if job == "search":
    from snnax_nas import energy
    for name in ("random_search", "spikenas_search", "lightsnn_prune"):
      probe.stand_in(search, name)
    # The energies the pick's estimate will be priced at, resolved before the
    # search (the estimate itself runs after it).
    probe.watch(energy, "energies_from_config")
  elif job == "score":
    probe.stand_in(score, "score_candidates", _fake_scores)
    outputs = ["scores.csv"]
  elif job == "train":
    config.genotype = FORWARD
    probe.stand_in(train, "train_and_evaluate")
  elif job == "analyze_ops":
    probe.stand_in(search, "random_search", _fake_search_result)
    probe.stand_in(train, "train_and_evaluate", _fake_training)
    config.training.seeds = 1
    probe.stand_in(module, "plot", lambda *a, **k: None)  # its rows are recorded
  elif job == "evaluate":
    probe.stand_in(evaluate, "evaluate_run", _fake_evaluation)
    probe.stand_in(raster, "plot_run_raster", lambda *a, **k: None)
    probe.stand_in(nir_graph, "export_run", lambda *a, **k: None)

    def run(config, workdir):  # noqa: F811 (the trained run is the workdir)
      shutil.copytree(inputs["trained"], workdir)
      return jobs.get("evaluate").run(config, workdir)
  elif job == "correlate":
    config.scores, config.truth, config.resamples, config.top_k = (
        inputs["scores"], inputs["truth"], 20, "3")
    outputs = ["correlation.json"]
  elif job == "groundtruth":
    config.table, config.num_seeds = inputs["table"], 1
    config.spikenas_candidates, config.random_draws = 3, 4
    probe.stand_in(score, "score_candidates", _fake_scores)
    outputs, drop = ["summary.json"], ("seconds", "table")
  elif job == "compare":
    from snnax_nas.studies.compare import study
    from snnax_nas.studies.compare import tables
    config.training.epochs = 2
    runner = FakeStudyRunner(probe)
    for name in ("plot", "plot_seeds"):  # the plots' rows are recorded
      probe.stand_in(tables, name, lambda *a, **k: None)

    def run(config, workdir):  # noqa: F811
      return study.run_study(config, workdir, runner=runner, log=lambda s: None)
  return config, run, outputs, drop


class FakeStudyRunner:
  """Records each stage's command and writes what its launcher would."""

  def __init__(self, probe):
    self.probe = probe

  def __call__(self, stage, log_path):
    from snnax_nas import files as io
    f = dict(stage.overrides)
    rel = os.path.relpath(stage.workdir, os.path.dirname(os.path.dirname(log_path)))
    self.probe.calls.append(("stage", stage.job, rel, fingerprint(f)))
    where = stage.workdir
    os.makedirs(where, exist_ok=True)
    if stage.job == "search":
      io.write_json(os.path.join(where, "config.json"),
                    {"job": "search", "config": {"network": {"ops": "snasnet"}}})
      if f["method"] == "random":
        rows = "".join(f"{g},{-i},0,{1000 + i},{4000 + 4 * i},,0,{i}\n"
                       for i, g in enumerate([FORWARD, OTHER]))
        with open(os.path.join(where, "scores.csv"), "w") as out:
          out.write("genotype,score,singular,params,memory_bytes,neuron_state_bytes,step,"
                    "candidate_id\n" + rows)
      io.write_json(os.path.join(where, "summary.json"), dict(
          genotype=FORWARD, params=1000, evaluations=2,
          timing=dict(wall_seconds=1.0, loaded_from_store=0)))
    elif stage.job == "train":
      io.write_json(os.path.join(where, "summary.json"), {"epochs": 1})
    else:
      path = stage.output
      os.makedirs(os.path.dirname(path), exist_ok=True)
      io.write_json(path, dict(accuracy=0.5, loss=1.0, sar=0.1, weight_bytes=4000,
                               params=1000, num_examples=10, split="test"))
    return 0


def attempt(job, config, run, outputs, drop, probe, workdir):
  """``("acts", fingerprint)`` or ``("refused", message)`` of one run."""
  if os.path.exists(workdir):
    shutil.rmtree(workdir)
  probe.calls.clear()
  try:
    run(config, workdir)
  except Stop:
    pass
  except ValueError as e:
    return "refused", str(e)
  return "ran", (tuple(probe.calls), tuple(_outputs(workdir, outputs, drop)))


ALL_JOBS = configs.JOBS + configs.TOOLS


@pytest.mark.parametrize("job", ALL_JOBS)
def test_every_field_acts_or_is_refused(job, inputs, tmp_path, monkeypatch):
  probe = Probe(monkeypatch)
  base, run, outputs, drop = setup_job(job, probe, inputs)
  workdir = str(tmp_path / "w")
  kind, base_print = attempt(job, base, run, outputs, drop, probe, workdir)
  assert kind == "ran", base_print
  problems, seen = [], []
  assert [f for f, _ in walk(base)] == [f for f, _ in walk(configs.get_config(job))]
  for field, value in walk(base):
    if (job, field) in NO_EFFECT_BY_DESIGN:
      continue
    new, context = other_value(job, field, value, inputs)
    if new is None:
      problems.append(f"{field}: no other value to try (add one to other_value)")
      continue
    config = configs.set_fields(base.copy_and_resolve_references(), dict(context))
    reference = base_print
    if context:  # the field's context alone (when it runs), then the field changed in it
      kind, got = attempt(job, config, run, outputs, drop, probe, workdir)
      if kind == "ran":
        reference = got
    changed = configs.set_fields(config.copy_and_resolve_references(), {field: new})
    kind, got = attempt(job, changed, run, outputs, drop, probe, workdir)
    seen.append(field)
    if (job, field) in REFUSED:
      if kind != "refused" or "\n" in got:
        problems.append(f"{field}={new!r}: expected a one-line refusal, got {kind}")
    elif kind == "refused":
      problems.append(f"{field}={new!r} refused: {got}")
    elif got == reference:
      problems.append(f"{field}={new!r} is accepted and changes nothing")
  assert not problems, f"{job}:\n" + "\n".join(problems)
  assert seen  # the walk reached the fields


def test_the_allow_and_refusal_lists_name_real_fields():
  for job, field in list(NO_EFFECT_BY_DESIGN) + list(REFUSED):
    assert field in dict(walk(configs.get_config(job))), (job, field)


@pytest.mark.slow  # one compile per field: about 2 min on 2 cores
def test_the_scorer_reads_every_network_field_but_dropout():
  """What the walk's scorer stand-in cannot show: the real score changes with
  each field of the network section, except ``dropout`` (scoring runs the
  network at initialisation without dropout; the scoring-only jobs refuse
  it)."""
  from snnax_nas import score
  from snnax_nas.configs import sections
  base = dict(width=4, hidden=16, timesteps=2, input_shape=(16, 16, 3), second_pool=4,
              cells_per_stage=1)
  images = np.random.default_rng(0).random((1, 8, 16, 16, 3)).astype(np.float32)
  genotypes = [FORWARD, OTHER, "0002/0000/0000/0000"]

  def scores(**fields):
    cfg = network.network_config(None, **{**base, **fields})
    return np.asarray(score.score_candidates(genotypes, images, jax.random.key(0), cfg,
                                             chunk_size=3).scores)

  reference = scores()
  changed = {"dropout": 0.1, "linear_init": "fan_in", "hidden": 32, "cells_per_stage": 2,
             "width": 6, "timesteps": 3, "second_pool": 2, "backward": True,
             "ops": "spikenas3"}
  assert set(changed) == set(sections.network())  # every field of the section
  for field, value in changed.items():
    same = np.array_equal(scores(**{field: value}), reference)
    assert same == (field == "dropout"), field
