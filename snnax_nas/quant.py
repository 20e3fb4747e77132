"""Weight quantisation: post-training (PTQ) and fake-quant for QAT (STE).

Pure functions over parameter pytrees. They look only at the leaves, never at
the names, so the same calls work on the functional standalone parameters of
:mod:`snnax_nas.network` and on a flax Module's ``params`` collection.

Which leaves are quantised:

* a **weight leaf** is a float array of ``ndim >= 2``: a conv kernel (HWIO,
  ``[k, k, C_in, C_out]``) or a dense kernel (``[in, out]``). Its output
  channel is the LAST axis; it gets one scale per output channel.
* every other leaf (``ndim <= 1``: BN scale/bias, dense bias) stays float32.
  These are ``O(channels)`` numbers against ``O(k^2 C^2)`` for the kernels,
  so keeping them exact costs little memory.

Batch norm is kept in float32, NOT folded into the preceding conv. Folding
(``w' = w * gamma / sigma``) is exact only with frozen running statistics,
and in this network every BN sits between a conv and a LIF that thresholds
its output at every timestep: a rounding error in a folded scale moves the
firing threshold of a whole channel. Unfolded, the conv kernel alone carries
the quantisation error, and the same parameters serve training (batch
statistics) and evaluation (running statistics) unchanged.

The scheme (``b`` bits, ``b`` in 16, 8, 4; 32 means "not quantised"):

  qmax     = 2^(b-1) - 1                      (127 at 8 bits, 7 at 4 bits)
  scale_c  = max_i |w[..., c]| / qmax          float32, one per output channel
  code     = clip(round(w / scale_c), -qmax, qmax)   int16 (16), int8 (8, 4)
  w_hat    = code * scale_c

Symmetric, no zero point, range ``[-qmax, qmax]`` (``-2^(b-1)`` is never
used, so the range is symmetric and ``-code`` always fits). An all-zero
channel gets scale 0 and codes 0 and dequantises to exact zeros. 4-bit codes
are held one per int8 but counted (and packed by :func:`pack_codes`) at two
per byte.

Bytes of a quantised network (what :func:`quantized_bytes` returns and
:func:`snnax_nas.memory.quantized_weight_bytes` predicts from a genotype)::

  sum_weight_leaves ceil(n * b / 8) + 4 * C_out    (packed codes + float32 scales)
  + sum_other_leaves 4 * n                         (float32)

At 32 bits nothing is quantised: 4 bytes per parameter, no scales.

Non-finite weights give undefined codes (no check: these functions run under
``jit``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any
from typing import Sequence
from typing import Union

import jax
import jax.numpy as jnp
import numpy as np

Params = Any

WEIGHT_BITS = (32, 16, 8, 4)
FLOAT_BYTES = 4  # scales and unquantised leaves are float32


def check_weight_bits(bits: int, name: str = "weight_bits") -> None:
  """The one check of a weight precision: raises ValueError unless ``bits``
  is one of :data:`WEIGHT_BITS`; the message names the field ``name``
  (``--config.budget.weight_bits`` in a job)."""
  if bits not in WEIGHT_BITS:
    raise ValueError(f"{name}={bits!r} must be one of {', '.join(map(str, WEIGHT_BITS))}")


def qmax(bits: int) -> int:
  """Largest code magnitude at ``bits`` bits: ``2^(bits-1) - 1`` (7 at 4 bits).

  Raises:
    ValueError: ``bits`` not in 16, 8, 4.
  """
  if bits not in WEIGHT_BITS[1:]:
    raise ValueError(f"quantisation bits must be one of {WEIGHT_BITS[1:]}, got {bits!r}")
  return 2 ** (bits - 1) - 1


def code_dtype(bits: int) -> np.dtype:
  """Integer dtype holding the codes: int16 at 16 bits, int8 at 8 and 4."""
  qmax(bits)
  return np.dtype(np.int16 if bits == 16 else np.int8)


def is_weight(leaf) -> bool:
  """Whether a leaf is quantised: a floating array (or ShapeDtypeStruct) of ndim >= 2."""
  return len(leaf.shape) >= 2 and jnp.issubdtype(leaf.dtype, jnp.floating)


def leaf_bytes(elements, out_channels, bits: int):
  """Bytes of one weight leaf at ``bits`` bits (the module's byte rule).

  Args:
    elements: int (or int64 array) number of kernel elements ``n``.
    out_channels: int (or int64 array) number of output channels (scales).
    bits: 32 (float32, no scales), 16, 8 or 4.

  Returns:
    ``4 * n`` at 32 bits, else ``ceil(n * bits / 8) + 4 * out_channels``;
    same type/shape as ``elements`` broadcast with ``out_channels``.
  """
  check_weight_bits(bits)
  if bits == 32:
    return FLOAT_BYTES * elements
  return (elements * bits + 7) // 8 + FLOAT_BYTES * out_channels


@functools.partial(jax.tree_util.register_dataclass, data_fields=["codes", "scale"],
                   meta_fields=["bits"])
@dataclasses.dataclass(frozen=True)
class QuantizedTensor:
  """One quantised weight leaf.

  Attributes:
    codes: int16 (16 bits) or int8 (8, 4 bits) [..., C_out], the weight's
      shape; values in ``[-qmax(bits), qmax(bits)]``.
    scale: float32 [C_out], weight units per code step.
    bits: 16, 8 or 4 (static under ``jit``).
  """

  codes: jax.Array
  scale: jax.Array
  bits: int


@functools.partial(jax.tree_util.register_dataclass, data_fields=["tree"],
                   meta_fields=["bits"])
@dataclasses.dataclass(frozen=True)
class QuantizedParams:
  """A quantised parameter pytree.

  Attributes:
    tree: the parameters' structure; each weight leaf (see :func:`is_weight`)
      replaced by a :class:`QuantizedTensor`, every other leaf kept as is
      (float32). At 32 bits it is the float tree unchanged.
    bits: 32, 16, 8 or 4 (static under ``jit``).
  """

  tree: Params
  bits: int


def _is_quantized(x) -> bool:
  return isinstance(x, QuantizedTensor)


def channel_scales(w: jax.Array, bits: int) -> jax.Array:
  """Per-output-channel scales ``max|w[..., c]| / qmax(bits)``, float32 [C_out].

  Args:
    w: float weight [..., C_out] (ndim >= 2).
    bits: 16, 8 or 4.
  """
  w = jnp.asarray(w, jnp.float32)
  amax = jnp.max(jnp.abs(w.reshape(-1, w.shape[-1])), axis=0)
  return amax / np.float32(qmax(bits))


def quantize_tensor(w: jax.Array, bits: int) -> QuantizedTensor:
  """Symmetric per-output-channel quantisation of one weight.

  Args:
    w: float weight [..., C_out], ndim >= 2 (conv HWIO or dense [in, out]).
    bits: 16, 8 or 4.

  Returns:
    :class:`QuantizedTensor` with codes of ``w``'s shape and scale [C_out].
    ``|w - dequantize_tensor(q)| <= scale / 2`` per channel (up to float32
    rounding).

  Raises:
    ValueError: ``w`` has ndim < 2, or bad ``bits``.
  """
  if w.ndim < 2:
    raise ValueError(f"quantize_tensor needs a kernel of ndim >= 2 (output channels last), "
                     f"got shape {w.shape}; 1-D leaves stay float32")
  q = qmax(bits)
  w = jnp.asarray(w, jnp.float32)
  scale = channel_scales(w, bits)
  # An all-zero channel has scale 0: divide by 1 there (codes 0, exact zeros).
  safe = jnp.where(scale > 0, scale, np.float32(1))
  # The clip only guards against the float32 rounding of w / scale at the
  # channel maximum (which is exactly +-qmax in exact arithmetic).
  codes = jnp.clip(jnp.round(w / safe), -q, q).astype(code_dtype(bits))
  return QuantizedTensor(codes, scale, bits)


def dequantize_tensor(q: QuantizedTensor) -> jax.Array:
  """float32 weight ``codes * scale`` of the codes' shape [..., C_out]."""
  return q.codes.astype(jnp.float32) * q.scale


def quantize_params(params: Params, bits: int) -> QuantizedParams:
  """Post-training quantisation of every weight leaf of a parameter pytree.

  Args:
    params: any pytree of float arrays (standalone network params, a flax
      ``params`` collection). Weight leaves: ndim >= 2, output channel last.
    bits: 32 (returns the tree unchanged), 16, 8 or 4.

  Returns:
    :class:`QuantizedParams`; 1-D leaves (BN affines, biases) stay float32.

  Raises:
    ValueError: ``bits`` not in 32, 16, 8, 4.
  """
  check_weight_bits(bits)
  if bits == 32:
    return QuantizedParams(params, 32)
  tree = jax.tree.map(lambda x: quantize_tensor(x, bits) if is_weight(x) else x, params)
  return QuantizedParams(tree, bits)


def dequantize(qparams: QuantizedParams) -> Params:
  """The float32 parameter pytree a :class:`QuantizedParams` stands for.

  Same structure as the tree given to :func:`quantize_params`; weight leaves
  are ``codes * scale`` [..., C_out], the other leaves are returned as stored.
  """
  return jax.tree.map(lambda x: dequantize_tensor(x) if _is_quantized(x) else x,
                      qparams.tree, is_leaf=_is_quantized)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _fake_quantize_tensor(w: jax.Array, bits: int) -> jax.Array:
  return dequantize_tensor(quantize_tensor(w, bits))


@_fake_quantize_tensor.defjvp
def _fake_quantize_tensor_jvp(bits, primals, tangents):
  # Straight-through estimator: the rounding is treated as the identity, so
  # the tangent (and by transposition the gradient) passes through unchanged.
  (w,), (dw,) = primals, tangents
  return _fake_quantize_tensor(w, bits), dw


def fake_quantize(params: Params, bits: int) -> Params:
  """Quantise-then-dequantise every weight leaf, with a straight-through gradient.

  For quantisation-aware training: call it on the float parameters inside the
  loss, ``loss(fake_quantize(params, bits), ...)``. The forward pass sees
  exactly ``dequantize(quantize_params(params, bits))``; the gradient with
  respect to ``params`` is the gradient with respect to the quantised
  weights, unchanged (d w_hat / d w := 1). The float parameters remain the
  optimiser's state.

  Args:
    params: float parameter pytree (see :func:`quantize_params`).
    bits: 32 (identity, returns ``params``), 16, 8 or 4.

  Returns:
    float32 pytree of ``params``' structure.
  """
  check_weight_bits(bits)
  if bits == 32:
    return params
  return jax.tree.map(lambda x: _fake_quantize_tensor(x, bits) if is_weight(x) else x, params)


def quantized_bytes(qparams: QuantizedParams) -> int:
  """Storage bytes of a quantised network (see the module docstring).

  Weight leaves: ``ceil(n * bits / 8)`` (codes packed, 4-bit two per byte)
  plus 4 bytes per float32 scale. Other leaves: their size times their
  dtype's bytes (4 for float32). At 32 bits: 4 bytes per parameter.
  Only shapes are read, so ``jax.eval_shape`` outputs work too.

  Returns:
    int, bytes.
  """
  total = 0
  for x in jax.tree.leaves(qparams.tree, is_leaf=_is_quantized):
    if _is_quantized(x):
      total += leaf_bytes(math.prod(x.codes.shape), math.prod(x.scale.shape), x.bits)
    else:
      total += math.prod(x.shape) * np.dtype(x.dtype).itemsize
  return int(total)


def pack_codes(codes: Union[np.ndarray, jax.Array], bits: int) -> np.ndarray:
  """The codes as the bytes :func:`quantized_bytes` counts, row-major.

  Args:
    codes: int codes of any shape, values in ``[-qmax(bits), qmax(bits)]``.
    bits: 16 (little-endian int16), 8 (int8) or 4 (two's-complement nibbles,
      element ``2i`` in the low nibble of byte ``i``).

  Returns:
    uint8 [ceil(codes.size * bits / 8)].
  """
  flat = np.asarray(codes).reshape(-1)
  if bits == 16:
    return flat.astype("<i2").view(np.uint8)
  if bits == 8:
    return flat.astype(np.int8).view(np.uint8)
  qmax(bits)
  nibbles = (flat.astype(np.int16) & 0xF).astype(np.uint8)
  if nibbles.size % 2:
    nibbles = np.append(nibbles, np.uint8(0))
  return nibbles[0::2] | (nibbles[1::2] << 4)


def unpack_codes(packed: np.ndarray, bits: int, shape: Sequence[int]) -> np.ndarray:
  """Inverse of :func:`pack_codes`: int codes of ``shape`` (dtype :func:`code_dtype`).

  Raises:
    ValueError: ``packed`` does not hold ``ceil(prod(shape) * bits / 8)`` bytes.
  """
  n = math.prod(shape)
  packed = np.asarray(packed, np.uint8).reshape(-1)
  if packed.size != (n * bits + 7) // 8:
    raise ValueError(f"{packed.size} bytes cannot hold {n} codes of {bits} bits "
                     f"(need {(n * bits + 7) // 8})")
  if bits == 16:
    return packed.view("<i2").astype(np.int16).reshape(shape)
  if bits == 8:
    return packed.view(np.int8).reshape(shape)
  qmax(bits)
  nibbles = np.stack([packed & 0xF, packed >> 4], axis=-1).reshape(-1)[:n].astype(np.int8)
  return np.where(nibbles >= 8, nibbles - 16, nibbles).astype(np.int8).reshape(shape)
