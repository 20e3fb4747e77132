"""Training-free architecture search: SNASNet, SpikeNAS and LightSNN.

Three methods, one result type (:class:`SearchResult`):

  * :func:`random_search` (:mod:`.snasnet`): SNASNet's random search, N
    sampled genotypes shared by every cell, argmax of the score;
  * :func:`spikenas_search` (:mod:`.spikenas`): SpikeNAS's memory-aware
    consecutive per-cell search on a reduced op set;
  * :func:`lightsnn_prune` (:mod:`.lightsnn`): LightSNN's pruning of a
    shared-α supernet by op importance.

What they share: the result type and the rule that picks the best scored
candidate (:mod:`.result`); the spaces, candidate pools and the budget
checked against a space (:mod:`.space`). All score candidates with the
batched SAHD scorer through a score store (:mod:`.scoring`), so a killed
search resumes where it stopped with exactly the result of an uninterrupted
run. Memory budgets follow the analytic model's
one rule (:func:`snnax_nas.memory.within_budget`; None or inf = no limit) and
are applied before scoring.
"""

from __future__ import annotations

from snnax_nas.search.lightsnn import lightsnn_prune
from snnax_nas.search.lightsnn import mask_arch
from snnax_nas.search.lightsnn import mask_string
from snnax_nas.search.lightsnn import supernet_param_count
from snnax_nas.search.result import METHODS
from snnax_nas.search.result import SearchResult
from snnax_nas.search.scoring import ProgressFn
from snnax_nas.search.scoring import ScorerOptions
from snnax_nas.search.snasnet import random_search
from snnax_nas.search.space import arch_strings
from snnax_nas.search.space import candidate_pool
from snnax_nas.search.space import check_budget
from snnax_nas.search.space import search_space
from snnax_nas.search.space import smallest_network
from snnax_nas.search.spikenas import ID_STRIDE
from snnax_nas.search.spikenas import spikenas_search

__all__ = [
    "ID_STRIDE",
    "METHODS",
    "ProgressFn",
    "ScorerOptions",
    "SearchResult",
    "arch_strings",
    "candidate_pool",
    "check_budget",
    "lightsnn_prune",
    "mask_arch",
    "mask_string",
    "random_search",
    "search_space",
    "smallest_network",
    "spikenas_search",
    "supernet_param_count",
]
