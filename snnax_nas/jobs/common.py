"""What every job shares: a mutable copy of its config, value checks that
raise one-line ``ValueError``s naming the field, claiming the workdir,
genotype files, dataset options, progress lines.

The messages name a field by its ``--config.DOTTED.NAME``, the form both a
launcher user and a script user (``config.DOTTED.NAME``) recognise.
"""

from __future__ import annotations

import copy
import sys
import time
from typing import Any

from absl import logging
from ml_collections import config_dict

from snnax_nas import configs
from snnax_nas import genotype as genotype_lib
from snnax_nas import kernels as kernel_lib
from snnax_nas import workdir as workdir_lib


def own_config(config: Any) -> config_dict.ConfigDict:
  """A mutable copy of a job config (a ``ConfigDict``, a ``FrozenConfigDict``
  such as :attr:`snnax_nas.workdir.Run.config`, or a dict), so that a job
  resolving its defaults never changes the caller's object."""
  if isinstance(config, config_dict.FrozenConfigDict):
    return config.as_configdict()
  if isinstance(config, config_dict.ConfigDict):
    return copy.deepcopy(config)
  return config_dict.ConfigDict(dict(config))


# Fields whose least value is above 1, checked before anything is written.
_LEAST = {"scoring.batch_size": kernel_lib.MIN_BATCH_SIZE}


def check_positive(config, *dotted: str) -> None:
  """Raises ValueError unless each named config field is >= 1 (or the
  field's larger least value, e.g. 2 images per scoring batch)."""
  for name in dotted:
    value = config
    for part in name.split("."):
      value = value[part]
    least = _LEAST.get(name, 1)
    if value is None or value < least:
      raise ValueError(f"--config.{name}={value} must be >= {least}")


def input_files(config) -> dict[str, str]:
  """``{label: path}`` of the local input files of a job config (a genotype
  file, an npz dataset): their sha256 goes into the workdir record."""
  files = workdir_lib.dataset_files(config.dataset)
  if config.get("genotypes"):
    files["genotypes"] = config.genotypes
  return files


def claim_workdir(job: str, config, network: configs.NetworkConfig, workdir: str,
                  write: bool = True) -> bool:
  """Claims ``workdir`` for this run (:func:`snnax_nas.workdir.claim`).

  Returns:
    True when the workdir was new to this run.

  Raises:
    ValueError: the workdir holds another run or cannot be written.
  """
  record = workdir_lib.make_record(job, config, network, input_files(config))
  try:
    return workdir_lib.claim(workdir, record, write=write)
  except OSError as e:
    raise ValueError(f"workdir {workdir!r}: {e.strerror}") from None


def read_genotype_file(path: str, ops, backward: bool) -> list[str]:
  """Genotype strings of a file, one per line (``|`` between per-cell
  genotypes; blank lines and ``#`` comments skipped).

  Args:
    path: the file (``config.genotypes``).
    ops: the op set the digits index.
    backward: whether the network has backward cells
      (``config.network.backward``).

  Raises:
    ValueError: the file cannot be read, holds no genotype, holds a malformed
      genotype, or (``backward`` False) a genotype with a backward edge: the
      message names the line.
  """
  try:
    # utf-8-sig: a byte-order mark (Windows editors) is not part of the first genotype.
    with open(path, encoding="utf-8-sig") as f:
      lines = [ln.split("#")[0].strip() for ln in f]
  except OSError as e:
    raise ValueError(f"cannot read --config.genotypes {path!r}: {e.strerror}") from None
  except UnicodeDecodeError as e:
    raise ValueError(f"--config.genotypes {path!r} is not UTF-8 text (byte "
                     f"{e.object[e.start]:#04x} at offset {e.start}); genotype files hold "
                     "lines like 0303/0030/0003/0000") from None
  numbered = [(n, ln) for n, ln in enumerate(lines, 1) if ln]
  if not numbered:
    raise ValueError(f"--config.genotypes {path!r} holds no genotype")
  # Malformed lines first: they are wrong whatever the network.
  for allow_backward in (True, backward):
    for n, text in numbered:
      try:
        check_direction(text, ops, allow_backward)
      except ValueError as e:
        raise ValueError(f"--config.genotypes {path!r} line {n}: {e}") from None
  return [text for _, text in numbered]


def check_direction(text: str, ops, backward: bool) -> None:
  """Checks a genotype string (``|`` between per-cell genotypes): each cell
  parses, and without backward cells none has a backward edge.

  A backward edge needs backward cells, and backward cells change the
  network (and the score) of every genotype, so they are never switched on
  behind the user's back: ``--config.network.backward=true`` says so.

  Raises:
    ValueError: a malformed cell, or a backward edge while ``backward`` is
      False; the message names the genotype and the way out.
  """
  for cell in text.split("|"):
    g = genotype_lib.parse_genotype(cell, ops)  # raises naming the bad string
    if not backward and genotype_lib.has_backward(g).any():
      raise ValueError(
          f"{text!r} has a backward edge (a non-zero digit below the diagonal), which needs "
          "backward cells; add --config.network.backward=true (every genotype is then built "
          "with backward cells) or remove it")


def dataset_options(config, timesteps: int) -> dict:
  """Dataset options of a job config: for ``dvs128_gesture``, the events are
  binned into ``n_time_bins`` frames (the config's ``dvs.frames`` when it has
  a ``dvs`` section, else ``timesteps``, the network's T) at ``dvs.size``;
  no options for other datasets.

  A network of T timesteps is fed exactly T frames: frames loaded at another
  count are summed into T groups (:func:`snnax_nas.data.bin_frames`), never
  cut. A ``dvs`` field changed from its default with another dataset is
  refused (``ValueError``).
  """
  dvs = config.get("dvs")
  if config.dataset != "dvs128_gesture":
    from snnax_nas.configs import train as train_config  # noqa: PLC0415
    changed = {k: v for k, v in (dvs or {}).items() if train_config.DVS_DEFAULTS.get(k) != v}
    if changed:  # the binning of event data: on images it would be ignored
      field, value = next(iter(changed.items()))
      raise ValueError(f"--config.dvs.{field}={value} bins event data (dvs128_gesture); "
                       f"--config.dataset={config.dataset} is not event data")
    return {}
  if dvs is None:
    return {"n_time_bins": int(timesteps)}
  return {"n_time_bins": dvs.frames, "size": dvs.size}


def refuse_unread_network_fields(config, job: str) -> None:
  """Refuses ``network.dropout`` changed from its default in a job that
  only scores (``score``, ``groundtruth``): a score at initialisation runs
  the network without dropout, and nothing there trains (the searches keep
  it: ``launch.train --config.from_search`` trains with their network
  section).

  Raises:
    ValueError: one line naming the field and value.
  """
  default = configs.NetworkConfig().dropout
  if config.network.get("dropout", default) != default:
    raise ValueError(f"--config.network.dropout={config.network.dropout}: the {job} job scores "
                     "at initialisation, without dropout, and trains nothing; leave it unset")


def scorer_options(section, cfg: configs.NetworkConfig, *, arch=None):
  """The :class:`snnax_nas.search.ScorerOptions` of a config's ``scoring``
  section, with the chunk layout resolved (:func:`snnax_nas.autotune.resolve_layout`:
  given, or chosen for this machine and ``arch``, the candidates' one-hot op
  weights, or a sample of the space) and logged.

  Raises:
    ValueError: a bad field, named ``--config.scoring.FIELD=VALUE``.
  """
  from snnax_nas import autotune  # noqa: PLC0415 (only the scoring jobs need it)
  from snnax_nas import search  # noqa: PLC0415
  try:
    args = autotune.scoring_options(section)  # kernel, draws, layout, conv dtype
  except ValueError as e:
    raise ValueError(f"--config.{e}") from None
  layout = autotune.resolve_layout(cfg, section.batch_size, section.repeats,
                                   chunk_size=args["chunk_size"],
                                   map_batch_size=args["map_batch_size"], arch=arch,
                                   draws=args["draws"], time_batched=args["time_batched"])
  logging.info("scorer layout: %s", layout.reason)
  return search.ScorerOptions(kernel=args["kernel"], chunk_size=layout.chunk_size,
                              map_batch_size=layout.map_batch_size, draws=args["draws"],
                              conv_dtype=args["conv_dtype"],
                              common_weights=args["common_weights"],
                              time_batched=args["time_batched"])


def warn(message: str) -> None:
  """One ``warning:`` line on stderr (a fact the user must see, e.g. a test
  accuracy measured on training data)."""
  print(f"warning: {message}", file=sys.stderr)


def check_training(training, *positive: str) -> None:
  """Raises ValueError unless the named fields of a config's ``training``
  section are >= 1, ``lr`` is > 0 and ``loss`` is a known loss."""
  from snnax_nas import train  # noqa: PLC0415 (not every job needs the training stack)
  for name in positive:
    value = training[name]
    if value is None or value < 1:
      raise ValueError(f"--config.training.{name}={value} must be >= 1")
  if not training.lr > 0:
    raise ValueError(f"--config.training.lr={training.lr} must be > 0")
  if training.loss not in train.LOSSES:
    raise ValueError(f"unknown --config.training.loss {training.loss!r}; choose from "
                     f"{', '.join(train.LOSSES)}")


def check_example_limits(training) -> None:
  """Raises ValueError naming ``training.max_{train,test}_examples`` unless
  each is None (all) or >= 1; called before any data is loaded."""
  from snnax_nas import data as data_lib  # noqa: PLC0415 (only the training jobs need it)
  for split in ("train", "test"):
    n = training[f"max_{split}_examples"]
    try:
      data_lib.first_examples([], [], n)
    except ValueError as e:
      raise ValueError(f"--config.training.max_{split}_examples={n}: {e}") from None


class Progress:
  """Periodic progress lines with rate and ETA for ``score_candidates``."""

  def __init__(self, what: str, every_seconds: float = 10.0, warm: bool = False):
    """``warm``: the scorer is already compiled (a later search step), so the
    first chunk is timed like any other instead of being reported apart."""
    self._time = time.perf_counter
    self.what, self.every = what, every_seconds
    self.start = self.last = self._time()
    self.first_done = None
    if warm:
      self.first_done, self.t_first = 0, self.start

  def __call__(self, done: int, total: int):
    now = self._time()
    if self.first_done is None:  # the first chunk includes compilation
      self.first_done, self.t_first = done, now
      logging.info("%s: %d/%d (first chunk incl. compile: %.1fs)", self.what, done, total,
                   now - self.start)
      return
    if now - self.last < self.every and done < total:
      return
    self.last = now
    rate = (done - self.first_done) / max(now - self.t_first, 1e-9)
    eta = (total - done) / rate if rate > 0 else float("inf")
    logging.info("%s: %d/%d  %.2f cand/s  ETA %.0fs", self.what, done, total, rate, eta)
