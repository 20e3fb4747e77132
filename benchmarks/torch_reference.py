"""PyTorch + SpikingJelly SNASNet scorer: the benchmark baseline.

Benchmark-only code: it is never imported by the ``snnax_nas`` library and its
dependencies (``benchmarks/requirements.txt``) are not library dependencies.

It mirrors the official SNASNet code's search loop: each candidate genotype
is built on its own as a fresh PyTorch module holding only its chosen ops,
initialised, and scored with forward hooks on every SpikingJelly ``LIFNode``.
Scoring runs under ``torch.no_grad()`` with the network in train mode: BN uses
batch statistics at every timestep and the SpikingJelly dropout is active,
with one mask kept for all T timesteps.

Public API:

* ``build_network(genotype, cfg)``: the network for one genotype.
* ``load_weights(model, params)``: copy weights laid out the JAX way into a
  model from ``build_network``.
* ``sahd_score(model, image_batches)``: the SAHD log-determinant score.
* ``score_candidates(genotypes, image_batches, cfg, seed)``: build, initialise
  and score each candidate in turn. This loop is the timed baseline.

``cfg`` keys (defaults in ``DEFAULT_CFG``): ``ops``, ``width``,
``cells_per_stage``, ``timesteps``, ``s2``, ``hidden``, ``num_classes``,
``vote_group``, ``stem_stride``, ``dropout``, ``input_shape`` (H, W, Cin),
``tau``, ``v_threshold``.

Run ``python benchmarks/torch_reference.py`` for a quick timing on random data.
"""

from __future__ import annotations

import argparse
import time
from typing import Any
from typing import Dict
from typing import List
from typing import Mapping
from typing import Optional
from typing import Sequence
from typing import Tuple

import numpy as np
from spikingjelly.clock_driven import functional
from spikingjelly.clock_driven import layer
from spikingjelly.clock_driven import neuron
from spikingjelly.clock_driven import surrogate
import torch
from torch import nn

__all__ = [
    "DEFAULT_CFG",
    "FORWARD_EDGES",
    "BACKWARD_EDGES",
    "build_network",
    "load_weights",
    "sahd_score",
    "score_candidates",
    "parse_genotype",
    "count_parameters",
]

DEFAULT_CFG: Dict[str, Any] = {
    "ops": ("zero", "skip", "conv1x1", "conv3x3", "avgpool3x3"),
    "width": 128,
    "cells_per_stage": 1,
    "timesteps": 5,
    "s2": 2,
    "hidden": 1024,
    "num_classes": 100,
    "vote_group": 5,
    "stem_stride": 1,
    "dropout": 0.5,
    "input_shape": (32, 32, 3),
    "tau": 4.0 / 3.0,
    "v_threshold": 1.0,
}

# Edge slots 0..5 are the forward edges (i -> j, i < j) in the reference's
# creation order; slots 6..11 are the backward edges (j -> i, j > i).
FORWARD_EDGES: Tuple[Tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
BACKWARD_EDGES: Tuple[Tuple[int, int], ...] = (
    (1, 0), (2, 0), (3, 0), (2, 1), (3, 1), (3, 2))
ALL_EDGES = FORWARD_EDGES + BACKWARD_EDGES

_BASE_OPS = {
    "zero": ("zero", 0),
    "skip": ("skip", 0),
    "conv1x1": ("conv", 1),
    "conv3x3": ("conv", 3),
    "avgpool3x3": ("avgpool", 3),
    "maxpool3x3": ("maxpool", 3),
}


def _full_cfg(cfg: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
  out = dict(DEFAULT_CFG)
  if cfg:
    unknown = set(cfg) - set(DEFAULT_CFG)
    if unknown:
      raise KeyError(f"unknown cfg keys: {sorted(unknown)}")
    out.update(cfg)
  return out


def _parse_op(op: Any, default_threshold: float) -> Tuple[str, int, float]:
  """Returns (kind, kernel, threshold) for an op name like 'conv3x3@0.5'."""
  name = str(getattr(op, "name", op))
  base, _, thr = name.partition("@")
  if base not in _BASE_OPS:
    raise ValueError(f"unknown op {name!r}")
  kind, kernel = _BASE_OPS[base]
  if thr and kind != "conv":
    raise ValueError(f"only conv ops take a threshold: {name!r}")
  return kind, kernel, float(thr) if thr else float(default_threshold)


def parse_genotype(genotype: str) -> np.ndarray:
  """'0303/0030/2002/0200' (or 4 space-separated rows, or 16 digits) -> 4x4."""
  s = str(genotype).strip()
  rows = s.replace(",", "/").replace(" ", "/").split("/")
  rows = [r for r in rows if r]
  if len(rows) == 1 and len(rows[0]) == 16:
    rows = [rows[0][i:i + 4] for i in range(0, 16, 4)]
  if len(rows) != 4 or any(len(r) != 4 or not r.isdigit() for r in rows):
    raise ValueError(f"bad genotype {genotype!r}: want 4 rows of 4 digits")
  return np.array([[int(c) for c in r] for r in rows], dtype=np.int64)


def _lif(tau: float, v_threshold: float) -> neuron.LIFNode:
  return neuron.LIFNode(tau=tau, v_threshold=v_threshold, v_reset=0.0,
                        surrogate_function=surrogate.ATan(),
                        detach_reset=True)


def _make_op(kind: str, kernel: int, threshold: float, channels: int,
             tau: float) -> nn.Module:
  if kind == "skip":
    return nn.Identity()
  if kind == "conv":
    return nn.Sequential(
        _lif(tau, threshold),
        nn.Conv2d(channels, channels, kernel, stride=1, padding=kernel // 2,
                  bias=False),
        nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1))
  if kind == "avgpool":
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=True)
  if kind == "maxpool":
    return nn.MaxPool2d(3, stride=1, padding=1)
  raise ValueError(kind)


class Cell(nn.Module):
  """One searched cell: 4 nodes, only the genotype's non-zero edges built.

  ``edges[str(e)]`` is the op on edge slot ``e`` (see ``ALL_EDGES``); zero
  edges have no module at all. Nodes hold analog sums. A node with no
  incoming non-zero edge holds zeros (the reference's zero op gives 0 * x),
  and ops leaving it still run, so their LIFs still count in the score.

  Without any non-zero backward edge this is the plain forward cell. With one
  it is the backward cell: states s0, s1, s2 (None = 0) are added to the value
  every edge leaving nodes 0..2 reads, updated each timestep from the old
  states, and cleared by ``reset()`` (called by ``functional.reset_net``).
  """

  def __init__(self, con_mat: np.ndarray, ops: Sequence[Any], channels: int,
               tau: float, v_threshold: float):
    super().__init__()
    nonzero = [o for o in ops if str(getattr(o, "name", o)) != "zero"]
    self.edges = nn.ModuleDict()
    for e, (a, b) in enumerate(ALL_EDGES):
      d = int(con_mat[a, b])  # forward: con_mat[i, j]; backward: con_mat[j, i]
      if d == 0:
        continue
      if d > len(nonzero):
        raise ValueError(f"digit {d} on edge {a}->{b} but only "
                         f"{len(nonzero)} non-zero ops in {tuple(ops)}")
      kind, kernel, thr = _parse_op(nonzero[d - 1], v_threshold)
      self.edges[str(e)] = _make_op(kind, kernel, thr, channels, tau)
    self.backward = any(str(e) in self.edges for e in range(6, 12))
    self.reset()

  def reset(self):
    self.s = [None, None, None]

  def _sum(self, terms):
    out = None
    for slot, inp in terms:
      key = str(slot)
      if key in self.edges:
        y = self.edges[key](inp)
        out = y if out is None else out + y
    return out

  def forward(self, x0: torch.Tensor) -> torch.Tensor:
    zeros = None

    def nz(v):
      nonlocal zeros
      if v is not None:
        return v
      if zeros is None:
        zeros = torch.zeros_like(x0)
      return zeros

    if not self.backward:
      x1 = nz(self._sum([(0, x0)]))
      x2 = nz(self._sum([(1, x0), (2, x1)]))
      return nz(self._sum([(3, x0), (4, x1), (5, x2)]))

    s0, s1, s2 = self.s
    a0 = x0 if s0 is None else x0 + s0
    x1 = nz(self._sum([(0, a0)]))
    a1 = x1 if s1 is None else x1 + s1
    x2 = nz(self._sum([(1, a0), (2, a1)]))
    a2 = x2 if s2 is None else x2 + s2
    x3 = nz(self._sum([(3, a0), (4, a1), (5, a2)]))
    # Backward slots: 6 (1->0), 7 (2->0), 8 (3->0), 9 (2->1), 10 (3->1),
    # 11 (3->2). All read the old states.
    self.s = [self._sum([(6, a1), (7, a2), (8, x3)]),
              self._sum([(9, a2), (10, x3)]),
              self._sum([(11, x3)])]
    return x3


class SNASNet(nn.Module):
  """Stem -> k cells (C) -> reduction -> k cells (2C) -> head, T timesteps."""

  def __init__(self, genotype: str, cfg: Mapping[str, Any]):
    super().__init__()
    cfg = _full_cfg(cfg)
    self.cfg = cfg
    self.genotype = str(genotype)
    con_mat = parse_genotype(genotype)
    h, w, cin = (int(v) for v in cfg["input_shape"])
    c = int(cfg["width"])
    k = int(cfg["cells_per_stage"])
    tau, thr = float(cfg["tau"]), float(cfg["v_threshold"])
    stride = int(cfg["stem_stride"])
    s2 = int(cfg["s2"])
    self.timesteps = int(cfg["timesteps"])
    self.num_classes = int(cfg["num_classes"])
    self.vote_group = int(cfg["vote_group"])

    self.stem = nn.Sequential(
        nn.Conv2d(cin, c, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c, eps=1e-5, momentum=0.1))
    self.cells = nn.ModuleList(
        [Cell(con_mat, cfg["ops"], c, tau, thr) for _ in range(k)] +
        [Cell(con_mat, cfg["ops"], 2 * c, tau, thr) for _ in range(k)])
    self.num_stage1 = k
    self.reduction = nn.Sequential(
        nn.BatchNorm2d(c, eps=1e-5, momentum=0.1),
        _lif(tau, thr),
        nn.Conv2d(c, 2 * c, 3, stride=1, padding=1, bias=False),
        nn.BatchNorm2d(2 * c, eps=1e-5, momentum=0.1),
        nn.AvgPool2d(2, 2))
    self.last_act = nn.Sequential(
        nn.BatchNorm2d(2 * c, eps=1e-5, momentum=0.1),
        _lif(tau, thr))
    self.pool2 = nn.AvgPool2d(s2, s2)
    h1, w1 = (h + 2 - 3) // stride + 1, (w + 2 - 3) // stride + 1
    self.head_hw = ((h1 // 2) // s2, (w1 // 2) // s2)
    self.head_channels = 2 * c
    feat = 2 * c * self.head_hw[0] * self.head_hw[1]
    self.classifier = nn.Sequential(
        layer.Dropout(float(cfg["dropout"])),
        nn.Linear(feat, int(cfg["hidden"]), bias=False),
        _lif(tau, thr),
        nn.Linear(int(cfg["hidden"]), self.num_classes * self.vote_group,
                  bias=True))
    self.vote = nn.AvgPool1d(self.vote_group, self.vote_group)
    self._init_weights()

  def _init_weights(self):
    for m in self.modules():
      if isinstance(m, nn.Conv2d):
        nn.init.kaiming_uniform_(m.weight, a=2)  # U(+-sqrt(1.2 / fan_in))
      elif isinstance(m, nn.BatchNorm2d):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
      elif isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, 0.0, 0.01)
        if m.bias is not None:
          nn.init.zeros_(m.bias)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    for cell in self.cells:  # fresh feedback states per input batch
      cell.reset()
    static_x = self.stem(x)
    acc = 0.0
    for _ in range(self.timesteps):
      y = static_x
      for cell in self.cells[:self.num_stage1]:
        y = cell(y)
      y = self.reduction(y)
      for cell in self.cells[self.num_stage1:]:
        y = cell(y)
      y = self.pool2(self.last_act(y))
      y = self.classifier(torch.flatten(y, 1))
      acc = acc + self.vote(y.unsqueeze(1)).squeeze(1)
    return acc / self.timesteps


def build_network(genotype: str, cfg: dict) -> torch.nn.Module:
  """Builds (and initialises, from torch's global RNG) one candidate network.

  ``genotype``: 4 rows of the reference ``con_mat`` joined by '/', e.g.
  ``"0303/0030/2002/0200"``. Upper triangle = forward edge ops, lower
  triangle ``con_mat[j, i]`` (j > i) = backward edge j->i ops. Digit 0 is the
  zero op (no edge); digit k >= 1 is the k-th non-zero op of ``cfg["ops"]``.
  Missing cfg keys take ``DEFAULT_CFG`` values. Returned in train mode.

  The genotype is built as given: edges into or out of dead nodes are not
  pruned (the reference prunes them in its sampler, before building), and
  their LIFs count in the score. Pass canonical (pruned) genotypes to compare
  with an implementation that prunes.
  """
  model = SNASNet(genotype, cfg)
  model.train()
  return model


def count_parameters(model: nn.Module) -> int:
  """Trainable parameters (conv, BN affine, linear); buffers excluded."""
  return int(sum(p.numel() for p in model.parameters()))


# ----------------------------------------------------------------------------
# Weights in the JAX library's layout.
# ----------------------------------------------------------------------------

def _flatten_params(params: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
  out = {}
  items = (params.items() if isinstance(params, Mapping)
           else enumerate(params))  # lists (e.g. per-cell) index as 0, 1, ...
  for k, v in items:
    key = f"{prefix}/{k}" if prefix else str(k)
    if isinstance(v, (Mapping, list, tuple)):
      out.update(_flatten_params(v, key))
    else:
      out[key] = v
  return out


def load_weights(model: nn.Module, params: dict) -> None:
  """Copies JAX-layout weights into ``model`` (a ``build_network`` result).

  ``params`` maps '/'-joined keys to arrays (nested dicts and lists, e.g. a
  list of per-cell dicts, are flattened with '/'):
  ``stem/conv/kernel``, ``stem/bn/{scale,bias}``;
  ``cells/{l}/{e}/{kernel,scale,bias}`` for conv edges only (cell l = 0..2k-1,
  stage-1 cells first; edge slot e as in ``ALL_EDGES``);
  ``reduction/bn_in/{scale,bias}``, ``reduction/conv/kernel``,
  ``reduction/bn_out/{scale,bias}``; ``head/bn/{scale,bias}``,
  ``head/fc1/kernel``, ``head/fc2/kernel``, ``head/fc2/bias``.
  Conv kernels are HWIO, dense kernels [in, out]; ``head/fc1/kernel`` rows are
  in (H, W, C) flatten order and are permuted to torch's (C, H, W). Raises on
  missing keys, unused keys and shape mismatches. BN running statistics are
  left alone (scoring uses batch statistics).
  """
  flat = {k: np.asarray(v) for k, v in _flatten_params(params).items()}
  used = set()

  def take(key, expected_shape):
    if key not in flat:
      raise KeyError(f"missing weight {key!r}")
    arr = flat[key]
    used.add(key)
    if tuple(arr.shape) != tuple(expected_shape):
      raise ValueError(f"{key}: shape {arr.shape}, expected {expected_shape}")
    return arr

  def set_(t: torch.Tensor, arr: np.ndarray):
    with torch.no_grad():
      t.copy_(torch.from_numpy(np.array(arr, dtype=np.float32, copy=True)))

  def conv(prefix, m: nn.Conv2d):
    o, i, kh, kw = m.weight.shape
    set_(m.weight, take(f"{prefix}/kernel", (kh, kw, i, o)).transpose(3, 2, 0, 1))

  def bn(prefix, m: nn.BatchNorm2d, scale="scale", bias="bias"):
    n = m.num_features
    set_(m.weight, take(f"{prefix}/{scale}", (n,)))
    set_(m.bias, take(f"{prefix}/{bias}", (n,)))

  conv("stem/conv", model.stem[0])
  bn("stem/bn", model.stem[1])
  for l, cell in enumerate(model.cells):
    for key, op in cell.edges.items():
      if isinstance(op, nn.Sequential):  # LIF -> conv -> BN
        conv(f"cells/{l}/{key}", op[1])
        bn(f"cells/{l}/{key}", op[2])
  bn("reduction/bn_in", model.reduction[0])
  conv("reduction/conv", model.reduction[2])
  bn("reduction/bn_out", model.reduction[3])
  bn("head/bn", model.last_act[0])

  fc1, fc2 = model.classifier[1], model.classifier[3]
  hh, ww = model.head_hw
  cc = model.head_channels
  hidden, feat = fc1.weight.shape
  k1 = take("head/fc1/kernel", (feat, hidden))
  k1 = k1.reshape(hh, ww, cc, hidden).transpose(2, 0, 1, 3).reshape(feat, hidden)
  set_(fc1.weight, k1.T)
  out_f, in_f = fc2.weight.shape
  set_(fc2.weight, take("head/fc2/kernel", (in_f, out_f)).T)
  set_(fc2.bias, take("head/fc2/bias", (out_f,)))

  unused = sorted(set(flat) - used)
  if unused:
    raise KeyError(f"weights not used by this network: {unused}")


# ----------------------------------------------------------------------------
# SAHD score.
# ----------------------------------------------------------------------------

def _sahd_kernel(out: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
  """K = N - 0.5 * H / (E + 1e-3) for one LIF output (SNASNet's SAHD kernel)."""
  x = (out.reshape(out.shape[0], -1) > 0).to(dtype)
  b, n = x.shape
  rate = (x.sum(1) / n).unsqueeze(1)                     # [B, 1]
  expected = (rate @ (1 - rate).t() + (1 - rate) @ rate.t()) * n
  hamming = x @ (1 - x).t() + (1 - x) @ x.t()
  # On the codes' device: a CPU constant minus a cuda tensor fails.
  return (torch.full((b, b), float(n), dtype=dtype, device=x.device)
          - 0.5 * hamming / (expected + 1e-3))


@torch.no_grad()
def sahd_score(model: nn.Module, image_batches: np.ndarray,
               kernel_dtype: torch.dtype = torch.float32) -> float:
  """SAHD score: mean over R batches of log|det(mean LIF kernel)|.

  ``image_batches``: [R, B, H, W, C] float32, NHWC, already normalised.
  For each batch: ``functional.reset_net`` (fresh LIF membranes, dropout
  mask and cell feedback states), forward hooks on every module whose type
  name contains "LIFNode", and for each hook call (one LIF at one timestep)
  the SAHD kernel K = N - 0.5 * H / (E + 1e-3) on the binarised output,
  computed in ``kernel_dtype`` (float32, like the reference) and accumulated
  in float64 numpy. score_r = slogdet(K_sum / count)[1]; returns the mean.

  Difference from the reference: the reference does not reset LIF membranes
  or the dropout mask between its repeats (repeat 2 starts from repeat 1's
  final state); here every batch starts from a fresh state. Runs in train
  mode (BN batch statistics per timestep, dropout active), no gradients.
  """
  batches = np.asarray(image_batches, dtype=np.float32)
  if batches.ndim != 5:
    raise ValueError(f"image_batches must be [R,B,H,W,C], got {batches.shape}")
  model.train()
  device = next(model.parameters()).device
  scores = []
  for r in range(batches.shape[0]):
    functional.reset_net(model)
    b = batches.shape[1]
    state = {"K": np.zeros((b, b), dtype=np.float64), "count": 0}

    def hook(module, inp, out):
      if isinstance(out, tuple):
        out = out[0]
      state["K"] += _sahd_kernel(out, kernel_dtype).cpu().numpy().astype(np.float64)
      state["count"] += 1

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if "LIFNode" in type(m).__name__]
    try:
      x = torch.from_numpy(batches[r]).permute(0, 3, 1, 2).contiguous().to(device)
      model(x)
    finally:
      for h in handles:
        h.remove()
    scores.append(np.linalg.slogdet(state["K"] / state["count"])[1])
  return float(np.mean(scores))


def score_candidates(genotypes: List[str], image_batches: np.ndarray,
                     cfg: dict, seed: int,
                     device: Optional[str] = None) -> np.ndarray:
  """The timed baseline: for each candidate i, seed torch with seed + i,
  build and initialise the network alone, and score it with ``sahd_score``.
  Returns float64 scores in candidate order."""
  scores = np.empty(len(genotypes), dtype=np.float64)
  for i, g in enumerate(genotypes):
    torch.manual_seed(seed + i)
    model = build_network(g, cfg)
    if device is not None:
      model = model.to(device)
    scores[i] = sahd_score(model, image_batches)
    del model
  return scores


# ----------------------------------------------------------------------------
# Quick timing.
# ----------------------------------------------------------------------------

def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--width", type=int, default=16)
  p.add_argument("--cells-per-stage", type=int, default=1)
  p.add_argument("--timesteps", type=int, default=5)
  p.add_argument("--s2", type=int, default=2)
  p.add_argument("--hidden", type=int, default=256)
  p.add_argument("--num-classes", type=int, default=10)
  p.add_argument("--vote-group", type=int, default=10)
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--repeats", type=int, default=2)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--no-warmup", action="store_true")
  args = p.parse_args(argv)

  cfg = dict(width=args.width, cells_per_stage=args.cells_per_stage,
             timesteps=args.timesteps, s2=args.s2, hidden=args.hidden,
             num_classes=args.num_classes, vote_group=args.vote_group,
             input_shape=(32, 32, 3))
  genotypes = ["0303/0030/2002/0200",   # released CIFAR10 (backward)
               "0302/0030/3003/0000",   # released CIFAR100 (backward)
               "0323/0034/0003/0000"]   # a forward-only cell
  rng = np.random.default_rng(args.seed)
  images = rng.standard_normal(
      (args.repeats, args.batch, 32, 32, 3)).astype(np.float32)
  print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"interop threads {torch.get_num_interop_threads()}")
  print(f"cfg {cfg}, batch {args.batch}, repeats {args.repeats}")
  if not args.no_warmup:
    score_candidates(genotypes[:1], images, cfg, args.seed)
  t0 = time.perf_counter()
  scores = score_candidates(genotypes, images, cfg, args.seed)
  dt = time.perf_counter() - t0
  for g, s in zip(genotypes, scores):
    print(f"  {g}: {s:.4f}")
  print(f"{len(genotypes)} candidates in {dt:.3f} s: "
        f"{len(genotypes) / dt:.3f} candidates/s")


if __name__ == "__main__":
  main()
