"""Leaky integrate-and-fire neurons with surrogate gradients.

The neuron matches SpikingJelly's ``LIFNode`` as the SNASNet reference uses it
(``tau=4/3, v_threshold=1, v_reset=0, surrogate=ATan(alpha=2),
detach_reset=True, decay_input=True``):

  charge:  v <- v + (x - (v - v_reset)) / tau       (tau=4/3: v = 0.25 v + 0.75 x)
  fire:    s = H(v - threshold),  H(z) = 1 if z >= 0
  reset:   v <- s * v_reset + (1 - s) * v  (hard)   or  v <- v - s * threshold (soft)

with ``s`` stop-gradient'ed inside the reset when ``detach_reset``. The spike's
backward pass is the ATan surrogate ds/dv = (alpha/2) / (1 + (pi/2 alpha (v - threshold))^2).

Mapping for users of other libraries: snnTorch's ``Leaky(beta)`` is this neuron
with ``decay_input=False`` semantics (v = beta v + x, so beta = 1 - 1/tau and the
input is not scaled) and ``reset_mechanism="zero"`` for the hard reset; spyx's
LIF defaults to a SuperSpike surrogate and a subtractive ("soft") reset.

State is explicit: ``lif_step(v, x) -> (v_next, spike)``; ``lif_scan`` runs a
time-major sequence through ``lax.scan`` (with a hand-written backward pass).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Optional

import jax
import jax.numpy as jnp

RESET_MODES = ("hard", "soft")


@dataclasses.dataclass(frozen=True)
class LIFConfig:
  """Constants of a LIF neuron.

  Attributes:
    tau: membrane time constant in timesteps (> 1 for a leak in (0, 1)).
    threshold: firing threshold (membrane units).
    v_reset: reset potential for the hard reset.
    alpha: width parameter of the ATan surrogate.
    reset: ``"hard"`` (to ``v_reset``) or ``"soft"`` (subtract threshold).
    detach_reset: stop the gradient through the reset, as the reference does.
  """

  tau: float = 4.0 / 3.0
  threshold: float = 1.0
  v_reset: float = 0.0
  alpha: float = 2.0
  reset: str = "hard"
  detach_reset: bool = True

  def __post_init__(self):
    if not self.tau >= 1.0:
      raise ValueError(f"LIF tau must be >= 1 (timesteps), got {self.tau}")
    if not self.threshold > 0:
      raise ValueError(f"LIF threshold must be > 0, got {self.threshold}")
    if not self.alpha > 0:
      raise ValueError(f"surrogate alpha must be > 0, got {self.alpha}")
    if self.reset not in RESET_MODES:
      raise ValueError(f"LIF reset must be one of {RESET_MODES}, got {self.reset!r}")

  def with_threshold(self, threshold: Optional[float]) -> "LIFConfig":
    """This config with another threshold (``None`` keeps the current one)."""
    if threshold is None:
      return self
    return dataclasses.replace(self, threshold=float(threshold))


def atan_surrogate_grad(u: jax.Array, alpha: float = 2.0) -> jax.Array:
  """ATan surrogate derivative dH/du at ``u = v - threshold``.

  Equals ``1 / (1 + (pi u)^2)`` for alpha = 2.
  """
  return (alpha / 2.0) / (1.0 + jnp.square(math.pi / 2.0 * alpha * u))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def spike_fn(u: jax.Array, alpha: float = 2.0) -> jax.Array:
  """Heaviside step ``H(u) = 1[u >= 0]`` with the ATan surrogate gradient.

  Args:
    u: membrane potential minus threshold, any shape, float.
    alpha: surrogate width (static).

  Returns:
    Spikes of ``u``'s shape and dtype, values in {0, 1}.
  """
  return (u >= 0).astype(u.dtype)


@spike_fn.defjvp
def _spike_fn_jvp(alpha, primals, tangents):
  (u,), (du,) = primals, tangents
  return spike_fn(u, alpha), atan_surrogate_grad(u, alpha) * du


def lif_charge(v: jax.Array, x: jax.Array, cfg: LIFConfig = LIFConfig()) -> jax.Array:
  """The charged membrane ``v + (x - (v - v_reset)) / tau`` a step compares
  with the threshold (before fire and reset); same shapes as :func:`lif_step`."""
  return v + (x - (v - cfg.v_reset)) / cfg.tau


def lif_step(v: jax.Array, x: jax.Array, cfg: LIFConfig = LIFConfig()):
  """One timestep of a LIF neuron.

  Args:
    v: membrane potential before the step, any shape.
    x: input current of the same shape.
    cfg: neuron constants.

  Returns:
    ``(v_next, spike)``: the membrane after fire-and-reset and the {0,1} spikes.
  """
  return _fire_and_reset(lif_charge(v, x, cfg), cfg)


def _fire_and_reset(h: jax.Array, cfg: LIFConfig):
  """``(v_next, spike)`` of the charged membrane ``h`` (:func:`lif_step`)."""
  spike = spike_fn(h - cfg.threshold, cfg.alpha)
  s_reset = jax.lax.stop_gradient(spike) if cfg.detach_reset else spike
  if cfg.reset == "hard":
    v_next = s_reset * cfg.v_reset + (1.0 - s_reset) * h
  else:
    v_next = h - s_reset * cfg.threshold
  return v_next, spike


def lif_scan(xs: jax.Array, cfg: LIFConfig = LIFConfig(),
             v0: Optional[jax.Array] = None):
  """Runs a LIF over a time-major input sequence with ``lax.scan``.

  Same values and gradients as ``lax.scan`` of :func:`lif_step` (up to float
  rounding in the gradients, tests/test_neurons.py), with a hand-written
  backward pass: the forward scan keeps only the charged membranes [T, ...]
  (spikes and surrogate slopes are recomputed from them) and the backward is
  one reverse elementwise scan. Autodiff of the scan kept more stacked
  residuals, each a zero-filled buffer written step by step; on XLA:CPU
  that was ~10 % of a training step's temporary memory, which is
  page-faulted afresh every step (benchmarks/RESULTS.md).

  Args:
    xs: inputs [T, ...].
    cfg: neuron constants (static).
    v0: initial membrane [...]; zeros by default.

  Returns:
    ``(v_T, spikes)``: the final membrane [...] and the spikes [T, ...].
  """
  if v0 is None:
    v0 = jnp.zeros(xs.shape[1:], xs.dtype)
  return _lif_sequence(xs, v0, cfg)


# Sequences up to this long run their forward scan fully unrolled: on XLA:CPU
# a width-16 training step ran 1.03-1.15x faster at T 3 and 5, level at T 8,
# 0.89x at T 16 (with 1.6x its compile time); benchmarks/RESULTS.md.
_UNROLL_MAX_STEPS = 5


def _charged_membranes(xs, v0, cfg):
  """``(v_T, h [T, ...])``: the final membrane and every step's charged one."""
  def step(v, x):
    h = lif_charge(v, x, cfg)
    return _fire_and_reset(h, cfg)[0], h
  return jax.lax.scan(step, v0, xs, unroll=xs.shape[0] <= _UNROLL_MAX_STEPS)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _lif_sequence(xs, v0, cfg):
  v, hs = _charged_membranes(xs, v0, cfg)
  return v, spike_fn(hs - cfg.threshold, cfg.alpha)


def _lif_sequence_fwd(xs, v0, cfg):
  v, hs = _charged_membranes(xs, v0, cfg)
  return (v, spike_fn(hs - cfg.threshold, cfg.alpha)), hs


def _lif_sequence_bwd(cfg, hs, cotangents):
  g_v, g_spikes = cotangents

  def step(g_v, g_s_and_h):
    # Chain rule of one step, h = v + (x - (v - v_reset)) / tau:
    # dh/dx = 1 / tau, dh/dv = 1 - 1 / tau; spike = H(h - threshold) with
    # the ATan surrogate; v_next from the reset (s detached or not).
    g_s, h = g_s_and_h
    u = h - cfg.threshold
    slope = atan_surrogate_grad(u, cfg.alpha)
    if cfg.reset == "hard":
      s = (u >= 0).astype(h.dtype)
      dv_dh = 1.0 - s if cfg.detach_reset else 1.0 - s + (cfg.v_reset - h) * slope
    else:
      dv_dh = 1.0 if cfg.detach_reset else 1.0 - cfg.threshold * slope
    g_h = g_s * slope + g_v * dv_dh
    return g_h * (1.0 - 1.0 / cfg.tau), g_h / cfg.tau

  g_v0, g_xs = jax.lax.scan(step, g_v, (g_spikes, hs), reverse=True)
  return g_xs, g_v0


_lif_sequence.defvjp(_lif_sequence_fwd, _lif_sequence_bwd)
