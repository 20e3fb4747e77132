import csv
import subprocess
import sys

import numpy as np
import pytest

TINY = ["--width=4", "--hidden=32", "--timesteps=2", "--batch_size=8", "--repeats=1",
        "--chunk_size=4"]


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory):
  path = tmp_path_factory.mktemp("data") / "tiny.npz"
  rng = np.random.default_rng(0)
  np.savez(path, image=rng.integers(0, 255, (32, 16, 16, 3), dtype=np.uint8),
           label=rng.integers(0, 10, 32).astype(np.uint8))
  return str(path)


def _run(args):
  return subprocess.run([sys.executable, "-m", "launch.score", *args], capture_output=True,
                        text=True, timeout=600)


def test_scores_a_genotype_file_with_backward_edges(tmp_path, tiny_npz):
  gfile = tmp_path / "g.txt"
  gfile.write_text("# two cells\n0303/0030/2002/0200\n\n0302/0030/0003/0000\n")
  out = _run([f"--dataset=npz:{tiny_npz}", f"--genotypes={gfile}", f"--workdir={tmp_path}/w",
              *TINY])
  assert out.returncode == 0, out.stderr
  rows = list(csv.DictReader(open(tmp_path / "w" / "scores.csv")))
  assert [r["genotype"] for r in rows] == ["0303/0030/2002/0200", "0302/0030/0003/0000"]
  assert all(np.isfinite(float(r["score"])) or r["singular"] == "1" for r in rows)
  assert int(rows[0]["params"]) > int(rows[1]["params"])  # 6 vs 4 conv edges
  assert int(rows[0]["memory_bytes"]) == 4 * int(rows[0]["params"])


@pytest.mark.parametrize("args, word", [
    (["--genotypes=MISSING"], "missing.txt"),
    (["--ops=skip,conv9x9"], "conv9x9"),
    (["--dataset=nosuchdata"], "nosuchdata"),
])
def test_bad_input_exits_with_one_line(tmp_path, args, word):
  args = [a.replace("MISSING", str(tmp_path / "missing.txt")) for a in args]
  out = _run([f"--workdir={tmp_path}/w", *TINY, *args])
  assert out.returncode != 0
  assert word in out.stderr.strip().splitlines()[-1]
  assert not (tmp_path / "w" / "scores.csv").exists()


def test_malformed_genotype_in_file(tmp_path, tiny_npz):
  gfile = tmp_path / "g.txt"
  gfile.write_text("0303/0030/2002/0200\n0303/003/2002/0200\n")
  out = _run([f"--dataset=npz:{tiny_npz}", f"--genotypes={gfile}", f"--workdir={tmp_path}/w",
              *TINY])
  assert out.returncode != 0 and "0303/003/2002/0200" in out.stderr
