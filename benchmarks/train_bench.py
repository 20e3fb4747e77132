"""Training throughput side by side: this project against PyTorch + SpikingJelly.

  python benchmarks/train_bench.py                 # full run (< ~10 min on 2 cores)
  python benchmarks/train_bench.py --quick         # width 16, T = 3, 3 repeats
  python benchmarks/train_bench.py --widths 16 --timesteps 3,5 --reps 7 --json out.json
  python benchmarks/train_bench.py --widths 16 --ref main   # + the Module loop of main

The same network, batch and optimiser step three ways, timed interleaved
(every repeat runs each way once, in turn, so a change in the machine's load
hits all of them alike):

* ``launcher``: the step ``launch.train`` runs (``snnax_nas.train.make_steps``
  compiled as ``train_and_evaluate`` compiles it: data parallel over one XLA
  device per core, augmentation in the step, spike probes, metrics), fed as
  its loop feeds it (``put_batch`` of a host uint8 batch every step, metrics
  left on the device);
* ``module``: the README's plain jitted loop over the flax Module
  (``SpikingNetwork.apply`` + optax, one device, normalised float input),
  compiled with ``snnax_nas.train.compiler_options()`` as the README's is;
* ``module-xla-defaults`` (not run by default): the same loop compiled with
  XLA's default options (every convolution XLA:CPU picks runs single-threaded
  in YNNPACK);
* ``torch``: ``benchmarks/torch_reference.py``'s network (PyTorch +
  SpikingJelly, the per-timestep loop) with the same loss and optimiser
  (``functional.reset_net`` after each step, as a training loop does).

Network: cell ``--genotype`` (default ``0201/0001/0000/0000``, ``spikenas``
ops), hidden 1024 (``--hidden``), 10 classes, vote 10, dropout 0.5; width 16
with ``second_pool`` 2 (small) and width 256 with ``second_pool`` 4 (the reference
CIFAR-10 network, at batch ``--wide_batch`` 8 and one step per repeat by
default, so that the whole run fits in ~10 minutes); T in ``--timesteps``.
Step: softmax cross-entropy on the time-averaged vote output, SGD lr 0.1,
momentum 0.9, weight decay 5e-4.
Input: random 32x32x3 images (the work does not depend on the pixels).

Printed per (width, T, way): images/s as the median over ``--reps`` repeats
of ``--steps`` steps each and its spread (min-max), the first call
(compilation included) separately, and memory: for JAX the compiled step's
XLA buffers (arguments + outputs + temporaries, ``memory_analysis``), for
torch the bytes autograd saves for the backward plus parameters, gradients
and momentum; then the ratios (each JAX way over torch, launcher over
module). The load average is printed before and after: the machine is
shared, so read the spread.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

if "--keep_freed_memory" in sys.argv:  # before numpy, jax and torch start threads
  from snnax_nas import allocator  # noqa: E402
  allocator.keep_freed_memory()

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", len(os.sched_getaffinity(0)))  # as launch.train

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import score_bench  # noqa: E402  (benchmarks/: load_ref, torch_cfg)

from snnax_nas import data  # noqa: E402
from snnax_nas import genotype as genotype_lib  # noqa: E402
from snnax_nas import network  # noqa: E402
from snnax_nas import train  # noqa: E402

LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 5e-4


def _parse(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--genotype", default="0201/0001/0000/0000")
  p.add_argument("--ops", default="spikenas")
  p.add_argument("--widths", default="16,256",
                 help="comma list; 16 runs with second_pool 2, wider with second_pool 4")
  p.add_argument("--timesteps", default="3,5")
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--reps", type=int, default=5, help="interleaved repeats at width 16")
  p.add_argument("--wide_reps", type=int, default=2, help="repeats at widths > 16")
  p.add_argument("--wide_batch", type=int, default=8,
                 help="batch at widths > 16 (a width-256 step at batch 64 takes ~1 min here)")
  p.add_argument("--steps", type=int, default=2, help="steps per timed repeat")
  p.add_argument("--hidden", type=int, default=1024)
  p.add_argument("--second_pool", type=int, default=0, help="0: 2 at width 16, 4 wider")
  p.add_argument("--cells_per_stage", type=int, default=0, help="0: network_config's default")
  p.add_argument("--ways", default="launcher,module,torch",
                 help="comma list of launcher, module, module-xla-defaults (the module "
                 "compiled without snnax_nas.train.compiler_options), torch")
  p.add_argument("--ref", default=None,
                 help="git revision: add its plain Module loop as the way 'module@REF'")
  p.add_argument("--torch_threads", type=int, default=0, help="0: torch's default")
  p.add_argument("--keep_freed_memory", action="store_true",
                 help="glibc keeps freed memory (snnax_nas.allocator, as the launchers set "
                 "it) for every way of this process, torch included")
  p.add_argument("--quick", action="store_true", help="width 16, T 3, 3 repeats")
  p.add_argument("--json", default=None, help="write the figures here")
  args = p.parse_args(argv)
  if args.quick:
    args.widths, args.timesteps, args.reps = "16", "3", 3
  return args


def make_config(width: int, timesteps: int, ops: str, hidden: int = 1024,
                second_pool: int = 0, **overrides) -> network.NetworkConfig:
  """The benchmark's network; ``second_pool`` 0: 2 at width 16, 4 wider."""
  return network.network_config(None, input_shape=(32, 32, 3), num_classes=10, width=width,
                                hidden=hidden, vote_group=10,
                                second_pool=second_pool or (2 if width <= 16 else 4),
                                timesteps=timesteps, ops=ops, dropout=0.5, **overrides)


def _xla_bytes(compiled) -> float:
  m = compiled.memory_analysis()
  if m is None:
    return float("nan")
  return float(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
               - m.alias_size_in_bytes)


class Launcher:
  """The step of ``launch.train`` (``train_and_evaluate``'s loop body)."""

  def __init__(self, cfg, genotypes, images, labels):
    info = data.get_info("cifar10")
    opt = train.make_optimizer(LR, 1, 1000, MOMENTUM, WEIGHT_DECAY)
    self.steps = train.make_steps(cfg, genotypes, opt, info)
    self.state = jax.device_put(train.create_train_state(jax.random.PRNGKey(0), cfg, genotypes,
                                                         opt), self.steps.state_sharding)
    self.batch = {"image": images, "label": labels}
    example = train.put_batch(self.batch, self.steps.batch_sharding)
    self.fn = self.steps.train.lower(self.state, example).compile()
    self.memory = _xla_bytes(self.fn)

  def run(self, n):
    outs = []
    for _ in range(n):
      self.state, m = self.fn(self.state, train.put_batch(self.batch, self.steps.batch_sharding))
      outs.append(m)
    jax.block_until_ready(outs)


class Module:
  """The README's plain loop: ``SpikingNetwork.apply`` + optax, jitted
  (``train_lib``: this tree's ``snnax_nas.train`` or another revision's)."""

  def __init__(self, cfg, genotypes, images, labels, train_lib=train, xla_defaults=False):
    model = train_lib.network_model(cfg, genotypes)
    x = data.normalize(images, data.get_info("cifar10"))
    variables = train_lib.init_variables(jax.random.PRNGKey(0), cfg, genotypes)
    tx = optax.chain(optax.add_decayed_weights(WEIGHT_DECAY), optax.sgd(LR, momentum=MOMENTUM))

    def step(params, batch_stats, opt_state, x, y, key):
      def loss_fn(params):
        logits, new = model.apply({"params": params, "batch_stats": batch_stats}, x,
                                  train=True, mutable=["batch_stats"], rngs={"dropout": key})
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, new["batch_stats"]
      (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), batch_stats, opt_state, loss

    params = variables["params"]
    self.carry = (params, variables["batch_stats"], tx.init(params))
    self.x, self.y = jnp.asarray(x), jnp.asarray(labels)
    self.key = jax.random.key(1)
    # As the README's loop: the training compiler options where the library has
    # them (xla_defaults: XLA:CPU's own, every YNN fusion kind on).
    options = ({} if xla_defaults or not hasattr(train_lib, "compiler_options")
               else train_lib.compiler_options())
    self.fn = jax.jit(step, donate_argnums=(0, 1, 2), compiler_options=options).lower(
        *self.carry, self.x, self.y, self.key).compile()
    self.memory = _xla_bytes(self.fn)

  def run(self, n):
    for i in range(n):
      *self.carry, loss = self.fn(*self.carry, self.x, self.y, jax.random.fold_in(self.key, i))
    jax.block_until_ready(loss)


class Torch:
  """``torch_reference`` network, cross-entropy, SGD (momentum, weight decay)."""

  def __init__(self, cfg, genotype_text, images, labels):
    from spikingjelly.clock_driven import functional  # pylint: disable=g-import-not-at-top
    import torch  # pylint: disable=g-import-not-at-top
    import torch_reference as tr  # pylint: disable=g-import-not-at-top
    self.torch, self.functional = torch, functional
    torch.manual_seed(0)
    tcfg = score_bench.torch_cfg(cfg)
    self.model = tr.build_network(genotype_text, tcfg)
    self.opt = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM,
                               weight_decay=WEIGHT_DECAY)
    x = data.normalize(images, data.get_info("cifar10"))
    self.x = torch.from_numpy(np.asarray(x)).permute(0, 3, 1, 2).contiguous()
    self.y = torch.from_numpy(np.asarray(labels, np.int64))
    saved = []

    def pack(t):
      saved.append(t.numel() * t.element_size())
      return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
      self.run(1)
    state = sum(p.numel() * p.element_size() for p in self.model.parameters())
    self.memory = float(sum(saved) + 3 * state)  # saved + params, grads, momentum

  def run(self, n):
    for _ in range(n):
      self.opt.zero_grad(set_to_none=True)
      loss = self.torch.nn.functional.cross_entropy(self.model(self.x), self.y)
      loss.backward()
      self.opt.step()
      self.functional.reset_net(self.model)


def load_ref_train(ref: str):
  """``snnax_nas.train`` at git revision ``ref`` (``score_bench.load_ref``)."""
  import importlib  # pylint: disable=g-import-not-at-top
  ref_network, _ = score_bench.load_ref(ref)
  return ref_network, importlib.import_module("snnax_nas_ref.train")


def time_interleaved(ways: dict, reps: int, steps: int, batch: int) -> dict:
  """Images/s of each way (``run(n)`` runs n steps of ``batch`` images),
  timed interleaved: every repeat runs each way once, in turn, so a change in
  the machine's load hits all of them alike. ``{name: {"img_s": median,
  "min", "max"}}`` over the ``reps`` repeats of ``steps`` steps."""
  times = {name: [] for name in ways}
  for _ in range(reps):
    for name, way in ways.items():
      t0 = time.perf_counter()
      way.run(steps)
      times[name].append((time.perf_counter() - t0) / steps)
  out = {}
  for name, t in times.items():
    rates = batch / np.asarray(t)
    out[name] = {"img_s": float(np.median(rates)), "min": float(rates.min()),
                 "max": float(rates.max())}
  return out


def bench(width, timesteps, args, ref=None):
  cfg = make_config(width, timesteps, args.ops, args.hidden, args.second_pool,
                    **({"cells_per_stage": args.cells_per_stage} if args.cells_per_stage else {}))
  g = genotype_lib.parse_genotype(args.genotype, cfg.ops)
  genotypes = np.broadcast_to(g, (cfg.num_cells,) + g.shape)
  rng = np.random.default_rng(0)
  batch = args.batch if width <= 16 else args.wide_batch
  images = rng.integers(0, 256, (batch, 32, 32, 3), dtype=np.uint8)
  labels = rng.integers(0, 10, batch).astype(np.int32)
  makers = {"launcher": lambda: Launcher(cfg, genotypes, images, labels),
            "module": lambda: Module(cfg, genotypes, images, labels),
            "module-xla-defaults": lambda: Module(cfg, genotypes, images, labels,
                                                  xla_defaults=True),
            "torch": lambda: Torch(cfg, args.genotype, images, labels)}
  if ref is not None:
    ref_network, ref_train = ref
    ref_cfg = ref_network.network_config(None, **{
        f: getattr(cfg, f) for f in ("input_shape", "num_classes", "width", "hidden", "vote_group",
                                     "cells_per_stage", "second_pool", "timesteps", "dropout")},
        ops=args.ops)
    makers[f"module@{args.ref}"] = lambda: Module(ref_cfg, genotypes, images, labels, ref_train)
  ways, first = {}, {}
  for name in args.ways.split(",") + ([f"module@{args.ref}"] if ref else []):
    t0 = time.perf_counter()
    ways[name] = makers[name]()
    ways[name].run(1)
    first[name] = time.perf_counter() - t0
  reps, steps = (args.reps, args.steps) if width <= 16 else (args.wide_reps, 1)
  out = time_interleaved(ways, reps, steps, batch)
  for name, v in out.items():
    v.update(first_call_s=first[name], memory_mib=ways[name].memory / 2**20, reps=reps,
             steps=steps, batch=batch)
  return out


def main(argv=None):
  args = _parse(argv)
  if args.torch_threads and "torch" in args.ways:
    import torch  # pylint: disable=g-import-not-at-top
    torch.set_num_threads(args.torch_threads)
  from snnax_nas import allocator  # pylint: disable=g-import-not-at-top
  print(f"allocator: {allocator.status}")
  print(f"jax {jax.__version__}, {jax.local_device_count()} {jax.default_backend()} devices, "
        f"batch {args.batch}, {args.genotype} ({args.ops}), {args.reps} x {args.steps} steps "
        f"interleaved; load {os.getloadavg()[0]:.2f}", flush=True)
  ref = load_ref_train(args.ref) if args.ref else None
  results = []
  for width in [int(w) for w in args.widths.split(",")]:
    for t in [int(s) for s in args.timesteps.split(",")]:
      r = bench(width, t, args, ref)
      for name, v in r.items():
        print(f"width {width:3d} T {t} B {v['batch']:2d}  {name:8s} {v['img_s']:7.2f} img/s "
              f"[{v['min']:.2f}-{v['max']:.2f}]  first call {v['first_call_s']:5.1f} s  "
              f"memory {v['memory_mib']:7.1f} MiB", flush=True)
      if "torch" in r:
        for name in r:
          if name != "torch":
            print(f"width {width:3d} T {t}  {name} / torch = "
                  f"{r[name]['img_s'] / r['torch']['img_s']:.2f}x", flush=True)
      if f"module@{args.ref}" in r:
        print(f"width {width:3d} T {t}  module / module@{args.ref} = "
              f"{r['module']['img_s'] / r[f'module@{args.ref}']['img_s']:.2f}x", flush=True)
      if "module-xla-defaults" in r and "module" in r:
        print(f"width {width:3d} T {t}  module / module-xla-defaults = "
              f"{r['module']['img_s'] / r['module-xla-defaults']['img_s']:.2f}x", flush=True)
      if "launcher" in r and "module" in r:
        print(f"width {width:3d} T {t}  launcher / module = "
              f"{r['launcher']['img_s'] / r['module']['img_s']:.2f}x", flush=True)
      results.append({"width": width, "timesteps": t, **r})
  print(f"load after {os.getloadavg()[0]:.2f}")
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
  main()
