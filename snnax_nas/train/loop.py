"""The training loop: epochs, evaluation, resuming, progress with ETA.

:func:`train_and_evaluate` trains one architecture with the steps of
:mod:`snnax_nas.train.steps`, evaluates the test split, writes the metrics
(:mod:`snnax_nas.train.metrics`) and checkpoints every epoch
(:mod:`snnax_nas.train.checkpoint`); rerun with the same arguments it resumes
from the last checkpoint.

Progress lines (absl INFO): every ``log_every`` steps the running loss and
accuracy, images/s, steps/s and the time left in the epoch and in the run;
after each epoch its metrics and the time left in the run. Times left are
this session's mean step (and evaluation) time times the steps left,
compilation excluded.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Optional

from absl import logging
import jax
import jax.numpy as jnp
from jax.sharding import Mesh
import numpy as np

from snnax_nas import allocator
from snnax_nas import data as data_lib
from snnax_nas import network as network_lib
from snnax_nas.train import metrics as metrics_lib
from snnax_nas.train.checkpoint import Checkpointer
from snnax_nas.train.steps import ForwardFn
from snnax_nas.train.steps import Steps
from snnax_nas.train.steps import TrainState
from snnax_nas.train.steps import create_train_state
from snnax_nas.train.steps import lr_schedule
from snnax_nas.train.steps import make_mesh
from snnax_nas.train.steps import make_optimizer
from snnax_nas.train.steps import make_steps
from snnax_nas.train.steps import put_batch
from snnax_nas.train.steps import training_devices


def default_test_split(name: str) -> str:
  """The evaluation split of a dataset spec: ``val`` for TinyImageNet and for
  ``folder:`` trees without a ``test`` folder, else ``test``."""
  if name == "tinyimagenet":
    return "val"
  if name.startswith("folder:"):
    root = os.path.expanduser(name[len("folder:"):])
    if not os.path.isdir(os.path.join(root, "test")) and os.path.isdir(os.path.join(root, "val")):
      return "val"
  return "test"


def eval_batches(images, labels, batch_size: int, process_index: Optional[int] = None,
                 process_count: Optional[int] = None):
  """Every sample once, in order, in global batches of ``batch_size``.

  The last batch is padded (repeating sample 0) to the full size so one
  compiled step serves all batches; ``mask`` (float32, 0 on padding) removes
  the padding from every metric. Yields this process's equal slice.
  """
  pi = jax.process_index() if process_index is None else process_index
  pc = jax.process_count() if process_count is None else process_count
  if batch_size % pc:
    raise ValueError(f"batch_size {batch_size} not divisible by {pc} processes")
  lb = batch_size // pc
  n = len(labels)
  for start in range(0, n, batch_size):
    idx = np.arange(start, min(start + batch_size, n))
    mask = np.ones(batch_size, np.float32)
    mask[len(idx):] = 0.0
    idx = np.concatenate([idx, np.zeros(batch_size - len(idx), np.int64)])
    sl = slice(pi * lb, (pi + 1) * lb)
    yield {"image": images[idx[sl]], "label": np.asarray(labels[idx[sl]], np.int32),
           "mask": mask[sl]}


def evaluate(steps: Steps, state: TrainState, images, labels, batch_size: int) -> dict:
  """Test metrics over a whole split.

  Returns:
    ``{"loss", "accuracy", "sar", "rates": {lif: rate}, "count"}``.
  """
  outs = [steps.eval(state, put_batch(b, steps.batch_sharding))
          for b in eval_batches(images, labels, batch_size)]
  tot = metrics_lib.sum_metrics(outs)
  sar, rates = metrics_lib.firing_rates(tot["probes"])
  n = tot["count"]
  return {"loss": tot["loss"] / n, "accuracy": tot["correct"] / n, "sar": sar,
          "rates": rates, "count": int(n)}


def format_duration(seconds: Optional[float]) -> str:
  """``h:mm:ss`` (or ``m:ss`` under an hour) of a duration in seconds; ``?``
  for None or a non-finite value."""
  if seconds is None or not np.isfinite(seconds):
    return "?"
  s = int(round(max(seconds, 0.0)))
  h, rem = divmod(s, 3600)
  m, s = divmod(rem, 60)
  return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def time_left(done: float, left: float, elapsed: float) -> Optional[float]:
  """Seconds for ``left`` more units at the rate of ``done`` units in
  ``elapsed`` seconds (None before the first unit)."""
  return left * elapsed / done if done > 0 and elapsed > 0 else None


# ----------------------------------------------------------------------------
# The loop.

class CompileCache:
  """Compiled train and eval steps, kept by their owner across
  :func:`train_and_evaluate` calls.

  Each call builds and compiles its steps; a caller that trains one
  architecture several times in a process (seeds, as ``launch.analyze_ops``
  does) passes one cache to all the calls and compiles once. Entries are
  keyed by everything the compiled code depends on (config, genotype,
  optimiser arguments, data info, loss, mesh, bits, forward; the argument
  shapes and shardings), so reuse never changes a result. Not thread-safe.
  """

  def __init__(self):
    self._entries: dict = {}

  def __len__(self) -> int:
    """Entries kept (built steps and compiled functions)."""
    return len(self._entries)

  def get(self, key, build):
    """``build()``, computed once per ``key`` (hashable)."""
    if key not in self._entries:
      self._entries[key] = build()
    return self._entries[key]


def _compile(cache: Optional[CompileCache], fn, *args):
  """``fn.lower(*args).compile()``, kept in ``cache`` per (function,
  argument shapes, dtypes and shardings)."""
  build = lambda: fn.lower(*args).compile()  # noqa: E731
  if cache is None:
    return build()
  key = (fn, tuple((x.shape, x.dtype, x.sharding) for x in jax.tree.leaves(args)))
  return cache.get(key, build)


@dataclasses.dataclass
class TrainResult:
  """Outcome of :func:`train_and_evaluate`.

  Attributes:
    state: final :class:`TrainState`.
    history: one dict per epoch (see :func:`train_and_evaluate`).
    summary: final numbers (accuracy, SAR, params, bytes, times,
      ``silent_layers_at_init``).
    warnings: the warnings logged about the run (e.g. silent layers at
      initialisation), in order.
  """

  state: TrainState
  history: list
  summary: dict
  warnings: list = dataclasses.field(default_factory=list)


class TrainingDivergedError(ValueError):
  """The training loss became NaN or infinite; no checkpoint of it was saved."""


def train_and_evaluate(cfg: network_lib.NetworkConfig, genotypes, info: data_lib.DatasetInfo,
                       train_data: tuple, test_data: Optional[tuple], *, epochs: int,
                       batch_size: int, lr: float = 0.1, momentum: float = 0.9,
                       weight_decay: float = 5e-4, loss: str = "ce", augment: bool = True,
                       seed: int = 0, eval_every: int = 1, workdir: Optional[str] = None,
                       checkpoint_dir: Optional[str] = None, keep_checkpoints: int = 3,
                       log_every: int = 50, fingerprint: Optional[dict] = None,
                       plot_title: Optional[str] = None,
                       per_epoch_schedule: bool = False, weight_bits: int = 32,
                       mesh: Optional[Mesh] = None,
                       forward: Optional[ForwardFn] = None,
                       compile_cache: Optional[CompileCache] = None) -> TrainResult:
  """Trains one architecture and evaluates it, resuming from checkpoints.

  Each epoch appends one history entry: ``epoch``, ``train_loss``,
  ``train_accuracy``, ``train_sar``, ``train_rates`` (``{lif: rate}`` over
  the epoch's training batches), ``lr`` (at the epoch's end),
  ``test_loss``/``test_accuracy``/``sar``/``rates`` (test split, eval mode;
  None on epochs without evaluation), ``epoch_time`` (s, training only),
  ``eval_time``, ``images_per_sec`` (training), ``peak_rss_mb``,
  ``elapsed_s`` (wall seconds from the start of the run to these metrics,
  summed over sessions, compilation included) and ``session`` (0 for the
  first process, +1 per resume). The test split is
  evaluated every ``eval_every`` epochs and after the last.

  A fresh run checks the firing rates of the first training batch (the
  initial parameters): LIF layers that never fire are named in a warning
  (logged, in :attr:`TrainResult.warnings` and as
  ``summary["silent_layers_at_init"]``).

  Args:
    cfg: network config.
    genotypes: [4, 4] or [L, 4, 4] digits.
    info: dataset info (:func:`snnax_nas.data.get_info`).
    train_data: ``(images, labels)`` numpy arrays (raw uint8 or frames).
    test_data: the same for the test split, or None.
    epochs: total epochs of the run (a resumed run continues to this).
    batch_size: global batch size (multiple of the device count).
    lr, momentum, weight_decay: see :func:`make_optimizer`.
    loss: ``"ce"`` or ``"mse"``.
    augment: random crop + flip of training images.
    seed: seed of the weights, the data order, dropout and augmentation.
    eval_every: evaluate the test split every this many epochs.
    workdir: metrics/TensorBoard output folder (None: no files).
    checkpoint_dir: where checkpoints go (None: ``workdir/checkpoints``, or
      no checkpoints without a workdir).
    keep_checkpoints: checkpoints kept.
    log_every: a progress line every this many steps (0: epoch lines only).
    fingerprint: JSON-able run description stored with the checkpoints; a
      checkpoint with another fingerprint is refused (ValueError).
    plot_title: with a workdir, redraw ``accuracy.png`` and
      ``firing_rates.png`` each epoch under this title (None: no plots).
    per_epoch_schedule: see :func:`lr_schedule`.
    weight_bits: 32, or 16 / 8 / 4 for quantisation-aware training (the
      default forward fake-quantises every kernel; see
      :mod:`snnax_nas.train.steps`). The test metrics are then those of the
      quantised network.
    mesh: device mesh (default: over
      :func:`~snnax_nas.train.steps.training_devices`).
    forward: the network as a :data:`~snnax_nas.train.steps.ForwardFn`
      (default: the standalone network of ``cfg`` and ``genotypes``); its
      parameters must have the structure of :func:`create_train_state`'s.
    compile_cache: keeps the compiled steps for later calls with the same
      arguments (seeds of one architecture); None: compile for this call.

  Raises:
    ValueError: bad arguments, too few training examples for one batch, or
      a checkpoint of another run.
  """
  t_start = time.perf_counter()
  images, labels = train_data
  if epochs < 1:
    raise ValueError(f"epochs must be >= 1, got {epochs}")
  if eval_every < 1:
    raise ValueError(f"eval_every must be >= 1, got {eval_every}")
  mesh = mesh or make_mesh(training_devices())
  if batch_size < 1 or batch_size % mesh.size:
    raise ValueError(f"batch_size {batch_size} must be a positive multiple of the "
                     f"{mesh.size} devices")
  batches = data_lib.Batches(images, labels, batch_size, seed=seed, shuffle=True,
                             drop_remainder=True)
  spe = batches.steps_per_epoch
  if spe < 1:
    raise ValueError(f"{len(labels)} training examples is fewer than one batch of {batch_size}")
  optimizer = make_optimizer(lr, epochs, spe, momentum, weight_decay,
                             per_epoch_schedule=per_epoch_schedule)
  schedule = lr_schedule(lr, epochs, spe, per_epoch=per_epoch_schedule)

  def build_steps():
    return make_steps(cfg, genotypes, optimizer, info, loss=loss, augment=augment, mesh=mesh,
                      weight_bits=weight_bits, forward=forward)
  if compile_cache is None:
    steps = build_steps()
  else:
    g_key = np.asarray(genotypes, np.int32)
    steps = compile_cache.get(
        ("steps", cfg, g_key.shape, g_key.tobytes(), lr, epochs, spe, momentum, weight_decay,
         per_epoch_schedule, info, loss, augment, mesh, weight_bits, forward), build_steps)
  state = create_train_state(jax.random.PRNGKey(seed), cfg, genotypes, optimizer)
  state = jax.device_put(state, steps.state_sharding)

  fingerprint = metrics_lib.json_safe(dict(fingerprint or {}, epochs=epochs,
                                           batch_size=batch_size, lr=lr, seed=seed,
                                           steps_per_epoch=spe))
  if checkpoint_dir is None and workdir is not None:
    checkpoint_dir = os.path.join(workdir, "checkpoints")
  ckpt = Checkpointer(checkpoint_dir, keep_checkpoints) if checkpoint_dir else None
  history, session, start_epoch = [], 0, 0
  restored = ckpt.restore_latest(state) if ckpt is not None else None
  if restored is not None:
    start_epoch, state, meta = restored
    if meta.get("fingerprint") != fingerprint:
      ckpt.close()
      raise ValueError(f"checkpoints in {checkpoint_dir} belong to another run "
                       f"({meta.get('fingerprint')}); use a new --workdir/--checkpoint_dir")
    history = [e for e in meta["history"] if e["epoch"] <= start_epoch]
    session = int(meta.get("sessions", 1))
    logging.info("resumed from the checkpoint of epoch %d (%s)", start_epoch, checkpoint_dir)
  writer = metrics_lib.MetricsWriter(workdir, start_epoch, plot_title) if workdir else None
  if writer is not None:
    writer.write(history)  # drop epochs the files hold beyond the checkpoint

  summary_extra = metrics_lib.model_summary(state.params, genotypes, cfg)
  # Compile ahead of the loop, so epoch times and images/s exclude compilation.
  t0 = time.perf_counter()
  first = next(batches.epoch(0))
  example = put_batch(first, steps.batch_sharding)
  train_fn = _compile(compile_cache, steps.train, state, example)
  eval_fn = None
  if test_data is not None:
    ex = next(eval_batches(test_data[0][:1], test_data[1][:1], batch_size))
    eval_fn = _compile(compile_cache, steps.eval, state, put_batch(ex, steps.batch_sharding))
    steps = dataclasses.replace(steps, eval=eval_fn)
  compile_s = time.perf_counter() - t0
  logging.info("compiled train%s steps in %.1fs; %d steps/epoch of %d images on %d device(s); "
               "%s params; allocator: %s", " and eval" if eval_fn else "", compile_s, spe,
               batch_size, mesh.size, f"{summary_extra['params']:,}", allocator.status)

  warnings, silent_at_init = [], None
  elapsed0 = history[-1].get("elapsed_s", 0.0) if history else 0.0
  # This session's training steps and seconds (ETA), and evaluation seconds.
  session_steps, session_train_s, session_eval_s, session_evals = 0, 0.0, 0.0, 0
  n_evals_left = (len([e for e in range(start_epoch + 1, epochs + 1)
                       if e % eval_every == 0 or e == epochs]) if test_data is not None else 0)
  for epoch in range(start_epoch, epochs):
    t_ep = time.perf_counter()
    outs = []
    for i, b in enumerate(batches.epoch(epoch)):
      state, m = train_fn(state, put_batch(b, steps.batch_sharding))
      outs.append(m)
      if epoch == 0 and i == 0:
        # The first step's forward ran on the initial parameters.
        _, init_rates = metrics_lib.firing_rates(metrics_lib.sum_metrics([m])["probes"])
        silent_at_init = metrics_lib.silent_layers(init_rates)
        if silent_at_init:
          warnings.append(metrics_lib.silent_layers_message(silent_at_init))
          logging.warning("%s", warnings[-1])
      if log_every and (i + 1) % log_every == 0:
        part = metrics_lib.sum_metrics(outs)  # waits for the steps: times are real
        dt = time.perf_counter() - t_ep
        done = session_steps + i + 1
        rate = done / (session_train_s + dt)
        eval_per = session_eval_s / session_evals if session_evals else 0.0
        run_left = time_left(done, (epochs - epoch) * spe - (i + 1), session_train_s + dt)
        logging.info("epoch %d step %d/%d  loss %.4f  acc %.2f%%  %.1f img/s  %.2f steps/s  "
                     "epoch left %s  run left %s", epoch + 1, i + 1, spe,
                     part["loss"] / part["count"], 100 * part["correct"] / part["count"],
                     part["count"] / dt, rate, format_duration((spe - i - 1) / rate),
                     format_duration(run_left + eval_per * n_evals_left))
    tot = metrics_lib.sum_metrics(outs)
    if not math.isfinite(tot["loss"]):
      # Saving would make a NaN network the run's latest checkpoint.
      if ckpt is not None:
        ckpt.close()
      last = f"epoch {epoch}'s checkpoint is kept" if epoch else "nothing was saved"
      raise TrainingDivergedError(
          f"training diverged in epoch {epoch + 1}: the training loss is "
          f"{tot['loss'] / tot['count']} ({last}); lower the learning rate "
          "(--config.training.lr) and train in a new --workdir")
    epoch_time = time.perf_counter() - t_ep
    session_steps += spe
    session_train_s += epoch_time
    train_sar, train_rates = metrics_lib.firing_rates(tot["probes"])
    entry = {"epoch": epoch + 1, "train_loss": tot["loss"] / tot["count"],
             "train_accuracy": tot["correct"] / tot["count"], "train_sar": train_sar,
             "train_rates": train_rates,
             "lr": float(schedule((epoch + 1) * spe)), "test_loss": None,
             "test_accuracy": None, "sar": None, "rates": None,
             "epoch_time": epoch_time, "eval_time": 0.0,
             "images_per_sec": tot["count"] / epoch_time, "session": session}
    if test_data is not None and ((epoch + 1) % eval_every == 0 or epoch + 1 == epochs):
      t_ev = time.perf_counter()
      ev = evaluate(steps, state, test_data[0], test_data[1], batch_size)
      entry.update(test_loss=ev["loss"], test_accuracy=ev["accuracy"], sar=ev["sar"],
                   rates=ev["rates"], eval_time=time.perf_counter() - t_ev)
      session_eval_s += entry["eval_time"]
      session_evals += 1
      n_evals_left -= 1
    entry["peak_rss_mb"] = metrics_lib.peak_rss_mb()
    # Time to this epoch's metrics: this session from the start of
    # train_and_evaluate (compilation included) plus earlier sessions' total.
    entry["elapsed_s"] = elapsed0 + time.perf_counter() - t_start
    entry = metrics_lib.json_safe(entry)
    history.append(entry)
    state = state.replace(epoch=jnp.asarray(epoch + 1, jnp.int32))
    if ckpt is not None:
      ckpt.save(epoch + 1, state, {"fingerprint": fingerprint, "history": history,
                                   "sessions": session + 1})
    if writer is not None:
      writer.write(history)
    test_txt = ("" if entry["test_accuracy"] is None else
                f"  test loss {entry['test_loss']:.4f} acc {100 * entry['test_accuracy']:.2f}%"
                f"  SAR {entry['sar']:.4f}")
    run_left = (time_left(session_steps, (epochs - epoch - 1) * spe, session_train_s)
                + (session_eval_s / session_evals if session_evals else 0.0) * n_evals_left)
    logging.info("epoch %d/%d  train loss %.4f acc %.2f%%%s  %.1fs  %.1f img/s  "
                 "%.2f steps/s  run left %s", epoch + 1, epochs, entry["train_loss"],
                 100 * entry["train_accuracy"], test_txt, epoch_time, entry["images_per_sec"],
                 spe / epoch_time, format_duration(run_left))
  if ckpt is not None:
    ckpt.close()
  if writer is not None:
    writer.close()

  last_eval = next((e for e in reversed(history) if e.get("test_accuracy") is not None), None)
  silent_at_end = metrics_lib.silent_layers(last_eval["rates"]) if last_eval else None
  if silent_at_end:
    warnings.append(metrics_lib.silent_in_evaluation_message(silent_at_end))
    logging.warning("%s", warnings[-1])
  train_time = sum(e["epoch_time"] for e in history)
  summary = dict(
      epochs=len(history), final_train_accuracy=history[-1]["train_accuracy"] if history else None,
      final_test_accuracy=last_eval["test_accuracy"] if last_eval else None,
      final_test_loss=last_eval["test_loss"] if last_eval else None,
      best_test_accuracy=max((e["test_accuracy"] for e in history
                              if e.get("test_accuracy") is not None), default=None),
      sar=last_eval["sar"] if last_eval else None,
      rates=last_eval["rates"] if last_eval else None,
      train_time_s=train_time,
      eval_time_s=sum(e["eval_time"] for e in history),
      images_per_sec=(sum(e["images_per_sec"] * e["epoch_time"] for e in history) / train_time
                      if train_time else None),
      compile_s=compile_s, session_wall_s=time.perf_counter() - t_start,
      sessions=session + 1, peak_rss_mb=metrics_lib.peak_rss_mb(), devices=mesh.size,
      silent_layers_at_init=silent_at_init, silent_layers_at_end=silent_at_end,
      **summary_extra)
  return TrainResult(state, history, metrics_lib.json_safe(summary), warnings)
