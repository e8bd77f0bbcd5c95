"""The training loop: restore or init, step, log, checkpoint, validate.

``train(config, workdir, model=..., loader=..., mesh=...)`` is what
``jaxact.experiment.run`` runs (then ``jaxact.eval.evaluate``). It resumes
from the newest readable checkpoint in ``WORKDIR/checkpoints`` (same data
order and learning rate), stops on a non-finite loss without saving the bad
state, and on SIGTERM (preemption) or Ctrl-C saves the current step and
returns; a second Ctrl-C exits at once.
"""

import functools
import json
import logging
import math
import os
import signal
import sys
import threading
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxact.data import device_augment
from jaxact.runtime import checkpoint as ckpt
from jaxact.runtime import mesh as mesh_lib
from jaxact.runtime import reporting, scoring
from jaxact.runtime import state as state_lib
from jaxact.runtime.inputs import Loader
from jaxact.train import optim, perf, pretrained
from jaxact.train import step as step_lib

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
  """Training produced a NaN/inf loss; the message names the step."""


class _StopFlag:
  """Set by SIGTERM or a first Ctrl-C; all processes agree on it at the same step.

  A second Ctrl-C exits the process at once (exit status 130), without saving.
  """

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.requested = False
    self._previous: dict[int, Any] = {}

  def install(self) -> None:
    if threading.current_thread() is threading.main_thread():
      for sig in self.SIGNALS:
        self._previous[sig] = signal.signal(sig, self._handle)

  def uninstall(self) -> None:
    for sig, previous in self._previous.items():
      signal.signal(sig, previous)
    self._previous = {}

  def _handle(self, signum, frame):
    if signum == signal.SIGINT and self.requested:
      print("jaxact: interrupted again: exiting now, without saving.", file=sys.stderr, flush=True)
      os._exit(130)
    if signum == signal.SIGINT:
      print(
        "jaxact: Ctrl-C: saving a checkpoint at the next step, then stopping "
        "(press Ctrl-C again to exit at once without saving).",
        file=sys.stderr,
        flush=True,
      )
    self.requested = True

  def agreed(self, step: int, every: int) -> bool:
    if jax.process_count() == 1:
      return self.requested
    if step % every:
      return False
    flags = multihost_utils.process_allgather(np.asarray(self.requested, np.int32))
    return bool(np.any(flags))


def input_spec(host_batch: dict, data_cfg: Any) -> dict[str, jax.ShapeDtypeStruct]:
  """Global shapes of the model inputs (``rgb``, ``flow``) of a host batch,
  after the device augmentation (``device_augment.train_inputs``)."""
  inputs = jax.eval_shape(
    functools.partial(
      device_augment.train_inputs, out_size=data_cfg.image_size, recipe=data_cfg.augment
    ),
    {k: v for k, v in host_batch.items() if k in ("rgb", "flow", "aug")},
  )
  return {
    k: jax.ShapeDtypeStruct((v.shape[0] * jax.process_count(),) + v.shape[1:], v.dtype)
    for k, v in inputs.items()
    if k in ("rgb", "flow")
  }


def _config_json(config: Any) -> dict:
  return json.loads(config.to_json_best_effort())


def train(
  config: Any,
  workdir: str,
  *,
  model: Any,
  loader: Loader,
  mesh: jax.sharding.Mesh,
  validation_loader: Loader | None = None,
) -> bool:
  """Train ``config`` in ``workdir``, resuming from its newest readable checkpoint.

  Args:
    config: the validated experiment config.
    workdir: run directory (``checkpoints/``, ``metrics.jsonl``, ``tensorboard/``).
    model: the network (``jaxact.runtime.inputs.build_model``).
    loader: this process's training loader (endless; its state is checkpointed).
    mesh: the data-parallel mesh.
    validation_loader: the evaluation loader, scored at every checkpoint when
      ``config.eval.validate_at_checkpoints`` is set.

  Returns:
    True when ``num_train_steps`` were reached; False when a signal (SIGTERM,
    Ctrl-C) stopped the run after saving.

  Raises:
    NonFiniteLossError: the loss became NaN/inf (nothing after the last good
      checkpoint is saved).
    jaxact.runtime.checkpoint.CheckpointError: checkpoints exist but none
      can be read.
  """
  is_main = jax.process_index() == 0
  manager = ckpt.create_manager(
    os.path.join(workdir, "checkpoints"),
    max_to_keep=config.checkpoint.max_to_keep,
    best_metric=config.checkpoint.best_metric or None,
    best_mode=config.checkpoint.best_mode,
    async_save=config.checkpoint.async_save,
  )
  stop = _StopFlag()
  stop.install()
  try:
    return _train(config, workdir, model, loader, mesh, validation_loader, manager, stop, is_main)
  finally:
    stop.uninstall()
    manager.wait_until_finished()
    manager.close()


def _train(config, workdir, model, loader, mesh, validation_loader, manager, stop, is_main):
  total = int(config.num_train_steps)
  iterator = iter(loader)
  batch = next(iterator)  # the first batch gives the input shapes
  spec = input_spec(batch, config.data)
  abstract_vars = jax.eval_shape(
    lambda key: state_lib.init_variables(model, spec, key), jax.random.key(0)
  )
  tx, schedule = optim.create_optimizer(config.optimizer, total, list(abstract_vars["params"]))
  target = state_lib.abstract_state(model, tx, spec, mesh)
  shardings = jax.tree.map(lambda a: a.sharding, target)
  restored = ckpt.restore_newest(
    manager,
    lambda s: (ckpt.restore_state(manager, s, target), ckpt.restore_loader_state(manager, s)),
    move_aside=True,
  )
  if restored is not None:
    start, (state, data_state) = restored
    if data_state is not None:  # None: saved with another process count; data restarts
      loader.set_state(data_state)
      batch = next(iterator)
    if is_main:
      reporting.truncate_metrics(workdir, start)  # steps after it are redone
    log.info("Resumed from step %d of %s", start, manager.directory)
  else:
    start = 0
    state, shardings = state_lib.create_train_state(
      model, tx, spec, mesh, jax.random.key(config.seed)
    )
    if config.init_from.path:
      state = pretrained.init_state_from(state, tx, config.init_from, mesh, model)
  n_params = state_lib.param_count(state.params)
  log.info(
    "Model %s: %s parameters on %d devices (%d processes)",
    type(model).__name__,
    f"{n_params:,}",
    jax.device_count(),
    jax.process_count(),
  )

  jitted = jax.jit(
    step_lib.make_train_step(model, config, schedule, tx),
    donate_argnums=0,
    out_shardings=(shardings, mesh_lib.replicated(mesh)),
  )
  # Compile once, ahead of time: the same executable gives the FLOPs for MFU.
  train_step = jitted.lower(state, mesh_lib.global_batch(mesh, batch)).compile()
  flops = perf.executable_flops(train_step)
  mesh_lib.barrier("jaxact_train_step_compiled")
  peak = perf.device_peak_flops()

  validator = None
  if config.eval.validate_at_checkpoints:
    validator = scoring.Validator(model, config, mesh, validation_loader)

  writer = reporting.MetricsWriter(workdir, enabled=is_main, tensorboard=config.tensorboard)
  progress = reporting.Progress(total, start, enabled=is_main and config.progress_bar)
  config_json = _config_json(config)
  pending: list[tuple[int, dict]] = []
  last_saved = start
  timer = reporting.StepTimer()
  try:
    step = start
    while step < total:
      state, metrics = train_step(state, mesh_lib.global_batch(mesh, batch))
      step += 1
      pending.append((step, metrics))
      is_last = step == total
      save_now = step % config.checkpoint_every_steps == 0 or is_last
      stop_now = stop.agreed(step, config.log_every_steps)
      if step % config.log_every_steps == 0 or save_now or stop_now:
        summary = _summarise(pending, timer, config, flops, peak)
        pending = []
        if validator is not None and (save_now or stop_now):
          summary.update(validator({"params": state.params, "batch_stats": state.batch_stats}))
          timer.lap()  # validation time is not step time
        progress.update(summary.pop("_steps"), loss=summary["loss"], lr=summary["lr"])
        writer.write(step, summary)
      if save_now or stop_now:
        ckpt.save(
          manager,
          state,
          loader_state=loader.get_state(),
          config_json=config_json,
          metrics=_ckpt_metrics(summary, config),
        )
        last_saved = step
      if stop_now and not is_last:
        log.warning("Stop requested: saved step %d. Run the same command to resume.", step)
        return False
      if not is_last:
        batch = next(iterator)
  except NonFiniteLossError as e:
    raise NonFiniteLossError(
      f"{e} The last good checkpoint (step {manager.latest_step() or last_saved}) in "
      f"{manager.directory} is kept; nothing later was saved. Lower the learning rate, "
      "enable optimizer.grad_clip_norm or check the inputs, then rerun to resume."
    ) from None
  finally:
    progress.close()
    writer.close()
  return True


def _summarise(
  pending: list[tuple[int, dict]],
  timer: reporting.StepTimer,
  config: Any,
  flops: float | None,
  peak: float | None,
) -> dict:
  """Average the steps since the last log; raise on the first non-finite loss."""
  host = jax.device_get([m for _, m in pending])  # waits for the last step
  elapsed = timer.lap()
  for (step, _), m in zip(pending, host):
    if not math.isfinite(float(m["loss"])):
      raise NonFiniteLossError(f"The loss became {float(m['loss'])} at step {step}.")
  out = {k: float(np.mean([m[k] for m in host])) for k in host[-1]}
  for k in ("lr", "param_norm"):
    out[k] = float(host[-1][k])
  n = len(pending)
  out["step_time"] = elapsed / n
  out["clips_per_s"] = config.batch_size * n / elapsed
  out["clips_per_s_per_device"] = out["clips_per_s"] / jax.device_count()
  value = perf.mfu(flops, out["step_time"], peak)
  if value is not None:
    out["mfu"] = value
  out["_steps"] = n
  return out


def _ckpt_metrics(summary: dict, config: Any) -> dict | None:
  metric = config.checkpoint.best_metric
  if not metric:
    return None
  return {metric: summary.get(metric, float("nan"))}
