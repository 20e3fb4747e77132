"""Cell genotypes: the reference's 4x4 ``con_mat``, as numpy integer arrays.

A genotype is an integer array of shape ``[4, 4]`` (batches: ``[..., 4, 4]``).
Nodes: 0 is the cell input, 1 and 2 are intermediate, 3 is the output.

* Upper triangle ``g[i, j]`` (i < j): digit of the op on the forward edge i->j.
* Lower triangle ``g[j, i]`` (j > i): digit of the op on the backward edge j->i.
* Diagonal: always 0.

Digits follow :mod:`snnax_nas.ops`: 0 is the absent edge (``zero``), k >= 1 the
k-th non-zero op of the op set. The string form is the reference's four row
strings joined by ``/``, e.g. ``"0303/0030/2002/0200"``.

The validity filter and the sampler reproduce the reference's
``model_snn.py`` (:mod:`snnax_nas.genotype_space` holds the sampler). Bulk functions are vectorised over
leading batch axes, so the whole 9^6 backward space is handled in one go.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Sequence
from typing import Union

import numpy as np

from snnax_nas.ops import OpSet
from snnax_nas.ops import op_set

if TYPE_CHECKING:  # configs is above this module; only the annotation is needed
  from snnax_nas.configs import NetworkConfig

OpsLike = Union[str, Sequence[str], OpSet]

NUM_NODES = 4
# Reference creation orders (search_cell_snn.py): forward ops f_ij, then
# backward ops b_ji; a backward edge (j, i) is stored at g[j, i].
FORWARD_EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
BACKWARD_EDGES = ((1, 0), (2, 0), (3, 0), (2, 1), (3, 1), (3, 2))
EDGES = FORWARD_EDGES + BACKWARD_EDGES

# Dtype of genotypes this module creates: small, so the 531,441-genotype
# backward space is 8.5 MB.
GENOTYPE_DTYPE = np.int8

_EDGE_ROWS = np.array([e[0] for e in EDGES], dtype=np.intp)
_EDGE_COLS = np.array([e[1] for e in EDGES], dtype=np.intp)
_DIAG = np.arange(NUM_NODES)
# Row-major nibble shifts for genotype_key: hex(key) reads like the matrix.
_KEY_SHIFTS = (4 * (15 - np.arange(16, dtype=np.int64))).reshape(4, 4)


def _as_digit_array(g, name: str = "genotype") -> np.ndarray:
  """Checks that ``g`` is an integer array ``[..., 4, 4]`` and returns it."""
  arr = np.asarray(g)
  if arr.ndim < 2 or arr.shape[-2:] != (NUM_NODES, NUM_NODES):
    raise ValueError(
        f"{name} must have shape [..., 4, 4], got shape {arr.shape}")
  if arr.dtype.kind not in "iu":
    raise ValueError(f"{name} must have an integer dtype, got {arr.dtype}")
  return arr


def _pos(index) -> str:
  """Human-readable position of a flat batch index into [..., 4, 4]."""
  return "[" + ", ".join(str(int(i)) for i in index) + "]"


def check_genotypes(g, ops: OpsLike) -> np.ndarray:
  """Validates digits of genotypes against an op set.

  Args:
    g: integer array ``[..., 4, 4]``.
    ops: anything :func:`snnax_nas.ops.op_set` accepts.

  Returns:
    ``g`` as a numpy array (unchanged dtype), ``[..., 4, 4]``.

  Raises:
    ValueError: bad shape/dtype, a digit outside ``0..num_digits-1`` or a
      non-zero diagonal; the message names the first bad value and position.
  """
  ops = op_set(ops)
  arr = _as_digit_array(g)
  bad = (arr < 0) | (arr >= ops.num_digits)
  if bad.any():
    idx = np.argwhere(bad)[0]
    raise ValueError(
        f"digit {int(arr[tuple(idx)])} at position {_pos(idx)} is out of "
        f"range for op set {ops} (valid digits 0..{ops.num_digits - 1})")
  diag = arr[..., _DIAG, _DIAG]
  if (diag != 0).any():
    idx = np.argwhere(diag != 0)[0]
    raise ValueError(
        f"non-zero diagonal digit {int(diag[tuple(idx)])} at node "
        f"{int(idx[-1])} (batch index {_pos(idx[:-1])}); a node has no "
        "edge to itself")
  return arr


def parse_genotype(text: str, ops: OpsLike) -> np.ndarray:
  """Parses the reference string form of a genotype.

  Accepts four rows of four digits separated by ``/`` (or whitespace), e.g.
  ``"0303/0030/2002/0200"`` or ``"0303 0030 2002 0200"``, or 16 digits with no
  separators; surrounding whitespace is ignored.

  Args:
    text: the genotype string.
    ops: the op set the digits refer to (anything ``op_set`` accepts).

  Returns:
    ``int8`` array ``[4, 4]``.

  Raises:
    ValueError: wrong number of rows/digits, non-digit characters, a digit
      ``>= ops.num_digits`` or a non-zero diagonal (the message names it).
  """
  ops = op_set(ops)
  if not isinstance(text, str):
    raise ValueError(f"genotype must be a string, got {text!r}")
  s = text.strip()
  rows = s.replace("/", " ").split()
  if len(rows) == 1:
    # 16 digits, no separators.
    if len(rows[0]) != 16:
      raise ValueError(
          f"genotype {text!r}: expected 16 digits or four rows of four "
          f"separated by '/', got {len(rows[0])} characters")
    rows = [rows[0][k:k + 4] for k in range(0, 16, 4)]
  elif len(rows) != 4 or s.count("/") not in (0, 3):
    raise ValueError(
        f"genotype {text!r}: expected four rows of four digits separated by "
        f"'/' (or 16 digits), got {len(rows)} rows with {s.count('/')} '/'")
  for r, row in enumerate(rows):
    if len(row) != 4:
      raise ValueError(
          f"genotype {text!r}: row {r} {row!r} has {len(row)} characters, "
          "expected 4 digits")
    for c, ch in enumerate(row):
      # str.isdigit accepts e.g. superscripts; only ASCII 0-9 are digits here.
      if ch not in "0123456789":
        raise ValueError(
            f"genotype {text!r}: non-digit character {ch!r} at row {r}, "
            f"column {c}")
  g = np.array([[int(ch) for ch in row] for row in rows], dtype=GENOTYPE_DTYPE)
  bad = np.argwhere(g >= ops.num_digits)
  if len(bad):
    r, c = bad[0]
    raise ValueError(
        f"genotype {text!r}: digit {int(g[r, c])} at row {r}, column {c} is "
        f"out of range for op set {ops} (valid digits "
        f"0..{ops.num_digits - 1})")
  diag = np.flatnonzero(g[_DIAG, _DIAG])
  if len(diag):
    k = int(diag[0])
    raise ValueError(
        f"genotype {text!r}: non-zero diagonal digit {int(g[k, k])} at row "
        f"{k}, column {k}; a node has no edge to itself")
  return g


def format_genotypes(gs) -> list[str]:
  """Formats a batch of genotypes as reference strings.

  Args:
    gs: integer array ``[..., 4, 4]`` with digits 0..9; leading axes are
      flattened in C order.

  Returns:
    ``list[str]`` of length ``prod(gs.shape[:-2])``, e.g.
    ``["0303/0030/2002/0200", ...]``.

  Raises:
    ValueError: bad shape/dtype or a digit outside 0..9 (not writable as one
      character).
  """
  arr = _as_digit_array(gs).reshape(-1, NUM_NODES, NUM_NODES)
  bad = (arr < 0) | (arr > 9)
  if bad.any():
    idx = np.argwhere(bad)[0]
    raise ValueError(
        f"digit {int(arr[tuple(idx)])} at position {_pos(idx)} cannot be "
        "written as one character (digits 0..9 only)")
  # Build ASCII bytes [N, 4, 5] (4 digits + '/'), drop the last '/', then view
  # each row of 19 bytes as one fixed-width string: no per-genotype Python.
  n = arr.shape[0]
  buf = np.full((n, NUM_NODES, 5), ord("/"), dtype=np.uint8)
  buf[:, :, :4] = arr.astype(np.uint8) + ord("0")
  buf = np.ascontiguousarray(buf.reshape(n, 20)[:, :19])
  return buf.view("S19").ravel().astype(str).tolist()


def format_genotype(g) -> str:
  """Formats one genotype ``[4, 4]`` as ``"0303/0030/2002/0200"``.

  Raises:
    ValueError: shape is not ``[4, 4]`` or a digit is outside 0..9.
  """
  arr = _as_digit_array(g)
  if arr.shape != (NUM_NODES, NUM_NODES):
    raise ValueError(
        f"format_genotype takes one genotype of shape [4, 4], got shape "
        f"{arr.shape}; use format_genotypes for a batch")
  return format_genotypes(arr)[0]


def genotype_key(g) -> np.ndarray:
  """Packs each genotype into one ``int64`` (row-major base-16 digits).

  ``hex(key)`` reads like the matrix, e.g. ``0303/0030/2002/0200`` ->
  ``0x303003020020200``. Unique per matrix; used for dedupe and as a stable id.

  Args:
    g: integer array ``[..., 4, 4]``, digits 0..15, zero diagonal.

  Returns:
    ``int64`` array ``[...]``.

  Raises:
    ValueError: bad shape/dtype, a digit outside 0..15 or a non-zero diagonal
      (16 nibbles only fit an int64 because the leading one, g[0, 0], is 0).
  """
  arr = _as_digit_array(g)
  if ((arr < 0) | (arr > 15)).any():
    idx = np.argwhere((arr < 0) | (arr > 15))[0]
    raise ValueError(
        f"digit {int(arr[tuple(idx)])} at position {_pos(idx)} does not fit "
        "a genotype key (digits 0..15)")
  if (arr[..., _DIAG, _DIAG] != 0).any():
    idx = np.argwhere(arr[..., _DIAG, _DIAG] != 0)[0]
    raise ValueError(
        f"non-zero diagonal at node {int(idx[-1])} (batch index "
        f"{_pos(idx[:-1])}); not a genotype")
  # Pack two nibbles per byte and read the 8 bytes as one big-endian integer:
  # row-major digit order, and far cheaper than 16 shifted int64 adds.
  flat = arr.reshape(-1, 16).astype(np.uint8)
  packed = np.ascontiguousarray((flat[:, 0::2] << 4) | flat[:, 1::2])
  key = packed.view(">u8")[:, 0].astype(np.int64)
  return key.reshape(arr.shape[:-2])


def genotype_from_key(key) -> np.ndarray:
  """Inverse of :func:`genotype_key`.

  Args:
    key: integer array ``[...]`` (or a Python int).

  Returns:
    ``int8`` array ``[..., 4, 4]``.
  """
  k = np.asarray(key, dtype=np.int64)
  return ((k[..., None, None] >> _KEY_SHIFTS) & 15).astype(GENOTYPE_DTYPE)


def has_backward(g) -> np.ndarray:
  """Whether each genotype has a backward (feedback) edge.

  Args:
    g: integer array ``[..., 4, 4]``.

  Returns:
    ``bool`` array ``[...]``: any non-zero strictly-lower-triangle digit.
  """
  arr = _as_digit_array(g)
  lower = np.tril(np.ones((NUM_NODES, NUM_NODES), dtype=bool), k=-1)
  return ((arr != 0) & lower).any(axis=(-2, -1))


def _reachability(adj: np.ndarray) -> np.ndarray:
  """G = A + A^2 + A^3 + A^4 as booleans: paths of length 1..4.

  Args:
    adj: ``bool`` ``[..., 4, 4]``.

  Returns:
    ``bool`` ``[..., 4, 4]``; ``[i, j]`` True iff a path i -> j exists.
  """
  # Each row as a 4-bit mask of successors; a boolean matrix product is then
  # (P @ A)[i] = OR over k in P[i] of A[k], a few uint8 ops per batch element
  # (10x faster than broadcasting [..., 4, 4, 4] booleans).
  bits = np.uint8(1) << np.arange(NUM_NODES, dtype=np.uint8)
  rows = (adj.astype(np.uint8) * bits).sum(axis=-1, dtype=np.uint8)
  zero = np.zeros((), dtype=np.uint8)
  power = rows
  reach = rows.copy()
  for _ in range(NUM_NODES - 1):
    nxt = np.zeros_like(rows)
    for k in range(NUM_NODES):
      nxt |= np.where((power & bits[k]) != 0, rows[..., k:k + 1], zero)
    power = nxt
    reach |= nxt
  return (reach[..., :, None] & bits) != 0


def prune(g) -> np.ndarray:
  """Dead-node pruning of the reference's validity filter.

  Reachability G is computed once on the raw matrix (paths may use backward
  edges). Nodes 0..2 with no path to node 3, and nodes 1..3 with no path from
  node 0, get their row and column zeroed; both conditions use the same raw G,
  as the reference does.

  Args:
    g: integer array ``[..., 4, 4]``.

  Returns:
    Array of the same shape and dtype as ``g``.
  """
  arr = _as_digit_array(g)
  reach = _reachability(arr != 0)
  to_out = reach[..., :, 3].copy()
  to_out[..., 3] = True  # the output node is never dropped for this reason
  from_in = reach[..., 0, :].copy()
  from_in[..., 0] = True  # nor is the input node
  alive = to_out & from_in
  keep = alive[..., :, None] & alive[..., None, :]
  return np.where(keep, arr, np.zeros((), dtype=arr.dtype))


def is_valid(g) -> np.ndarray:
  """The reference acceptance rule: the pruned matrix keeps edge 0->3.

  (Equivalent to ``g[..., 0, 3] != 0``: a raw 0->3 edge makes both end nodes
  survive pruning.)

  Args:
    g: integer array ``[..., 4, 4]``.

  Returns:
    ``bool`` array ``[...]``.
  """
  return prune(g)[..., 0, 3] != 0


def canonical(g) -> np.ndarray:
  """Canonical form: the pruned matrix, so equivalent cells compare equal.

  Args:
    g: integer array ``[..., 4, 4]``.

  Returns:
    Same shape and dtype as ``g``. Idempotent.
  """
  return prune(g)


def unique_canonical(gs) -> np.ndarray:
  """Canonical forms of ``gs``, deduplicated, in order of first appearance.

  Does not filter by validity; pass ``gs[is_valid(gs)]`` for that.

  Args:
    gs: integer array ``[..., 4, 4]`` (leading axes flattened in C order).

  Returns:
    Array ``[M, 4, 4]`` with the dtype of ``gs``.
  """
  can = canonical(gs).reshape(-1, NUM_NODES, NUM_NODES)
  _, first = np.unique(genotype_key(can), return_index=True)
  first.sort()
  return can[first]


def first_occurrences(genotypes) -> np.ndarray:
  """For each network, the index of the first network with the same
  canonical cells, so duplicates are scored once and share that score.

  Args:
    genotypes: integer ``[N, 4, 4]`` (one genotype per network) or
      ``[N, L, 4, 4]`` (per-cell genotypes), canonical or not.

  Returns:
    ``int64 [N]``: ``first[i] == i`` for the first of its kind, else the
    index of that first one (``first[i] < i``).
  """
  can = canonical(np.asarray(genotypes))
  keys = genotype_key(can).reshape(len(can), -1)
  _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
  return first[inverse.reshape(-1)].astype(np.int64)


def cell_genotypes(genotypes, ops: OpsLike, num_cells: int, *,
                   allow_backward: bool) -> np.ndarray:
  """The one genotype normaliser: one canonical genotype per cell of each network.

  Args:
    genotypes: a batch of networks, as
      * a sequence of genotype strings, one per network: one genotype for all
        cells (``"0303/0030/2002/0200"``) or ``num_cells`` genotypes joined by
        ``|`` (``"0303/..|0302/.."``), or
      * an integer array ``[N, 4, 4]`` (one genotype for all cells of each
        network) or ``[N, num_cells, 4, 4]`` (one per cell).
    ops: the op set the digits refer to (anything ``op_set`` accepts).
    num_cells: cells per network.
    allow_backward: whether backward (feedback) edges are allowed.

  Returns:
    ``int8`` array ``[N, num_cells, 4, 4]`` of canonical (pruned) genotypes;
    a one-genotype network is broadcast to all its cells.

  Raises:
    ValueError: a bare string (pass a list), a bad shape, a wrong number of
      cells, a digit out of range for ``ops``, a non-zero diagonal, or a
      backward edge when ``allow_backward`` is False; the message names it.
  """
  ops = op_set(ops)
  if isinstance(genotypes, str):
    raise ValueError(f"expected a list of genotypes, got the string {genotypes!r}; "
                     "wrap one network's genotype in a list")
  if len(genotypes) and isinstance(genotypes[0], str):
    rows = []
    for text in genotypes:
      cells = [parse_genotype(t, ops) for t in text.split("|")]
      if len(cells) not in (1, num_cells):
        raise ValueError(f"genotype {text!r} has {len(cells)} cells; expected 1 or "
                         f"{num_cells}")
      rows.append(np.broadcast_to(np.stack(cells), (num_cells, NUM_NODES, NUM_NODES)))
    g = (np.stack(rows) if rows
         else np.zeros((0, num_cells, NUM_NODES, NUM_NODES), GENOTYPE_DTYPE))
  else:
    g = np.asarray(genotypes)
    if g.size == 0 and g.ndim < 3:  # an empty list
      g = np.zeros((0, num_cells, NUM_NODES, NUM_NODES), GENOTYPE_DTYPE)
    if g.ndim == 3:
      g = np.broadcast_to(g[:, None], (g.shape[0], num_cells) + g.shape[1:])
    if g.ndim != 4 or g.shape[1:] != (num_cells, NUM_NODES, NUM_NODES):
      raise ValueError(f"genotypes of shape {g.shape}; expected [N, 4, 4] or "
                       f"[N, {num_cells}, 4, 4]")
    check_genotypes(g, ops)
  g = canonical(np.ascontiguousarray(g, GENOTYPE_DTYPE))
  if not allow_backward and has_backward(g).any():
    n = int(np.argwhere(has_backward(g))[0][0])
    raise ValueError(f"genotype {n} ({'|'.join(format_genotypes(g[n]))}) has backward "
                     "edges; use a config with backward=True")
  return g


def as_genotypes(genotypes, cfg: NetworkConfig) -> np.ndarray:
  """:func:`cell_genotypes` for the networks of ``cfg``: canonical int8
  [N, L, 4, 4] from a list of genotype strings (``|`` between per-cell
  genotypes) or an int array [N, 4, 4] / [N, L, 4, 4]; backward edges only
  where ``cfg.backward``. The form the scorer, searches and launchers take."""
  return cell_genotypes(genotypes, cfg.ops, cfg.num_cells, allow_backward=cfg.backward)


def arch_of(genotypes: np.ndarray, cfg: NetworkConfig) -> np.ndarray:
  """One-hot op weights [N, L, E, O] of canonical genotypes [N, L, 4, 4]
  (:func:`arch_weights` over the ``cfg.num_edges`` edge slots of ``cfg``):
  the architecture as the supernet scorer reads it."""
  return arch_weights(genotypes, cfg.ops)[..., :cfg.num_edges, :]


def arch_weights(gs, ops: OpsLike) -> np.ndarray:
  """One-hot architecture weights of genotypes.

  Args:
    gs: integer array ``[..., 4, 4]``, digits valid for ``ops``.
    ops: the op set (anything ``op_set`` accepts).

  Returns:
    ``float32`` array ``[..., 12, O]``, ``O = len(ops.nonzero_ops)``; rows are
    ``EDGES`` (forward then backward edges, reference orders), column k is
    digit k+1; a zero digit gives an all-zero row.

  Raises:
    ValueError: bad shape/dtype, out-of-range digit or non-zero diagonal.
  """
  ops = op_set(ops)
  arr = check_genotypes(gs, ops)
  digits = arr[..., _EDGE_ROWS, _EDGE_COLS]
  cols = np.arange(1, ops.num_digits)
  return (digits[..., None] == cols).astype(np.float32)


def genotypes_from_arch_weights(w) -> np.ndarray:
  """Inverse of :func:`arch_weights` for one-hot weights.

  Args:
    w: array ``[..., 12, O]`` (numpy or jax); rows are ``EDGES``.

  Returns:
    ``int8`` array ``[..., 4, 4]``: per edge, argmax + 1 where the row has a
    non-zero entry, else 0.

  Raises:
    ValueError: wrong shape, or ``O + 1`` digits do not fit int8.
  """
  w = np.asarray(w)
  if w.ndim < 2 or w.shape[-2] != len(EDGES):
    raise ValueError(
        f"arch weights must have shape [..., {len(EDGES)}, O], got {w.shape}")
  if w.shape[-1] + 1 > np.iinfo(GENOTYPE_DTYPE).max:
    raise ValueError(f"too many ops for a genotype digit: {w.shape[-1]}")
  nonzero = (w != 0).any(axis=-1)
  digits = np.where(nonzero, np.argmax(w, axis=-1) + 1, 0)
  g = np.zeros(w.shape[:-2] + (NUM_NODES, NUM_NODES), dtype=GENOTYPE_DTYPE)
  g[..., _EDGE_ROWS, _EDGE_COLS] = digits
  return g
