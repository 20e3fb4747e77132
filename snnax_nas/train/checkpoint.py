"""Orbax checkpoints of a training run, and restoring them anywhere.

:func:`snnax_nas.train.train_and_evaluate` (``launch.train``) saves one
checkpoint per epoch under ``WORKDIR/checkpoints/<epoch>``: the
:class:`~snnax_nas.train.steps.TrainState` (item ``state``) and a JSON item
``meta`` (``fingerprint``, ``history``, ``sessions``). The state is saved as
the run holds it: replicated over the run's device mesh, and orbax records
that topology. A plain ``CheckpointManager.restore`` without a target then
fails with "Topology mismatch" in a process with another device count;
:func:`restore_checkpoint` restores onto this process's devices instead.

The state's ``params`` and ``batch_stats`` are the variables of the flax
Module :class:`snnax_nas.models.SpikingNetwork` (float32 weights, also after
quantisation-aware training). Restoring a launcher checkpoint (any device
count)::

  from snnax_nas import train, workdir
  run = workdir.load_run("runs/train")        # the run's network and genotype
  cfg, genotype = run.network, run.genotypes[0]
  opt = train.make_optimizer(lr, epochs, steps_per_epoch, momentum, weight_decay)
  template = train.create_train_state(jax.random.PRNGKey(0), cfg, genotype, opt)
  state, meta = train.restore_checkpoint("runs/train", template)   # latest epoch
  model = train.network_model(cfg, genotype)
  logits = model.apply({"params": state.params, "batch_stats": state.batch_stats}, x,
                       train=False)

(:func:`snnax_nas.evaluate.evaluate_run` does this, and quantises.)

The template only gives the tree structure, shapes and dtypes (its values are
ignored), so any key works; the optimiser must have the run's structure (same
``momentum`` on/off and ``weight_decay`` on/off; the learning-rate numbers do
not matter). Without a template the state comes back as nested dicts
(``state["params"]``, ``state["batch_stats"]``: enough for inference).

Using the :class:`Checkpointer` directly is the same with a target built for
this process: ``Checkpointer(dir).restore(epoch, template)`` restores with
the template's shardings (a fresh template lives on the default device).
"""

from __future__ import annotations

import contextlib
import logging as std_logging
import os
import re
from typing import Any
from typing import Optional

from absl import logging
import jax

from snnax_nas.train.steps import TrainState


class CorruptCheckpointError(ValueError):
  """A checkpoint whose files cannot be read (truncated, bit-flipped, missing)."""


def _unreadable(e: Exception) -> bool:
  """Whether a restore error means the files cannot be read (not that they
  hold another structure). Tensorstore reports I/O and decoding failures as
  exceptions whose text starts with an absl status code (``OUT_OF_RANGE:``,
  ``DATA_LOSS:``, ...) or as bare ``Exception``s; orbax reports a structure
  mismatch as a plain ``ValueError`` sentence."""
  return not isinstance(e, ValueError) or re.match(r"[A-Z_]{4,}: ", str(e)) is not None


def _cause(e: Exception) -> str:
  """The first line of an orbax/tensorstore error, short enough for one line."""
  text = (str(e).strip().splitlines() or [type(e).__name__])[0]
  text = text.split(". See full TensorStore details")[0]  # a repr of the whole spec follows
  return text if len(text) <= 160 else text[:157] + "..."


def _corrupt_message(directory: str, epoch: int, e: Exception) -> str:
  return (f"the checkpoint of epoch {epoch} in {directory} cannot be read ({_cause(e)}): its "
          "files are truncated or corrupt; remove that epoch's folder to use the one before "
          "it, or train again")


def _read_only_manager(directory: str):
  """An orbax manager that reads a launcher's checkpoints (``state`` + ``meta``)."""
  import orbax.checkpoint as ocp  # lazy: slow import
  return ocp.CheckpointManager(
      directory, item_handlers={"state": ocp.StandardCheckpointHandler(),
                                "meta": ocp.JsonCheckpointHandler()},
      options=ocp.CheckpointManagerOptions(read_only=True))


class _DropOrbaxInfo:
  """absl log filter: orbax logs several INFO lines per save; keep warnings."""

  def filter(self, record) -> bool:
    return record.levelno >= std_logging.WARNING or "orbax" not in record.pathname


class _DropOrbaxAll:
  """absl log filter: no orbax lines at all (read-only restores warn that the
  directory is read-only, which is what we asked for)."""

  def filter(self, record) -> bool:
    return "orbax" not in record.pathname


def _quiet_orbax():
  logger = logging.get_absl_logger()
  if not any(isinstance(f, _DropOrbaxInfo) for f in logger.filters):
    logger.addFilter(_DropOrbaxInfo())


@contextlib.contextmanager
def _silent_orbax():
  logger = logging.get_absl_logger()
  drop = _DropOrbaxAll()
  logger.addFilter(drop)
  try:
    yield
  finally:
    logger.removeFilter(drop)


class Checkpointer:
  """Orbax checkpoints of the :class:`TrainState` and the metrics history,
  one per epoch (step = epochs completed), keeping the last ``keep``.

  Orbax commits a checkpoint by renaming its temporary folder, so a process
  killed mid-save leaves the previous checkpoint as the latest.
  """

  def __init__(self, directory: str, keep: int = 3):
    import orbax.checkpoint as ocp  # lazy: slow import
    self._ocp = ocp
    _quiet_orbax()
    self.directory = os.path.abspath(directory)
    self.manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

  def latest_epoch(self) -> Optional[int]:
    """The epoch of the newest complete checkpoint, or None."""
    return self.manager.latest_step()

  def save(self, epoch: int, state: TrainState, meta: dict):
    """Saves ``state`` and the JSON-able ``meta`` as checkpoint ``epoch``."""
    ocp = self._ocp
    self.manager.save(epoch, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))

  def restore(self, epoch: int, template: TrainState) -> tuple[TrainState, dict]:
    """``(state, meta)`` of checkpoint ``epoch``, the state placed with the
    shardings of ``template``'s arrays (a state with the run's structure).

    Raises:
      ValueError: another structure (architecture, optimiser).
    """
    ocp = self._ocp
    out = self.manager.restore(epoch, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(template), meta=ocp.args.JsonRestore()))
    return out["state"], out["meta"]

  def restore_latest(self, template: TrainState) -> Optional[tuple[int, TrainState, dict]]:
    """``(epoch, state, meta)`` of the newest checkpoint that can be read, or
    None when there is none.

    A checkpoint whose files cannot be read (truncated or corrupted on disk)
    is moved aside to ``corrupt.<epoch>`` with a warning, and the one before
    it is tried: the run resumes from the last good epoch and can save that
    epoch again.

    Raises:
      ValueError: as :meth:`restore` (a checkpoint of another structure is
        not corrupt: it belongs to another run).
    """
    for epoch in sorted(self.manager.all_steps(), reverse=True):
      try:
        state, meta = self.restore(epoch, template)
      except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise bare Exceptions
        if not _unreadable(e):
          raise
        aside = os.path.join(self.directory, f"corrupt.{epoch}")
        logging.warning("%s; moved it to %s and resuming from the epoch before",
                        _corrupt_message(self.directory, epoch, e), aside)
        os.replace(os.path.join(self.directory, str(epoch)), aside)
        self.manager.reload()
        continue
      return int(epoch), state, meta
    return None

  def close(self):
    """Waits for a pending save and releases the manager."""
    self.manager.wait_until_finished()
    self.manager.close()


def checkpoint_directory(path: str) -> str:
  """The checkpoint folder of ``path``: ``path/checkpoints`` when ``path`` is a
  training workdir holding one, else ``path`` itself."""
  sub = os.path.join(path, "checkpoints")
  return sub if os.path.isdir(sub) else path


def restore_checkpoint(path: str, template: Any = None, *, epoch: Optional[int] = None,
                       device: Optional[jax.Device] = None) -> tuple[Any, dict]:
  """Restores a training checkpoint on this process's devices, whatever the
  device count it was saved from.

  Every array is restored whole onto one device (the saved state is
  replicated, so nothing is lost); ``jax.device_get`` turns the result into
  host numpy arrays, ``jax.device_put(state, sharding)`` spreads it again.

  Args:
    path: a training workdir (holding ``checkpoints/``) or a checkpoint
      folder (holding ``<epoch>/``).
    template: a pytree with the saved state's structure, typically a fresh
      :func:`~snnax_nas.train.steps.create_train_state` with the run's
      optimiser (see the module docstring); only its shapes and dtypes are
      used. None: the structure stored in the checkpoint (nested dicts).
    epoch: which checkpoint (epochs completed); default the latest.
    device: where the arrays go (default ``jax.devices()[0]``).

  Returns:
    ``(state, meta)``: the state (the template's type, or dicts), and the
    run's ``meta`` (``fingerprint``, ``history`` up to ``epoch``, ``sessions``).

  A latest checkpoint whose files cannot be read (truncated or corrupt) is
  passed over with a warning for the newest readable one before it (``meta``'s
  history says which epoch came back).

  Raises:
    FileNotFoundError: no checkpoint under ``path`` (or no ``epoch``).
    CorruptCheckpointError: the ``epoch`` asked for, or every checkpoint,
      cannot be read (one line naming the folder and the cause).
    ValueError: ``template`` does not match the saved tree (another
      architecture or optimiser).
  """
  directory = os.path.abspath(checkpoint_directory(path))
  if not os.path.isdir(directory):
    raise FileNotFoundError(f"no checkpoint folder at {path!r}; give a training workdir or "
                            "its checkpoints/ folder")
  sharding = jax.sharding.SingleDeviceSharding(device or jax.devices()[0])
  with _silent_orbax():
    manager = _read_only_manager(directory)
    try:
      steps = list(manager.all_steps())
      explicit = epoch is not None
      if epoch is None:
        epoch = manager.latest_step()
      if epoch is None or epoch not in steps:
        raise FileNotFoundError(f"no checkpoint of epoch {epoch} in {directory} (saved epochs: "
                                f"{sorted(steps)})")
      # The latest epoch, or the newest readable one before it; an epoch
      # asked for by number is that one or an error.
      tries = [epoch] if explicit else sorted((s for s in steps if s <= epoch), reverse=True)
      for i, step in enumerate(tries):
        try:
          return _restore_one(manager, step, template, sharding)
        except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise bare Exceptions
          if not _unreadable(e):
            raise
          if i + 1 == len(tries):
            raise CorruptCheckpointError(_corrupt_message(directory, step, e)) from None
          logging.warning("%s; using the checkpoint of epoch %d instead",
                          _corrupt_message(directory, step, e), tries[i + 1])
    finally:
      manager.close()


def _restore_one(manager, epoch: int, template, sharding):
  """``(state, meta)`` of one checkpoint, placed with ``sharding``."""
  import orbax.checkpoint as ocp  # lazy: slow import
  if template is None:
    try:
      template = manager.item_metadata(epoch)["state"].tree
    except (KeyError, TypeError, AttributeError) as e:  # unreadable metadata
      raise RuntimeError(f"metadata unreadable: {e}") from None
  # A target on this process's devices replaces the saved topology.
  target = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), template)
  out = manager.restore(epoch, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()))
  return out["state"], out["meta"]
