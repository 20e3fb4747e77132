"""The score job in process (:func:`snnax_nas.jobs.score.run`); launch.score in
subprocesses for several processes (marked slow)."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from snnax_nas import configs
from snnax_nas import network
from snnax_nas import workdir as workdir_lib
from snnax_nas.jobs import score as score_job

TINY = ["--config.network.width=4", "--config.network.hidden=32", "--config.network.timesteps=2",
        "--config.scoring.batch_size=8", "--config.scoring.repeats=1",
        "--config.scoring.chunk_size=4"]


def _config(**fields):
  """The score config of TINY with ``fields`` (``network__backward``: dotted)."""
  config = configs.get_config("score")
  config.network.update(width=4, hidden=32, timesteps=2)
  config.scoring.update(batch_size=8, repeats=1, chunk_size="4")  # as the flag gives it
  return configs.set_fields(config, {k.replace("__", "."): v for k, v in fields.items()})


def _run(args):
  return subprocess.run([sys.executable, "-m", "launch.score", *args], capture_output=True,
                        text=True, timeout=600)


def test_scores_a_genotype_file_with_backward_edges(tmp_path, random_npz):
  gfile = tmp_path / "g.txt"
  gfile.write_text("# two cells\n0303/0030/2002/0200\n\n0302/0030/0003/0000\n")
  result = score_job.run(_config(dataset=f"npz:{random_npz}", genotypes=str(gfile),
                                 network__backward=True), str(tmp_path / "w"))
  assert "scored 2 candidates (2 in this run" in score_job.report(result, str(tmp_path / "w"))
  rows = list(csv.DictReader(open(tmp_path / "w" / "scores.csv")))
  assert [r["genotype"] for r in rows] == ["0303/0030/2002/0200", "0302/0030/0003/0000"]
  assert all(np.isfinite(float(r["score"])) or r["singular"] == "1" for r in rows)
  assert int(rows[0]["params"]) > int(rows[1]["params"])  # 6 vs 4 conv edges
  assert int(rows[0]["memory_bytes"]) == 4 * int(rows[0]["params"])


@pytest.mark.parametrize("fields, word", [
    ({"genotypes": "MISSING"}, "missing.txt"),
    ({"network__ops": "skip,conv9x9"}, "conv9x9"),
    ({"dataset": "nosuchdata"}, "nosuchdata"),
])
def test_bad_input_is_refused_before_writing(tmp_path, fields, word):
  fields = {k: v.replace("MISSING", str(tmp_path / "missing.txt")) for k, v in fields.items()}
  with pytest.raises(ValueError, match=word):
    score_job.run(_config(**fields), str(tmp_path / "w"))
  assert not (tmp_path / "w" / "scores.csv").exists()
  assert not (tmp_path / "w" / "config.json").exists()


def test_malformed_genotype_in_file(tmp_path, random_npz):
  gfile = tmp_path / "g.txt"
  gfile.write_text("0303/0030/2002/0200\n0303/003/2002/0200\n")
  with pytest.raises(ValueError, match="line 2: .*0303/003/2002/0200"):
    score_job.run(_config(dataset=f"npz:{random_npz}", genotypes=str(gfile)),
                  str(tmp_path / "w"))


@pytest.mark.slow
def test_two_processes_match_one_and_a_crashed_run_resumes(tmp_path, random_npz, free_port):
  # Every row scored (the sample holds a canonical duplicate): the process
  # shares and the resume count rows, as the reference's sampler keeps them.
  base = [f"--config.dataset=npz:{random_npz}", "--config.num_candidates=6",
          "--config.score_duplicates=true", "--config.scoring.chunk_size=2", *TINY[:-1]]
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
  config = _config(dataset=f"npz:{random_npz}", num_candidates=2)
  score_job.run(config, str(tmp_path / "w"))
  config.seed = 1
  with pytest.raises(ValueError, match=r"other flags .*config.seed 0 -> 1"):
    score_job.run(config, str(tmp_path / "w"))


def test_a_search_workdir_is_refused_not_overwritten(tmp_path, random_npz):
  work = tmp_path / "search"
  cfg = network.network_config(None, width=4, hidden=32, timesteps=2, input_shape=(16, 16, 3))
  workdir_lib.claim(str(work), workdir_lib.make_record(
      "search", {"dataset": f"npz:{random_npz}", "network": {"width": 4}}, cfg, {}))
  (work / "scores.csv").write_text("the search's scores\n")
  with pytest.raises(ValueError, match="search run.*--workdir"):
    score_job.run(_config(dataset=f"npz:{random_npz}", num_candidates=2), str(work))
  assert (work / "scores.csv").read_text() == "the search's scores\n"
  assert json.load(open(work / "config.json"))["job"] == "search"


def test_canonical_duplicates_are_scored_once_unless_asked(tmp_path, random_npz):
  # Row 3 repeats row 1; row 4 is row 2 with a dead edge (0 -> 1 feeds nothing).
  gfile = tmp_path / "g.txt"
  gfile.write_text("0302/0030/0003/0000\n0003/0000/0000/0000\n0302/0030/0003/0000\n"
                   "0303/0000/0000/0000\n")
  result = score_job.run(_config(dataset=f"npz:{random_npz}", genotypes=str(gfile)),
                         str(tmp_path / "w"))
  assert result.scored_now == 2 and result.duplicates == 2
  assert "2 row(s) repeat an earlier cell" in score_job.report(result, str(tmp_path / "w"))
  rows = list(csv.DictReader(open(tmp_path / "w" / "scores.csv")))
  assert [r["genotype"] for r in rows] == gfile.read_text().split()
  assert rows[2]["score"] == rows[0]["score"] and rows[3]["score"] == rows[1]["score"]
  # Asked for: every row its own weight draw (candidate id), as SNASNet samples.
  every = score_job.run(_config(dataset=f"npz:{random_npz}", genotypes=str(gfile),
                                score_duplicates=True), str(tmp_path / "w2"))
  assert every.scored_now == 4 and every.duplicates == 0
  assert every.scores[0] != every.scores[2]
  np.testing.assert_array_equal(every.scores[[0, 1]], result.scores[[0, 1]])


def test_a_corrupted_part_row_is_rescored_not_merged(tmp_path, random_npz):
  gfile = tmp_path / "g.txt"
  gfile.write_text("0302/0030/0003/0000\n0003/0000/0000/0000\n")
  config = _config(dataset=f"npz:{random_npz}", genotypes=str(gfile))
  first = score_job.run(config, str(tmp_path / "w"))
  part = tmp_path / "w" / "scores.part0.csv"
  lines = part.read_text().splitlines()
  cols = lines[0].split(",")
  cols[2] = "-4x.2"  # a flipped byte in a score
  part.write_text("\n".join([",".join(cols)] + lines[1:]) + "\n")
  again = score_job.run(config, str(tmp_path / "w"))
  assert again.scored_now == 1
  np.testing.assert_array_equal(again.scores, first.scores)


def test_event_frames_of_another_count_are_refused_before_the_workdir(tmp_path):
  rng = np.random.default_rng(0)
  np.savez(tmp_path / "ev.npz", image=rng.poisson(0.3, (16, 5, 16, 16, 2)).astype(np.float32),
           label=np.arange(16) % 4)
  with pytest.raises(ValueError, match="hold 5 frames per sample but the network runs "
                     "network.timesteps=2"):
    score_job.run(_config(dataset=f"npz:{tmp_path / 'ev.npz'}", num_candidates=2),
                  str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()
