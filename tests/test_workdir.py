"""Workdir records (snnax_nas.workdir): claim, refuse, resume, load_run."""

from __future__ import annotations

import json
import os

import pytest

from snnax_nas import configs
from snnax_nas import genotype as genotype_lib
from snnax_nas import network
from snnax_nas import ops as ops_lib
from snnax_nas import workdir as workdir_lib
from snnax_nas.jobs import search as search_job

CFG = network.network_config(None, width=4, hidden=32, timesteps=2, input_shape=(16, 16, 3))
CONFIG = {"dataset": "npz:x.npz", "seed": 0, "network": {"width": 4, "ops": "snasnet"}}


def _record(job="search", config=CONFIG, cfg=CFG, inputs=None):
  return workdir_lib.make_record(job, config, cfg, inputs or {})


def test_claim_writes_the_record_and_the_same_config_resumes(tmp_path):
  work = str(tmp_path / "a" / "b")
  assert workdir_lib.claim(work, _record()) is True
  with open(os.path.join(work, "config.json")) as f:
    saved = json.load(f)
  assert saved["job"] == "search" and saved["config"] == CONFIG
  assert saved["network"]["width"] == 4 and saved["network"]["input_shape"] == [16, 16, 3]
  assert workdir_lib.claim(work, _record()) is False  # a resume


def test_other_config_is_refused_naming_the_fields(tmp_path):
  work = str(tmp_path)
  workdir_lib.claim(work, _record())
  other = dict(CONFIG, seed=1, network={"width": 8, "ops": "snasnet"})
  with pytest.raises(ValueError) as e:
    workdir_lib.claim(work, _record(config=other, cfg=network.network_config(
        None, width=8, hidden=32, timesteps=2, input_shape=(16, 16, 3))))
  msg = str(e.value)
  assert "\n" not in msg and work in msg and "--workdir" in msg
  assert "config.seed 0 -> 1" in msg and "config.network.width 4 -> 8" in msg
  assert "network.width 4 -> 8" in msg
  assert "config.dataset" not in msg  # only the fields that differ


def test_other_job_is_refused(tmp_path):
  workdir_lib.claim(str(tmp_path), _record("search"))
  with pytest.raises(ValueError, match="holds a search run, not a score run"):
    workdir_lib.claim(str(tmp_path), _record("score"))


def test_a_changed_input_file_is_refused(tmp_path):
  gfile = tmp_path / "g.txt"
  gfile.write_text("0303/0030/2002/0200\n")
  work = str(tmp_path / "w")
  workdir_lib.claim(work, _record(inputs={"genotypes": str(gfile)}))
  assert not workdir_lib.claim(work, _record(inputs={"genotypes": str(gfile)}))
  gfile.write_text("0302/0030/0003/0000\n")
  with pytest.raises(ValueError, match="inputs.genotypes"):
    workdir_lib.claim(work, _record(inputs={"genotypes": str(gfile)}))


def test_outputs_without_a_record_are_not_overwritten(tmp_path):
  (tmp_path / "scores.csv").write_text("old\n")
  with pytest.raises(ValueError, match="scores.csv"):
    workdir_lib.claim(str(tmp_path), _record("score"))
  assert not (tmp_path / "config.json").exists()


def test_release_and_uncreatable_workdir(tmp_path):
  workdir_lib.claim(str(tmp_path), _record())
  workdir_lib.release(str(tmp_path))
  assert workdir_lib.claim(str(tmp_path), _record("score")) is True
  (tmp_path / "file").write_text("x")
  with pytest.raises(ValueError, match="sub"):
    workdir_lib.claim(str(tmp_path / "file" / "sub"), _record())
  with pytest.raises(ValueError, match="unknown job"):
    _record("evaluate")


def test_network_json_round_trip():
  cfg = network.network_config(None, width=4, hidden=32, timesteps=2, input_shape=(16, 16, 3),
                               ops="skip,conv3x3@0.5,conv3x3", backward=True, dropout=0.25)
  data = json.loads(json.dumps(configs.network_to_json(cfg)))
  assert configs.network_from_json(data) == cfg
  assert configs.network_from_json(data).ops == ops_lib.op_set("skip,conv3x3@0.5,conv3x3")


def test_network_from_job_config_takes_the_dataset_rules():
  class Info:
    image_shape, num_classes = (64, 64, 3), 200
  cfg = configs.network_from_job_config(
      {"width": 8, "ops": "snasnet", "backward": None, "hidden": 64}, Info, backward=True)
  assert (cfg.stem_stride, cfg.vote_group, cfg.num_classes) == (2, 5, 200)
  assert cfg.backward and cfg.width == 8 and cfg.hidden == 64
  with pytest.raises(ValueError, match="vote_group"):
    configs.network_from_job_config({"vote_group": 3}, Info)


def test_load_run_of_a_train_record(tmp_path):
  config = {"genotype": "0303/0030/2002/0200", "dataset": "cifar10", "network": {"width": 4}}
  workdir_lib.claim(str(tmp_path), _record("train", config=config))
  run = workdir_lib.load_run(str(tmp_path))
  assert run.job == "train" and run.network == CFG and run.summary is None
  assert run.genotypes == ("0303/0030/2002/0200",) and run.config.network.width == 4
  with pytest.raises(ValueError, match="holds no run"):
    workdir_lib.load_run(str(tmp_path / "nothing"))


def test_load_run_round_trip_of_a_search(tmp_path, random_npz):
  work = tmp_path / "search"
  config = configs.get_config("search")
  config.update(dataset=f"npz:{random_npz}", method="random", num_candidates=2)
  config.network.update(width=4, hidden=32, timesteps=2, second_pool=4)
  config.scoring.update(batch_size=8, repeats=1, chunk_size="2")
  search_job.run(config, str(work))
  run = workdir_lib.load_run(str(work))
  assert run.job == "search" and run.config.method == "random"
  assert run.network == network.network_config(
      None, width=4, hidden=32, timesteps=2, second_pool=4, input_shape=(16, 16, 3),
      ops="snasnet", cells_per_stage=2)
  summary = json.load(open(work / "summary.json"))
  assert run.genotypes == (summary["genotype"],)
  assert configs.network_from_json(summary["network"]) == run.network
  assert genotype_lib.as_genotypes(list(run.genotypes), run.network).shape == (1, 4, 4, 4)
  with open(work / "config.json") as f:
    assert json.load(f)["inputs"]["dataset"] == workdir_lib.sha256_of(random_npz)


def test_a_workdir_in_use_refuses_a_second_job(tmp_path):
  work = str(tmp_path / "w")
  with workdir_lib.lock(work):
    with pytest.raises(ValueError, match="in use by another running job"):
      with workdir_lib.lock(work):
        pass
  with workdir_lib.lock(work):  # released at the end of the first
    pass
  # A workdir the lock created and the job left empty is removed again.
  assert not os.path.exists(work)
  os.makedirs(work)
  (tmp_path / "w" / "config.json").write_text("{}")
  with workdir_lib.lock(work):
    pass
  assert sorted(os.listdir(work)) == [".lock", "config.json"]


def test_the_lock_of_a_killed_job_is_gone(tmp_path):
  import subprocess
  import sys
  import textwrap
  work = str(tmp_path / "w")
  holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
      import sys
      from snnax_nas import workdir
      with workdir.lock({work!r}):
        print("held", flush=True)
        sys.stdin.read()  # holds the lock until the test kills it
  """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(ValueError, match="in use"):
      with workdir_lib.lock(work):
        pass
  finally:
    holder.kill()
    holder.wait()
  with workdir_lib.lock(work):  # kill -9 released it
    pass
