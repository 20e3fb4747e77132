"""Tests of snnax_nas.genotype: encoding, pruning, counts, sampler, weights."""

from __future__ import annotations

import numpy as np
import pytest

from snnax_nas import genotype as G
from snnax_nas import genotype_space
from snnax_nas.ops import op_set

CIFAR10 = "0303/0030/2002/0200"
CIFAR100 = "0302/0030/3003/0000"


@pytest.fixture(scope="module")
def fwd5():
  return genotype_space.enumerate_forward("snasnet")


@pytest.fixture(scope="module")
def bwd5():
  return genotype_space.enumerate_backward("snasnet")


def _reference_prune(con_mat: np.ndarray) -> np.ndarray:
  """The reference filter literally: integer matrix powers of the op codes."""
  a = con_mat.astype(np.int64)
  reach = a + a @ a + a @ a @ a + a @ a @ a @ a
  out = con_mat.copy()
  for node in range(3):
    if reach[node, 3] == 0:
      out[node, :] = 0
      out[:, node] = 0
  for node in range(1, 4):
    if reach[0, node] == 0:
      out[node, :] = 0
      out[:, node] = 0
  return out


# ---------------------------------------------------------------- counts


def test_forward_space_counts(fwd5):
  assert fwd5.shape == (15625, 4, 4)
  assert len(np.unique(G.genotype_key(fwd5))) == 15625
  assert not G.has_backward(fwd5).any()
  valid = G.is_valid(fwd5)
  assert valid.sum() == 12500
  assert len(G.unique_canonical(fwd5[valid])) == 7556


def test_backward_space_counts(bwd5):
  assert bwd5.shape == (531441, 4, 4)
  assert len(np.unique(G.genotype_key(bwd5))) == 531441
  # Every pair is forward or backward, never both.
  upper = bwd5[:, genotype_space._PAIR_I, genotype_space._PAIR_J]
  lower = bwd5[:, genotype_space._PAIR_J, genotype_space._PAIR_I]
  assert not ((upper != 0) & (lower != 0)).any()
  valid = G.is_valid(bwd5)
  assert valid.sum() == 236196
  distinct = G.unique_canonical(bwd5[valid])
  assert len(distinct) == 104708
  # The (0,3) pair must stay forward: at most 5 backward edges.
  assert (np.tril(distinct != 0, k=-1).sum(axis=(1, 2)) <= 5).all()
  assert (np.tril(bwd5[valid] != 0, k=-1).sum(axis=(1, 2)) == 5).any()


def test_spikenas_spaces():
  ops = op_set("spikenas")
  assert ops.forward_digits == (1, 2) and not ops.has_zero
  fwd = genotype_space.enumerate_forward(ops)
  assert fwd.shape == (64, 4, 4)
  assert G.is_valid(fwd).all()
  # No absent edge: every node is live, pruning changes nothing.
  np.testing.assert_array_equal(G.canonical(fwd), fwd)
  assert len(G.unique_canonical(fwd)) == 64
  bwd = genotype_space.enumerate_backward("spikenas")
  assert bwd.shape == (4 ** 6, 4, 4)  # 2 forward + 2 backward per pair
  assert G.is_valid(bwd).sum() == 2 * 4 ** 5  # (0,3) forward, either op


# ---------------------------------------------------------------- parse/format


@pytest.mark.parametrize("text", [CIFAR10, CIFAR100])
def test_released_round_trip_and_canonical(text):
  g = G.parse_genotype(text, "snasnet")
  assert g.shape == (4, 4) and g.dtype.kind == "i"
  assert G.format_genotype(g) == text
  assert G.is_valid(g)
  np.testing.assert_array_equal(G.canonical(g), g)
  assert G.has_backward(g)


def test_released_edges_match_spec():
  g = G.parse_genotype(CIFAR10, "snasnet")
  # fwd 0->1 conv3, 0->3 conv3, 1->2 conv3, 2->3 conv1; back 2->0, 3->1 conv1
  assert (g[0, 1], g[0, 3], g[1, 2], g[2, 3]) == (3, 3, 3, 2)
  assert (g[2, 0], g[3, 1]) == (2, 2)
  assert np.count_nonzero(g) == 6
  g = G.parse_genotype(CIFAR100, "snasnet")
  assert (g[0, 1], g[0, 3], g[1, 2], g[2, 3], g[2, 0]) == (3, 2, 3, 3, 3)
  assert np.count_nonzero(g) == 5


@pytest.mark.parametrize("text", [
    "  0303/0030/2002/0200\n", "0303003020020200", " 0303 0030 2002 0200 "])
def test_parse_accepted_forms(text):
  np.testing.assert_array_equal(
      G.parse_genotype(text, "snasnet"), G.parse_genotype(CIFAR10, "snasnet"))


@pytest.mark.parametrize("text, ops, fragment", [
    ("0303/0030/2002", "snasnet", "'0303/0030/2002'"),  # 3 rows
    ("0303/0030/2002/0200/0000", "snasnet", "5 rows"),
    ("030300302002020", "snasnet", "15 characters"),
    ("0303/003/2002/0200", "snasnet", "'003'"),
    ("0303/00x0/2002/0200", "snasnet", "'x'"),
    ("0303/0030/2002/02-0", "snasnet", "'-'"),
    ("0305/0030/2002/0200", "snasnet", "digit 5"),
    ("0303/0030/2002/0200", "spikenas", "digit 3"),
    ("0303/0130/2002/0200", "snasnet", "digit 1 at row 1, column 1"),
    ("", "snasnet", "0 rows"),
])
def test_parse_errors(text, ops, fragment):
  with pytest.raises(ValueError) as err:
    G.parse_genotype(text, ops)
  assert fragment in str(err.value)


def test_parse_out_of_range_names_position_and_op_set():
  with pytest.raises(ValueError) as err:
    G.parse_genotype("0303/0030/2002/0200", "lightsnn")
  msg = str(err.value)
  assert "digit 3 at row 0, column 1" in msg and "zero,skip,conv3x3" in msg


def test_parse_non_string():
  with pytest.raises(ValueError, match="string"):
    G.parse_genotype(303, "snasnet")


def test_format_batch_and_errors(bwd5):
  sample = bwd5[::9973]
  texts = G.format_genotypes(sample)
  assert len(texts) == len(sample)
  for text, g in zip(texts, sample):
    np.testing.assert_array_equal(G.parse_genotype(text, "snasnet"), g)
  assert G.format_genotypes(sample.reshape(-1, 1, 4, 4)[:3]) == texts[:3]
  with pytest.raises(ValueError, match="shape"):
    G.format_genotype(sample[:2])
  with pytest.raises(ValueError, match="shape"):
    G.format_genotypes(np.zeros((3, 4), np.int8))
  bad = np.zeros((4, 4), np.int32)
  bad[1, 2] = 12
  with pytest.raises(ValueError, match="digit 12"):
    G.format_genotype(bad)


# ---------------------------------------------------------------- keys


def test_genotype_key(bwd5):
  g = G.parse_genotype(CIFAR10, "snasnet")
  assert int(G.genotype_key(g)) == 0x0303003020020200
  assert G.genotype_key(bwd5[:6].reshape(2, 3, 4, 4)).shape == (2, 3)
  np.testing.assert_array_equal(
      G.genotype_from_key(G.genotype_key(bwd5)), bwd5)
  big = np.zeros((4, 4), np.int32)
  big[3, 2] = 15
  big[0, 1] = 15
  np.testing.assert_array_equal(G.genotype_from_key(G.genotype_key(big)), big)
  with pytest.raises(ValueError, match="digit 16"):
    G.genotype_key(big + 1 - np.eye(4, dtype=np.int32))
  with pytest.raises(ValueError, match="diagonal"):
    G.genotype_key(np.eye(4, dtype=np.int32))
  with pytest.raises(ValueError, match="integer"):
    G.genotype_key(np.zeros((4, 4), np.float32))


# ---------------------------------------------------------------- pruning


def test_prune_dead_node_without_path_to_output():
  # 0->1 skip, 0->2 skip, 2->3 conv3, 0->3 conv1: node 1 is a dead end.
  g = G.parse_genotype("0112/0000/0003/0000", "snasnet")
  p = G.prune(g)
  assert G.format_genotype(p) == "0012/0000/0003/0000"
  assert p.dtype == g.dtype
  assert G.is_valid(g)


def test_prune_node_not_reachable_from_input():
  # 2->3 and 1->2 exist but nothing reaches nodes 1, 2 from node 0.
  g = G.parse_genotype("0003/0030/0002/0000", "snasnet")
  assert G.format_genotype(G.prune(g)) == "0003/0000/0000/0000"


def test_prune_paths_use_backward_edges():
  # Node 1 is reached only through the backward edge 2->1; it feeds 1->3.
  g = G.parse_genotype("0033/0002/0300/0000", "snasnet")
  np.testing.assert_array_equal(G.prune(g), g)
  # Node 1 only feeds back into node 0; the path 1->0->3 counts (the feedback
  # reaches the output at the next timestep), so nothing is pruned.
  g = G.parse_genotype("0303/2000/0000/0000", "snasnet")
  np.testing.assert_array_equal(G.prune(g), g)
  # Node 1 only receives the feedback edge 3->1 and has no out-edge: pruned,
  # and the feedback edge with it.
  g = G.parse_genotype("0003/0000/0000/0200", "snasnet")
  assert G.format_genotype(G.prune(g)) == "0003/0000/0000/0000"


def test_prune_without_input_output_path_zeroes_everything():
  g = G.parse_genotype("0330/0030/0000/0000", "snasnet")
  assert not G.prune(g).any()
  assert not G.is_valid(g)


def test_prune_matches_literal_reference(bwd5):
  rng = np.random.default_rng(1)
  sample = bwd5[rng.choice(len(bwd5), size=1500, replace=False)]
  expected = np.stack([_reference_prune(g) for g in sample])
  np.testing.assert_array_equal(G.prune(sample), expected)


@pytest.mark.slow
def test_canonical_idempotent_and_validity_rule(bwd5):
  can = G.canonical(bwd5)
  np.testing.assert_array_equal(G.canonical(can), can)
  # A raw 0->3 edge keeps both end nodes alive, so the rule is g[0,3] != 0.
  np.testing.assert_array_equal(G.is_valid(bwd5), bwd5[:, 0, 3] != 0)
  np.testing.assert_array_equal(G.is_valid(can), G.is_valid(bwd5))


def test_unique_canonical_order_of_first_appearance():
  texts = ["0112/0000/0003/0000",  # prunes to 0012/...
           "0003/0000/0000/0000",
           "0012/0000/0003/0000",  # duplicate of the first after pruning
           "0003/0030/0002/0000",  # prunes to 0003/... (duplicate)
           CIFAR10]
  gs = np.stack([G.parse_genotype(t, "snasnet") for t in texts])
  out = G.unique_canonical(gs)
  assert G.format_genotypes(out) == [
      "0012/0000/0003/0000", "0003/0000/0000/0000", CIFAR10]


def test_has_backward():
  gs = np.stack([G.parse_genotype(t, "snasnet")
                 for t in (CIFAR10, CIFAR100, "0112/0000/0003/0000")])
  np.testing.assert_array_equal(G.has_backward(gs), [True, True, False])
  assert G.has_backward(gs[None]).shape == (1, 3)
  with pytest.raises(ValueError, match="shape"):
    G.has_backward(np.zeros((4, 3), np.int8))


# ---------------------------------------------------------------- sampler


@pytest.mark.parametrize("ops", ["snasnet", "spikenas", "lightsnn"])
@pytest.mark.parametrize("backward", [False, True])
def test_sampler_valid_canonical_reproducible(ops, backward):
  s = genotype_space.sample_genotypes(np.random.default_rng(7), 3000, ops, backward=backward)
  assert s.shape == (3000, 4, 4)
  assert G.is_valid(s).all()
  np.testing.assert_array_equal(G.canonical(s), s)
  G.check_genotypes(s, ops)
  if not backward:
    assert not G.has_backward(s).any()
  else:
    assert G.has_backward(s).any()
  again = genotype_space.sample_genotypes(np.random.default_rng(7), 3000, ops,
                             backward=backward)
  np.testing.assert_array_equal(s, again)
  other = genotype_space.sample_genotypes(np.random.default_rng(8), 3000, ops,
                             backward=backward)
  assert not np.array_equal(s, other)


def test_sampler_edge_cases():
  rng = np.random.default_rng(0)
  assert genotype_space.sample_genotypes(rng, 0, "snasnet").shape == (0, 4, 4)
  assert genotype_space.sample_genotypes(rng, 1, "snasnet", backward=True).shape == (1, 4, 4)
  with pytest.raises(ValueError, match="-1"):
    genotype_space.sample_genotypes(rng, -1, "snasnet")


def test_raw_sampler_pair_marginals():
  # Spec: each pair is empty w.p. 1/5, and takes each of the 4 non-zero
  # forward and 4 non-zero backward ops w.p. 1/10.
  n = 100_000
  raw = genotype_space._sample_raw(np.random.default_rng(3), n, op_set("snasnet"), True)
  fwd = raw[:, genotype_space._PAIR_I, genotype_space._PAIR_J]
  bwd = raw[:, genotype_space._PAIR_J, genotype_space._PAIR_I]
  assert not ((fwd != 0) & (bwd != 0)).any()
  tol = 5 * np.sqrt(0.2 * 0.8 / n)
  np.testing.assert_allclose(((fwd == 0) & (bwd == 0)).mean(0), 0.2, atol=tol)
  for d in range(1, 5):
    np.testing.assert_allclose((fwd == d).mean(0), 0.1, atol=tol)
    np.testing.assert_allclose((bwd == d).mean(0), 0.1, atol=tol)
  # Forward-only: each edge uniform over the 5 digits.
  raw = genotype_space._sample_raw(np.random.default_rng(4), n, op_set("snasnet"), False)
  assert not G.has_backward(raw).any()
  for d in range(5):
    np.testing.assert_allclose(
        (raw[:, genotype_space._PAIR_I, genotype_space._PAIR_J] == d).mean(0), 0.2, atol=tol)


def test_sampler_matches_enumeration_after_rejection(bwd5):
  # Exact law of the accepted canonical cells: weight each raw genotype by its
  # sampling probability (empty pair 1/5, each non-zero choice 1/10).
  fwd = bwd5[:, genotype_space._PAIR_I, genotype_space._PAIR_J]
  bwd = bwd5[:, genotype_space._PAIR_J, genotype_space._PAIR_I]
  w = np.where((fwd == 0) & (bwd == 0), 0.2, 0.1).prod(axis=1)
  valid = G.is_valid(bwd5)
  w = w * valid / (w * valid).sum()
  can = G.canonical(bwd5)
  p_back = (w * G.has_backward(can)).sum()
  mean_edges = (w * (can != 0).sum(axis=(1, 2))).sum()
  n = 20_000
  s = genotype_space.sample_genotypes(np.random.default_rng(5), n, "snasnet", backward=True)
  assert abs(G.has_backward(s).mean() - p_back) < 5 * np.sqrt(0.25 / n)
  assert abs((s != 0).sum(axis=(1, 2)).mean() - mean_edges) < 0.05


# ---------------------------------------------------------------- weights


def test_arch_weights_one_hot_round_trip(bwd5):
  ops = op_set("snasnet")
  sample = bwd5[::101].reshape(-1, 1, 4, 4)
  w = G.arch_weights(sample, ops)
  assert w.shape == sample.shape[:-2] + (12, 4) and w.dtype == np.float32
  assert set(np.unique(w)) <= {0.0, 1.0}
  assert (w.sum(-1) <= 1).all()
  np.testing.assert_array_equal(
      w.sum(-1) == 1, sample[..., G._EDGE_ROWS, G._EDGE_COLS] != 0)
  np.testing.assert_array_equal(G.genotypes_from_arch_weights(w), sample)


def test_arch_weights_edge_order():
  g = G.parse_genotype(CIFAR10, "snasnet")
  w = G.arch_weights(g, "snasnet")
  assert G.EDGES[7] == (2, 0)
  np.testing.assert_array_equal(w[7], [0, 1, 0, 0])  # 2->0 conv1x1 (digit 2)
  np.testing.assert_array_equal(w[3], [0, 0, 1, 0])  # 0->3 conv3x3 (digit 3)
  assert not w[1].any()  # 0->2 absent
  ws = G.arch_weights(g, "spikenas3")
  assert ws.shape == (12, 3)


def test_arch_weights_errors():
  g = G.parse_genotype(CIFAR10, "snasnet")
  with pytest.raises(ValueError, match="digit 3"):
    G.arch_weights(g, "lightsnn")
  with pytest.raises(ValueError, match="diagonal"):
    G.arch_weights(g + np.eye(4, dtype=g.dtype), "snasnet")
  with pytest.raises(ValueError, match="shape"):
    G.genotypes_from_arch_weights(np.zeros((6, 4), np.float32))


def test_genotypes_from_jax_weights():
  jnp = pytest.importorskip("jax.numpy")
  g = G.parse_genotype(CIFAR100, "snasnet")
  w = jnp.asarray(G.arch_weights(g, "snasnet")) * 0.5
  np.testing.assert_array_equal(G.genotypes_from_arch_weights(w), g)


def test_edge_constants():
  assert G.FORWARD_EDGES == ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
  assert G.BACKWARD_EDGES == ((1, 0), (2, 0), (3, 0), (2, 1), (3, 1), (3, 2))
  assert G.EDGES == G.FORWARD_EDGES + G.BACKWARD_EDGES



def test_first_occurrences_of_canonical_duplicates():
  ops = op_set("snasnet")
  # The last one's 0 -> 1 edge feeds a node that reaches nothing: pruned, it
  # is the first one.
  texts = ["0003/0000/0000/0000", "0302/0030/0003/0000", "0003/0000/0000/0000",
           "0303/0000/0000/0000"]
  g = np.stack([G.parse_genotype(t, ops) for t in texts])
  assert G.first_occurrences(g).tolist() == [0, 1, 0, 0]
  # Per-cell genotypes: equal only when every cell is.
  cells = np.stack([np.stack([g[0], g[1]]), np.stack([g[0], g[0]]), np.stack([g[3], g[1]])])
  assert G.first_occurrences(cells).tolist() == [0, 1, 0]
