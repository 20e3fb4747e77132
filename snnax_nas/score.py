"""The batched training-free scorer: any number of candidate architectures
scored by one compiled function in fixed-size chunks, sharded over the local
devices.

The kernels and the log-determinant it evaluates per candidate are
:mod:`snnax_nas.kernels` (SAHD, Hamming and variants); the chunk layout is
chosen by :mod:`snnax_nas.autotune` unless given, and
``conv_dtype="bfloat16"`` runs the cell convs on bf16 inputs and weights with
float32 accumulation (Kendall tau against float32 in benchmarks/RESULTS.md).
``time_batched=True`` runs a space without backward edges with every layer
once over all T timesteps (same scores up to float rounding; timings in
benchmarks/RESULTS.md).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from typing import Optional

import jax
import jax.numpy as jnp
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

from snnax_nas import autotune
from snnax_nas import callbacks
from snnax_nas import flops as flops_lib
from snnax_nas import genotype as genotype_lib
from snnax_nas import kernels as kernel_lib
from snnax_nas import network as network_lib
from snnax_nas import proxies

_log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------
# Batched scoring.

def _candidate_score(arch, cid, images, key, cfg: network_lib.NetworkConfig,
                     kernels: tuple[str, ...], draws: int = 1,
                     conv_dtype: Optional[str] = None, time_batched: bool = False):
  """Scores [K] and singular flags [K] of one candidate.

  Draw ``d`` initialises fresh weights from ``fold_in(key, cid)`` (d = 0, as
  a single-draw score always did) or ``fold_in(fold_in(key, cid), d)``; each
  draw runs all R batches and the score is the mean over the D * R batches.
  ``kernels`` are probe kernels and gradient proxies (no analytic ones): the
  probes and the gradients come from the same forward pass.
  """
  base = jax.random.fold_in(key, cid)
  grad_k = tuple(k for k in kernels if k in proxies.GRADIENT_KERNELS)
  probe_k = tuple(k for k in kernels if k not in proxies.GRADIENT_KERNELS)
  if probe_k in (("sahd",), ("hamming",)) and not grad_k:
    probe, per_layer = functools.partial(kernel_lib.hamming_terms, kernel=probe_k[0]), False
    batch_score = lambda p: tuple(x[None] for x in kernel_lib.score_from_probes(p, probe_k[0]))
  elif probe_k:
    probe = kernel_lib.KernelProbe(probe_k)
    per_layer = any(k in kernel_lib.PER_LAYER_KERNELS for k in probe_k)
    batch_score = lambda p: kernel_lib.scores_from_probes(p, probe_k, per_layer)
  else:
    probe, per_layer = None, False
  # Output column of each kernel: probe scores first, then gradient ones.
  order = jnp.array([(probe_k + grad_k).index(k) for k in kernels])

  def one_draw(d):
    draw_key = base if draws == 1 else jax.lax.cond(
        d == 0, lambda: base, lambda: jax.random.fold_in(base, d))
    k_init, k_drop = jax.random.split(draw_key)
    params = network_lib.init_supernet_params(k_init, cfg)

    def one_batch(r):
      def forward(params, x):
        logits, aux = network_lib.supernet_forward(
            params, arch, x, jax.random.fold_in(k_drop, r), cfg, probe=probe,
            per_layer=per_layer, conv_dtype=conv_dtype,
            time_batched=time_batched and not cfg.backward)
        return logits, aux["probes"]

      if not grad_k:
        return batch_score(forward(params, images[r])[1])
      logits, pullback, probes = jax.vjp(forward, params, images[r], has_aux=True)
      # dL/dz of the proxy loss, then (for jacob_cov) d(sum z)/dx.
      dz = jax.grad(proxies.proxy_loss)(logits)
      grads = pullback(dz)[0]
      input_grads = (pullback(jnp.ones_like(logits))[1] if "jacob_cov" in grad_k else None)
      s_g, bad_g = proxies.gradient_scores(params, grads, input_grads, grad_k)
      if probe_k:
        s_p, bad_p = batch_score(probes)
        s_g, bad_g = jnp.concatenate([s_p, s_g]), jnp.concatenate([bad_p, bad_g])
      return s_g[order], bad_g[order]

    return jax.lax.map(one_batch, jnp.arange(images.shape[0]))

  if draws == 1:
    logdets, singular = one_draw(0)
  else:
    logdets, singular = jax.lax.map(one_draw, jnp.arange(draws))
    logdets, singular = logdets.reshape(-1, len(kernels)), singular.reshape(-1, len(kernels))
  return jnp.mean(logdets, axis=0), jnp.any(singular, axis=0)


def _chunk_body(arch, ids, images, key, *, cfg, kernel, map_batch_size, mesh, draws=1,
                conv_dtype=None, time_batched=False):
  """Scores one chunk: candidates sharded over ``mesh``, mapped per device.

  ``kernel`` is a tuple of kernel names; outputs are [chunk, K].
  """

  def per_device(arch, ids, images, key):
    fn = lambda a: _candidate_score(a[0], a[1], images, key, cfg, kernel, draws, conv_dtype,
                                    time_batched)
    # lax.map(batch_size=1) is NOT a sequential map: it vmaps batches of one,
    # which turns every lax.cond into a select (all ops on all edges computed)
    # and per-candidate convs into batched ones; measured ~3x slower on CPU.
    if map_batch_size == 1:
      return jax.lax.map(fn, (arch, ids))
    return jax.lax.map(fn, (arch, ids), batch_size=map_batch_size)

  return jax.shard_map(per_device, mesh=mesh,
                       in_specs=(P("cand"), P("cand"), P(), P()),
                       out_specs=(P("cand"), P("cand")), check_vma=False)(arch, ids, images, key)


# Module-global on purpose: a search calls score_candidates once per stage
# and step, and each call would otherwise recompile the scorer (the costliest
# part of a small search). Safe: the key is the whole static configuration and
# the jitted function is pure, so a hit never changes a score; 16 entries bound it.
@functools.lru_cache(maxsize=16)
def chunk_scorer(cfg: network_lib.NetworkConfig, kernel: tuple[str, ...], chunk_size: int,
                 map_batch_size: int, images_shape: tuple, num_devices: int, draws: int = 1,
                 conv_dtype: Optional[str] = None, time_batched: bool = False):
  """A jitted ``(arch [chunk, L, E, O], ids [chunk], images, key) -> (scores
  [chunk, K], singular [chunk, K])`` for the K kernel names in ``kernel``,
  sharded over the first ``num_devices`` local devices; ``conv_dtype`` is
  :func:`snnax_nas.autotune.conv_dtype_name`'s, ``time_batched`` as
  :func:`score_candidates`'.

  Cached per static configuration (the arguments), so every chunk of a search
  reuses one compilation; tests prove it with ``chex.assert_max_traces``.
  """
  if chunk_size % num_devices:
    raise ValueError(f"chunk_size {chunk_size} is not a multiple of the "
                     f"{num_devices} devices")
  mesh = Mesh(np.array(jax.local_devices()[:num_devices]), ("cand",))
  body = functools.partial(_chunk_body, cfg=cfg, kernel=kernel,
                           map_batch_size=map_batch_size, mesh=mesh, draws=draws,
                           conv_dtype=conv_dtype, time_batched=bool(time_batched))
  cand = NamedSharding(mesh, P("cand"))
  rep = NamedSharding(mesh, P())
  return jax.jit(body, in_shardings=(cand, cand, rep, rep),
                 out_shardings=(cand, cand)), mesh


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


def check_images(images, cfg: network_lib.NetworkConfig) -> None:
  """Checks scoring batches against the network before any work is done.

  Args:
    images: normalised batches [R, B, H, W, C], or event frames
      [R, B, T, H, W, C] with exactly the network's T frames.
    cfg: the network config.

  Raises:
    ValueError: another shape (naming the expected one and, for event
      frames of another count, the fix), or fewer than
      :data:`snnax_nas.kernels.MIN_BATCH_SIZE` images per batch.
  """
  shape = tuple(np.shape(images))
  dims = ", ".join(map(str, cfg.input_shape))
  if len(shape) == 6 and shape[-3:] == cfg.input_shape and shape[2] != cfg.timesteps:
    raise ValueError(f"event frames of shape {shape} hold {shape[2]} frames per sample but the "
                     f"network runs network.timesteps={cfg.timesteps}: set "
                     f"network.timesteps={shape[2]}, or bin the events into {cfg.timesteps} "
                     "frames")
  if len(shape) not in (5, 6) or shape[-3:] != cfg.input_shape:
    raise ValueError(f"images of shape {shape}; expected [R, B, {dims}] or event frames "
                     f"[R, B, {cfg.timesteps}, {dims}]")
  if shape[1] < kernel_lib.MIN_BATCH_SIZE:
    raise ValueError(f"scoring batches of {shape[1]} image(s): the kernel of a batch is "
                     f"[B, B] and its log-determinant needs B >= {kernel_lib.MIN_BATCH_SIZE} "
                     "images")


def score_candidates(genotypes, images, key: jax.Array,
                     cfg: network_lib.NetworkConfig, *, kernel="sahd", draws: int = 1,
                     chunk_size: autotune.Setting = None,
                     map_batch_size: autotune.Setting = None,
                     conv_dtype=None,
                     candidate_ids: Optional[np.ndarray] = None,
                     num_devices: Optional[int] = None,
                     arch: Optional[np.ndarray] = None,
                     common_weights: bool = False,
                     time_batched: bool = False,
                     progress: Optional[callbacks.ScoreProgress] = None) -> ScoreResult:
  """Scores candidates, each with its own fresh random weights (or, with
  ``common_weights``, all on the same weights).

  All candidates run through one compiled function in fixed-size chunks,
  with the candidate axis sharded over local devices. Chunks are composed by
  cost (:func:`balanced_slots`) so devices finish
  together; the order does not change any score.

  Args:
    genotypes: see :func:`snnax_nas.genotype.as_genotypes` (ignored when ``arch`` is given).
    images: normalised image batches [R, B, H, W, C].
    key: PRNG key; candidate ``i`` uses ``fold_in(key, candidate_ids[i])``
      so a score does not depend on chunking, devices or order.
    cfg: the network config (``cfg.backward`` must admit the genotypes).
    kernel: a name of :data:`snnax_nas.kernels.KERNELS` (default ``"sahd"``), or a tuple of
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
    common_weights: score every candidate on the same weight draw (common
      random numbers: the key of candidate id 0 for all), so candidates are
      compared on equal weights and a cell's score depends on the cell alone,
      never on its id. False (the reference): each candidate id draws its own.
    time_batched: in a space without backward edges, run every layer once
      over all T timesteps (convs over T x B images, the LIFs an elementwise
      loop over T; :func:`snnax_nas.network.skeleton.forward_time_batched`)
      instead of one timestep after another. Same scores up to float
      rounding (~1e-5 relative); ignored with backward edges. Off by
      default: on a 2-core CPU it was a few percent faster at T = 3, no
      faster at T = 5 (slower at width 32) and compiled up to 2x longer
      (benchmarks/RESULTS.md).
    progress: called as ``progress(done, total)`` after each chunk.

  Returns:
    A :class:`ScoreResult`, in the order of the candidates given.
  """
  kernels = (kernel,) if isinstance(kernel, str) else tuple(kernel)
  for k in kernels:
    if k not in kernel_lib.KERNELS:
      raise ValueError(f"unknown kernel {k!r}; choose from {', '.join(kernel_lib.KERNELS)}")
  if not kernels or len(set(kernels)) != len(kernels):
    raise ValueError(f"kernel {kernel!r}: give one name or a tuple of distinct names")
  if int(draws) != draws or draws < 1:
    raise ValueError(f"draws must be an integer >= 1, got {draws}")
  check_images(images, cfg)
  images = jnp.asarray(images, jnp.float32)
  if arch is None:
    arch = genotype_lib.arch_of(genotype_lib.as_genotypes(genotypes, cfg), cfg)
  arch = np.asarray(arch, np.float32)
  n = arch.shape[0]
  if candidate_ids is None:
    candidate_ids = np.arange(n)
  candidate_ids = np.asarray(candidate_ids, np.int32)
  if candidate_ids.shape != (n,):
    raise ValueError(f"candidate_ids has shape {candidate_ids.shape}, expected ({n},)")
  if common_weights:
    candidate_ids = np.zeros_like(candidate_ids)
  shape = (n,) if isinstance(kernel, str) else (n, len(kernels))
  analytic = tuple(k for k in kernels if k in proxies.ANALYTIC_KERNELS)
  network_k = tuple(k for k in kernels if k not in proxies.ANALYTIC_KERNELS)
  if analytic:
    # Exact functions of the architecture: computed on the host, no forward.
    fixed = proxies.analytic_scores(analytic, cfg, arch=arch)
    if not network_k:
      return ScoreResult(fixed.reshape(shape), np.zeros(fixed.shape, bool).reshape(shape))
    res = score_candidates(genotypes, images, key, cfg, kernel=network_k, draws=draws,
                           chunk_size=chunk_size, map_batch_size=map_batch_size,
                           conv_dtype=conv_dtype, candidate_ids=candidate_ids,
                           num_devices=num_devices, arch=arch, common_weights=common_weights,
                           time_batched=time_batched, progress=progress)
    cols = {k: (fixed[:, analytic.index(k)], np.zeros(n, bool)) for k in analytic}
    cols.update({k: (res.scores[:, i], res.singular[:, i]) for i, k in enumerate(network_k)})
    return ScoreResult(np.stack([cols[k][0] for k in kernels], 1).reshape(shape),
                       np.stack([cols[k][1] for k in kernels], 1).reshape(shape),
                       res.compile_seconds, res.run_seconds)
  num_devices = num_devices or jax.local_device_count()
  conv_dtype = autotune.conv_dtype_name(conv_dtype)
  layout = autotune.resolve_layout(cfg, images.shape[1], images.shape[0],
                                   chunk_size=chunk_size, map_batch_size=map_batch_size,
                                   arch=arch, draws=int(draws), num_devices=num_devices,
                                   time_batched=bool(time_batched))
  if autotune.parse_setting(chunk_size, "chunk_size") is None or autotune.parse_setting(
      map_batch_size, "map_batch_size") is None:
    _log.info("scorer layout %s", layout.reason)
  chunk_size, map_batch_size = layout.chunk_size, layout.map_batch_size
  fn, mesh = chunk_scorer(cfg, kernels, chunk_size, map_batch_size,
                          tuple(images.shape), num_devices, int(draws), conv_dtype,
                          bool(time_batched) and not cfg.backward)
  images = jax.device_put(images, NamedSharding(mesh, P()))
  key = jax.device_put(key, NamedSharding(mesh, P()))
  # Explicit puts: under jax.distributed, jit refuses host numpy inputs for a
  # sharding over several (local) devices.
  cand = NamedSharding(mesh, P("cand"))
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
