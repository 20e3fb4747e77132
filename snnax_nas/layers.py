"""Layers of the SNASNet network as pure functions: convolution, pooling,
batch norm, dropout masks, and parameter specs with their initialisers.

Layouts: activations NHWC float32, conv kernels HWIO, dense kernels [in, out].
Both network implementations (:mod:`snnax_nas.network`, functional, and
:mod:`snnax_nas.models`, a flax Module) compute with these functions, so
they agree by construction.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any
from typing import Callable
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from snnax_nas import configs

Params = Any

BN_EPS = 1e-5
BN_MOMENTUM = 0.1  # PyTorch convention: new = (1 - m) * old + m * batch.
INITIALIZERS = ("conv", "dense", "fan_in", "ones", "zeros")
# The ParamSpec init of the classifier's Linear kernels for each
# NetworkConfig.linear_init.
_LINEAR_INIT_KINDS = {"reference": "dense", "fan_in": "fan_in"}


@dataclasses.dataclass(frozen=True)
class ParamSpec:
  """Shape and initialiser of one parameter array.

  ``init``: ``"conv"`` (HWIO, kaiming_uniform(a=2): U(+-sqrt(1.2 / fan_in)),
  fan_in = k*k*C_in), ``"dense"`` (N(0, 0.01^2), the reference Linear init),
  ``"fan_in"`` (a dense kernel [in, out] drawn from N(0, g^2 / in) with
  ``g = configs.LINEAR_FAN_IN_GAIN``), ``"ones"`` or ``"zeros"``.
  """

  shape: tuple[int, ...]
  init: str


def linear_init_kind(linear_init: str) -> str:
  """The :class:`ParamSpec` init of the classifier's Linear kernels under
  :attr:`snnax_nas.configs.NetworkConfig.linear_init`: ``"dense"`` for
  ``"reference"``, ``"fan_in"`` for ``"fan_in"``.

  Raises:
    ValueError: an unknown ``linear_init``.
  """
  if linear_init not in _LINEAR_INIT_KINDS:
    raise ValueError(f"linear_init must be one of {tuple(_LINEAR_INIT_KINDS)}, "
                     f"got {linear_init!r}")
  return _LINEAR_INIT_KINDS[linear_init]


def _is_spec(x) -> bool:
  return isinstance(x, ParamSpec)


def _from_uniform(init: str, u: jax.Array) -> jax.Array:
  """A ``"conv"``, ``"dense"`` or ``"fan_in"`` parameter from uniform draws
  ``u`` in (-1, 1) of its shape (the one place those distributions are
  defined). A normal N(0, s^2) is ``s sqrt(2) erf_inv(u)``."""
  if init == "conv":
    fan_in = int(np.prod(u.shape[-4:-1]))
    return u * np.float32(np.sqrt(1.2 / fan_in))
  if init == "dense":
    return np.float32(0.01 * np.sqrt(2.0)) * jax.lax.erf_inv(u)
  if init == "fan_in":
    std = configs.LINEAR_FAN_IN_GAIN / np.sqrt(u.shape[-2])  # dense kernel [in, out]
    return np.float32(std * np.sqrt(2.0)) * jax.lax.erf_inv(u)
  raise ValueError(f"unknown initialiser {init!r}; choose from {INITIALIZERS}")


def _uniform(key: jax.Array, shape) -> jax.Array:
  # Open interval (-1, 1): erf_inv(-1) would be -inf.
  return jax.random.uniform(key, shape, jnp.float32,
                            minval=np.nextafter(np.float32(-1), np.float32(0)), maxval=1.0)


def initializer(init: str) -> Callable[..., jax.Array]:
  """A flax-style initialiser ``(key, shape, dtype=float32) -> array`` drawing
  from the distribution of :class:`ParamSpec` ``init`` (values differ from
  :func:`materialize`, which draws all parameters at once)."""
  if init not in INITIALIZERS:
    raise ValueError(f"unknown initialiser {init!r}; choose from {INITIALIZERS}")

  def init_fn(key, shape, dtype=jnp.float32):
    if init == "ones":
      return jnp.ones(shape, dtype)
    if init == "zeros":
      return jnp.zeros(shape, dtype)
    return _from_uniform(init, _uniform(key, tuple(shape))).astype(dtype)

  return init_fn


def materialize(key: jax.Array, specs) -> Params:
  """Initialises a tree of :class:`ParamSpec` from ONE uniform draw.

  A single random call for all weights keeps compile time low when a fresh
  network is initialised inside a compiled scorer for every candidate.
  """
  leaves, treedef = jax.tree.flatten(specs, is_leaf=_is_spec)
  for s in leaves:
    if s.init not in INITIALIZERS:
      raise ValueError(f"unknown initialiser {s.init!r}; choose from {INITIALIZERS}")
  random = [s for s in leaves if s.init in ("conv", "dense", "fan_in")]
  total = sum(int(np.prod(s.shape)) for s in random)
  u = _uniform(key, (max(total, 1),))
  out, offset = [], 0
  for s in leaves:
    if s.init == "ones":
      out.append(jnp.ones(s.shape, jnp.float32))
    elif s.init == "zeros":
      out.append(jnp.zeros(s.shape, jnp.float32))
    else:
      size = int(np.prod(s.shape))
      out.append(_from_uniform(s.init, u[offset:offset + size].reshape(s.shape)))
      offset += size
  return jax.tree.unflatten(treedef, out)


def bn_spec(c: int, lead: tuple[int, ...] = ()) -> dict:
  """:class:`ParamSpec` of a BN affine: ``scale`` (ones) and ``bias`` (zeros),
  shape ``lead + (c,)``."""
  return {"scale": ParamSpec(lead + (c,), "ones"), "bias": ParamSpec(lead + (c,), "zeros")}


def conv2d(x: jax.Array, kernel: jax.Array, stride: int = 1) -> jax.Array:
  """'Same'-padded NHWC convolution with an HWIO kernel, no bias.

  Padding is ``k // 2`` on every side (PyTorch's ``padding=k//2``), also for
  stride 2, where XLA's 'SAME' would pad asymmetrically.
  """
  pad = kernel.shape[0] // 2
  return jax.lax.conv_general_dilated(
      x, kernel, (stride, stride), [(pad, pad), (pad, pad)],
      dimension_numbers=("NHWC", "HWIO", "NHWC"))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_over_time(xs: jax.Array, kernel: jax.Array, stride: int = 1) -> jax.Array:
  """:func:`conv2d` of every timestep of time-major images, as one convolution.

  The forward pass and the input gradient each run one convolution over all
  T x B images. The kernel gradient is summed over timesteps from one kernel
  gradient per timestep (B images each) instead of one over T x B images:
  XLA:CPU runs the kernel gradient of a convolution at a rate that falls with
  the batch (the cell conv of width 16: 48 GFLOP/s at B = 64, 19 at T x B =
  320, benchmarks/RESULTS.md), which made a training step's time grow faster
  than T. Same values as autodiff of one :func:`conv2d` over T x B images up
  to float summation order (tests/test_layers.py).

  Args:
    xs: [T, B, H, W, C_in] images, time-major.
    kernel: [k, k, C_in, C_out] HWIO kernel.
    stride: the convolution's stride (static).

  Returns:
    [T, B, H / stride, W / stride, C_out].
  """
  y = conv2d(xs.reshape((-1,) + xs.shape[2:]), kernel, stride)
  return y.reshape(xs.shape[:2] + y.shape[1:])


def _conv_over_time_fwd(xs, kernel, stride):
  return conv_over_time(xs, kernel, stride), (xs, kernel)


def _conv_over_time_bwd(stride, res, g):
  xs, kernel = res
  flat = lambda a: a.reshape((-1,) + a.shape[2:])  # noqa: E731
  _, input_vjp = jax.vjp(lambda x: conv2d(x, kernel, stride), flat(xs))
  dx = input_vjp(flat(g))[0].reshape(xs.shape)
  dk = jnp.zeros_like(kernel)
  for t in range(xs.shape[0]):  # T is static and small: one kernel gradient per step
    _, kernel_vjp = jax.vjp(lambda k, t=t: conv2d(xs[t], k, stride), kernel)
    dk = dk + kernel_vjp(g[t])[0]
  return dx, dk


conv_over_time.defvjp(_conv_over_time_fwd, _conv_over_time_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def repeat_over_time(x: jax.Array, timesteps: int) -> jax.Array:
  """``x`` [1, ...] repeated along its leading (time) axis: [timesteps, ...].

  ``jnp.broadcast_to`` computes the same; its gradient, a sum over the
  leading axis with everything else kept, runs ~25x slower on XLA:CPU (105
  vs 4 ms for [5, 64, 32, 32, 16]) than the sum of the T slices this
  backward pass adds.
  """
  return jnp.broadcast_to(x, (timesteps,) + x.shape[1:])


def _repeat_over_time_fwd(x, timesteps):
  return repeat_over_time(x, timesteps), None


def _repeat_over_time_bwd(timesteps, _, g):
  total = g[0]
  for t in range(1, timesteps):
    total = total + g[t]
  return (total[None],)


repeat_over_time.defvjp(_repeat_over_time_fwd, _repeat_over_time_bwd)


def pool3x3(x: jax.Array, kind: str) -> jax.Array:
  """Stride-1 3x3 pooling with padding 1 (avg counts the zero padding, as
  PyTorch's default ``count_include_pad=True``), NHWC.

  Args:
    x: [B, H, W, C].
    kind: ``"avgpool"`` or ``"maxpool"``.

  Written as nine shifted slices of the padded input, summed in the window's
  row-major order: XLA fuses this into one elementwise pass and it is
  bit-identical to ``lax.reduce_window`` here, which XLA:CPU runs ~5x slower.
  """
  _, h, w, _ = x.shape
  pad_value = 0.0 if kind == "avgpool" else -jnp.inf
  p = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=pad_value)
  combine = jnp.add if kind == "avgpool" else jnp.maximum
  out = None
  for i in range(3):
    for j in range(3):
      s = p[:, i:i + h, j:j + w]
      out = s if out is None else combine(out, s)
  return out / 9.0 if kind == "avgpool" else out


def avg_pool(x: jax.Array, size: int) -> jax.Array:
  """Non-overlapping size x size average pooling, NHWC [B, H, W, C] ->
  [B, H / size, W / size, C]."""
  if size == 1:
    return x
  if size == 2:
    # Strided slices fuse with the producer (the reduction block's BN) into
    # one pass; a reshape-mean is a separate reduction (~1.5x slower there).
    # Summed in the order XLA:CPU's mean uses, so results are unchanged.
    s = lambda i, j: x[:, i::2, j::2]
    return ((s(0, 0) + s(0, 1)) + (s(1, 0) + s(1, 1))) / 4.0
  b, h, w, c = x.shape
  return x.reshape(b, h // size, size, w // size, size, c).mean(axis=(2, 4))


def batch_moments(x: jax.Array, axes: tuple[int, ...], one_pass: bool = False):
  """Batch mean and (biased) variance of ``x`` over ``axes``.

  ``one_pass``: variance as ``E[x^2] - E[x]^2`` (see :func:`batch_norm`).
  """
  mean = x.mean(axes)
  if one_pass:  # XLA fuses the two sibling reductions into one pass
    var = jnp.maximum(jnp.mean(jnp.square(x), axes) - jnp.square(mean), 0.0)
  else:
    mean_b = jnp.expand_dims(mean, axes)
    var = jnp.mean(jnp.square(x - mean_b), axes)
  return mean, var


def running_stats_update(stats: Params, mean: jax.Array, var: jax.Array, n: int) -> Params:
  """One PyTorch-style running-statistics update.

  Args:
    stats: ``{"mean": [C], "var": [C]}``.
    mean, var: batch mean and biased variance [C] of ``n`` values per channel.

  Returns:
    ``{"mean": (1 - m) mean_old + m mean, "var": (1 - m) var_old + m var
    n / (n - 1)}`` with ``m = BN_MOMENTUM`` (PyTorch keeps the unbiased
    variance).
  """
  return {
      "mean": (1 - BN_MOMENTUM) * stats["mean"] + BN_MOMENTUM * mean,
      "var": (1 - BN_MOMENTUM) * stats["var"] + BN_MOMENTUM * var * n / max(n - 1, 1),
  }


def bn_normalize(x: jax.Array, mean: jax.Array, var: jax.Array, p: Params) -> jax.Array:
  """``(x - mean) / sqrt(var + BN_EPS) * scale + bias`` (all broadcast to x)."""
  return (x - mean) * jax.lax.rsqrt(var + BN_EPS) * p["scale"] + p["bias"]


@jax.custom_vjp
def batch_norm_per_step(x: jax.Array, scale: jax.Array, bias: jax.Array):
  """Training-mode batch norm of each timestep of ``x`` with its own batch
  statistics (two-pass variance), with a hand-written backward pass.

  Same values and gradients as autodiff of :func:`batch_moments` +
  :func:`bn_normalize` per timestep (tests/test_layers.py). The backward pass
  reads the centred input ``x - mean`` (its only [T, B, ..., C] residual) and
  the output gradient once for two per-(timestep, channel) sums and once more
  for the input gradient, where autodiff of the moments takes several passes
  over these arrays (on XLA:CPU these elementwise passes were a third of a
  training step, benchmarks/RESULTS.md).

  Args:
    x: [T, B, ..., C] activations.
    scale, bias: [C] affine parameters.

  Returns:
    ``(y [T, B, ..., C], mean [T, C], var [T, C])``: the output and each
    timestep's batch mean and biased variance (for the running statistics).
  """
  axes = tuple(range(1, x.ndim - 1))
  mean, var = batch_moments(x, axes)
  shape = _per_step_shape(x)
  y = bn_normalize(x, mean.reshape(shape), var.reshape(shape), {"scale": scale, "bias": bias})
  return y, mean, var


def _batch_norm_per_step_fwd(x, scale, bias):
  y, mean, var = batch_norm_per_step(x, scale, bias)
  # Residuals: the centred input (the two-pass variance computes it anyway),
  # not x. The backward never forms x - mean or x_hat from x again, which
  # XLA would share with the forward's and keep alive from the forward to
  # the backward: two extra [T, B, ..., C] arrays per batch norm at the
  # training step's memory peak (benchmarks/RESULTS.md).
  centred = x - mean.reshape(_per_step_shape(x))
  return (y, mean, var), (centred, scale, jax.lax.rsqrt(var + BN_EPS))


def _batch_norm_per_step_bwd(res, cotangents):
  centred, scale, rstd = res
  gy, g_mean, g_var = cotangents
  axes = tuple(range(1, centred.ndim - 1))
  n = centred[0].size // centred.shape[-1]  # values per (timestep, channel)
  shape = _per_step_shape(centred)
  sum_gy = gy.sum(axes)                         # [T, C]
  sum_gy_centred = (gy * centred).sum(axes)     # [T, C]; x_hat = centred * rstd
  d_bias = sum_gy.sum(0)
  d_scale = (sum_gy_centred * rstd).sum(0)
  rstd = rstd.reshape(shape)
  # d/dx of scale * x_hat with the batch statistics depending on x, plus the
  # cotangents of the returned moments (d mean / dx = 1 / n, d var / dx =
  # 2 (x - mean) / n); x_hat * sum(gy * x_hat) written as centred * rstd^2 *
  # sum(gy * centred).
  dx = ((scale * rstd) * (gy - (sum_gy.reshape(shape)
                                + centred * (rstd * rstd * sum_gy_centred.reshape(shape))) / n)
        + (g_mean.reshape(shape) + 2.0 * g_var.reshape(shape) * centred) / n)
  return dx, d_scale, d_bias


def _per_step_shape(x: jax.Array) -> tuple[int, ...]:
  """[T, 1, ..., 1, C]: per-(timestep, channel) statistics broadcast to x."""
  return (x.shape[0],) + (1,) * (x.ndim - 2) + (x.shape[-1],)


batch_norm_per_step.defvjp(_batch_norm_per_step_fwd, _batch_norm_per_step_bwd)


def batch_norm(x: jax.Array, p: Params, stats: Optional[Params] = None,
               train: bool = True, one_pass: bool = False):
  """Batch norm over all axes but the last.

  Args:
    x: activations [..., C].
    p: ``{"scale": [C], "bias": [C]}``.
    stats: running ``{"mean": [C], "var": [C]}`` or None (scoring keeps none).
    train: normalise with batch statistics (and update ``stats``) or with the
      running statistics.
    one_pass: batch variance as ``E[x^2] - E[x]^2``: one read of ``x`` for
      both moments instead of two (5-8 % of the scorer's time). Exact enough
      only while ``|mean| / std`` stays small (relative error ~1e-5 at 10,
      ~2e-3 at 100): true of networks at initialisation, whose conv weights
      have zero mean, so the scorer uses it; training does not.

  Returns:
    ``(y [..., C], new_stats)``; ``new_stats`` is None when ``stats`` is None.
  """
  if train:
    mean, var = batch_moments(x, tuple(range(x.ndim - 1)), one_pass)
    new_stats = None
    if stats is not None:
      new_stats = running_stats_update(stats, mean, var, x.size // x.shape[-1])
  else:
    if stats is None:
      raise ValueError("batch_norm(train=False) needs running statistics")
    mean, var, new_stats = stats["mean"], stats["var"], stats
  return bn_normalize(x, mean, var, p), new_stats


def init_batch_stats(params: Params) -> Params:
  """Fresh running BN statistics (mean 0, var 1) mirroring ``params``.

  Every dict holding ``scale`` (a BN affine, possibly beside a conv
  ``kernel``) gets ``{"mean", "var"}``; subtrees without a BN are dropped.
  """
  def walk(node):
    if isinstance(node, dict):
      if "scale" in node:
        return {"mean": jnp.zeros_like(node["scale"]), "var": jnp.ones_like(node["scale"])}
      out = {k: walk(v) for k, v in node.items()}
      return {k: v for k, v in out.items() if v is not None} or None
    if isinstance(node, (list, tuple)):
      return [walk(v) or {} for v in node]
    return None
  return walk(params)


def dropout_mask(key: jax.Array, rate: float, shape: tuple[int, ...]) -> jax.Array:
  """Inverted-dropout mask: ``keep / (1 - rate)`` float32 of ``shape``, with
  ``keep ~ Bernoulli(1 - rate)``. The network draws one per sample and
  applies it at every timestep."""
  keep = jax.random.bernoulli(key, 1.0 - rate, shape)
  return keep.astype(jnp.float32) / (1.0 - rate)
