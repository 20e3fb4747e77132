"""Accelerator benchmark of the batch scorer: one command, both configs.

For each config it prints, measured in this one process on this one device:

* JAX ``snnax_nas.score.score_candidates`` cand/s (median over ``--reps``
  runs of the candidate set) at the automatic layout (:mod:`snnax_nas.autotune`)
  and, with ``--sweep``, at the layouts of the H200 table in ``benchmarks/RESULTS.md``;
* torch + SpikingJelly cand/s (``benchmarks/torch_reference.py`` on the
  same device, one network at a time) and the JAX/torch ratio;
* useful TFLOP/s (:mod:`snnax_nas.flops`) and its % of the dense conv peak,
  measured here at the scorer's cell-conv shapes and precision;
* compile time (first chunk: trace + compile + run) apart from run time;
* peak device memory (``memory_stats()["peak_bytes_in_use"]``, cumulative
  over the process; host VmHWM on CPU);
* for the reference scale, the whole-space job: the canonical forward space
  of the 5-op set, its estimated time at the measured rate, and the exact
  resumable ``launch.score`` command that scores it.

Configs: ``small`` = width 16, B 64, hidden 256, s2 2, T 5, R 2, 5-op
forward space (score_bench's default); ``reference`` = SNASNet CIFAR-10,
width 256, B 256, hidden 1024, s2 4, T 5, R 2.

Usage::

  python benchmarks/gpu_bench.py                 # on a GPU/TPU, <= 5 minutes on an H100/H200
  python benchmarks/gpu_bench.py --smoke         # tiny sizes, runs anywhere (CPU: ~1 minute)
  python benchmarks/gpu_bench.py --fidelity 256 --fidelity_width 4   # bf16 vs f32 Kendall tau

``--fidelity N`` scores N sampled candidates of the 5-op forward space with
float32 and with bfloat16 cell convs (same weights and images) and reports
Kendall tau between the two score vectors (bf16 is offered only at >= 0.99).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time


def _parse(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--configs", default="small,reference", help="comma list: small, reference")
  p.add_argument("--smoke", action="store_true", help="tiny sizes (a CPU check of the script)")
  p.add_argument("--reps", type=int, default=3, help="timed runs of each candidate set")
  p.add_argument("--candidates", default="256,32", help="JAX candidates per config (comma)")
  p.add_argument("--torch_candidates", default="16,6", help="torch candidates per config")
  p.add_argument("--no_torch", action="store_true")
  p.add_argument("--chunk_size", default="auto")
  p.add_argument("--map_batch_size", default="auto")
  p.add_argument("--conv_dtype", default="float32", choices=("float32", "bfloat16"))
  p.add_argument("--sweep", action="store_true",
                 help="also time the H200 table's layouts (chunk/map_batch 16/1, 64/16, 64/64; 8/1, 8/8)")
  p.add_argument("--fidelity", type=int, default=0,
                 help="only measure bf16-vs-f32 Kendall tau on this many candidates")
  p.add_argument("--fidelity_width", type=int, default=4)
  p.add_argument("--fidelity_batch", type=int, default=32)
  p.add_argument("--write_space", default="space_snasnet_forward.txt",
                 help="genotype file of the canonical 5-op forward space (reference config)")
  p.add_argument("--seed", type=int, default=0)
  return p.parse_args(argv)


ARGS = _parse() if __name__ == "__main__" else None

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from snnax_nas import autotune  # noqa: E402
from snnax_nas import correlation  # noqa: E402
from snnax_nas import data  # noqa: E402
from snnax_nas import distributed
from snnax_nas import flops as flops_lib  # noqa: E402
from snnax_nas import genotype as genotype_lib  # noqa: E402
from snnax_nas import genotype_space
from snnax_nas import network  # noqa: E402
from snnax_nas import score  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent

# name: (network fields, batch, repeats); --smoke shrinks them.
CONFIGS = {
    "small": (dict(input_shape=(32, 32, 3), width=16, hidden=256, second_pool=2), 64, 2),
    "reference": (dict(network.PRESETS["cifar10"]), 256, 2),
}
SMOKE = {
    "small": (dict(input_shape=(32, 32, 3), width=4, hidden=32, second_pool=2, timesteps=2), 8, 1),
    "reference": (dict(input_shape=(32, 32, 3), width=8, hidden=64, second_pool=4,
                       timesteps=2), 16, 1),
}


def make_config(name: str, smoke: bool, width=None):
  fields, batch, repeats = (SMOKE if smoke else CONFIGS)[name]
  fields = dict(fields, ops="snasnet", num_classes=10, vote_group=10, backward=False)
  if width is not None:
    fields["width"] = width
  return network.network_config(None, **fields), batch, repeats


def device_peak_bytes():
  """Peak device memory so far (bytes), or the host's VmHWM where the device
  keeps no statistics (CPU); and which of the two it is."""
  try:
    stats = jax.local_devices()[0].memory_stats()
  except Exception:  # pylint: disable=broad-except
    stats = None
  if stats and "peak_bytes_in_use" in stats:
    return float(stats["peak_bytes_in_use"]), "device"
  for line in pathlib.Path("/proc/self/status").read_text().splitlines():
    if line.startswith("VmHWM:"):
      return int(line.split()[1]) * 1024.0, "host VmHWM"
  return float("nan"), "unknown"


def conv_peak(cfg, batch: int, conv_dtype: str, reps: int):
  """Dense conv TFLOP/s (best of ``reps``) at the scorer's cell-conv shapes
  ([B, H, W, C] 3x3 C -> C, 0/1 inputs) and precision, as a jitted loop of
  ``iters`` convs so that dispatch is not timed; the max over the shapes."""
  iters = 20
  best = 0.0
  dtype = None if conv_dtype == "float32" else conv_dtype
  from snnax_nas.network import supernet  # pylint: disable=g-import-not-at-top
  for h, w, c in sorted(set(cfg.cell_shapes)):
    x = (jax.random.uniform(jax.random.key(0), (batch, h, w, c)) < 0.2).astype(jnp.float32)
    k = jax.random.normal(jax.random.key(1), (3, 3, c, c)) * 0.1

    @jax.jit
    def loop(x, k):
      def body(i, acc):
        return acc + supernet.cell_conv(x, k * (1.0 + i * 1e-3), dtype)
      return jax.lax.fori_loop(0, iters, body, jnp.zeros(x.shape[:3] + (c,), jnp.float32))

    jax.block_until_ready(loop(x, k))
    times = []
    for _ in range(reps):
      t0 = time.perf_counter()
      jax.block_until_ready(loop(x, k))
      times.append(time.perf_counter() - t0)
    fl = iters * 2.0 * 9 * c * c * h * w * batch
    best = max(best, fl / min(times) / 1e12)
  return best


def bench_jax(cfg, gs, images, key, chunk_size, map_batch_size, conv_dtype, reps):
  """``(layout, compile_s, median run s, scores)`` of scoring ``gs``."""
  arch = genotype_lib.arch_of(gs, cfg)
  layout = autotune.resolve_layout(cfg, images.shape[1], images.shape[0], chunk_size=chunk_size,
                                   map_batch_size=map_batch_size, arch=arch)
  score.chunk_scorer.cache_clear()
  t0 = time.perf_counter()
  first = score.score_candidates(gs[:layout.chunk_size], images, key, cfg,
                                 chunk_size=layout.chunk_size,
                                 map_batch_size=layout.map_batch_size, conv_dtype=conv_dtype)
  compile_s = time.perf_counter() - t0
  del first
  times, res = [], None
  for _ in range(reps):
    t0 = time.perf_counter()
    res = score.score_candidates(gs, images, key, cfg, chunk_size=layout.chunk_size,
                                 map_batch_size=layout.map_batch_size, conv_dtype=conv_dtype)
    times.append(time.perf_counter() - t0)
  return layout, compile_s, float(np.median(times)), res.scores


def bench_torch(cfg, gs, images, n, seed):
  """torch + SpikingJelly cand/s on this machine's accelerator (cuda) or CPU,
  or None when torch is not installed."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None, "torch not installed"
  sys.path.insert(0, str(HERE))
  import torch_reference as tr  # pylint: disable=g-import-not-at-top
  device = "cuda" if torch.cuda.is_available() else "cpu"
  tcfg = dict(ops=cfg.ops.names, width=cfg.width, cells_per_stage=cfg.cells_per_stage,
              timesteps=cfg.timesteps, s2=cfg.second_pool, hidden=cfg.hidden,
              num_classes=cfg.num_classes, vote_group=cfg.vote_group,
              stem_stride=cfg.stem_stride, dropout=cfg.dropout, input_shape=cfg.input_shape,
              tau=cfg.lif.tau, v_threshold=cfg.lif.threshold)
  texts = genotype_lib.format_genotypes(gs[:n, 0])
  tr.score_candidates(texts[:1], images, tcfg, seed, device=device)  # warm-up
  if device == "cuda":
    torch.cuda.synchronize()
  t0 = time.perf_counter()
  tr.score_candidates(texts, images, tcfg, seed, device=device)
  if device == "cuda":
    torch.cuda.synchronize()
  return len(texts) / (time.perf_counter() - t0), f"torch {torch.__version__} on {device}"


def canonical_forward_space(ops: str = "snasnet") -> np.ndarray:
  """The canonical forward space of an op set: every valid forward genotype,
  pruned to canonical form and deduplicated, int8 [M, 4, 4]."""
  raw = genotype_space.enumerate_forward(ops)
  return genotype_lib.unique_canonical(raw[genotype_lib.is_valid(raw)])


def fidelity(args):
  """Kendall tau between bf16-conv and f32 scores of the same candidates."""
  cfg, _, repeats = make_config("small", False, width=args.fidelity_width)
  batch = args.fidelity_batch
  images = data.score_batches("cifar10_sample", repeats, batch, args.seed)
  gs = genotype_lib.as_genotypes(genotype_space.sample_genotypes(
      np.random.default_rng(args.seed), args.fidelity, cfg.ops), cfg)
  key = jax.random.key(args.seed)
  out = {}
  for dtype in ("float32", "bfloat16"):
    t0 = time.perf_counter()
    out[dtype] = score.score_candidates(gs, images, key, cfg, conv_dtype=dtype).scores
    print(f"{dtype}: {len(gs)} candidates in {time.perf_counter() - t0:.1f} s")
  f32, bf16 = out["float32"], out["bfloat16"]
  ok = np.isfinite(f32) & np.isfinite(bf16)
  tau = correlation.kendall_tau(f32[ok], bf16[ok])
  diff = np.abs(f32[ok] - bf16[ok])
  print(f"bf16 vs f32 conv, width {cfg.width}, B {batch}, R {repeats}, T {cfg.timesteps}, "
        f"5-op forward space, {ok.sum()}/{len(gs)} finite in both "
        f"(singular f32 {int((~np.isfinite(f32)).sum())}, bf16 "
        f"{int((~np.isfinite(bf16)).sum())}): Kendall tau {tau:.4f}; |score diff| median "
        f"{np.median(diff):.2e}, max {diff.max():.2e}; argmax same: "
        f"{int(np.argmax(np.where(ok, f32, -np.inf))) == int(np.argmax(np.where(ok, bf16, -np.inf)))}")


def main(args):
  distributed.use_cpu_cores()  # CPU backend only: one device per core, as the launchers run
  if args.fidelity:
    fidelity(args)
    return
  backend = jax.default_backend()
  dev = jax.local_devices()[0]
  print(f"# gpu_bench {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  jax {jax.__version__}  backend "
        f"{backend}  device {dev.device_kind} x{jax.local_device_count()}  conv_dtype "
        f"{args.conv_dtype}{'  SMOKE (tiny sizes)' if args.smoke else ''}")
  names = [c.strip() for c in args.configs.split(",") if c.strip()]
  n_jax = [int(x) for x in args.candidates.split(",")]
  n_torch = [int(x) for x in args.torch_candidates.split(",")]
  if args.smoke:
    n_jax, n_torch, args.reps = [16, 8], [2, 2], min(args.reps, 2)
  rows = []
  for i, name in enumerate(names):
    if name not in CONFIGS:
      raise ValueError(f"unknown config {name!r}; choose from {', '.join(CONFIGS)}")
    cfg, batch, repeats = make_config(name, args.smoke)
    images = data.score_batches("cifar10_sample", repeats, batch, args.seed)
    gs = genotype_lib.as_genotypes(genotype_space.sample_genotypes(
        np.random.default_rng(args.seed), n_jax[min(i, len(n_jax) - 1)], cfg.ops), cfg)
    key = jax.random.key(args.seed)
    useful = flops_lib.candidate_flops(genotype_lib.arch_of(gs, cfg), cfg, batch, repeats).useful
    print(f"\n== {name}: width {cfg.width}, B {batch}, hidden {cfg.hidden}, s2 "
          f"{cfg.second_pool}, T {cfg.timesteps}, R {repeats}, 5-op forward space, "
          f"{len(gs)} candidates, {useful.mean() / 1e12:.3g} useful TFLOP/candidate")
    peak = conv_peak(cfg, batch, args.conv_dtype, reps=3)
    print(f"dense conv peak at the cell-conv shapes ({args.conv_dtype}): {peak:.2f} TFLOP/s")
    layouts = [(args.chunk_size, args.map_batch_size)]
    if args.sweep:
      layouts += [(16, 1), (64, 16), (64, 64)] if name == "small" else [(8, 1), (8, 8)]
    jax_rate = None
    for chunk, mbs in layouts:
      layout, compile_s, run_s, _ = bench_jax(cfg, gs, images, key, chunk, mbs,
                                              args.conv_dtype, args.reps)
      rate = len(gs) / run_s
      tflops = useful.sum() / run_s / 1e12
      mem, where = device_peak_bytes()
      jax_rate = jax_rate or rate
      print(f"jax  chunk {layout.chunk_size:3d} map_batch {layout.map_batch_size:2d}: "
            f"{rate:9.2f} cand/s (median of {args.reps}), {tflops:.3g} useful TFLOP/s = "
            f"{100 * tflops / peak:.0f}% of the conv peak, compile {compile_s:.1f} s, peak "
            f"memory {mem / 2**30:.2f} GiB ({where}, cumulative)  [{layout.reason}]")
      rows.append(dict(config=name, chunk=layout.chunk_size, map_batch=layout.map_batch_size,
                       cand_s=rate, tflops=tflops, peak=peak, compile_s=compile_s,
                       mem_gib=mem / 2**30))
    if not args.no_torch:
      t_rate, what = bench_torch(cfg, gs, images, n_torch[min(i, len(n_torch) - 1)], args.seed)
      if t_rate is None:
        print(f"torch: skipped ({what})")
      else:
        print(f"torch ({what}): {t_rate:.2f} cand/s; jax/torch {jax_rate / t_rate:.1f}x")
        rows[-1]["torch_cand_s"] = t_rate
    if name == "reference":
      space = canonical_forward_space("snasnet")
      space_flops = flops_lib.candidate_flops(genotype_lib.arch_of(
          genotype_lib.as_genotypes(space, cfg), cfg), cfg, batch, repeats).useful
      rate_flops = useful.sum() / (len(gs) / jax_rate)
      est = space_flops.sum() / rate_flops
      path = pathlib.Path(args.write_space)
      path.write_text("\n".join(genotype_lib.format_genotypes(space)) + "\n")
      print(f"whole space: {len(space)} canonical forward genotypes of the 5-op set, "
            f"{space_flops.mean() / 1e12:.3g} TFLOP/candidate mean; at the rate measured "
            f"here ({rate_flops / 1e12:.3g} useful TFLOP/s) about {est / 60:.1f} min "
            f"({'of this smoke config' if args.smoke else 'reference scale'}); wrote {path}")
      print("  resumable job (rerun the same command after a crash; chunks already on disk "
            "are kept):\n  python -m launch.score "
            "--config=snnax_nas/configs/score.py:reference \\\n"
            f"      --config.genotypes={path} --config.network.ops=snasnet "
            f"--config.scoring.conv_dtype={args.conv_dtype} \\\n"
            "      --config.data_dir=DATA_DIR --workdir=runs/space_snasnet_reference")
  return rows


if __name__ == "__main__":
  main(ARGS)
