"""The scorer's automatic layout: a pure choice, its memory bound, overrides."""

import logging as std_logging

import numpy as np
import pytest

from snnax_nas import autotune
from snnax_nas import network

SMALL = network.network_config(None, input_shape=(32, 32, 3), width=16, hidden=256,
                               second_pool=2, ops="snasnet")
TINY = network.network_config(None, width=4, hidden=32, timesteps=3, vote_group=2,
                              input_shape=(16, 16, 3))
GIB = 2.0 ** 30


@pytest.mark.parametrize("devices, chunk", [(1, 8), (2, 8), (3, 9)])
def test_cpu_keeps_the_measured_layout(devices, chunk):
  # Whatever the memory or the FLOPs: chunk 8 (a multiple of the devices), map_batch 1.
  for flops in (1e6, 2e10, 1.4e13):
    layout = autotune.choose_layout("cpu", 8 * GIB, flops, 1e8, devices)
    assert (layout.chunk_size, layout.map_batch_size) == (chunk, 1)
    assert "cpu" in layout.reason


def test_accelerator_vmaps_small_candidates_and_not_large_ones():
  # The H200 measurements (benchmarks/RESULTS.md): width 16 (~0.02 TFLOP/candidate) ran best at chunk 64 /
  # map_batch 16-64; the reference scale (~13 TFLOP) at chunk 8 / map_batch 1.
  small = autotune.choose_layout("gpu", 140 * GIB, 2e10, 240 * 2 ** 20)
  assert small.map_batch_size == 16 and small.chunk_size == 64
  big = autotune.choose_layout("gpu", 140 * GIB, 1.34e13, 15 * GIB)
  assert (big.chunk_size, big.map_batch_size) == (8, 1)
  assert "flops-bound" in small.reason and "GFLOP" in big.reason
  tpu = autotune.choose_layout("tpu", 16 * GIB, 1e8, 1e6)
  assert tpu.map_batch_size == autotune.MAX_MAP_BATCH


@pytest.mark.parametrize("memory_gib", [1, 4, 16, 80, 140])
@pytest.mark.parametrize("cand_mib", [10, 100, 1000, 20000])
@pytest.mark.parametrize("devices", [1, 4])
def test_live_candidates_stay_within_the_memory_fraction(memory_gib, cand_mib, devices):
  memory, cand = memory_gib * GIB, cand_mib * 2.0 ** 20
  layout = autotune.choose_layout("gpu", memory, 1e9, cand, devices)
  assert layout.chunk_size % (devices * layout.map_batch_size) == 0
  assert layout.map_batch_size >= 1
  if layout.map_batch_size > 1:  # one candidate is the least a chunk can run
    assert layout.map_batch_size * cand <= autotune.MEMORY_FRACTION * memory
  if cand > autotune.MEMORY_FRACTION * memory:
    assert layout.map_batch_size == 1 and "WARNING" in layout.reason


def test_memory_bound_is_named_in_the_reason():
  layout = autotune.choose_layout("gpu", 4 * GIB, 1e9, 500 * 2.0 ** 20)
  assert layout.map_batch_size == 4 and "memory-bound" in layout.reason


def test_chunk_is_not_padded_beyond_the_candidates():
  layout = autotune.choose_layout("gpu", 140 * GIB, 2e10, 1e8, 2, num_candidates=5)
  assert layout.map_batch_size == 16 and layout.chunk_size == 32  # one step of 2 x 16
  layout = autotune.choose_layout("gpu", 140 * GIB, 1.3e13, 1e9, 1, num_candidates=3)
  assert layout.chunk_size == 3


def test_candidate_bytes_grows_with_batch_and_width():
  a = autotune.candidate_bytes(SMALL, 64)
  assert autotune.candidate_bytes(SMALL, 128) > 1.9 * a
  wide = network.network_config(None, input_shape=(32, 32, 3), width=32, hidden=256,
                                second_pool=2, ops="snasnet")
  assert autotune.candidate_bytes(wide, 64) > 1.9 * a
  # At least every cell conv output of every edge and op, float32.
  (h, w, c), _ = SMALL.cell_shapes
  assert a > 4 * 64 * h * w * c * SMALL.num_edges * len(SMALL.ops.nonzero_ops)
  # Time-batched scoring holds all T steps of every activation.
  assert autotune.candidate_bytes(SMALL, 64, time_batched=True) > 0.9 * SMALL.timesteps * a


@pytest.mark.parametrize("value, expect", [(None, None), ("auto", None), ("AUTO", None),
                                           (16, 16), ("16", 16), (np.int64(2), 2)])
def test_parse_setting(value, expect):
  assert autotune.parse_setting(value, "chunk_size") == expect


@pytest.mark.parametrize("value", [0, -2, "0", "fast", 1.5, True])
def test_parse_setting_rejects(value):
  with pytest.raises(ValueError, match=f"chunk_size={value}.*>= 1 or 'auto'"):
    autotune.parse_setting(value, "chunk_size")


def test_resolve_layout_overrides_and_cpu_default():
  auto = autotune.resolve_layout(TINY, 16, 2, backend="cpu", num_devices=2)
  assert (auto.chunk_size, auto.map_batch_size) == (8, 1)
  given = autotune.resolve_layout(TINY, 16, 2, chunk_size="5", map_batch_size=8,
                                  backend="gpu", num_devices=2)
  assert (given.chunk_size, given.map_batch_size) == (6, 3)  # as score_candidates rounds
  only_mbs = autotune.resolve_layout(TINY, 16, 2, map_batch_size=2, backend="cpu",
                                     num_devices=1)
  assert only_mbs.map_batch_size == 2 and only_mbs.chunk_size % 2 == 0
  only_chunk = autotune.resolve_layout(TINY, 16, 2, chunk_size=4, backend="gpu", num_devices=1)
  assert only_chunk.chunk_size == 4 and 1 <= only_chunk.map_batch_size <= 4
  # Tiny candidates on an accelerator: vmapped.
  gpu = autotune.resolve_layout(TINY, 16, 2, backend="gpu", num_devices=1)
  assert gpu.map_batch_size > 1


def test_scoring_options_checks_every_field():
  ok = autotune.scoring_options(dict(kernel="sahd_time", draws=3, chunk_size="auto",
                                     map_batch_size="4", conv_dtype="bfloat16"))
  assert ok == dict(kernel="sahd_time", draws=3, chunk_size=None, map_batch_size=4,
                    conv_dtype="bfloat16", common_weights=False, time_batched=False)
  assert autotune.scoring_options(dict(weights="common"))["common_weights"] is True
  assert autotune.scoring_options(dict(time_batched=True))["time_batched"] is True
  for bad, words in [(dict(kernel="foo"), ["scoring.kernel='foo'", "sahd_time"]),
                     (dict(draws=0), ["scoring.draws=0"]),
                     (dict(draws=1.5), ["scoring.draws=1.5"]),
                     (dict(conv_dtype="float16"), ["float16", "bfloat16"]),
                     (dict(chunk_size="0"), ["scoring.chunk_size=0", ">= 1"]),
                     (dict(map_batch_size=-1), ["scoring.map_batch_size=-1"]),
                     (dict(weights="shared"), ["scoring.weights='shared'", "common"]),
                     (dict(time_batched="yes"), ["scoring.time_batched='yes'"])]:
    with pytest.raises(ValueError) as e:
      autotune.scoring_options(bad)
    for w in words:
      assert w in str(e.value), (bad, str(e.value))


@pytest.mark.slow
def test_score_job_auto_layout_and_new_scoring_fields(tmp_path, random_npz, caplog):
  from snnax_nas import configs  # noqa: PLC0415 (the jobs load the whole library)
  from snnax_nas.jobs import score as score_job  # noqa: PLC0415
  caplog.set_level(std_logging.INFO, logger="absl")
  config = configs.get_config("score")
  config.update(dataset=f"npz:{random_npz}", num_candidates=3)
  config.network.update(width=4, hidden=32, timesteps=2)
  config.scoring.update(batch_size=8, repeats=1, kernel="sahd_time", draws=2,
                        conv_dtype="bfloat16")
  score_job.run(config, str(tmp_path / "w"))
  assert "scorer layout: cpu: chunk" in caplog.text  # the automatic choice is logged
  assert (tmp_path / "w" / "scores.csv").exists()
  config.scoring.draws = 0
  with pytest.raises(ValueError, match="--config.scoring.draws=0"):
    score_job.run(config, str(tmp_path / "b"))
