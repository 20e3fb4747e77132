"""Search methods, the score store and the launch.search job (tiny configs).

Compilation dominates: in-process tests share one forward config (real
scorer) and use a fake scorer where only the search logic is under test;
subprocess tests share a persistent JAX compilation cache.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

from snnax_nas import configs
from snnax_nas import genotype as genotype_lib
from snnax_nas import genotype_space
from snnax_nas import memory
from snnax_nas import network
from snnax_nas import score
from snnax_nas import score_store
from snnax_nas import search
from snnax_nas import workdir as workdir_lib
from snnax_nas.budget import Budget
from snnax_nas.jobs import search as search_job
from snnax_nas.search import pick as pick_lib

TINY = dict(width=4, hidden=32, timesteps=2, vote_group=2, input_shape=(16, 16, 3))
CFG = network.network_config(None, ops="snasnet", **TINY)  # the one real-scorer config
IMAGES = np.asarray(jax.random.normal(jax.random.key(0), (1, 8, 16, 16, 3))) * 2.0
KEY = jax.random.key(0)
CHUNK = 4
SCORER = search.ScorerOptions(chunk_size=CHUNK)


class Spy:
  """Records every scorer call; ``fake=True`` replaces the scorer by a cheap
  deterministic function of (architecture, id), for tests of search logic."""

  def __init__(self, fake: bool):
    self.fake, self.calls = fake, []
    self.real = score.score_candidates

  def __call__(self, genotypes, images, key, cfg, **kw):
    arch = np.asarray(kw["arch"])
    ids = np.asarray(kw["candidate_ids"])
    self.calls.append(dict(arch=arch, ids=ids, cfg=cfg))
    if not self.fake:
      return self.real(genotypes, images, key, cfg, **kw)
    w = np.random.default_rng(1).normal(size=arch.shape[1:])
    scores = (arch * w).sum(axis=(1, 2, 3)) + 1e-3 * (ids % 997)
    return score.ScoreResult(scores.astype(np.float64), np.zeros(len(ids), bool))

  def genotypes(self, call) -> np.ndarray:
    """[N, L, 4, 4] genotypes of a call's one-hot op weights."""
    arch = call["arch"]
    pad = np.zeros(arch.shape[:2] + (12 - arch.shape[2], arch.shape[3]), arch.dtype)
    return genotype_lib.genotypes_from_arch_weights(np.concatenate([arch, pad], axis=2))


@pytest.fixture
def spy(monkeypatch):
  s = Spy(fake=False)
  monkeypatch.setattr(score, "score_candidates", s)
  return s


@pytest.fixture
def fake(monkeypatch):
  s = Spy(fake=True)
  monkeypatch.setattr(score, "score_candidates", s)
  return s


# ----------------------------------------------------------------------------
# Budget.

@pytest.mark.slow
def test_spikenas_never_scores_over_budget_candidates(spy):
  pool, _ = search.candidate_pool(CFG.ops, False, 8, np.random.default_rng([0, 0]))
  p0 = memory.param_count(pool, CFG)
  budget = int(np.median(p0))  # about half of step 0 is over budget
  res = search.spikenas_search(IMAGES, KEY, CFG, num_candidates=8,
                               budget=Budget(max_params=budget), scorer=SCORER)
  scored = np.concatenate([spy.genotypes(c) for c in spy.calls])
  assert len(scored) == res.candidates_scored == len(res.records)
  assert (memory.param_count(scored, CFG) <= budget).all()
  assert all(r.params <= budget for r in res.records)
  assert res.candidates_skipped >= int((p0 > budget).sum()) > 0
  assert res.params <= budget and res.budget_params == budget
  assert res.params == int(memory.param_count(genotype_lib.as_genotypes([res.genotype], CFG), CFG)[0])
  # Over-budget step-0 cells never reached the scorer.
  over = set(genotype_lib.genotype_key(pool[p0 > budget]).tolist())
  step0 = scored[:int((p0 <= budget).sum()), 0]
  assert not over & set(genotype_lib.genotype_key(step0).tolist())


@pytest.mark.parametrize("bits", [32, 8, 4])
def test_byte_budget_counts_weight_bits(fake, bits):
  cfg = network.network_config(None, ops="spikenas", **TINY)
  space = search.search_space(cfg.ops, False)
  p = memory.param_count(space, cfg)
  budget = int(memory.weight_bytes(int(np.quantile(p, 0.3)), bits))
  res = search.spikenas_search(IMAGES, KEY, cfg, num_candidates=64,
                               budget=Budget(max_bytes=budget, weight_bits=bits), scorer=SCORER)
  scored = np.concatenate([fake.genotypes(c) for c in fake.calls])
  assert (memory.weight_bytes(memory.param_count(scored, cfg), bits) <= budget).all()
  assert memory.within_budget(scored, cfg, budget_bytes=budget, weight_bits=bits).all()
  assert res.weight_bytes == res.params * bits // 8 <= budget
  assert res.candidates_skipped > 0 and res.weight_bits == bits


@pytest.mark.parametrize("method", ["random", "spikenas"])
def test_too_small_budget_states_the_minimum(fake, method):
  g, minimum = search.smallest_network(CFG)
  assert minimum == int(memory.param_count(search.search_space(CFG.ops, False), CFG).min())
  fn = search.random_search if method == "random" else search.spikenas_search
  with pytest.raises(ValueError, match=f"minimum {minimum:,} params"):
    fn(IMAGES, KEY, CFG, num_candidates=4, budget=Budget(max_params=minimum - 1))
  with pytest.raises(ValueError, match=f"{minimum * 4 // 8:,} bytes at 4-bit"):
    fn(IMAGES, KEY, CFG, num_candidates=4,
       budget=Budget(max_bytes=minimum * 4 // 8 - 1, weight_bits=4))
  assert not fake.calls
  # Exactly the minimum is admitted.
  search.check_budget(CFG, Budget(max_params=minimum))


@pytest.mark.parametrize("method", ["random", "spikenas"])
def test_infinite_budget_is_no_budget(fake, method):
  fn = search.random_search if method == "random" else search.spikenas_search
  search.check_budget(CFG, Budget(float("inf"), np.inf))
  plain = fn(IMAGES, KEY, CFG, num_candidates=6, scorer=SCORER).summary()
  for budget in (Budget(max_bytes=float("inf")), Budget(max_params=np.inf, weight_bits=32)):
    assert not budget.limited and budget.text() == "no limit"
    res = fn(IMAGES, KEY, CFG, num_candidates=6, scorer=SCORER, budget=budget)
    assert res.budget_params is None and res.budget_bytes is None
    assert res.candidates_skipped == 0
    summary = res.summary()
    assert {k: v for k, v in summary.items() if k != "timing"} == \
        {k: v for k, v in plain.items() if k != "timing"}
    json.dumps(summary, allow_nan=False)  # no Infinity in summary.json


@pytest.mark.parametrize("value", [float("nan"), 0, -1.0, -float("inf"), "8", True])
def test_nan_zero_negative_and_non_numeric_budgets_are_refused_where_made(value):
  # A Budget is checked once, when it is made: no search ever sees a bad one.
  for limit in ("max_params", "max_bytes"):
    with pytest.raises(ValueError, match=limit) as err:
      Budget(**{limit: value})
    assert ("NaN" if value != value else repr(value)) in str(err.value)
  with pytest.raises(ValueError, match="budget_mb"):
    Budget.from_mb(value if value is not True else 0)
  with pytest.raises(ValueError, match="weight_bits"):
    Budget(weight_bits=3)


def test_budget_from_mb_and_fraction_and_its_rule():
  space = memory.space_range(CFG, 8)
  half = Budget.from_fraction(space, 0.5)
  assert half.weight_bits == 8 and half.max_params is None
  assert half.max_bytes == space.budget_bytes(0.5)
  mb = Budget.from_mb(half.max_bytes / 1e6, 8, max_params=10 ** 9)
  assert mb.max_bytes == half.max_bytes and mb.max_params == 10 ** 9
  cells = search.search_space(CFG.ops, False)
  params = memory.param_count(cells, CFG)
  np.testing.assert_array_equal(half.fits(cells, CFG), params * 8 // 8 <= half.max_bytes)
  np.testing.assert_array_equal(half.fits_params(params), half.fits(cells, CFG))
  assert "bytes" in half.text() and "8-bit" in half.text()
  with pytest.raises(dataclasses.FrozenInstanceError):
    half.max_bytes = 1


# ----------------------------------------------------------------------------
# SpikeNAS structure.

def test_candidate_pool_dedupes_and_enumerates_small_spaces():
  pool, enumerated = search.candidate_pool("spikenas", False, 64, np.random.default_rng(0))
  assert enumerated and len(pool) == 64
  pool, enumerated = search.candidate_pool("snasnet", False, 50, np.random.default_rng(0))
  keys = genotype_lib.genotype_key(genotype_lib.canonical(pool))
  assert not enumerated and len(pool) == 50 and len(set(keys.tolist())) == 50
  assert genotype_lib.is_valid(pool).all()
  assert (genotype_lib.canonical(pool) == pool).all()


def test_spikenas_consecutive_per_cell_steps_dedupe_and_incumbent(fake):
  cfg = network.network_config(None, ops="snasnet", cells_per_stage=2, **TINY)
  res = search.spikenas_search(IMAGES, KEY, cfg, num_candidates=20, scorer=SCORER)
  assert len(res.steps) == cfg.num_cells == 4
  by_step, by_id = {}, {}
  for call in fake.calls:  # calls run costliest first, not in id order
    for cid, g in zip(call["ids"], fake.genotypes(call)):
      by_step.setdefault(int(cid) // search.ID_STRIDE, []).append(g)
      by_id[int(cid)] = g
  score_of = {r.candidate_id: r.score for r in res.records}
  chosen, chosen_id = None, None
  for step, gs in sorted(by_step.items()):
    gs = np.stack(gs)
    keys = genotype_lib.genotype_key(genotype_lib.canonical(gs[:, step]))
    assert len(set(keys.tolist())) == len(gs)  # no equivalent cell twice in a step
    if step == 0:
      assert (gs == gs[:, :1]).all()  # one genotype shared by all cells
    else:
      assert (gs[:, :step] == chosen[:step]).all()  # earlier cells fixed
      assert (gs[:, step:] == gs[:, step:step + 1]).all()  # later cells take the candidate
      # The incumbent's network is the previous choice: never scored again.
      assert not (gs == chosen).all(axis=(1, 2, 3)).any()
    rows = [r for r in res.records if r.step == step]
    best = rows[int(np.argmax([r.score for r in rows]))]
    if chosen_id is None or best.score > score_of[chosen_id]:  # it competes with its score
      chosen, chosen_id = by_id[best.candidate_id], best.candidate_id
    assert res.steps[step]["best_id"] == chosen_id
    assert res.steps[step]["incumbent_kept"] == (step > 0 and chosen_id < step * search.ID_STRIDE)
  assert res.genotype == search.arch_strings(chosen[None])[0]
  assert res.candidates_scored == sum(len(v) for v in by_step.values()) == len(res.records)
  # The pick is the best of every evaluation, and the step choices never fall.
  assert res.score == score_of[chosen_id] == max(score_of.values())
  step_scores = [s["score"] for s in res.steps]
  assert step_scores == sorted(step_scores)
  pick = search.describe_pick(res)
  assert pick["rank"] == 1 and pick["evaluations"] == len(res.records)
  assert "highest score of all evaluations" in pick["rule"]


# ----------------------------------------------------------------------------
# LightSNN.

@pytest.mark.parametrize("backward, expected", [(True, 60), (False, 30)])
def test_lightsnn_evaluation_count_one_call_per_round(fake, backward, expected):
  cfg = network.network_config(None, ops="lightsnn", backward=backward, **TINY)
  res = search.lightsnn_prune(IMAGES, KEY, cfg, candidate_id=7, scorer=SCORER)
  assert res.candidates_scored == res.evaluations == expected
  assert res.extra_evaluations == 1
  edges = cfg.num_edges
  assert [s["evaluations"] for s in res.steps] == [3 * edges, 2 * edges]
  assert len(fake.calls) == 2 + 1  # one scorer call per round, then the final network
  for call in fake.calls:
    assert (call["ids"] == 7).all()  # one supernet's weights for every evaluation
  a = fake.calls[0]["arch"]
  assert a.shape == (3 * edges, cfg.num_cells, edges, 2)
  # Edge output = mean over active ops, zero included: a row sums to
  # (active non-zero ops) / (active ops).
  sums = np.unique(np.round(a.sum(-1).astype(np.float64), 4))
  np.testing.assert_array_equal(sums, [0.5, 0.6667, 1.0])
  assert res.genotype == genotype_lib.format_genotype(
      genotype_lib.canonical(genotype_lib.parse_genotype(res.genotype, cfg.ops)))
  # The rule: on each edge the op whose removal scores highest is dropped.
  r0 = [r for r in res.records if r.step == 0]
  e0 = [r for r in r0 if r.genotype.split(":")[1].split(",")[1:] == ["012"] * (edges - 1)]
  assert len(e0) == 3
  dropped = ("zero", "skip", "conv3x3")[int(np.argmax([r.score for r in e0]))]
  assert res.steps[0]["dropped"]["0->1"] == dropped


def test_lightsnn_resumes_from_the_store(fake, tmp_path):
  cfg = network.network_config(None, ops="lightsnn", backward=True, **TINY)
  with score_store.open_store(str(tmp_path)) as store:
    a = search.lightsnn_prune(IMAGES, KEY, cfg, store=store)
  n = len(fake.calls)
  with score_store.open_store(str(tmp_path)) as store:
    b = search.lightsnn_prune(IMAGES, KEY, cfg, store=store)
  assert len(fake.calls) == n and b.loaded_from_store == 61 and b.scored_this_run == 0
  assert {k: v for k, v in a.summary().items() if k != "timing"} == \
      {k: v for k, v in b.summary().items() if k != "timing"}


@pytest.mark.slow
def test_lightsnn_real_scorer_forward():
  cfg = network.network_config(None, ops="lightsnn", **TINY)
  res = search.lightsnn_prune(IMAGES, KEY, cfg, scorer=SCORER)
  assert res.candidates_scored == 30 and len(res.records) == 31
  assert np.isfinite(res.score) or res.singular
  mask_params = search.supernet_param_count(np.ones((1, 6, 3), bool), cfg)[0]
  # Removing zero or skip keeps every parameter; removing conv3x3 drops some.
  assert res.records[0].params == res.records[1].params == mask_params
  assert res.records[2].genotype.startswith("mask:01,") and res.records[2].params < mask_params
  # One-hot masks count like the memory model.
  g = genotype_lib.parse_genotype("0222/0022/0002/0000", cfg.ops)
  onehot = np.zeros((1, 6, 3), bool)
  for e, (i, j) in enumerate(genotype_lib.FORWARD_EDGES):
    onehot[0, e, g[i, j]] = True
  assert search.supernet_param_count(onehot, cfg)[0] == memory.param_count(g, cfg)


# ----------------------------------------------------------------------------
# Random search, result fields, store.

def test_random_search_argmax_duplicates_and_fields(spy):
  texts = ["0303/0030/0002/0000", "0303/0030/0002/0000", "0100/0010/0001/0000",
           "0203/0040/0001/0000"]
  res = search.random_search(IMAGES, KEY, CFG, genotypes=texts, scorer=SCORER)
  scores = np.array([r.score for r in res.records])
  assert [r.candidate_id for r in res.records] == [0, 1, 2, 3]
  assert res.score == scores.max() and res.genotype == texts[int(np.argmax(scores))]
  assert scores[0] != scores[1]  # a duplicate is scored again with fresh weights
  ref = spy.real(texts, IMAGES, KEY, CFG, chunk_size=CHUNK)
  np.testing.assert_array_equal(ref.scores, scores)
  summary = json.loads(json.dumps(res.summary()))
  for name in ("method", "genotype", "score", "params", "weight_bytes", "weight_bits",
               "budget_params", "budget_bytes", "candidates_scored", "candidates_skipped",
               "evaluations", "steps"):
    assert name in summary
  assert set(summary["timing"]) == set(search.SearchResult.TIMING_FIELDS)
  assert res.compile_seconds > 0 and res.scored_this_run == 4

  res = search.random_search(IMAGES, KEY, CFG, num_candidates=12, seed=3, scorer=SCORER)
  sampled = search.arch_strings(genotype_lib.as_genotypes(genotype_space.sample_genotypes(
      np.random.default_rng(3), 12, CFG.ops), CFG))
  assert [r.genotype for r in res.records] == sampled
  assert res.score == max(r.score for r in res.records)


def test_store_resumes_without_rescoring_and_refuses_other_configs(fake, tmp_path):
  with score_store.open_store(str(tmp_path)) as store:
    a = search.spikenas_search(IMAGES, KEY, CFG, num_candidates=10, store=store,
                               scorer=SCORER)
  n = len(fake.calls)
  with score_store.open_store(str(tmp_path)) as store:
    b = search.spikenas_search(IMAGES, KEY, CFG, num_candidates=10, store=store,
                               scorer=search.ScorerOptions(chunk_size=3))  # chunking: same scores
    assert store.count() == a.evaluations
  assert len(fake.calls) == n and b.scored_this_run == 0
  assert b.loaded_from_store == a.evaluations
  assert {k: v for k, v in a.summary().items() if k != "timing"} == \
      {k: v for k, v in b.summary().items() if k != "timing"}
  with score_store.open_store(str(tmp_path)) as store:
    with pytest.raises(score_store.FingerprintMismatch, match=str(tmp_path)):
      search.spikenas_search(IMAGES, KEY, CFG, num_candidates=10, seed=1, store=store)
    with pytest.raises(score_store.StoreConflict, match="another search"):
      store.add(a.records[:1])  # a row is never stored twice
    with pytest.raises(score_store.StoreConflict, match="stored as"):
      store.lookup(0, [a.records[0].candidate_id], ["0100/0010/0001/0000"])
    assert store.count() == a.evaluations


# ----------------------------------------------------------------------------
# launch.search end to end.

LAUNCH_TINY = ["--config.network.width=4", "--config.network.hidden=32",
               "--config.network.timesteps=2", "--config.scoring.batch_size=8",
               "--config.scoring.repeats=1", "--config.scoring.chunk_size=2",
               "--config.method=spikenas", "--config.network.ops=snasnet",
               "--config.num_candidates=6"]


def _launch(args, env):
  return subprocess.run([sys.executable, "-m", "launch.search", *args], capture_output=True,
                        text=True, timeout=600, env=env)


def _stored(workdir) -> list[tuple]:
  path = os.path.join(workdir, score_store.STORE_NAME)
  if not os.path.exists(path):
    return []
  try:
    with sqlite3.connect(path, timeout=5) as db:
      return db.execute("SELECT step, candidate_id FROM scores").fetchall()
  except sqlite3.OperationalError:  # table not created yet
    return []


# The killed run: launch.search itself, stopped for good after its first
# committed chunk, so that the kill lands mid-search on any machine.
_SLOW = textwrap.dedent("""
    import runpy, sys, time
    from snnax_nas import score_store
    add = score_store.ScoreStore.add
    def add_then_wait(self, rows):
      add(self, rows)
      while True:
        time.sleep(0.05)
    score_store.ScoreStore.add = add_then_wait
    sys.argv = ["launch.search"] + sys.argv[1:]
    runpy.run_module("launch.search", run_name="__main__")
""")


@pytest.mark.slow
def test_launch_resumes_after_kill_9_with_the_same_result(tmp_path, random_npz, env):
  args = [f"--config.dataset=npz:{random_npz}", *LAUNCH_TINY]
  ref = _launch([*args, f"--workdir={tmp_path}/ref"], env)
  assert ref.returncode == 0, ref.stderr
  assert "spikenas found" in ref.stdout

  work = str(tmp_path / "resumed")
  proc = subprocess.Popen([sys.executable, "-c", _SLOW, *args, f"--workdir={work}"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 900  # a hang guard: the first chunk commits in seconds
  while len(_stored(work)) < 2 and time.time() < deadline and proc.poll() is None:
    time.sleep(0.05)
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  before = _stored(work)
  assert len(before) >= 2, "the first chunk was never stored"
  assert not os.path.exists(os.path.join(work, "summary.json"))

  resumed = _launch([*args, f"--workdir={work}"], env)
  assert resumed.returncode == 0, resumed.stderr
  with open(tmp_path / "ref" / "summary.json") as fa, open(os.path.join(work, "summary.json")) as fb:
    a, b = json.load(fa), json.load(fb)
  timing_a, timing_b = a.pop("timing"), b.pop("timing")
  assert a == b
  after = _stored(work)
  total = a["evaluations"] + a["extra_evaluations"]
  assert len(after) == len(set(after)) == total  # nothing scored twice
  assert timing_b["loaded_from_store"] == len(before)
  assert timing_b["scored_this_run"] == total - len(before)
  assert timing_a["scored_this_run"] == total
  with open(tmp_path / "ref" / "scores.csv") as fa, open(os.path.join(work, "scores.csv")) as fb:
    assert fa.read() == fb.read()
  assert os.path.getsize(os.path.join(work, "search.png")) > 0

  other = _launch([*args, "--config.seed=1", f"--workdir={work}"], env)
  assert other.returncode != 0 and work in other.stderr.strip().splitlines()[-1]


def _job_config(dataset, **dotted):
  """The search config of LAUNCH_TINY with ``dotted`` fields set."""
  config = configs.get_config("search")
  config.update(dataset=dataset, method="spikenas", num_candidates=6)
  config.network.update(width=4, hidden=32, timesteps=2, ops="snasnet")
  config.scoring.update(batch_size=8, repeats=1, chunk_size="2")
  return configs.set_fields(config, dotted)


def test_scorer_options_check_their_fields_and_name_what_changes_scores():
  assert search.ScorerOptions().score_args() == {}  # a store's fingerprint at the defaults
  assert search.ScorerOptions(conv_dtype="float32").score_args() == {}
  assert search.ScorerOptions(draws=2, conv_dtype="bfloat16").score_args() == {
      "draws": 2, "conv_dtype": "bfloat16"}
  for field, value, match in (("kernel", "nosuch", "unknown kernel 'nosuch'"),
                              ("chunk_size", 0, "chunk_size must be an integer >= 1, got 0"),
                              ("draws", 1.5, "draws must be"),
                              ("conv_dtype", "float16", "float16")):
    with pytest.raises(ValueError, match=match):
      search.ScorerOptions(**{field: value})


@pytest.mark.parametrize("fields, word", [
    ({"method": "evolution"}, "evolution"),
    ({"network.ops": "skip,conv9x9"}, "conv9x9"),
    ({"dataset": "nosuchdata"}, "nosuchdata"),
    ({"method": "random", "genotypes": "GFILE"}, "0303/003/2002/0200"),
    ({"budget.params": 100}, "minimum"),
    ({"budget.mb": float("nan")}, "budget_mb is NaN"),
    ({"energy.accumulate_pj": -1.0}, "--config.energy.accumulate_pj=-1.0"),
    ({"workdir": "FILE/sub"}, "sub"),
])
def test_search_job_refuses_bad_input_before_writing(tmp_path, random_npz, fields, word):
  (tmp_path / "g.txt").write_text("0303/0030/2002/0200\n0303/003/2002/0200\n")
  (tmp_path / "file").write_text("not a directory")
  fields = {k: v.replace("GFILE", str(tmp_path / "g.txt")).replace("FILE", str(tmp_path / "file"))
            if isinstance(v, str) else v for k, v in fields.items()}
  workdir = fields.pop("workdir", str(tmp_path / "w"))
  config = _job_config(fields.pop("dataset", f"npz:{random_npz}"), **fields)
  with pytest.raises(ValueError, match=re.escape(word)) as info:
    search_job.run(config, workdir)
  assert "\n" not in str(info.value)  # one line
  assert not (tmp_path / "w" / "summary.json").exists()
  assert not (tmp_path / "w" / score_store.STORE_NAME).exists()


def _launch_two_processes(args, env, port):
  procs = [subprocess.Popen(
      [sys.executable, "-m", "launch.search", *args, "--num_processes=2", f"--process_id={p}",
       f"--coordinator_address=127.0.0.1:{port}"], env=env, stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True) for p in (0, 1)]
  for p in procs:
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err


@pytest.mark.slow
@pytest.mark.parametrize("method", [["--config.method=spikenas"],
                                    ["--config.method=lightsnn", "--config.network.ops=lightsnn",
                                     "--config.network.backward=False"]])
def test_two_processes_search_like_one(tmp_path, random_npz, env, free_port, method):
  args = [f"--config.dataset=npz:{random_npz}", *LAUNCH_TINY, *method]
  ref = _launch([*args, f"--workdir={tmp_path}/one"], env)
  assert ref.returncode == 0, ref.stderr
  _launch_two_processes([*args, f"--workdir={tmp_path}/two"], env, free_port)
  load = lambda name: json.load(open(tmp_path / name / "summary.json"))
  one, two = load("one"), load("two")
  for field in ("genotype", "params", "evaluations", "candidates_scored"):
    assert two[field] == one[field], field
  np.testing.assert_allclose(two["score"], one["score"], atol=1e-5)
  assert two["timing"]["scored_this_run"] == one["timing"]["scored_this_run"]
  stored = len(_stored(tmp_path / "two"))
  assert stored == one["timing"]["scored_this_run"]  # process 0 stored every row, once

  # Rerun: process 0 loads every row and broadcasts it; nothing is rescored.
  os.remove(tmp_path / "two" / "summary.json")
  _launch_two_processes([*args, f"--workdir={tmp_path}/two"], env, free_port)
  again = load("two")
  assert again["timing"]["scored_this_run"] == 0
  assert again["genotype"] == one["genotype"]
  np.testing.assert_allclose(again["score"], one["score"], atol=1e-5)


def test_search_job_budget_mb_inf_is_no_budget(tmp_path, random_npz):
  # inf MB once ended in an OverflowError; it means no limit, as None does.
  # energy: 1 pJ per accumulate, MACs free: the estimate's energy is its accumulates.
  config = _job_config(f"npz:{random_npz}", **{"budget.mb": float("inf"),
                                                "energy.accumulate_pj": 1.0,
                                                "energy.mac_pj": 0.0})
  result = search_job.run(config, str(tmp_path / "w"))
  assert config.network.backward is None  # the caller's config: not resolved in place
  with open(tmp_path / "w" / "summary.json") as f:
    summary = json.load(f)
  assert summary["budget_bytes"] is None and summary["candidates_skipped"] == 0
  assert summary["genotype"] == result.genotype
  text = search_job.report(result, str(tmp_path / "w"))
  assert "spikenas found" in text
  # The pick's rule, rank and margins: in summary.json and on the last lines.
  assert summary["pick"] == json.loads(json.dumps(search.describe_pick(result)))
  assert summary["pick"]["rank"] == 1
  assert text.splitlines()[-2].startswith("rule: the highest score of all evaluations")
  assert text.splitlines()[-1].startswith("what the score adds: ")
  ops = summary["operations_at_init"]
  assert ops["estimate"] == "initialisation" and ops["macs"] > 0
  assert ops["energy_pj"] == pytest.approx(ops["sops"] + ops["adds"])
  # The run read back gives its config to derive the next one from.
  run = workdir_lib.load_run(str(tmp_path / "w"))
  derived = run.job_config()
  assert derived.network.backward is False and derived.num_candidates == 6  # resolved
  derived.seed = 1
  with pytest.raises(ValueError, match="config.seed 0 -> 1"):
    search_job.run(derived, str(tmp_path / "w"))


def test_best_index_refuses_a_field_of_singular_kernels():
  from snnax_nas.search import result as result_lib
  assert result_lib.best_finite_index(np.array([-np.inf, np.nan, -3.0, -2.0, -2.0])) == 3
  with pytest.raises(ValueError, match="all 3 candidates scored have a singular kernel"):
    result_lib.best_finite_index(np.array([-np.inf, -np.inf, np.nan]))


def test_results_store_faults_truncated_file_and_wal_left_behind(tmp_path):
  """Fault injection: a store whose WAL was left by a killed process still
  holds every committed row; a truncated store is refused in one line."""
  import shutil
  rows = [score_store.Row(0, i, f"g{i}", -float(i), False, 100 + i, 400 + 4 * i) for i in range(50)]
  live = tmp_path / "live"
  live.mkdir()
  store = score_store.open_store(str(live))
  store.add(rows)  # committed, not checkpointed into the main file: the WAL holds it
  killed = tmp_path / "killed"
  killed.mkdir()
  for name in os.listdir(live):  # a copy taken as if the process died here
    shutil.copy(live / name, killed / name)
  store.close()
  assert any(name.endswith("-wal") for name in os.listdir(killed))
  with score_store.open_store(str(killed)) as again:
    assert again.rows() == rows
  (tmp_path / "whole").mkdir()
  with score_store.open_store(str(tmp_path / "whole")) as store:
    store.add(rows)
  path = tmp_path / "whole" / score_store.STORE_NAME
  with open(path, "r+b") as f:
    f.truncate(3000)
  with pytest.raises(ValueError, match=r"cannot open score store .*move it aside") as e:
    with score_store.open_store(str(tmp_path / "whole")) as store:
      store.rows()
  assert "\n" not in str(e.value)


# ----------------------------------------------------------------------------
# The pick against every evaluation (the rest in test_search_pick.py).

def test_lightsnn_pick_has_no_rank_among_its_evaluations(fake):
  cfg = network.network_config(None, ops="lightsnn", backward=False, **TINY)
  res = search.lightsnn_prune(IMAGES, KEY, cfg, scorer=SCORER)
  pick = search.describe_pick(res)
  assert pick["rank"] is None and pick["same_size"] is None and "pruning" in pick["rule"]
  assert pick_lib.pick_lines(pick, res) == [f"rule: {pick['rule']}"]
  assert pick_lib.pick_caption(pick) == ""
