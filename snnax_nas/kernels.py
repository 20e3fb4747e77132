"""The training-free SAHD score: kernels of spike codes and their log-determinant.

Per LIF call (one LIF at one timestep) with binary codes ``x`` [B, N]
(SNASNet, Kim et al. ECCV 2022; its ``model_snn.py``)::

  H_ij = |x_i xor x_j|                    Hamming distance (one Gram matmul)
  E_ij = N (r_i (1 - r_j) + (1 - r_i) r_j)  expected H of independent codes
  K    = N - 0.5 H / (E + 1e-3)           sparsity-aware Hamming kernel

The score of one image batch is ``log|det mean_calls K|`` and a candidate's
score is the mean over R batches. The plain Hamming (NASWOT-style) kernel
``K = N - H`` is available as ``kernel="hamming"``.

Variants (``kernel=`` one name or a tuple of names, all computed from the
same forward pass in one compiled call; see :data:`KERNELS` and each
``*_terms`` function for its formula): ``sahd_norm`` (per-call normalised
kernels, uninformative calls excluded), ``sahd_time`` (one kernel per LIF over
its codes concatenated over the T timesteps), ``swap`` (count of distinct
per-neuron activation patterns), ``membrane`` (sample correlation of the
membrane potentials, no threshold), ``expressivity`` (AZ-NAS's expressivity
adapted to spikes: the entropy of the normalised eigenvalues of each LIF's
channel covariance of its spike codes, summed over LIFs), ``progressivity``
(AZ-NAS's progressivity: the smallest step in expressivity from one cell to
the next), ``informative`` (spike-specific: the fraction of neurons that fire
for some but not all samples, i.e. neither silent nor saturated, per call).
``draws=D`` averages D fresh weight draws,
each over all R batches. A rank ensemble needs the whole population and is
computed after scoring, on the host (:func:`rank_ensemble`).

:data:`KERNELS` also names the proxies of :mod:`snnax_nas.proxies`: the
gradient proxies at initialisation (``grad_norm``, ``snip``, ``jacob_cov``,
through the surrogate gradient, from the same forward pass and its backward)
and the exact size baselines (``params``, ``flops``, ``conv_depth``, computed
on the host), so every score can be printed beside size.

Float32 on device: ``mean K = Nbar 11^T + M`` with ``M = -0.5 mean(H / (E +
1e-3))`` has a condition number ~1e8, so the rank-one part is split off
exactly. With an orthogonal Householder ``Q`` mapping ``1/sqrt(B)`` to ``e1``,
``Q K Q = B Nbar e1 e1^T + Q M Q``, hence (Schur complement on the first row)::

  log|det K| = log|det A22| + log|B Nbar + a11 - a12^T A22^-1 a12|

with ``A = Q M Q``. ``A22`` is M restricted to the complement of ``1`` and
is well conditioned for informative codes; ``M`` itself may be singular
without harm. A singular ``A22`` (two samples with identical codes in every
call, or no LIF ever firing) means a singular kernel: the score is then
``-inf`` and flagged, never NaN.

The batched scorer that evaluates these per candidate is :mod:`snnax_nas.score`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from snnax_nas import correlation
from snnax_nas import proxies

# Hamming-family kernels of :func:`hamming_terms`.
HAMMING_KERNELS = ("sahd", "hamming")
# Kernels computed by a LIF probe from one forward pass (:class:`KernelProbe`).
PROBE_KERNELS = HAMMING_KERNELS + ("sahd_norm", "sahd_time", "swap", "membrane", "expressivity",
                                   "progressivity", "informative")
# Probe kernels that need the sums per LIF (``per_layer``), not over all LIFs.
PER_LAYER_KERNELS = ("sahd_time", "progressivity")
# Every name the scorer accepts: the probe kernels, the gradient proxies and
# the analytic size/structure baselines of :mod:`snnax_nas.proxies`.
KERNELS = PROBE_KERNELS + proxies.GRADIENT_KERNELS + proxies.ANALYTIC_KERNELS
SAHD_ALPHA = 0.5
SAHD_EPS = 1e-3
MIN_BATCH_SIZE = 2
"""Fewest images per scoring batch: the log-determinant of a 1x1 kernel has no
rank-one part to separate (see :func:`kernel_logdet`)."""


def _gram_dtype() -> jnp.dtype:
  """Input dtype of the code Gram matmul on the current backend.

  0/1 codes are exact in every dtype; what differs is the speed and the
  exactness of the accumulation. XLA:CPU runs an int8 x int8 -> int32 dot
  1.45-1.6x faster than a float32 one (benchmarks/gram_bench.py) and
  int32 accumulation is exact up to 2^31. GPUs and TPUs run bf16 x bf16 ->
  float32 at full matrix-unit rate, exact while N < 2^24.
  """
  return jnp.int8 if jax.default_backend() == "cpu" else jnp.bfloat16


def code_gram(x: jax.Array, dtype=None) -> jax.Array:
  """Exact Gram matrix ``x x^T`` [B, B] float32 of 0/1 codes ``x`` [B, N].

  Args:
    x: codes with values in {0, 1} (any dtype).
    dtype: matmul input dtype (``int8``, ``bfloat16`` or ``float32``);
      None picks the backend's fast exact choice (:func:`_gram_dtype`).
  """
  dtype = jnp.dtype(dtype or _gram_dtype())
  x = x.astype(dtype)
  dims = (((1,), (1,)), ((), ()))
  if dtype == jnp.int8:
    return jax.lax.dot_general(x, x, dims, preferred_element_type=jnp.int32).astype(jnp.float32)
  return jax.lax.dot_general(x, x, dims, precision=jax.lax.Precision.HIGHEST,
                             preferred_element_type=jnp.float32)


def hamming_terms(spikes: jax.Array, kernel: str = "sahd"):
  """Per-call kernel statistics of one LIF output (a network probe).

  Args:
    spikes: LIF output [B, ...] with values in {0, 1}.
    kernel: ``"sahd"`` or ``"hamming"``.

  Returns:
    ``(d [B, B], n)``: ``d = 0.5 H / (E + 1e-3)`` for SAHD, ``d = H`` for
    Hamming (so that ``K = n - d``), and ``n = N`` as a float32 scalar.
  """
  b = spikes.shape[0]
  code = spikes.reshape(b, -1) > 0
  n = code.shape[1]
  # 0/1 codes: the Gram matmul and counts are exact integers (float32 below
  # 2^24), whatever the matmul dtype (see code_gram).
  gram = code_gram(code)
  # Codes are 0/1, so x_i . x_i is the spike count of sample i: reading it
  # off the Gram diagonal saves a pass over the codes.
  counts = jnp.diagonal(gram)
  ham = counts[:, None] + counts[None, :] - 2.0 * gram
  if kernel == "hamming":
    d = ham
  else:
    expected = (counts[:, None] * (n - counts[None, :])
                + (n - counts[:, None]) * counts[None, :]) / n
    d = SAHD_ALPHA * ham / (expected + SAHD_EPS)
  return d, jnp.float32(n)


@jax.custom_batching.sequential_vmap
def _lu_terms(a22: jax.Array, a12: jax.Array):
  """``(|diag U|, a12^T a22^-1 a12)`` from the LU of ``a22`` [n, n], ``a12`` [n].

  Under ``vmap`` this runs one LU and one solve per matrix in a loop, never a
  batched LAPACK call: a batched LU or triangular solve splits its batch over
  XLA:CPU's intra-op thread pool and blocks until the parts finish, and with
  one device per core every pool thread can end up blocked in such a call at
  once, waiting for parts no free thread will run (the scorer deadlocked with
  ``map_batch_size > 1`` on 2 devices, jax 0.10.2). The matrices are
  [B-1, B-1]: the loop costs nothing measurable.
  """
  lu, piv = jax.scipy.linalg.lu_factor(a22)
  return jnp.abs(jnp.diagonal(lu)), a12 @ jax.scipy.linalg.lu_solve((lu, piv), a12)


def kernel_logdet(m: jax.Array, n_bar: jax.Array):
  """``log|det(n_bar 11^T + m)|`` in float32 without the rank-one cancellation.

  Args:
    m: symmetric [B, B] (the negative mean distance term, zero diagonal).
    n_bar: scalar, the mean code length of the averaged calls.

  Returns:
    ``(logdet, singular)``: ``-inf`` and True where the kernel is singular.
  """
  b = m.shape[-1]
  u = jnp.full((b,), 1.0 / np.sqrt(b), m.dtype)
  v = u - jnp.zeros((b,), m.dtype).at[0].set(1.0)
  v = v / jnp.linalg.norm(v)
  # Q m Q with Q = I - 2 v v^T, applied in O(B^2).
  mv = m @ v
  vmv = v @ mv
  a = m - 2.0 * jnp.outer(v, mv) - 2.0 * jnp.outer(mv, v) + 4.0 * vmv * jnp.outer(v, v)
  a11, a12, a22 = a[0, 0], a[0, 1:], a[1:, 1:]
  diag, quad = _lu_terms(a22, a12)
  tol = b * jnp.finfo(m.dtype).eps * jnp.max(jnp.abs(a22))
  schur = a11 - quad
  logdet = jnp.sum(jnp.log(diag)) + jnp.log(jnp.abs(b * n_bar + schur))
  singular = (jnp.min(diag) <= tol) | ~jnp.isfinite(logdet)
  return jnp.where(singular, -jnp.inf, logdet), singular


def kernel_logdet_reference(kernels: Sequence[np.ndarray]) -> float:
  """Float64 host reference: ``log|det(mean of kernels)|`` by plain slogdet.

  Args:
    kernels: per-call kernels ``K = N - d`` as float64 [B, B] arrays.
  """
  mean = np.mean(np.stack([np.asarray(k, np.float64) for k in kernels]), axis=0)
  return float(np.linalg.slogdet(mean)[1])


def kernel_from_codes_reference(codes: np.ndarray, kernel: str = "sahd") -> np.ndarray:
  """Float64 host reference of one call's kernel ``K`` from codes [B, ...]."""
  x = (np.asarray(codes).reshape(codes.shape[0], -1) > 0).astype(np.float64)
  n = x.shape[1]
  ham = x @ (1 - x).T + (1 - x) @ x.T
  if kernel == "hamming":
    return n - ham
  r = x.mean(1)
  expected = n * (r[:, None] * (1 - r[None, :]) + (1 - r[:, None]) * r[None, :])
  return n - SAHD_ALPHA * ham / (expected + SAHD_EPS)


def score_from_probes(probes, kernel: str = "sahd"):
  """The log-determinant of one image batch from summed probe outputs.

  Args:
    probes: ``{"values": (d_sum [B, B], n_sum), "counts": calls}`` as
      returned by a network forward with probe :func:`hamming_terms` and
      ``per_layer=False``.
    kernel: the kernel the probe computed.

  Returns:
    ``(logdet, singular)``.
  """
  (d_sum, n_sum), calls = probes["values"], probes["counts"]
  return kernel_logdet(-d_sum / calls, n_sum / calls)


# ----------------------------------------------------------------------------
# Score variants: per-call terms (probes) and per-batch scores.

def normalised_terms(spikes: jax.Array):
  """Per-call terms of ``sahd_norm``: each call's kernel divided by its length.

  With SAHD's ``d`` and ``N`` of one call (:func:`hamming_terms`), the
  normalised kernel is ``K / N = 1 - d / N`` (ones on the diagonal whatever
  the layer size, so wide layers no longer outweigh narrow ones). A call is
  *live* when two samples' codes differ (``max H > 0``); a silent (or
  saturated) call has ``d = 0`` and would only add the rank-one ``11^T``.
  Over the live calls ``c`` of a batch::

    K = 11^T - (sum_c live_c d_c / N_c) / (sum_c live_c)

  Args:
    spikes: LIF output [B, ...] with values in {0, 1}.

  Returns:
    ``(live * d / N [B, B], live)`` float32.
  """
  d, n = hamming_terms(spikes, "sahd")
  live = jnp.any(d > 0).astype(jnp.float32)  # d > 0 exactly where H > 0
  return live * d / n, live


def time_terms(spikes: jax.Array):
  """Per-call terms of ``sahd_time``: the code Gram and length of one call.

  Summed over the T calls of one LIF they are the Gram ``X X^T`` and length
  ``T N`` of the LIF's codes concatenated over time, ``X`` [B, T N]. Per LIF
  ``l`` the SAHD kernel is then built once on those ``T N`` bits (counts
  ``c = diag(X X^T)``, ``H = c_i + c_j - 2 X X^T``, ``r = c / (T N)``)::

    K_l = T N - 0.5 H / (E + 1e-3),   E = T N (r_i (1 - r_j) + (1 - r_i) r_j)

  and ``K = mean`` over the LIFs that ran (:func:`scores_from_probes`): two
  samples that spike at different timesteps differ, and a rate that differs
  only over time is no longer averaged away call by call.

  Returns:
    ``(X_t X_t^T [B, B], N)`` float32.
  """
  b = spikes.shape[0]
  code = spikes.reshape(b, -1) > 0
  return code_gram(code), jnp.float32(code.shape[1])


def pattern_count(spikes: jax.Array) -> jax.Array:
  """Per-call term of ``swap``: the number of distinct per-neuron patterns.

  In the style of SWAP (sample-wise activation patterns): each of the N
  neurons of a call has a pattern, its B-bit column of the code matrix
  ``x`` [B, N] (which samples made it spike). The term is the number of
  distinct columns, ``|{x[:, n] : n < N}|`` in ``1..min(N, 2^B)``. Columns are
  packed into ``ceil(B / 32)`` uint32 words, sorted lexicographically and
  counted by their changes, all of fixed shape. The batch score is
  ``log sum_calls count``.

  Returns:
    float32 scalar.
  """
  b = spikes.shape[0]
  code = (spikes.reshape(b, -1) > 0).astype(jnp.uint32)
  words = -(-b // 32)
  code = jnp.pad(code, ((0, 32 * words - b), (0, 0)))
  shifts = jnp.arange(32, dtype=jnp.uint32)[None, :, None]
  # Distinct powers of two: their sum is their OR and never overflows.
  packed = jnp.sum(code.reshape(words, 32, -1) << shifts, axis=1, dtype=jnp.uint32)
  cols = jax.lax.sort(tuple(packed), num_keys=words)
  changed = functools.reduce(jnp.logical_or, [c[1:] != c[:-1] for c in cols])
  return 1.0 + jnp.sum(changed, dtype=jnp.float32)


def membrane_terms(membrane: jax.Array) -> jax.Array:
  """Per-call term of ``membrane``: the sample correlation of the membranes.

  With ``v`` [B, N] the charged membrane of the call (before threshold and
  reset, :func:`snnax_nas.neurons.lif_charge`), each row centred and scaled
  to unit norm, ``z_i = (v_i - mean v_i) / ||v_i - mean v_i||``, the term is
  ``C = z z^T`` [B, B] (ones on the diagonal). No threshold is involved, so
  a layer that never fires still tells samples apart. The batch score is
  ``log|det mean_calls C|``.
  """
  b = membrane.shape[0]
  v = membrane.reshape(b, -1).astype(jnp.float32)
  v = v - jnp.mean(v, axis=1, keepdims=True)
  z = v * jax.lax.rsqrt(jnp.sum(v * v, axis=1, keepdims=True) + 1e-30)
  return jnp.dot(z, z.T, precision=jax.lax.Precision.HIGHEST)


def expressivity_terms(spikes: jax.Array) -> jax.Array:
  """Per-call term of ``expressivity``: the isotropy of the spike codes' channels.

  AZ-NAS's expressivity (Lee & Ham, CVPR 2024) adapted to spikes: the codes
  of a call ``x`` [B, H, W, C] are B*H*W samples of a C-dimensional binary
  feature; with ``lambda`` the eigenvalues of their channel covariance
  [C, C] and ``p = lambda / sum lambda``, the term is the entropy
  ``-sum p log p`` (nats; ``log C`` when every direction carries the same
  variance, 0 for a silent or saturated call). The batch score is the mean
  over calls.

  Returns:
    float32 scalar.
  """
  c = spikes.shape[-1]
  x = spikes.reshape(-1, c).astype(jnp.float32)
  x = x - jnp.mean(x, axis=0, keepdims=True)
  # x^T x and x x^T share their non-zero eigenvalues: take the smaller (a
  # dense layer's codes are B samples of many channels).
  small = x.T if x.shape[0] >= c else x
  cov = jnp.dot(small, small.T, precision=jax.lax.Precision.HIGHEST) / x.shape[0]
  lam = jnp.maximum(proxies._eigvalsh(cov), 0.0)
  total = jnp.sum(lam)
  p = lam / jnp.where(total > 0, total, 1.0)
  return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))


def expressivity_reference(codes: np.ndarray) -> float:
  """Float64 host reference of :func:`expressivity_terms` for codes [B, ..., C]."""
  x = np.asarray(codes, np.float64).reshape(-1, codes.shape[-1])
  lam = np.clip(np.linalg.eigvalsh(np.cov(x, rowvar=False, bias=True)), 0.0, None)
  if lam.sum() <= 0:
    return 0.0
  p = lam / lam.sum()
  p = p[p > 0]
  return float(-(p * np.log(p)).sum())


def informative_terms(spikes: jax.Array) -> jax.Array:
  """Per-call term of ``informative``: the fraction of neurons that tell samples apart.

  With codes ``x`` [B, N] of one call, neuron ``n`` is informative when its
  column ``x[:, n]`` is neither all 0 (silent for the whole batch) nor all 1
  (saturated): it spikes for some samples and not others. The term is the
  informative fraction in [0, 1]; the batch score is its mean over calls.
  A layer that is silent or saturated at initialisation passes nothing that
  depends on the input, which no kernel of the codes separates from a layer
  that is merely sparse.

  Returns:
    float32 scalar.
  """
  b = spikes.shape[0]
  x = spikes.reshape(b, -1) > 0
  return jnp.mean((jnp.any(x, axis=0) & ~jnp.all(x, axis=0)).astype(jnp.float32))


def informative_reference(codes: np.ndarray) -> float:
  """Float64 host reference of :func:`informative_terms` for codes [B, ...]."""
  x = np.asarray(codes).reshape(codes.shape[0], -1) > 0
  return float(np.mean(x.any(0) & ~x.all(0)))


def progressivity_from_cells(cell_expressivity: Sequence[float]) -> float:
  """Host reference of ``progressivity`` from per-cell expressivities in network order.

  ``min_k (E_{k+1} - E_k)`` (AZ-NAS, Lee & Ham, CVPR 2024: a network should
  gain expressivity layer after layer; its smallest gain is the score), or
  ``-inf`` for fewer than two cells with a conv LIF.
  """
  e = np.asarray(cell_expressivity, np.float64)
  return float(np.min(np.diff(e))) if e.size >= 2 else -np.inf


def _cell_index(lif_name: str) -> int | None:
  """``l`` of a cell LIF's probe name ``cell{l}/edge{e}/lif...``; None for the
  reduction and head LIFs."""
  head, _, _ = lif_name.partition("/")
  return int(head[4:]) if head.startswith("cell") and head[4:].isdigit() else None


def _progressivity(per_lif_values, per_lif_counts):
  """``(score, singular)`` of ``progressivity`` from per-LIF expressivity sums.

  Per cell ``l`` (network order), ``E_l`` is the mean over its conv LIFs that
  ran of their mean expressivity per call; cells with no LIF that ran are
  left out of the sequence; the score is :func:`progressivity_from_cells` of
  the rest.
  """
  cells = {}
  for name, value in per_lif_values.items():
    l = _cell_index(name)
    if l is not None:
      cells.setdefault(l, []).append((value, per_lif_counts[name]))
  if len(cells) < 2:  # known at trace time: too few cells for a step
    return jnp.float32(-jnp.inf), jnp.bool_(True)
  # The cells are few and known at trace time: walk them in order, taking
  # each present cell's gain over the last present one.
  best, last, present = jnp.float32(jnp.inf), jnp.float32(0.0), jnp.int32(0)
  for l in sorted(cells):
    ran = jnp.stack([(c > 0).astype(jnp.float32) for _, c in cells[l]])
    per = jnp.stack([v / jnp.maximum(c, 1.0) for v, c in cells[l]])
    n = jnp.sum(ran)
    mean = jnp.sum(ran * per) / jnp.maximum(n, 1.0)
    best = jnp.where((n > 0) & (present > 0), jnp.minimum(best, mean - last), best)
    last = jnp.where(n > 0, mean, last)
    present = present + (n > 0)
  bad = present < 2
  return jnp.where(bad, -jnp.inf, best), bad


@dataclasses.dataclass(frozen=True)
class KernelProbe:
  """A network LIF probe computing the per-call terms of several kernels.

  ``probe(spikes [B, ...], membrane [B, ...]) -> {kernel: terms}``; the
  membrane is passed by the network because ``takes_membrane`` is set.
  """

  kernels: tuple[str, ...]
  takes_membrane = True

  def __post_init__(self):
    bad = [k for k in self.kernels if k not in PROBE_KERNELS]
    if bad:
      raise ValueError(f"KernelProbe computes kernels of spike codes ({', '.join(PROBE_KERNELS)}); "
                       f"{bad[0]!r} is not one (the gradient and analytic proxies are "
                       "computed by snnax_nas.score.score_candidates)")

  def __call__(self, spikes: jax.Array, membrane: jax.Array) -> dict:
    # Statistics of the forward pass, never differentiated (the gradient
    # proxies differentiate the same forward): no tangents reach the terms.
    spikes, membrane = jax.lax.stop_gradient((spikes, membrane))
    out = {}
    # Both read the same per-call terms: computed once.
    expressivity = (expressivity_terms(spikes)
                    if {"expressivity", "progressivity"} & set(self.kernels) else None)
    for k in self.kernels:
      if k in HAMMING_KERNELS:
        out[k] = hamming_terms(spikes, k)
      elif k == "sahd_norm":
        out[k] = normalised_terms(spikes)
      elif k == "sahd_time":
        out[k] = time_terms(spikes)
      elif k == "swap":
        out[k] = pattern_count(spikes)
      elif k in ("expressivity", "progressivity"):
        out[k] = expressivity
      elif k == "informative":
        out[k] = informative_terms(spikes)
      elif k == "membrane":
        out[k] = membrane_terms(membrane)
    return out


def _time_kernel(per_lif_values, per_lif_counts):
  """``(m, n_bar)`` of ``sahd_time`` from per-LIF sums of :func:`time_terms`."""
  m_sum, n_sum, lifs = 0.0, 0.0, 0.0
  for name, (gram, n) in per_lif_values.items():
    ran = (per_lif_counts[name] > 0).astype(jnp.float32)
    counts = jnp.diagonal(gram)
    ham = counts[:, None] + counts[None, :] - 2.0 * gram
    n_safe = jnp.maximum(n, 1.0)
    expected = (counts[:, None] * (n_safe - counts[None, :])
                + (n_safe - counts[:, None]) * counts[None, :]) / n_safe
    m_sum = m_sum - ran * SAHD_ALPHA * ham / (expected + SAHD_EPS)
    n_sum, lifs = n_sum + n, lifs + ran
  return m_sum / lifs, n_sum / lifs


def scores_from_probes(probes, kernels: Sequence[str], per_layer: bool = False):
  """Per-kernel scores of one image batch from a :class:`KernelProbe` forward.

  Args:
    probes: ``{"values", "counts"}`` of a network forward with probe
      ``KernelProbe(kernels)``; per LIF name when ``per_layer`` (required by
      :data:`PER_LAYER_KERNELS`), else summed over LIFs.
    kernels: the probe's kernels.
    per_layer: how the forward reported the probes.

  Returns:
    ``(scores [K], singular [K])`` float32 / bool, in the order of ``kernels``.
  """
  values, counts = probes["values"], probes["counts"]
  if per_layer:
    per_lif_values, per_lif_counts = values, counts
    names = list(values)
    values = jax.tree.map(lambda *xs: sum(xs[1:], xs[0]), *[values[k] for k in names])
    counts = sum((counts[k] for k in names[1:]), counts[names[0]])
  scores, singular = [], []
  for k in kernels:
    if k in HAMMING_KERNELS:
      s, bad = score_from_probes({"values": values[k], "counts": counts}, k)
    elif k == "sahd_norm":
      dn_sum, live = values[k]
      s, bad = kernel_logdet(-dn_sum / jnp.maximum(live, 1.0), jnp.float32(1.0))
      bad = bad | (live == 0)
      s = jnp.where(bad, -jnp.inf, s)
    elif k == "sahd_time":
      if not per_layer:
        raise ValueError("kernel 'sahd_time' needs per-layer probes (per_layer=True)")
      s, bad = kernel_logdet(*_time_kernel({n: v[k] for n, v in per_lif_values.items()},
                                           per_lif_counts))
    elif k == "swap":
      s, bad = jnp.log(values[k]), jnp.bool_(False)
    elif k in ("expressivity", "informative"):
      s = values[k] / jnp.maximum(counts, 1.0)
      bad = counts == 0
      s = jnp.where(bad, -jnp.inf, s)
    elif k == "progressivity":
      if not per_layer:
        raise ValueError("kernel 'progressivity' needs per-layer probes (per_layer=True)")
      s, bad = _progressivity({n: v[k] for n, v in per_lif_values.items()}, per_lif_counts)
    else:
      s, bad = kernel_logdet(values[k] / counts, jnp.float32(0.0))
    scores.append(s)
    singular.append(bad)
  return jnp.stack(scores), jnp.stack(singular)


def rank_ensemble(*scores) -> np.ndarray:
  """Mean average-rank of several scores of one population (host, float64).

  ``ensemble_i = mean_s rank(s)_i`` with 1-based average ranks
  (:func:`snnax_nas.correlation.rankdata`); ``-inf`` (singular) and NaN
  rank below every finite score. Needs the whole population, so it runs
  after scoring, never inside the compiled scorer.

  Args:
    *scores: float arrays [N], one per member score.

  Returns:
    float64 [N], higher is better.
  """
  if not scores:
    raise ValueError("rank_ensemble needs at least one score")
  ranks = []
  for s in scores:
    s = np.asarray(s, np.float64)
    ranks.append(correlation.rankdata(np.where(np.isnan(s), -np.inf, s)))
  return np.mean(ranks, axis=0)
