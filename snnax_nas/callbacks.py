"""Typed callbacks: the functions a user passes into the library.

Each is a :class:`typing.Protocol`, so any function (or object with
``__call__``) of the right signature fits, and a type checker can say when one
does not.
"""

from __future__ import annotations

from typing import Any
from typing import Optional
from typing import Protocol

import jax


class ScoreProgress(Protocol):
  """Called by :func:`snnax_nas.score.score_candidates` after each chunk.

  Args:
    done: candidates scored so far (this call).
    total: candidates this call scores.
  """

  def __call__(self, done: int, total: int) -> None: ...


class SearchProgress(Protocol):
  """Called by the searches in :mod:`snnax_nas.search` as they score.

  Args:
    stage: what is being scored (e.g. ``"cell 1/2"`` or ``"random"``).
    done: candidates scored so far in this stage.
    total: candidates of this stage.
  """

  def __call__(self, stage: str, done: int, total: int) -> None: ...


class SpikeProbe(Protocol):
  """Called by the networks on every LIF output; its returns are collected
  per LIF name in the forward's ``aux["probes"]``. A probe whose
  ``takes_membrane`` attribute is true is called as ``probe(spikes,
  membrane)`` with the charged membrane potential (same shape) as well.

  Args:
    spikes: [B, ...] binary spikes of one LIF call (float32 0/1).

  Returns:
    Any pytree of arrays (e.g. spike and neuron counts).
  """

  def __call__(self, spikes: jax.Array) -> Any: ...


class ForwardFn(Protocol):
  """The forward pass a training step differentiates
  (:func:`snnax_nas.train.make_steps`).

  Args:
    params: the trainable parameters.
    batch_stats: BN running statistics.
    images: [B, H, W, C] static images or [B, T, H, W, C] event frames.
    key: the dropout key, or None (no dropout).
    train: batch statistics (True) or running statistics (False).
    probe: a :class:`SpikeProbe` (e.g. :func:`snnax_nas.train.spike_probe`)
      or None.

  Returns:
    ``(logits [B, num_classes], aux)`` with ``aux["batch_stats"]`` (the
    updated statistics) and ``aux["probes"]``.
  """

  def __call__(self, params: Any, batch_stats: Any, images: jax.Array,
               key: Optional[jax.Array], *, train: bool,
               probe: Optional[SpikeProbe]) -> tuple[jax.Array, dict]: ...
