"""NIR exports run by the test suite's reference interpreter and by snnTorch.

For each genotype and weight precision: the network is exported with
:func:`snnax_nas.nir_graph.export_network` (or, with ``--workdir``, a
``launch.train`` run's checkpoint with :func:`snnax_nas.nir_graph.export_run`),
written to a ``.nir`` file and read back with ``nir.read``; then

* ``reference``: ``tests/nir_reference.py`` (numpy, written from the NIR
  specification) runs the graph;
* ``snntorch``: snnTorch's ``import_from_nir`` (through nirtorch) builds a
  torch module that is stepped through the T timesteps;

and each consumer's spikes (every LIF layer, every timestep, every input) are
compared with the flax Module's (:func:`snnax_nas.raster.record_spikes`) and
its time-averaged output with the Module's logits. Prints one row per
(genotype, bits, consumer) and writes them as JSON (``--out``).

Adaptation for snnTorch (stated, not hidden): its importer passes
``Flatten.start_dim`` to ``torch.nn.Flatten``, which counts the batch axis,
so ``start_dim`` 0 of the per-sample NIR graph is given to it as 1. Its LIF
is ``Leaky(beta = 1 - dt / tau)`` at dt = 1e-4 s with the input scale
``r dt / tau`` moved into the threshold (its importer does this and prints a
warning), so ``--dt`` must stay 1e-4 for snnTorch. nirtorch 2.6 treats the
inputs of every node on a cycle as the previous timestep's (and feeds a
scalar zero at t = 0), which breaks graphs with backward edges: those rows
report the error instead of figures.

Usage::

  pip install -r benchmarks/requirements-nir.txt
  python benchmarks/nir_consumer_bench.py --images ../shared/datasets/cifar10/test10k.npz
  python benchmarks/nir_consumer_bench.py --workdir runs/train --num_images 16 \\
      --images ../shared/datasets/cifar10/test10k.npz

Without ``--workdir`` the network is freshly initialised, its BN running
statistics calibrated on the images (``--calibrate`` training-mode passes)
and its fc1 drawn so that the classifier spikes: realistic statistics,
untrained weights.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import sys
import tempfile
import time

import jax
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from snnax_nas import data as data_lib  # noqa: E402
from snnax_nas import models  # noqa: E402
from snnax_nas import network  # noqa: E402
from snnax_nas import nir_graph  # noqa: E402
from snnax_nas import quant  # noqa: E402
from snnax_nas import raster  # noqa: E402

DEFAULT_GENOTYPES = ("0324/0041/0002/0000,0303/0030/0003/0000,"
                     "0324/0041/2002/0200|0314/1043/4002/0100")


def _parse(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--images", default=None, help="npz with 'image' uint8 [N, 32, 32, 3]; "
                 "default: the bundled cifar10_sample")
  p.add_argument("--num_images", type=int, default=8)
  p.add_argument("--workdir", default=None, help="a launch.train run to export instead")
  p.add_argument("--genotypes", default=DEFAULT_GENOTYPES,
                 help="comma list (snasnet op set; a genotype with backward edges runs "
                      "with backward=True)")
  p.add_argument("--bits", default="32,8,4")
  p.add_argument("--width", type=int, default=4)
  p.add_argument("--hidden", type=int, default=32)
  p.add_argument("--timesteps", type=int, default=3)
  p.add_argument("--calibrate", type=int, default=8)
  p.add_argument("--dt", type=float, default=nir_graph.DEFAULT_DT)
  p.add_argument("--consumers", default="reference,snntorch")
  p.add_argument("--out", default=None)
  return p.parse_args(argv)


def load_reference_interpreter():
  """``tests/nir_reference.py`` as a module."""
  spec = importlib.util.spec_from_file_location(
      "nir_reference", os.path.join(ROOT, "tests", "nir_reference.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def run_reference(path, frames):
  """``(outputs [T, B, K], {LIF node: spikes [T, B, ...]})`` of the reference."""
  import nir
  return load_reference_interpreter().Interpreter(nir.read(path)).run(frames)


def run_snntorch(path, frames):
  """The same through snnTorch's NIR importer (see the module docstring)."""
  import nir
  import snntorch
  from snntorch.import_nir import import_from_nir
  import torch
  graph = nir.read(path)
  for node in graph.nodes.values():
    if isinstance(node, nir.Flatten):
      node.start_dim += 1  # torch.nn.Flatten counts the batch axis
  with contextlib.redirect_stdout(io.StringIO()):  # the importer's w_scale warnings
    net = import_from_nir(graph)
  spikes = {}
  for name, module in net.named_modules():
    if isinstance(module, snntorch.Leaky):
      module.register_forward_hook(
          lambda m, i, out, name=name: spikes.setdefault(name, []).append(
              out.detach().numpy().copy()))
  state, outs = None, []
  with torch.no_grad():
    for t in range(frames.shape[0]):
      out, state = net(torch.from_numpy(np.ascontiguousarray(frames[t])), state)
      outs.append(out.numpy().copy())
  return np.stack(outs), {k: np.stack(v) for k, v in spikes.items()}


CONSUMERS = {"reference": run_reference, "snntorch": run_snntorch}


def compare(path, module_spikes, logits, x, consumer):
  """``{"spikes", "mismatches", "max_logit_diff", "seconds"}`` of one consumer."""
  import nir
  graph = nir.read(path)
  t = next(iter(module_spikes.values())).shape[0]
  frames = np.broadcast_to(np.asarray(x).transpose(0, 3, 1, 2)[None], (t,) + x.shape[:1]
                           + (x.shape[3], x.shape[1], x.shape[2]))
  start = time.perf_counter()
  out, spikes = CONSUMERS[consumer](path, frames)
  seconds = time.perf_counter() - start
  mismatches = total = 0
  for node, s in spikes.items():
    probe = graph.nodes[node].metadata["probe"]
    probe = probe.decode() if isinstance(probe, bytes) else str(probe)
    want = module_spikes[probe]
    got = np.moveaxis(s, 2, -1) if s.ndim == 5 else s
    mismatches += int((got != want).sum())
    total += int(want.sum())
  if len(spikes) != len(module_spikes):
    raise AssertionError(f"{consumer} ran {len(spikes)} LIF layers of {len(module_spikes)}")
  return {"spikes": total, "mismatches": mismatches, "layers": len(spikes),
          "classifier_spikes": int(module_spikes["head/fc_lif"].sum()),
          "logit_spread": float(np.ptp(logits, axis=0).max()),
          "max_logit_diff": float(np.abs(out.mean(0) - logits).max()), "seconds": seconds}


def calibrated(model, x, passes, seed=0):
  """Fresh variables with BN running statistics from ``passes`` training-mode
  passes over ``x``, and an fc1 kernel drawn from N(0.1, 0.5^2) so that the
  classifier spikes (an untrained one is silent at small widths, which would
  make the logits input-independent and their comparison empty)."""
  v = model.init(jax.random.key(seed), x[:1], train=False)
  for i in range(passes):
    _, upd = model.apply(v, x, train=True, mutable=["batch_stats"],
                         rngs={"dropout": jax.random.key(i)})
    v = dict(v, batch_stats=upd["batch_stats"])
  head = dict(v["params"]["head"])
  shape = head["fc1"]["kernel"].shape
  head["fc1"] = {"kernel": np.random.default_rng(seed).normal(0.1, 0.5, shape).astype(np.float32)}
  return dict(v, params=dict(v["params"], head=head))


def main(argv=None):
  args = _parse(argv)
  info = data_lib.get_info("cifar10_sample")
  if args.images:
    with np.load(args.images) as d:
      raw = d["image"][:args.num_images]
  else:
    raw = data_lib.load_arrays("cifar10_sample", "train")[0][:args.num_images]
  x = np.asarray(data_lib.normalize(raw, info), np.float32)
  cases = []
  if args.workdir:
    from snnax_nas import evaluate
    trained = evaluate.load_trained_run(args.workdir)
    cases.append((trained.config, trained.genotype, jax.device_get(trained.variables)))
  else:
    for g in args.genotypes.split(","):
      cfg = network.network_config(None, input_shape=x.shape[1:], num_classes=10,
                                   width=args.width, hidden=args.hidden,
                                   timesteps=args.timesteps, linear_init="fan_in",
                                   backward=True, ops="snasnet")
      model = models.SpikingNetwork.for_genotypes(cfg, g)
      cases.append((cfg, g, calibrated(model, x, args.calibrate)))
  rows = []
  tmp = tempfile.mkdtemp(prefix="nir_bench_")
  for cfg, genotype, variables in cases:
    model = models.SpikingNetwork.for_genotypes(cfg, genotype)
    for bits in map(int, args.bits.split(",")):
      path = os.path.join(tmp, f"net_{len(rows)}.nir")
      if args.workdir:
        nir_graph.export_run(args.workdir, path, weight_bits=bits, dt=args.dt)
      else:
        nir_graph.export_network(variables, cfg, genotype, path, weight_bits=bits, dt=args.dt)
      deq = dict(variables,
                 params=quant.dequantize(quant.quantize_params(variables["params"], bits)))
      logits = np.asarray(model.apply(deq, x, train=False))
      module_spikes = raster.record_spikes(model, deq, x)
      for consumer in args.consumers.split(","):
        row = {"genotype": model.genotype, "bits": bits, "consumer": consumer,
               "images": len(x), "timesteps": cfg.timesteps, "width": cfg.width}
        try:
          row.update(compare(path, module_spikes, logits, x, consumer))
        except Exception as e:  # a consumer that cannot run the graph: say why
          row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
        rows.append(row)
        if "error" in row:
          print(f"{row['genotype']:<40} {bits:>2}b {consumer:<9} ERROR {row['error']}")
        else:
          print(f"{row['genotype']:<40} {bits:>2}b {consumer:<9} {row['layers']:>2} LIF layers "
                f"{row['spikes']:>8,} spikes  {row['mismatches']} mismatches  "
                f"max|dlogit| {row['max_logit_diff']:.2e}  {row['seconds']:.2f} s  "
                f"(classifier {row['classifier_spikes']} spikes, logit spread "
                f"{row['logit_spread']:.3f})")
  if args.out:
    with open(args.out, "w") as f:
      json.dump(rows, f, indent=1)
  return rows


if __name__ == "__main__":
  main()
