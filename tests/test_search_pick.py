"""The search's pick described against every evaluation (snnax_nas.search.pick):
its rank, and its score margins over the best other network of its size and
over size alone."""

import json

from snnax_nas import score_store
from snnax_nas import search
from snnax_nas.search import pick as pick_lib


def _result(method, pick, rows):
  """A SearchResult whose records are ``rows`` of (genotype, score, params)
  and whose pick is ``rows[pick]``."""
  records = [score_store.Row(0, k, g, s, False, p, 4 * p) for k, (g, s, p) in enumerate(rows)]
  g, s, p = rows[pick]
  return search.SearchResult(method=method, genotype=g, score=s, singular=False, params=p,
                             weight_bytes=4 * p, weight_bits=32, budget_params=None,
                             budget_bytes=None, candidates_scored=len(rows),
                             candidates_skipped=0, evaluations=len(rows), records=records)


def test_pick_margins_over_its_size_and_over_the_largest():
  rows = [("a", -10.0, 100), ("b", -12.5, 100), ("c", -11.0, 100), ("d", -14.0, 300),
          ("e", -13.0, 300), ("a", -10.5, 100)]  # "a" drawn twice: not another network
  pick = search.describe_pick(_result("random", 0, rows))
  assert pick["rank"] == 1 and pick["evaluations"] == 6
  assert pick["same_size"] == dict(networks=2, best_genotype="c", best_score=-11.0, margin=1.0)
  assert pick["size_only"] == dict(params=300, networks=2, pick_is_largest=False,
                                   best_genotype="e", best_score=-13.0, margin=3.0)
  json.dumps(pick, allow_nan=False)
  lines = pick_lib.pick_lines(pick, _result("random", 0, rows))
  assert "ranks 1 of 6 evaluations" in lines[0]
  assert "score margin +1.000 over the best other network of its size (2 others" in lines[1]
  assert "score margin +3.000 over size alone (the largest within the budget: 300" in lines[1]
  assert pick_lib.pick_caption(pick) == ("pick ranks 1 of 6; score margin +1.000 over the best "
                                         "other of its size (2 others)\nscore margin +3.000 "
                                         "over size alone (300 params)")
  # A pick below others ranks below them (the rank is counted, not assumed).
  assert search.describe_pick(_result("random", 2, rows))["rank"] == 3


def test_pick_that_is_the_largest_says_size_alone_picks_its_size():
  rows = [("a", -10.0, 300), ("b", -10.25, 300), ("c", -9.0, 100)]
  res = _result("spikenas", 0, rows)
  pick = search.describe_pick(res)
  assert pick["rank"] == 2  # "c" scored higher but is smaller
  assert pick["size_only"]["pick_is_largest"] and pick["size_only"]["margin"] == 0.25
  assert pick["same_size"]["margin"] == 0.25
  assert "picks its size too, one of 2 networks: the score chose among them" in \
      pick_lib.pick_lines(pick, res)[1]
  alone = _result("spikenas", 0, [("a", -10.0, 300), ("c", -9.0, 100)])
  pick = search.describe_pick(alone)
  assert pick["same_size"] is None and pick["size_only"]["margin"] is None
  assert "no other evaluated network has its size" in pick_lib.pick_lines(pick, alone)[1]
