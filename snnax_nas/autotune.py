"""The batch scorer's compiled-call layout, chosen from the machine.

:func:`snnax_nas.score.score_candidates` runs candidates in chunks of
``chunk_size`` per compiled call, ``map_batch_size`` of them vmapped together
on each device. The best layout depends on the backend:

* CPU: ``chunk 8, map_batch 1``. A sequential ``lax.map`` keeps every
  ``lax.cond`` a real branch (only the ops a candidate uses run); vmapping
  turns them into selects and was ~3x slower (benchmarks/RESULTS.md).
* GPU / TPU: one small candidate leaves the device mostly idle, so
  candidates are vmapped until one vmapped step holds about
  :data:`TARGET_STEP_FLOPS` of work, and a chunk holds a few such steps.
  Small candidates (width 16, B 64) therefore run vmapped 16-64 wide, while
  reference-scale candidates (~13 TFLOP each) run one at a time, the best
  layouts measured on an H200 (benchmarks/RESULTS.md).

Device memory bounds the vmapped width: :func:`candidate_bytes` estimates
the live memory of one candidate and ``map_batch_size`` candidates must fit
in :data:`MEMORY_FRACTION` of one device's memory. :func:`choose_layout` is
the pure decision; :func:`resolve_layout` gathers its inputs (backend, memory,
FLOPs) and applies the user's overrides.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional
from typing import Union

import numpy as np

from snnax_nas import configs
from snnax_nas import flops as flops_lib
from snnax_nas import kernels as kernel_lib

# FLOPs one vmapped step should hold on an accelerator (see the module docstring).
TARGET_STEP_FLOPS = 0.5e12
MAX_MAP_BATCH = 64
# Share of one device's memory the live candidates of a chunk may use; the
# rest is left to XLA's temporaries, the images and fragmentation.
MEMORY_FRACTION = 0.5
CPU_LAYOUT = (8, 1)  # chunk, map_batch: measured best on CPU (benchmarks/RESULTS.md)
ACCELERATOR_MIN_CHUNK = 8
STEPS_PER_CHUNK = 4  # vmapped steps per chunk on an accelerator: amortises dispatch

Setting = Union[int, str, None]


# Cell-conv input dtypes of ``score_candidates(conv_dtype=...)``: float32 (the
# reference) or bfloat16 inputs and weights with float32 accumulation.
CONV_DTYPES = ("float32", "bfloat16")

def conv_dtype_name(conv_dtype) -> Optional[str]:
  """The supernet's ``conv_dtype`` for a user setting: None (float32, the
  reference path) or ``"bfloat16"``.

  Raises:
    ValueError: a dtype outside :data:`CONV_DTYPES`.
  """
  if conv_dtype is None:
    return None
  import jax.numpy as jnp  # noqa: PLC0415 (autotune is imported without JAX)
  try:
    name = jnp.dtype(conv_dtype).name
  except TypeError:
    name = str(conv_dtype)
  if name not in CONV_DTYPES:
    raise ValueError(f"conv_dtype {conv_dtype!r} is not one of {', '.join(CONV_DTYPES)}")
  return None if name == "float32" else name


@dataclasses.dataclass(frozen=True)
class Layout:
  """A compiled-call layout and why it was chosen.

  Attributes:
    chunk_size: candidates per compiled call (a multiple of the devices).
    map_batch_size: candidates vmapped together on one device.
    reason: one line naming the inputs of the choice (logged by callers).
  """

  chunk_size: int
  map_batch_size: int
  reason: str


def parse_setting(value: Setting, name: str) -> Optional[int]:
  """A ``chunk_size`` / ``map_batch_size`` setting as an int, or None for auto.

  Args:
    value: None, ``"auto"``, an int >= 1 or its decimal string (a config field
      whose default is ``"auto"`` receives command-line values as strings).
    name: the setting's name, for the error message.

  Raises:
    ValueError: anything else, naming the value.
  """
  if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
    return None
  try:
    number = int(str(value).strip()) if not isinstance(value, (int, np.integer)) else int(value)
  except ValueError:
    number = None
  if number is None or isinstance(value, bool) or number < 1:
    raise ValueError(f"{name}={value} must be >= 1 or 'auto'")
  return number


def _pow2_floor(x: float) -> int:
  return 1 << max(0, int(np.floor(np.log2(max(x, 1.0)))))


def choose_layout(backend: str, memory_bytes: float, flops_per_candidate: float,
                  candidate_bytes: float, num_devices: int = 1,
                  num_candidates: Optional[int] = None) -> Layout:
  """The automatic layout: a pure function of the machine and the work.

  Args:
    backend: ``jax.default_backend()`` (``"cpu"``, ``"gpu"``/``"cuda"``/
      ``"rocm"``, ``"tpu"``).
    memory_bytes: memory of ONE device, bytes (host memory / devices on CPU).
    flops_per_candidate: FLOPs of scoring one candidate (all its batches and
      draws), e.g. the mean executed count of :mod:`snnax_nas.flops`.
    candidate_bytes: live memory of one candidate in a compiled call, bytes
      (:func:`candidate_bytes`).
    num_devices: devices a chunk is sharded over.
    num_candidates: candidates to score; on an accelerator a chunk is not
      made larger than needed for them (None: no cap).

  Returns:
    A :class:`Layout`; ``chunk_size`` is a multiple of ``num_devices *
    map_batch_size``.
  """
  if num_devices < 1:
    raise ValueError(f"num_devices must be >= 1, got {num_devices}")
  if backend == "cpu":
    chunk = -(-CPU_LAYOUT[0] // num_devices) * num_devices
    return Layout(chunk, CPU_LAYOUT[1],
                  f"cpu: chunk {chunk}, map_batch {CPU_LAYOUT[1]} (sequential lax.map, "
                  "measured best on CPU)")
  budget = MEMORY_FRACTION * memory_bytes
  by_flops = _pow2_floor(TARGET_STEP_FLOPS / max(flops_per_candidate, 1.0))
  by_memory = _pow2_floor(budget / max(candidate_bytes, 1.0))
  map_batch = max(1, min(by_flops, by_memory, MAX_MAP_BATCH))
  per_step = num_devices * map_batch
  chunk = max(ACCELERATOR_MIN_CHUNK, STEPS_PER_CHUNK * per_step)
  if num_candidates is not None:
    # No more vmapped steps than the candidates fill (padding is wasted work).
    chunk = min(chunk, max(-(-num_candidates // per_step), 1) * per_step)
    chunk = max(chunk, per_step)
  chunk = -(-chunk // per_step) * per_step
  limit = "memory" if by_memory < min(by_flops, MAX_MAP_BATCH) else "flops"
  warn = ("; WARNING one candidate's estimated memory exceeds the budget"
          if candidate_bytes > budget else "")
  return Layout(chunk, map_batch,
                f"{backend}: chunk {chunk}, map_batch {map_batch} ({limit}-bound: "
                f"{flops_per_candidate / 1e9:.3g} GFLOP/candidate, target "
                f"{TARGET_STEP_FLOPS / 1e9:.0f} GFLOP/step; ~{candidate_bytes / 2**20:.0f} MiB/"
                f"candidate, budget {budget / 2**30:.1f} GiB/device{warn})")


def candidate_bytes(cfg: configs.NetworkConfig, batch: int,
                    time_batched: bool = False) -> float:
  """Upper estimate of one candidate's live memory in a compiled call, bytes.

  A vmapped candidate computes every op (``lax.cond`` becomes a select), so
  per cell of activation size ``S = B * H * W * C`` float32 it may hold the
  conv output of every (edge, op) pair, the node values and accumulators,
  and one membrane per (source node, threshold):
  ``S * (E * (O + 1) + sources * groups + 4)``, plus the fixed layers'
  membranes, the stem output and twice the supernet parameters (the fresh
  draw and its temporaries). The time loop is a scan without gradients, so
  nothing is kept per timestep, unless a forward-only space runs
  time-batched (``score_candidates(time_batched=True)``): then every
  activation holds all T steps.

  Args:
    cfg: the network config.
    batch: images per batch, B.
    time_batched: the scorer's option (counts only without backward edges).
  """
  f32 = 4.0
  ops = cfg.ops.nonzero_ops
  groups = max(len(cfg.ops.lif_thresholds), 1)
  sources = 3
  per_cell = cfg.num_edges * (len(ops) + 1) + sources * groups + 4
  cells = sum(h * w * c for h, w, c in cfg.cell_shapes) * per_cell
  (h1, w1, c1), (h2, w2, c2) = cfg.stage_shapes
  fixed = 2 * h1 * w1 * c1 + h2 * w2 * c2 + cfg.hidden
  params = 0
  for h, w, c in cfg.cell_shapes:
    params += sum(cfg.num_edges * (op.kernel * op.kernel * c * c + 2 * c)
                  for op in ops if op.has_lif)
  params += 9 * c1 * 2 * c1 + cfg.classifier_in * cfg.hidden + cfg.hidden * cfg.num_outputs
  steps = cfg.timesteps if time_batched and not cfg.backward else 1
  return f32 * (steps * batch * (cells + fixed) + 2 * params + 2 * batch * batch)


def space_sample(cfg: configs.NetworkConfig, n: int = 256) -> np.ndarray:
  """Op weights [n, L, E, O] of ``n`` genotypes sampled from the space of
  ``cfg`` with a fixed seed: the typical candidate's FLOPs when the
  candidates are not known in advance (a search)."""
  from snnax_nas import genotype as genotype_lib  # pylint: disable=g-import-not-at-top
  from snnax_nas import genotype_space
  gs = genotype_space.sample_genotypes(np.random.default_rng(0), n, cfg.ops, backward=cfg.backward)
  gs = genotype_lib.cell_genotypes(gs, cfg.ops, cfg.num_cells, allow_backward=cfg.backward)
  return genotype_lib.arch_weights(gs, cfg.ops)[..., :cfg.num_edges, :]


def device_memory_bytes(device=None) -> float:
  """Memory of one device, bytes: ``memory_stats()["bytes_limit"]`` where
  the backend reports it, else the host's memory shared by its local devices
  (the CPU backend)."""
  import jax  # pylint: disable=g-import-not-at-top
  device = device or jax.local_devices()[0]
  try:
    stats = device.memory_stats()
  except Exception:  # pylint: disable=broad-except
    stats = None  # backends without memory statistics raise or return None
  if stats and stats.get("bytes_limit"):
    return float(stats["bytes_limit"])
  host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  return float(host) / max(jax.local_device_count(), 1)


def resolve_layout(cfg: configs.NetworkConfig, batch: int, repeats: int, *,
                   chunk_size: Setting = None, map_batch_size: Setting = None,
                   arch: Optional[np.ndarray] = None, draws: int = 1,
                   num_devices: Optional[int] = None,
                   backend: Optional[str] = None, time_batched: bool = False) -> Layout:
  """The layout to run: the user's settings where given, else the automatic
  choice of :func:`choose_layout` for this machine.

  Args:
    cfg: the network config.
    batch, repeats: images per batch B and batches per candidate R.
    chunk_size, map_batch_size: ints, or None / ``"auto"`` to choose.
    arch: op weights [N, L, E, O] of the candidates (FLOPs and count); None:
      a fixed sample of the space (:func:`space_sample`) stands for them.
    draws: weight draws per candidate (multiplies the FLOPs).
    num_devices: devices a chunk is sharded over (default: all local).
    backend: default ``jax.default_backend()``.
    time_batched: the scorer's option (memory of T steps per activation).

  Returns:
    A :class:`Layout` with ``chunk_size`` rounded up to a multiple of the
    devices and ``map_batch_size`` at most ``chunk_size / devices`` (as
    :func:`snnax_nas.score.score_candidates` runs them).

  Raises:
    ValueError: a setting that is neither ``"auto"`` nor an int >= 1.
  """
  import jax  # pylint: disable=g-import-not-at-top
  chunk = parse_setting(chunk_size, "chunk_size")
  mbs = parse_setting(map_batch_size, "map_batch_size")
  num_devices = num_devices or jax.local_device_count()
  if chunk is not None and mbs is not None:
    chunk = -(-chunk // num_devices) * num_devices
    mbs = max(1, min(mbs, chunk // num_devices))
    return Layout(chunk, mbs, f"given: chunk {chunk}, map_batch {mbs}")
  backend = backend or jax.default_backend()
  if arch is None:
    arch, count = space_sample(cfg), None
  else:
    count = len(arch)
  work = flops_lib.candidate_flops(arch, cfg, batch, repeats).executed if len(arch) else [0.0]
  auto = choose_layout(backend, device_memory_bytes(), draws * float(np.mean(work)),
                       candidate_bytes(cfg, batch, time_batched), num_devices, count)
  if chunk is None and mbs is None:
    return auto
  if chunk is None:  # map_batch given: keep the chosen steps per chunk
    per_step = num_devices * mbs
    chunk = max(auto.chunk_size // (num_devices * auto.map_batch_size), 1) * per_step
  chunk = -(-chunk // num_devices) * num_devices
  mbs = max(1, min(mbs if mbs is not None else auto.map_batch_size, chunk // num_devices))
  return Layout(chunk, mbs, f"chunk {chunk}, map_batch {mbs} (partly given; auto was "
                            f"{auto.reason})")


# How candidates' weights are drawn (``scoring.weights``): each its own, or
# all the same (common random numbers).
WEIGHT_DRAWS = ("independent", "common")


def scoring_options(section) -> dict:
  """The scorer arguments of a job config's ``scoring`` section, checked.

  Args:
    section: mapping with ``kernel``, ``draws``, ``chunk_size``,
      ``map_batch_size``, ``conv_dtype``, ``weights`` and ``time_batched``
      (``configs.scoring()``); absent fields take the library defaults.

  Returns:
    ``dict(kernel, draws, chunk_size, map_batch_size, conv_dtype,
    common_weights, time_batched)`` for
    :func:`snnax_nas.score.score_candidates`; chunk settings are ints or None
    (auto, resolved by :func:`resolve_layout`).

  Raises:
    ValueError: naming the field (``scoring.FIELD=VALUE``) and what it accepts.
  """
  get = lambda k, d: section.get(k, d) if hasattr(section, "get") else getattr(section, k, d)
  kernel = get("kernel", "sahd")
  if kernel not in kernel_lib.KERNELS:
    raise ValueError(f"scoring.kernel={kernel!r} is unknown; choose from "
                     f"{', '.join(kernel_lib.KERNELS)}")
  draws = get("draws", 1)
  if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
    raise ValueError(f"scoring.draws={draws} must be an integer >= 1")
  conv_dtype = get("conv_dtype", None)
  try:
    conv_dtype_name(conv_dtype)
  except ValueError:
    raise ValueError(f"scoring.conv_dtype={conv_dtype!r} is not one of "
                     f"{', '.join(CONV_DTYPES)}") from None
  weights = get("weights", "independent")
  if weights not in WEIGHT_DRAWS:
    raise ValueError(f"scoring.weights={weights!r} is not one of {', '.join(WEIGHT_DRAWS)}")
  time_batched = get("time_batched", False)
  if not isinstance(time_batched, (bool, np.bool_)):
    raise ValueError(f"scoring.time_batched={time_batched!r} must be True or False")
  out = dict(kernel=kernel, draws=int(draws), conv_dtype=conv_dtype,
             common_weights=weights == "common", time_batched=bool(time_batched))
  for name in ("chunk_size", "map_batch_size"):
    out[name] = parse_setting(get(name, None), f"scoring.{name}")
  return out
