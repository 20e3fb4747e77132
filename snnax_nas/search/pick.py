"""How a search's pick stands among everything the search evaluated.

A search returns one network; this module says by which rule, where the pick
ranks among all evaluations, and what the score decided beyond size: its
margin over the best-scoring other network of the same size (same parameter
count) and over the size-only choice, the largest network evaluated within
the budget. A score that only tracks size picks the largest network; a
margin near zero over a same-size network says the score barely separated
them.

Every evaluation a SpikeNAS or random search records is a whole network
within the budget (over-budget candidates are never scored), so the records
are the set the pick is compared with. LightSNN's evaluations score the
supernet with one op removed, not candidate networks: its pick has no rank
and no margins among them.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from snnax_nas import stats
from snnax_nas.search import result as result_lib

RULES = {
    "random": "the highest score of all evaluations within the budget (each sampled genotype "
              "scored once, on its own weight draw; a genotype drawn twice is scored twice)",
    "spikenas": "the highest score of all evaluations within the budget (each network scored "
                "once, on its own weight draw; a step keeps the previous choice, with the "
                "score it was chosen with, unless a candidate scores higher)",
    "lightsnn": "pruning by op importance (on each edge, the op whose removal scores highest "
                "is dropped until one op is left); the evaluations score the supernet with one "
                "op removed, so the pruned network has no rank among them",
}
"""The rule by which each method returns its network, in words."""


def _best(mask: np.ndarray, scores: np.ndarray, genotypes: np.ndarray,
          pick_score: float) -> Optional[dict]:
  """The best-scoring evaluation under ``mask`` and the pick's margin over it."""
  if not mask.any():
    return None
  k = int(np.flatnonzero(mask)[stats.best_index(scores[mask])])
  out = dict(networks=len(set(genotypes[mask].tolist())), best_genotype=str(genotypes[k]),
             best_score=result_lib.json_float(scores[k]),
             margin=result_lib.json_float(pick_score - scores[k]))
  return out


def describe_pick(result: result_lib.SearchResult) -> dict:
  """The pick of ``result`` against every evaluation the search recorded.

  Args:
    result: a search's result (its ``records`` are the evaluations).

  Returns:
    JSON-ready ``dict(rule, evaluations, rank, same_size, size_only)``:

    * ``rule``: :data:`RULES` of the method;
    * ``evaluations``: the number of recorded evaluations;
    * ``rank``: 1 + the number of evaluations that scored strictly higher
      than the pick (1: the best the search saw); None for LightSNN;
    * ``same_size``: the other networks (other genotypes) with the pick's
      parameter count: ``networks`` (distinct genotypes), ``best_genotype``,
      ``best_score`` and ``margin`` (the pick's score minus theirs); None when
      the pick's size is unique, and for LightSNN;
    * ``size_only``: the size-only choice, the largest evaluated network(s):
      ``params``, ``networks`` (distinct genotypes of that size),
      ``pick_is_largest``, and, over the largest networks other than the pick,
      ``best_genotype``, ``best_score`` and ``margin`` (None when the pick is
      the only network of the largest size); None for LightSNN.

    Scores that are not finite become None.
  """
  out = dict(rule=RULES[result.method], evaluations=len(result.records), rank=None,
             same_size=None, size_only=None)
  if result.method == "lightsnn" or not result.records:
    return out
  scores = np.array([r.score for r in result.records], np.float64)
  scores = np.where(np.isnan(scores), -np.inf, scores)
  params = np.array([r.params for r in result.records], np.int64)
  genotypes = np.array([r.genotype for r in result.records], object)
  pick = float(result.score) if np.isfinite(result.score) else -np.inf
  out["rank"] = 1 + int((scores > pick).sum())
  other = genotypes != result.genotype
  out["same_size"] = _best(other & (params == result.params), scores, genotypes, pick)
  largest = int(params.max())
  big = params == largest
  size_only = dict(params=largest, networks=len(set(genotypes[big].tolist())),
                   pick_is_largest=bool(result.params == largest), best_genotype=None,
                   best_score=None, margin=None)
  best_big = _best(big & other, scores, genotypes, pick)
  if best_big is not None:
    size_only.update({k: best_big[k] for k in ("best_genotype", "best_score", "margin")})
  out["size_only"] = size_only
  return out


def pick_lines(pick: dict, result: result_lib.SearchResult) -> list[str]:
  """The lines ``launch.search`` prints about the pick (``pick`` from
  :func:`describe_pick`): the rule and rank, then what the score adds."""
  lines = [f"rule: {pick['rule']}"]
  if pick["rank"] is None:
    return lines
  lines[0] += f"; the pick ranks {pick['rank']} of {pick['evaluations']} evaluations"
  same, big = pick["same_size"], pick["size_only"]
  if same is None:
    parts = [f"no other evaluated network has its size ({result.params:,} params)"]
  else:
    parts = [f"{_signed(same['margin'])} over the best other network of its size "
             f"({same['networks']} other{'s' if same['networks'] > 1 else ''} with "
             f"{result.params:,} params; best {same['best_genotype']}, "
             f"{_num(same['best_score'])})"]
  if big["pick_is_largest"]:
    parts.append(f"size alone (the largest within the budget, {big['params']:,} params) picks "
                 f"its size too" + (f", one of {big['networks']} networks: the score chose among "
                                    "them" if big["networks"] > 1 else ", and only this network"))
  else:
    parts.append(f"{_signed(big['margin'])} over size alone (the largest within the budget: "
                 f"{big['params']:,} params, {big['networks']} network"
                 f"{'s' if big['networks'] > 1 else ''}; best {big['best_genotype']}, "
                 f"{_num(big['best_score'])})")
  lines.append("what the score adds: " + "; ".join(parts))
  return lines


def pick_caption(pick: dict) -> str:
  """A short form of :func:`pick_lines`' margins for ``search.png``, two
  lines: rank and margin over the pick's size; margin over size alone ("" for
  LightSNN)."""
  if pick["rank"] is None:
    return ""
  same, big = pick["same_size"], pick["size_only"]
  parts = [f"pick ranks {pick['rank']} of {pick['evaluations']}"]
  parts.append("no other network of its size" if same is None else
               f"{_signed(same['margin'])} over the best other of its size "
               f"({same['networks']} others)")
  if big["pick_is_largest"]:
    parts.append(f"size alone picks its size too ({big['networks']} networks)")
  else:
    parts.append(f"{_signed(big['margin'])} over size alone ({big['params']:,} params)")
  return "; ".join(parts[:2]) + "\n" + parts[2]


def _num(x: Optional[float]) -> str:
  return "-inf" if x is None else f"{x:.3f}"


def _signed(x: Optional[float]) -> str:
  return "score margin n/a (singular)" if x is None else f"score margin {x:+.3f}"
