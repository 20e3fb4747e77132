"""The training-free SAHD score, batched over candidate architectures.

Per LIF call (one LIF at one timestep) with binary codes ``x`` [B, N]
(spec §4)::

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
membrane potentials, no threshold). ``draws=D`` averages D fresh weight draws,
each over all R batches. A rank ensemble needs the whole population and is
computed after scoring, on the host (:func:`rank_ensemble`).

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

Layout and precision: :func:`score_candidates` picks its chunk layout for
the machine unless given (:mod:`snnax_nas.autotune`), and
``conv_dtype="bfloat16"`` runs the cell convs on bf16 inputs and weights with
float32 accumulation (Kendall tau against float32 in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
from typing import Optional
from typing import Sequence

import jax
import jax.numpy as jnp
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

from snnax_nas import autotune
from snnax_nas import callbacks
from snnax_nas import correlation
from snnax_nas import flops as flops_lib
from snnax_nas import genotype as genotype_lib
from snnax_nas import network as network_lib

# Hamming-family kernels of :func:`hamming_terms`; every kernel name below.
HAMMING_KERNELS = ("sahd", "hamming")
KERNELS = HAMMING_KERNELS + ("sahd_norm", "sahd_time", "swap", "membrane")
SAHD_ALPHA = 0.5
SAHD_EPS = 1e-3
# Cell-conv input dtypes of ``score_candidates(conv_dtype=...)``: float32 (the
# reference) or bfloat16 inputs and weights with float32 accumulation.
CONV_DTYPES = ("float32", "bfloat16")

_log = logging.getLogger(__name__)


def conv_dtype_name(conv_dtype) -> Optional[str]:
  """The supernet's ``conv_dtype`` for a user setting: None (float32, the
  reference path) or ``"bfloat16"``.

  Raises:
    ValueError: a dtype outside :data:`CONV_DTYPES`.
  """
  if conv_dtype is None:
    return None
  try:
    name = jnp.dtype(conv_dtype).name
  except TypeError:
    name = str(conv_dtype)
  if name not in CONV_DTYPES:
    raise ValueError(f"conv_dtype {conv_dtype!r} is not one of {', '.join(CONV_DTYPES)}")
  return None if name == "float32" else name


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


@dataclasses.dataclass(frozen=True)
class KernelProbe:
  """A network LIF probe computing the per-call terms of several kernels.

  ``probe(spikes [B, ...], membrane [B, ...]) -> {kernel: terms}``; the
  membrane is passed by the network because ``takes_membrane`` is set.
  """

  kernels: tuple[str, ...]
  takes_membrane = True

  def __call__(self, spikes: jax.Array, membrane: jax.Array) -> dict:
    out = {}
    for k in self.kernels:
      if k in HAMMING_KERNELS:
        out[k] = hamming_terms(spikes, k)
      elif k == "sahd_norm":
        out[k] = normalised_terms(spikes)
      elif k == "sahd_time":
        out[k] = time_terms(spikes)
      elif k == "swap":
        out[k] = pattern_count(spikes)
      else:
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
      ``sahd_time``), else summed over LIFs.
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


# ----------------------------------------------------------------------------
# Batched scoring.

def _candidate_score(arch, cid, images, key, cfg: network_lib.NetworkConfig,
                     kernels: tuple[str, ...], draws: int = 1,
                     conv_dtype: Optional[str] = None):
  """Scores [K] and singular flags [K] of one candidate.

  Draw ``d`` initialises fresh weights from ``fold_in(key, cid)`` (d = 0, as
  a single-draw score always did) or ``fold_in(fold_in(key, cid), d)``; each
  draw runs all R batches and the score is the mean over the D * R batches.
  """
  base = jax.random.fold_in(key, cid)
  if kernels in (("sahd",), ("hamming",)):
    probe, per_layer = functools.partial(hamming_terms, kernel=kernels[0]), False
    batch_score = lambda p: tuple(x[None] for x in score_from_probes(p, kernels[0]))
  else:
    probe, per_layer = KernelProbe(kernels), "sahd_time" in kernels
    batch_score = lambda p: scores_from_probes(p, kernels, per_layer)

  def one_draw(d):
    draw_key = base if draws == 1 else jax.lax.cond(
        d == 0, lambda: base, lambda: jax.random.fold_in(base, d))
    k_init, k_drop = jax.random.split(draw_key)
    params = network_lib.init_supernet_params(k_init, cfg)

    def one_batch(r):
      _, aux = network_lib.supernet_forward(
          params, arch, images[r], jax.random.fold_in(k_drop, r), cfg, probe=probe,
          per_layer=per_layer, conv_dtype=conv_dtype)
      return batch_score(aux["probes"])

    return jax.lax.map(one_batch, jnp.arange(images.shape[0]))

  if draws == 1:
    logdets, singular = one_draw(0)
  else:
    logdets, singular = jax.lax.map(one_draw, jnp.arange(draws))
    logdets, singular = logdets.reshape(-1, len(kernels)), singular.reshape(-1, len(kernels))
  return jnp.mean(logdets, axis=0), jnp.any(singular, axis=0)


def _chunk_body(arch, ids, images, key, *, cfg, kernel, map_batch_size, mesh, draws=1,
                conv_dtype=None):
  """Scores one chunk: candidates sharded over ``mesh``, mapped per device.

  ``kernel`` is a tuple of kernel names; outputs are [chunk, K].
  """

  def per_device(arch, ids, images, key):
    fn = lambda a: _candidate_score(a[0], a[1], images, key, cfg, kernel, draws, conv_dtype)
    # lax.map(batch_size=1) is NOT a sequential map: it vmaps batches of one,
    # which turns every lax.cond into a select (all ops on all edges computed)
    # and per-candidate convs into batched ones; measured ~3x slower on CPU.
    if map_batch_size == 1:
      return jax.lax.map(fn, (arch, ids))
    return jax.lax.map(fn, (arch, ids), batch_size=map_batch_size)

  return jax.shard_map(per_device, mesh=mesh,
                       in_specs=(P("cand"), P("cand"), P(), P()),
                       out_specs=(P("cand"), P("cand")), check_vma=False)(arch, ids, images, key)


@functools.lru_cache(maxsize=16)
def chunk_scorer(cfg: network_lib.NetworkConfig, kernel: tuple[str, ...], chunk_size: int,
                 map_batch_size: int, images_shape: tuple, num_devices: int, draws: int = 1,
                 conv_dtype: Optional[str] = None):
  """A jitted ``(arch [chunk, L, E, O], ids [chunk], images, key) -> (scores
  [chunk, K], singular [chunk, K])`` for the K kernel names in ``kernel``,
  sharded over the first ``num_devices`` local devices; ``conv_dtype`` is
  :func:`conv_dtype_name`'s.

  Cached per static configuration (the arguments), so every chunk of a search
  reuses one compilation; tests prove it with ``chex.assert_max_traces``.
  """
  if chunk_size % num_devices:
    raise ValueError(f"chunk_size {chunk_size} is not a multiple of the "
                     f"{num_devices} devices")
  mesh = Mesh(np.array(jax.local_devices()[:num_devices]), ("cand",))
  body = functools.partial(_chunk_body, cfg=cfg, kernel=kernel,
                           map_batch_size=map_batch_size, mesh=mesh, draws=draws,
                           conv_dtype=conv_dtype)
  cand = NamedSharding(mesh, P("cand"))
  rep = NamedSharding(mesh, P())
  return jax.jit(body, in_shardings=(cand, cand, rep, rep),
                 out_shardings=(cand, cand)), mesh


def use_cpu_cores(num_devices: Optional[int] = None) -> int:
  """Exposes one XLA:CPU device per core; call right after ``import jax``.

  :func:`score_candidates` shards each chunk over the local devices, so with
  one device per core every core scores its own candidates with plain
  single-stream kernels; on one device the cores would instead split every
  small op between them, which measured slower (figures in
  benchmarks/RESULTS.md). Only affects the CPU backend; accelerators keep
  their own devices.

  Args:
    num_devices: devices to create (default: the cores this process may use).

  Returns:
    The number requested, or the current local device count when JAX's
    backends are already initialised (then nothing changes).
  """
  n = num_devices or len(os.sched_getaffinity(0))
  try:
    jax.config.update("jax_num_cpu_devices", n)
  except RuntimeError:  # backends already up: too late to change
    return jax.local_device_count()
  return n


@dataclasses.dataclass
class ScoreResult:
  """Scores of a batch of candidates.

  Attributes:
    scores: float64 [N], the mean log-determinant (``-inf`` if singular);
      [N, K] when several kernels were asked for (columns in their order).
    singular: bool [N] (or [N, K]), the kernel was singular in some batch.
    compile_seconds: wall time of the first (compiling) chunk call.
    run_seconds: wall time of all chunk calls after the first.
  """

  scores: np.ndarray
  singular: np.ndarray
  compile_seconds: float = 0.0
  run_seconds: float = 0.0


def as_genotypes(genotypes, cfg: network_lib.NetworkConfig) -> np.ndarray:
  """:func:`snnax_nas.genotype.cell_genotypes` for the networks of ``cfg``:
  canonical int8 [N, L, 4, 4] from a list of genotype strings (``|`` between
  per-cell genotypes) or an int array [N, 4, 4] / [N, L, 4, 4]; backward
  edges only where ``cfg.backward``. Kept as the short form the searches,
  launchers and benchmarks call."""
  return genotype_lib.cell_genotypes(genotypes, cfg.ops, cfg.num_cells,
                                     allow_backward=cfg.backward)


def arch_of(genotypes: np.ndarray, cfg: network_lib.NetworkConfig) -> np.ndarray:
  """One-hot op weights [N, L, E, O] of canonical genotypes [N, L, 4, 4]."""
  return genotype_lib.arch_weights(genotypes, cfg.ops)[..., :cfg.num_edges, :]


def balanced_slots(order, chunk_size: int, num_devices: int) -> tuple[np.ndarray, np.ndarray]:
  """Chunk layout that gives every device about the same work.

  A chunk runs as long as its slowest device, and each device scores its
  ``chunk_size / num_devices`` candidates one after another, so candidates
  of very different cost (8.9 to 38 GFLOP in the 5-op space at width 16)
  leave devices idle when laid out in their given order. Taken in ``order``
  (costliest first), candidates are cut into chunks of similar cost and,
  inside a chunk, dealt to the devices in snake order (0, 1, .., D-1, D-1,
  .., 0, ..). The last chunk is padded with its cheapest candidate.

  Args:
    order: int [N], candidate indices by cost, descending
      (:func:`snnax_nas.flops.costliest_first`).
    chunk_size: candidates per chunk, a multiple of ``num_devices``.
    num_devices: devices a chunk is sharded over (contiguous blocks).

  Returns:
    ``(slots, real)``: int [C * chunk_size] candidate indices, chunk after
    chunk, and bool [C * chunk_size], False on padding slots.
  """
  order = np.asarray(order, np.int64)
  if chunk_size % num_devices:
    raise ValueError(f"chunk_size {chunk_size} is not a multiple of {num_devices} devices")
  n = order.shape[0]
  per = chunk_size // num_devices
  # deal[p] = cost rank (within the chunk) of the candidate at chunk position p.
  rank = np.arange(chunk_size)
  rnd, pos = rank // num_devices, rank % num_devices
  device = np.where(rnd % 2 == 0, pos, num_devices - 1 - pos)
  deal = np.empty(chunk_size, np.int64)
  deal[device * per + rnd] = rank
  num_chunks = -(-n // chunk_size)
  ranks = (np.arange(num_chunks)[:, None] * chunk_size + deal).reshape(-1)
  real = ranks < n
  # Padding slots repeat the last chunk's cheapest candidate (rank n - 1).
  return order[np.minimum(ranks, n - 1)], real


def score_candidates(genotypes, images, key: jax.Array,
                     cfg: network_lib.NetworkConfig, *, kernel="sahd", draws: int = 1,
                     chunk_size: autotune.Setting = None,
                     map_batch_size: autotune.Setting = None,
                     conv_dtype=None,
                     candidate_ids: Optional[np.ndarray] = None,
                     num_devices: Optional[int] = None,
                     arch: Optional[np.ndarray] = None,
                     progress: Optional[callbacks.ScoreProgress] = None) -> ScoreResult:
  """Scores candidates, each with its own fresh random weights.

  All candidates run through one compiled function in fixed-size chunks,
  with the candidate axis sharded over local devices. Chunks are composed by
  cost (:func:`balanced_slots`) so devices finish
  together; the order does not change any score.

  Args:
    genotypes: see :func:`as_genotypes` (ignored when ``arch`` is given).
    images: normalised image batches [R, B, H, W, C].
    key: PRNG key; candidate ``i`` uses ``fold_in(key, candidate_ids[i])``
      so a score does not depend on chunking, devices or order.
    cfg: the network config (``cfg.backward`` must admit the genotypes).
    kernel: a name of :data:`KERNELS` (default ``"sahd"``), or a tuple of
      names: all computed from the same forward passes in one compiled call,
      scores then [N, K].
    draws: fresh weight draws per candidate, each over all R batches; the
      score is the mean over the D * R batches (cost grows D-fold).
    chunk_size: candidates per compiled call (memory is flat in N); None or
      ``"auto"``: chosen for the backend, its memory and the candidates'
      FLOPs (:func:`snnax_nas.autotune.resolve_layout`; 8 on CPU), logged.
    map_batch_size: candidates vmapped together inside a chunk (1 = a
      sequential ``lax.map`` in which ``lax.cond`` really skips the ops an
      architecture does not use: the fast choice on CPU; ``chunk_size /
      devices`` = a full vmap, every op computed and masked); None or
      ``"auto"`` as ``chunk_size`` (1 on CPU). On CPU, also create one
      device per core (:func:`use_cpu_cores`).
    conv_dtype: the cell convs' input and weight dtype, ``"float32"`` (None,
      the reference) or ``"bfloat16"`` (float32 accumulation; spikes are
      exact, the weights are rounded; the Gram and log-det stay exact).
    candidate_ids: int [N] ids for the key derivation (default ``arange``).
    num_devices: devices to shard over (default all local devices).
    arch: op weights [N, L, E, O] to score directly (multi-hot supernets).
    progress: called as ``progress(done, total)`` after each chunk.

  Returns:
    A :class:`ScoreResult`, in the order of the candidates given.
  """
  kernels = (kernel,) if isinstance(kernel, str) else tuple(kernel)
  for k in kernels:
    if k not in KERNELS:
      raise ValueError(f"unknown kernel {k!r}; choose from {', '.join(KERNELS)}")
  if not kernels or len(set(kernels)) != len(kernels):
    raise ValueError(f"kernel {kernel!r}: give one name or a tuple of distinct names")
  if int(draws) != draws or draws < 1:
    raise ValueError(f"draws must be an integer >= 1, got {draws}")
  images = jnp.asarray(images, jnp.float32)
  # Event frames [R, B, T, H, W, C] carry exactly the network's T frames.
  if (images.ndim not in (5, 6) or images.shape[-3:] != cfg.input_shape
      or (images.ndim == 6 and images.shape[2] != cfg.timesteps)):
    raise ValueError(f"images of shape {images.shape}; expected [R, B, "
                     f"{', '.join(map(str, cfg.input_shape))}] or event frames [R, B, "
                     f"{cfg.timesteps}, {', '.join(map(str, cfg.input_shape))}]")
  if arch is None:
    arch = arch_of(as_genotypes(genotypes, cfg), cfg)
  arch = np.asarray(arch, np.float32)
  n = arch.shape[0]
  if candidate_ids is None:
    candidate_ids = np.arange(n)
  candidate_ids = np.asarray(candidate_ids, np.int32)
  if candidate_ids.shape != (n,):
    raise ValueError(f"candidate_ids has shape {candidate_ids.shape}, expected ({n},)")
  num_devices = num_devices or jax.local_device_count()
  conv_dtype = conv_dtype_name(conv_dtype)
  layout = autotune.resolve_layout(cfg, images.shape[1], images.shape[0],
                                   chunk_size=chunk_size, map_batch_size=map_batch_size,
                                   arch=arch, draws=int(draws), num_devices=num_devices)
  if autotune.parse_setting(chunk_size, "chunk_size") is None or autotune.parse_setting(
      map_batch_size, "map_batch_size") is None:
    _log.info("scorer layout %s", layout.reason)
  chunk_size, map_batch_size = layout.chunk_size, layout.map_batch_size
  fn, mesh = chunk_scorer(cfg, kernels, chunk_size, map_batch_size,
                          tuple(images.shape), num_devices, int(draws), conv_dtype)
  images = jax.device_put(images, NamedSharding(mesh, P()))
  key = jax.device_put(key, NamedSharding(mesh, P()))
  # Explicit puts: under jax.distributed, jit refuses host numpy inputs for a
  # sharding over several (local) devices.
  cand = NamedSharding(mesh, P("cand"))
  shape = (n,) if isinstance(kernel, str) else (n, len(kernels))
  scores = np.empty((n, len(kernels)), np.float64)
  singular = np.empty((n, len(kernels)), bool)
  compile_s = run_s = 0.0
  if n == 0:
    return ScoreResult(scores.reshape(shape), singular.reshape(shape), compile_s, run_s)
  order = flops_lib.costliest_first(arch, cfg, images.shape[1], images.shape[0])
  slots, real = balanced_slots(order, chunk_size, num_devices)
  done = 0

  def dispatch(start):
    idx = slots[start:start + chunk_size]
    out = fn(jax.device_put(arch[idx], cand), jax.device_put(candidate_ids[idx], cand),
             images, key)
    return idx, real[start:start + chunk_size], out

  def collect(pending):
    nonlocal done
    idx, keep, (s, sing) = pending
    s, sing = np.asarray(s), np.asarray(sing)  # the one host sync per chunk
    scores[idx[keep]] = s[keep]
    singular[idx[keep]] = sing[keep]
    done += int(keep.sum())
    if progress is not None:
      progress(done, n)

  # The first chunk runs alone: its wall time is the compile time. After
  # it, chunk k + 1 is dispatched before chunk k's results are pulled, so
  # the device never waits for the host's copy-out and bookkeeping.
  starts = range(0, len(slots), chunk_size)
  t0 = time.perf_counter()
  collect(dispatch(0))
  compile_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  pending = None
  for start in starts[1:]:
    nxt = dispatch(start)
    if pending is not None:
      collect(pending)
    pending = nxt
  if pending is not None:
    collect(pending)
  run_s = time.perf_counter() - t0
  return ScoreResult(scores.reshape(shape), singular.reshape(shape), compile_s, run_s)
