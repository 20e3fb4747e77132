"""launch.score end to end (subprocesses: marked slow)."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from snnax_nas import network
from snnax_nas import workdir as workdir_lib

pytestmark = pytest.mark.slow

TINY = ["--config.network.width=4", "--config.network.hidden=32", "--config.network.timesteps=2",
        "--config.scoring.batch_size=8", "--config.scoring.repeats=1",
        "--config.scoring.chunk_size=4"]


def _run(args):
  return subprocess.run([sys.executable, "-m", "launch.score", *args], capture_output=True,
                        text=True, timeout=600)


def test_scores_a_genotype_file_with_backward_edges(tmp_path, random_npz):
  gfile = tmp_path / "g.txt"
  gfile.write_text("# two cells\n0303/0030/2002/0200\n\n0302/0030/0003/0000\n")
  out = _run([f"--config.dataset=npz:{random_npz}", f"--config.genotypes={gfile}",
              "--config.network.backward=true", f"--workdir={tmp_path}/w", *TINY])
  assert out.returncode == 0, out.stderr
  rows = list(csv.DictReader(open(tmp_path / "w" / "scores.csv")))
  assert [r["genotype"] for r in rows] == ["0303/0030/2002/0200", "0302/0030/0003/0000"]
  assert all(np.isfinite(float(r["score"])) or r["singular"] == "1" for r in rows)
  assert int(rows[0]["params"]) > int(rows[1]["params"])  # 6 vs 4 conv edges
  assert int(rows[0]["memory_bytes"]) == 4 * int(rows[0]["params"])


@pytest.mark.parametrize("args, word", [
    (["--config.genotypes=MISSING"], "missing.txt"),
    (["--config.network.ops=skip,conv9x9"], "conv9x9"),
    (["--config.dataset=nosuchdata"], "nosuchdata"),
])
def test_bad_input_exits_with_one_line(tmp_path, args, word):
  args = [a.replace("MISSING", str(tmp_path / "missing.txt")) for a in args]
  out = _run([f"--workdir={tmp_path}/w", *TINY, *args])
  assert out.returncode != 0
  assert word in out.stderr.strip().splitlines()[-1]
  assert not (tmp_path / "w" / "scores.csv").exists()


def test_malformed_genotype_in_file(tmp_path, random_npz):
  gfile = tmp_path / "g.txt"
  gfile.write_text("0303/0030/2002/0200\n0303/003/2002/0200\n")
  out = _run([f"--config.dataset=npz:{random_npz}", f"--config.genotypes={gfile}",
              f"--workdir={tmp_path}/w", *TINY])
  assert out.returncode != 0 and "0303/003/2002/0200" in out.stderr


def test_two_processes_match_one_and_a_crashed_run_resumes(tmp_path, random_npz, free_port):
  base = [f"--config.dataset=npz:{random_npz}", "--config.num_candidates=6",
          "--config.scoring.chunk_size=2", *TINY[:-1]]
  single = _run([*base, f"--workdir={tmp_path}/one"])
  assert single.returncode == 0, single.stderr
  ref = list(csv.DictReader(open(tmp_path / "one" / "scores.csv")))
  assert len(ref) == 6

  port = free_port
  procs = [subprocess.Popen(
      [sys.executable, "-m", "launch.score", *base, f"--workdir={tmp_path}/two",
       "--num_processes=2", f"--process_id={p}", f"--coordinator_address=127.0.0.1:{port}"],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for p in (0, 1)]
  for p in procs:
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
  two = list(csv.DictReader(open(tmp_path / "two" / "scores.csv")))
  assert [r["genotype"] for r in two] == [r["genotype"] for r in ref]
  np.testing.assert_allclose([float(r["score"]) for r in two], [float(r["score"]) for r in ref],
                             atol=1e-6)
  assert (tmp_path / "two" / "scores.part1.csv").exists()

  # A crash left two scored rows and a torn line: the rerun keeps the rows
  # (a marker score proves the first one is not rescored) and scores the rest.
  # Rows are written costliest candidate first, not in id order.
  crash = tmp_path / "crash"
  crash.mkdir()
  (crash / "config.json").write_text((tmp_path / "one" / "config.json").read_text())
  rows = [r for r in csv.reader(open(tmp_path / "one" / "scores.part0.csv"))]
  rows[0][2] = "123.0"
  with open(crash / "scores.part0.csv", "w", newline="") as f:
    csv.writer(f).writerows(rows[:2])
    f.write("2,0303/00")
  again = _run([*base, f"--workdir={crash}"])
  assert again.returncode == 0, again.stderr
  resumed = list(csv.DictReader(open(crash / "scores.csv")))
  marked = int(rows[0][0])
  assert float(resumed[marked]["score"]) == 123.0
  others = [i for i in range(6) if i != marked]
  np.testing.assert_allclose([float(resumed[i]["score"]) for i in others],
                             [float(ref[i]["score"]) for i in others], atol=1e-6)
  assert "4 in this run" in again.stdout


def test_resuming_with_other_flags_is_refused(tmp_path, random_npz):
  base = [f"--config.dataset=npz:{random_npz}", "--config.num_candidates=2",
          f"--workdir={tmp_path}/w", *TINY]
  assert _run(base).returncode == 0
  out = _run([*base, "--config.seed=1"])
  assert out.returncode != 0 and "other flags" in out.stderr
  assert "config.seed 0 -> 1" in out.stderr.strip().splitlines()[-1]


def test_a_search_workdir_is_refused_not_overwritten(tmp_path, random_npz):
  work = tmp_path / "search"
  cfg = network.network_config(None, width=4, hidden=32, timesteps=2, input_shape=(16, 16, 3))
  workdir_lib.claim(str(work), workdir_lib.make_record(
      "search", {"dataset": f"npz:{random_npz}", "network": {"width": 4}}, cfg, {}))
  (work / "scores.csv").write_text("the search's scores\n")
  out = _run([f"--config.dataset=npz:{random_npz}", "--config.num_candidates=2",
              f"--workdir={work}", *TINY])
  assert out.returncode != 0
  last = out.stderr.strip().splitlines()[-1]
  assert "search run" in last and "--workdir" in last
  assert (work / "scores.csv").read_text() == "the search's scores\n"
  assert json.load(open(work / "config.json"))["job"] == "search"
