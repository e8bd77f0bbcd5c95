"""The training loop: restore or init, step, log, checkpoint, evaluate.

``train_and_evaluate(config, workdir)`` is what ``python -m jaxact.main`` runs.
It resumes from ``WORKDIR/checkpoints`` when a checkpoint exists (same data
order and learning rate), stops on a non-finite loss without saving the bad
state, and saves then returns cleanly on SIGTERM (preemption).
"""

import json
import logging
import math
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxact.train import checkpoint as ckpt
from jaxact.train import inputs as inputs_lib
from jaxact.train import mesh as mesh_lib
from jaxact.train import optim, perf, pretrained, reporting
from jaxact.train import state as state_lib
from jaxact.train import step as step_lib

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
  """Training produced a NaN/inf loss; the message names the step."""


class _StopFlag:
  """Set by SIGTERM; all processes agree on it at the same step."""

  def __init__(self):
    self.requested = False
    self._previous = None

  def install(self) -> None:
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)

  def uninstall(self) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None

  def _handle(self, signum, frame):
    self.requested = True

  def agreed(self, step: int, every: int) -> bool:
    if jax.process_count() == 1:
      return self.requested
    if step % every:
      return False
    from jax.experimental import multihost_utils

    flags = multihost_utils.process_allgather(np.asarray(self.requested, np.int32))
    return bool(np.any(flags))


def input_spec(mesh: jax.sharding.Mesh, host_batch: dict) -> dict[str, jax.ShapeDtypeStruct]:
  """Global shapes of the model inputs (``rgb``, ``flow``) of a host batch."""
  del mesh
  return {
    k: jax.ShapeDtypeStruct((v.shape[0] * jax.process_count(),) + v.shape[1:], v.dtype)
    for k, v in host_batch.items()
    if k in ("rgb", "flow")
  }


def _config_json(config: Any) -> dict:
  return json.loads(config.to_json_best_effort())


def train_and_evaluate(
  config: Any,
  workdir: str,
  *,
  model_fn: Callable[[Any, int], Any] = inputs_lib.create_model,
  loader_fn: Callable[..., Any] = inputs_lib.create_loader,
) -> dict | None:
  """Train ``config`` in ``workdir`` (resuming if possible), then evaluate.

  Args:
    config: the validated experiment config.
    workdir: run directory (``checkpoints/``, ``metrics.jsonl``,
      ``eval_results.json``, ``tensorboard/``).
    model_fn: ``(config, num_classes) -> flax Module``.
    loader_fn: ``(config, train=bool) -> Loader``.

  Returns:
    The evaluation results (as written to ``eval_results.json``) or None when
    evaluation is off or training stopped early (preemption).

  Raises:
    NonFiniteLossError: the loss became NaN/inf (nothing after the last good
      checkpoint is saved).
  """
  is_main = jax.process_index() == 0
  mesh = mesh_lib.create_mesh()
  if loader_fn is inputs_lib.create_loader:
    inputs_lib.ensure_dataset(config)
  loader = loader_fn(config, train=True)
  model = model_fn(config, loader.num_classes)
  total = int(config.num_train_steps)

  manager = ckpt.create_manager(
    os.path.join(workdir, "checkpoints"),
    max_to_keep=config.checkpoint.max_to_keep,
    best_metric=config.checkpoint.best_metric or None,
    best_mode=config.checkpoint.best_mode,
    async_save=config.checkpoint.async_save,
  )
  start = manager.latest_step()
  if start is not None:
    data_state = ckpt.restore_loader_state(manager, start)
    if data_state is not None:
      loader.set_state(data_state)
  iterator = iter(loader)
  batch = next(iterator)
  spec = input_spec(mesh, batch)

  abstract_vars = jax.eval_shape(
    lambda key: state_lib.init_variables(model, spec, key), jax.random.key(0)
  )
  tx, schedule = optim.create_optimizer(config.optimizer, total, list(abstract_vars["params"]))
  if start is not None:
    target = state_lib.abstract_state(model, tx, spec, mesh)
    state = ckpt.restore_state(manager, start, target)
    shardings = jax.tree.map(lambda a: a.sharding, target)
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
    from jaxact.eval import evaluate  # pylint: disable=import-outside-toplevel

    validator = evaluate.Validator(model, config, mesh, loader_fn(config, train=False))

  writer = reporting.MetricsWriter(workdir, enabled=is_main, tensorboard=config.tensorboard)
  progress = reporting.Progress(total, start, enabled=is_main and config.progress_bar)
  stop = _StopFlag()
  stop.install()
  config_json = _config_json(config)
  pending: list[tuple[int, dict]] = []
  last_saved = start
  timer = reporting.StepTimer()
  preempted = False
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
        preempted = True
        log.warning(
          "SIGTERM received: saved step %d, stopping. Run the same command to resume.", step
        )
        break
      if not is_last:
        batch = next(iterator)
  except NonFiniteLossError as e:
    raise NonFiniteLossError(
      f"{e} The last good checkpoint (step {manager.latest_step() or last_saved}) in "
      f"{manager.directory} is kept; nothing later was saved. Lower the learning rate, "
      "enable optimizer.grad_clip_norm or check the inputs, then rerun to resume."
    ) from None
  finally:
    stop.uninstall()
    progress.close()
    writer.close()
    manager.wait_until_finished()
  if preempted or not config.eval.run_after_training:
    manager.close()
    return None
  manager.close()
  from jaxact.eval import evaluate

  return evaluate.evaluate_checkpoint(
    config, workdir, model_fn=model_fn, loader_fn=loader_fn, mesh=mesh
  )


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
