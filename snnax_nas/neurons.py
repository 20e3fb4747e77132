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
time-major sequence through ``lax.scan``.
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
  v = lif_charge(v, x, cfg)
  spike = spike_fn(v - cfg.threshold, cfg.alpha)
  s_reset = jax.lax.stop_gradient(spike) if cfg.detach_reset else spike
  if cfg.reset == "hard":
    v_next = s_reset * cfg.v_reset + (1.0 - s_reset) * v
  else:
    v_next = v - s_reset * cfg.threshold
  return v_next, spike


def lif_scan(xs: jax.Array, cfg: LIFConfig = LIFConfig(),
             v0: Optional[jax.Array] = None):
  """Runs a LIF over a time-major input sequence with ``lax.scan``.

  Args:
    xs: inputs [T, ...].
    cfg: neuron constants.
    v0: initial membrane [...]; zeros by default.

  Returns:
    ``(v_T, spikes)``: the final membrane [...] and the spikes [T, ...].
  """
  if v0 is None:
    v0 = jnp.zeros(xs.shape[1:], xs.dtype)
  return jax.lax.scan(lambda v, x: lif_step(v, x, cfg), v0, xs)
