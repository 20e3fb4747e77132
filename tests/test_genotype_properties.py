"""Properties of the genotype codec and the canonical form (hypothesis).

* parse(format(g)) == g for every genotype of a space, and format(parse(s))
  == s for every string format writes;
* canonical is idempotent;
* a raw genotype and its canonical form build the same network (equal
  logits with the same weights) and get the same score.
"""

from __future__ import annotations

from hypothesis import HealthCheck
from hypothesis import assume
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import jax
import numpy as np
import pytest

from snnax_nas import genotype as genotype_lib
from snnax_nas import network
from snnax_nas import ops as ops_lib
from snnax_nas import score

OP_SETS = ("snasnet", "spikenas", "lightsnn")
PAIRS = [(i, j) for i in range(4) for j in range(i + 1, 4)]


@st.composite
def genotypes(draw, ops_name=None, backward=None):
  """``(ops name, backward, int8 [4, 4])``: a raw genotype of a space, as
  the reference sampler draws them (per pair a forward digit, or with
  backward cells a backward digit instead)."""
  ops_name = ops_name or draw(st.sampled_from(OP_SETS))
  backward = draw(st.booleans()) if backward is None else backward
  ops = ops_lib.op_set(ops_name)
  g = np.zeros((4, 4), np.int8)
  for i, j in PAIRS:
    digit = draw(st.sampled_from(list(ops.forward_digits)))
    if backward and draw(st.booleans()):
      g[j, i] = digit
    else:
      g[i, j] = digit
  return ops_name, backward, g


@settings(max_examples=200, deadline=None)
@given(genotypes())
def test_parse_of_format_is_the_identity(case):
  ops_name, _, g = case
  text = genotype_lib.format_genotype(g)
  back = genotype_lib.parse_genotype(text, ops_name)
  np.testing.assert_array_equal(back, g)
  assert genotype_lib.format_genotype(back) == text
  # The batch codec agrees with the single one.
  assert genotype_lib.format_genotypes(np.stack([g, g])) == [text, text]


@settings(max_examples=200, deadline=None)
@given(genotypes())
def test_canonical_is_idempotent(case):
  _, backward, g = case
  once = genotype_lib.canonical(g)
  np.testing.assert_array_equal(genotype_lib.canonical(once), once)
  assert bool(genotype_lib.is_valid(once)) == bool(genotype_lib.is_valid(g))
  assert backward or not genotype_lib.has_backward(once)  # pruning adds no edge


def _cfg(backward: bool):
  return network.network_config(None, ops="snasnet", width=4, hidden=16, timesteps=2,
                                vote_group=2, num_classes=2, input_shape=(8, 8, 3),
                                backward=backward, dropout=0.0)


IMAGES = np.asarray(jax.random.normal(jax.random.key(1), (2, 4, 8, 8, 3)))  # [R, B, H, W, C]


@pytest.mark.slow
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(genotypes(ops_name="snasnet"))
def test_equal_canonical_forms_build_equal_networks(case):
  _, backward, raw = case
  assume(genotype_lib.is_valid(raw))
  cfg = _cfg(backward)
  can = genotype_lib.canonical(raw)
  params = network.init_standalone_params(jax.random.key(0), cfg, can)
  # The raw genotype selects the same edges, so it takes the same weights.
  assert (jax.tree.structure(network.init_standalone_params(jax.random.key(0), cfg, raw))
          == jax.tree.structure(params))
  y_raw, _ = network.standalone_forward(params, raw, IMAGES[0], None, cfg)
  y_can, _ = network.standalone_forward(params, can, IMAGES[0], None, cfg)
  np.testing.assert_array_equal(np.asarray(y_raw), np.asarray(y_can))


@pytest.mark.slow
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(genotypes(ops_name="snasnet", backward=False))
def test_equal_canonical_forms_get_equal_scores(case):
  _, backward, raw = case
  assume(genotype_lib.is_valid(raw))
  cfg = _cfg(backward)
  can = genotype_lib.canonical(raw)
  both = np.stack([raw, can])
  # The same candidate id: the same weights and scoring batches for both.
  res = score.score_candidates(both, IMAGES, jax.random.key(0), cfg, chunk_size=2,
                               candidate_ids=np.array([7, 7]))
  assert res.scores[0] == res.scores[1] or (res.singular[0] and res.singular[1])
