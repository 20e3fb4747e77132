"""Job configs (snnax_nas/configs/): each loads, presets differ as intended, and dotted
overrides parse as the launchers parse them."""

from __future__ import annotations

import os
import subprocess
import sys

from absl import flags
from ml_collections import config_flags
import pytest

from snnax_nas import configs
from snnax_nas import data as data_lib
from snnax_nas.configs import search as search_config

INFO = data_lib.get_info("cifar10_sample")


def _parse(job: str, *args: str):
  """The config a launcher of ``job`` sees for ``args`` (its own flag set,
  as ``launch.common.define_config_flags`` defines it)."""
  argv = ["launcher", *args]
  saved, sys.argv = sys.argv, argv  # config_flags reads --config from sys.argv
  try:
    fv = flags.FlagValues()
    config_flags.DEFINE_config_file("config", configs.path(job), flag_values=fv)
    fv(argv)
  finally:
    sys.argv = saved
  return fv.config, set(config_flags.get_override_values(fv["config"]))


@pytest.mark.parametrize("job", configs.JOBS)
@pytest.mark.parametrize("preset", [None, "small", "reference"])
def test_each_job_config_loads_and_builds_its_network(job, preset):
  config, _ = _parse(job, *([f"--config={configs.path(job)}:{preset}"] if preset else []))
  cfg = configs.network_from_job_config(config.network, INFO)
  assert isinstance(cfg, configs.NetworkConfig)
  assert cfg.width == config.network.width and cfg.input_shape == (32, 32, 3)
  assert config.seed == 0 and config.dataset


@pytest.mark.parametrize("job", configs.JOBS)
def test_presets_differ_as_intended(job):
  module = __import__(f"snnax_nas.configs.{job}", fromlist=["get_config"])
  small, ref = module.get_config("small"), module.get_config("reference")
  assert module.get_config().to_dict() == small.to_dict()  # small is the default
  assert (small.network.width, small.network.hidden, small.network.second_pool,
          small.network.cells_per_stage) == (16, 128, 4, 2)  # cells hold most weights
  assert (ref.network.width, ref.network.second_pool, ref.network.cells_per_stage) == (
      256, 4, 1)  # reference CIFAR-10 net
  if "scoring" in small:
    assert (small.scoring.batch_size, ref.scoring.batch_size) == (64, 256)
  with pytest.raises(ValueError, match="nosuch"):
    module.get_config("nosuch")


def test_network_section_is_every_user_field_of_network_config():
  import dataclasses
  fields = {f.name for f in dataclasses.fields(configs.NetworkConfig)}
  section = configs.get_config("train").network
  assert set(section) == fields - set(configs.DATASET_FIELDS) - {"lif"}
  # The values every workdir record holds (a rerun must match them).
  assert section.to_dict() == dict(ops="snasnet", width=16, cells_per_stage=2, timesteps=5,
                                   hidden=128, second_pool=4, dropout=0.5, backward=False,
                                   linear_init="reference")
  # Every default but the small scale (sections.SMALL) is NetworkConfig's own.
  default = configs.NetworkConfig()
  built = configs.network_from_job_config(section, INFO)
  assert built.replace(width=default.width, hidden=default.hidden,
                       second_pool=default.second_pool,
                       cells_per_stage=default.cells_per_stage
                       ) == configs.network_config_for_dataset(INFO)
  with pytest.raises(ValueError, match="widht"):
    built.replace(widht=3)


def test_help_lists_every_config_field_with_its_default():
  from launch import common
  config = configs.get_config("train")
  lines = common.config_fields(config)
  assert "  network.width = 16" in lines and "  training.epochs = 300" in lines
  assert "  genotype = None" in lines and "  dvs.frames = 16" in lines
  # Every leaf once: the sections are expanded, not printed whole.
  leaves = sum(len(v) if hasattr(v, "items") else 1 for v in config.values())
  assert len(lines) == len(set(lines)) == leaves


def test_get_config_names_the_job_and_preset():
  assert configs.get_config("search", "reference").network.width == 256
  with pytest.raises(ValueError, match="nosuch"):
    configs.get_config("nosuch")


def test_search_reference_is_cifar10_and_small_the_sample():
  assert search_config.get_config().dataset == "cifar10_sample"
  assert search_config.get_config("reference").dataset == "cifar10"


def test_dotted_overrides_and_preset_parse_like_the_launcher():
  config, given = _parse("search", f"--config={configs.path('search')}:reference",
                         "--config.network.width=32", "--config.budget.mb=0.5",
                         "--config.network.backward=True", "--config.method=random")
  assert config.network.width == 32 and config.network.second_pool == 4
  assert config.budget.mb == 0.5 and config.network.backward is True
  assert given == {"network.width", "budget.mb", "network.backward", "method"}
  search_config.resolve(config)
  assert config.network.ops == "snasnet" and config.num_candidates == 5000
  assert config.network.backward is True  # given: not the method's default


@pytest.mark.parametrize("method, ops, backward, candidates", [
    ("spikenas", "spikenas", False, 64), ("random", "snasnet", False, 5000),
    ("lightsnn", "lightsnn", True, None)])
def test_search_resolve_fills_method_defaults(method, ops, backward, candidates):
  config, _ = _parse("search", f"--config.method={method}")
  search_config.resolve(config)
  assert (config.network.ops, config.network.backward, config.num_candidates) == (
      ops, backward, candidates)


def test_unknown_override_is_refused():
  with pytest.raises((flags.Error, AttributeError, KeyError), match="widht"):
    _parse("score", "--config.network.widht=4")


@pytest.mark.slow
@pytest.mark.parametrize("override, word", [
    # A bad op set fails before any compile: the config file was found and
    # the override applied although the cwd is not the repository.
    ("--config.network.ops=skip,conv9x9", "conv9x9"),
    ("--config.network.widht=4", "widht"),  # a typo: one line, no traceback
])
def test_default_config_is_found_from_any_directory(tmp_path, override, word):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, "-m", "launch.score", override,
                        f"--workdir={tmp_path}/w"], capture_output=True, text=True,
                       timeout=600, cwd=tmp_path, env=env)
  assert out.returncode != 0
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and word in lines[0], out.stderr
