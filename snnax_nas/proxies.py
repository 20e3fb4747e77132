"""Training-free proxies beyond spike-code kernels: gradients at initialisation
and analytic size and structure baselines.

Two families, both scored through :func:`snnax_nas.score.score_candidates`
like the SAHD kernels (the same ``kernel=`` names, see
:data:`snnax_nas.kernels.KERNELS`):

* **Gradient proxies** (:data:`GRADIENT_KERNELS`), computed in the one-compile
  batched scorer from one forward and one or two backward passes per image
  batch through the LIF surrogate gradient (arctan, as training uses):

  - ``grad_norm``: ``log ||dL/dtheta||_2`` over every weight of the network
    (weights of ops the architecture does not use get zero gradient);
  - ``snip``: ``log sum |theta * dL/dtheta|``, SNIP's connection saliency
    (Lee et al., ICLR 2019) summed over the network;
  - ``jacob_cov``: NASWOT's first score (Mellor et al., 2021) on the input
    Jacobian ``J_i = d(sum_c z_ic)/dx_i`` [B, H*W*C]: with ``lambda`` the
    eigenvalues of the row correlation of ``J``,
    ``-sum(log(lambda + 1e-5) + 1 / (lambda + 1e-5))``.

  ``L`` is the cross-entropy of the logits ``z`` [B, C] against fixed balanced
  labels ``y_b = b mod C`` (:func:`proxy_loss`), so a proxy depends on the
  images and the architecture only. Scores are means over the R image
  batches (and D weight draws).

* **Analytic proxies** (:data:`ANALYTIC_KERNELS`), exact functions of the
  architecture computed on the host at no measurable cost, the baselines a
  training-free score has to beat:

  - ``params``: the exact parameter count of the pruned network
    (:func:`snnax_nas.memory.param_count`);
  - ``flops``: the FLOPs of one image's forward pass at the scoring
    resolution, ``T`` timesteps (:func:`snnax_nas.flops.candidate_flops` at
    one image; the probes' Gram matmuls are excluded);
  - ``conv_depth``: the number of LIF->conv edges on the longest forward path
    from a cell's input node 0 to its output node 3, summed over the cells
    (skip and pooling edges add no depth; a cell whose output is not reached
    adds 0). A structural baseline, not a learned rule.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from snnax_nas import flops as flops_lib
from snnax_nas import genotype as genotype_lib
from snnax_nas import memory
from snnax_nas import network as network_lib

GRADIENT_KERNELS = ("grad_norm", "snip", "jacob_cov")
ANALYTIC_KERNELS = ("params", "flops", "conv_depth")
JACOB_COV_EPS = 1e-5


# ----------------------------------------------------------------------------
# Gradient proxies (inside the compiled scorer).

def proxy_loss(logits: jax.Array) -> jax.Array:
  """Cross-entropy of logits [B, C] against fixed balanced labels
  ``y_b = b mod C`` (scalar float32).

  The scorer has images but no labels, and the proxies must depend on the
  architecture and the images only. A label-free target such as the uniform
  distribution has zero gradient wherever the logits are all equal, which is
  what a network whose last LIF is silent at initialisation outputs; a fixed
  one-hot target keeps ``softmax(z) - onehot(y)`` non-zero, and the surrogate
  gradient carries it through silent LIFs.
  """
  labels = jnp.arange(logits.shape[0]) % logits.shape[-1]
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))


def gradient_scores(params, grads, input_grads: Optional[jax.Array],
                    kernels: tuple[str, ...]):
  """Per-batch gradient proxy scores.

  Args:
    params: the network weights (any pytree).
    grads: ``dL/dparams`` of :func:`proxy_loss`, same tree.
    input_grads: ``d(sum z)/dx`` [B, ...] (needed by ``jacob_cov`` only).
    kernels: names of :data:`GRADIENT_KERNELS`, in output order.

  Returns:
    ``(scores [K], singular [K])`` float32 / bool; a non-finite score (all
    gradients zero, a degenerate Jacobian) is ``-inf`` and flagged.
  """
  leaves = jax.tree.leaves(grads)
  out = []
  for k in kernels:
    if k == "grad_norm":
      s = 0.5 * jnp.log(sum(jnp.sum(jnp.square(g)) for g in leaves))
    elif k == "snip":
      s = jnp.log(sum(jnp.sum(jnp.abs(p * g)) for p, g in
                      zip(jax.tree.leaves(params), leaves)))
    elif k == "jacob_cov":
      s = jacob_cov_score(input_grads)
    else:
      raise ValueError(f"not a gradient kernel: {k!r}")
    out.append(s)
  scores = jnp.stack(out).astype(jnp.float32)
  bad = ~jnp.isfinite(scores)
  return jnp.where(bad, -jnp.inf, scores), bad


@jax.custom_batching.sequential_vmap
def _eigvalsh(c: jax.Array) -> jax.Array:
  """Eigenvalues of a symmetric matrix, one LAPACK call per matrix under vmap
  (a batched LAPACK call can deadlock XLA:CPU's pool, see
  :func:`snnax_nas.kernels.kernel_logdet`)."""
  return jnp.linalg.eigvalsh(c)


def jacob_cov_score(input_grads: jax.Array) -> jax.Array:
  """NASWOT's Jacobian-covariance score of input gradients [B, ...] (float32)."""
  b = input_grads.shape[0]
  j = input_grads.reshape(b, -1).astype(jnp.float32)
  j = j - jnp.mean(j, axis=1, keepdims=True)
  z = j * jax.lax.rsqrt(jnp.sum(j * j, axis=1, keepdims=True) + 1e-30)
  lam = _eigvalsh(jnp.dot(z, z.T, precision=jax.lax.Precision.HIGHEST))
  return -jnp.sum(jnp.log(lam + JACOB_COV_EPS) + 1.0 / (lam + JACOB_COV_EPS))


def jacob_cov_reference(input_grads: np.ndarray) -> float:
  """Float64 host reference of :func:`jacob_cov_score`."""
  j = np.asarray(input_grads, np.float64).reshape(len(input_grads), -1)
  lam = np.linalg.eigvalsh(np.corrcoef(j))
  return float(-np.sum(np.log(lam + JACOB_COV_EPS) + 1.0 / (lam + JACOB_COV_EPS)))


# ----------------------------------------------------------------------------
# Analytic proxies (host).

def conv_depth(genotypes, cfg: network_lib.NetworkConfig) -> np.ndarray:
  """LIF->conv edges on the longest forward 0 -> 3 path, summed over cells.

  Args:
    genotypes: as :func:`snnax_nas.genotype.as_genotypes` takes them.
    cfg: the network config (its op set says which digits are convs).

  Returns:
    int64 [N].
  """
  cells = genotype_lib.as_genotypes(genotypes, cfg)  # canonical [N, L, 4, 4]
  is_conv = np.array([False] + [op.kind == "conv" for op in cfg.ops.nonzero_ops])
  # depth[..., j]: most convs on a path 0 -> j, -1 where j is unreached.
  depth = np.full(cells.shape[:-2] + (genotype_lib.NUM_NODES,), -1, np.int64)
  depth[..., 0] = 0
  for j in range(1, genotype_lib.NUM_NODES):
    for i in range(j):
      digit = cells[..., i, j].astype(np.int64)
      via = np.where((digit > 0) & (depth[..., i] >= 0), depth[..., i] + is_conv[digit], -1)
      depth[..., j] = np.maximum(depth[..., j], via)
  return np.maximum(depth[..., -1], 0).sum(-1)


def analytic_scores(kernels: tuple[str, ...], cfg: network_lib.NetworkConfig, *,
                    genotypes=None, arch=None) -> np.ndarray:
  """Analytic proxies of candidates, float64 [N, K] in the order of ``kernels``.

  Args:
    kernels: names of :data:`ANALYTIC_KERNELS`.
    cfg: the network config (scoring resolution and T for ``flops``).
    genotypes: the candidates; or
    arch: one-hot op weights [N, L, E, O] (``params`` and ``conv_depth`` need
      one op per edge: multi-hot supernet weights are refused).

  Raises:
    ValueError: an unknown name, or multi-hot ``arch`` for a structural proxy.
  """
  if genotypes is None:
    arch = np.asarray(arch)
    if any(k != "flops" for k in kernels) and (np.count_nonzero(arch, axis=-1) > 1).any():
      raise ValueError("the params and conv_depth proxies need one op per edge; got "
                       "multi-hot architecture weights (a supernet)")
    w = np.zeros(arch.shape[:-2] + (len(genotype_lib.EDGES), arch.shape[-1]), arch.dtype)
    w[..., :arch.shape[-2], :] = arch
    genotypes = genotype_lib.genotypes_from_arch_weights(w)
  cells = genotype_lib.as_genotypes(genotypes, cfg)
  cols = []
  for k in kernels:
    if k == "params":
      cols.append(memory.param_count(cells, cfg))
    elif k == "flops":
      a = genotype_lib.arch_of(cells, cfg) if arch is None else arch
      count = flops_lib.candidate_flops(a, cfg, batch=1, repeats=1)
      cols.append(count.useful - _gram_flops(a, cfg))
    elif k == "conv_depth":
      cols.append(conv_depth(cells, cfg))
    else:
      raise ValueError(f"not an analytic kernel: {k!r}")
  return np.stack([np.asarray(c, np.float64) for c in cols], axis=-1).reshape(len(cells), -1)


def _gram_flops(arch, cfg) -> np.ndarray:
  """The probes' Gram FLOPs inside ``candidate_flops(..., batch=1).useful``:
  the difference of the counts with and without one image's Grams is
  ``2 * N`` per LIF call, so it is taken by evaluating at batch 1 and 2."""
  one = flops_lib.candidate_flops(arch, cfg, batch=1, repeats=1).useful
  two = flops_lib.candidate_flops(arch, cfg, batch=2, repeats=1).useful
  # useful(B) = B * forward + B^2 * gram  =>  gram = (useful(2) - 2 useful(1)) / 2.
  return (two - 2.0 * one) / 2.0
