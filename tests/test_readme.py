"""The README's training block runs as written and learns (the documented path
once trained a network that never fired)."""

from __future__ import annotations

import math
import os
import re

import numpy as np
import pytest

from snnax_nas import configs
from snnax_nas.jobs import search as search_job

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def _block(title: str) -> str:
  text = open(README).read()
  section = text[text.index(title):]
  return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_readme_training_block_learns(tmp_path, monkeypatch):
  # A finished search of the quick start's kind (a few candidates) stands in
  # for runs/search.
  config = configs.get_config("search")
  config.num_candidates, config.scoring.batch_size, config.scoring.repeats = 2, 8, 1
  config.network.timesteps = 2  # the quick start's network (width 16, hidden 128), T 2
  search_job.run(config, str(tmp_path / "runs" / "search"))
  monkeypatch.chdir(tmp_path)
  scope = {}
  exec(compile(_block("### Training a found network"), "README.md", "exec"), scope)  # noqa: S102
  assert float(scope["loss"]) < math.log(10) - 0.2, scope["loss"]
  assert np.isfinite(float(scope["loss"]))
