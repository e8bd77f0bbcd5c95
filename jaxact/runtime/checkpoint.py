"""Orbax checkpoints: model, optimizer, data-iterator position and config.

A checkpoint step directory holds four items:

* ``model``: ``{'params', 'batch_stats'}`` (all that evaluation restores);
* ``opt``: ``{'step', 'opt_state'}``;
* ``data``: the Grain loader position of every process
  (``process_<i>-of-<n>.bin``), so a resumed run sees the same batches;
* ``config``: the experiment config as JSON.

Restores always pass a target carrying shardings, which is what lets a
checkpoint written by 4 devices load onto 1 (or 256).

A step that cannot be read (a damaged or truncated file) is reported in one
line and the newest readable step is used instead (:func:`restore_newest`);
a training run moves the unreadable step aside to
``WORKDIR/checkpoints_unreadable/`` (nothing is deleted) so that it can save
that step number again.

Inference (evaluation, ``jaxact.eval.predict``, ``jaxact.eval.cam``) restores
through one path: :func:`read_config` (the run's config) and
:func:`restore_for_inference` (``latest|best|STEP`` → ``{'params',
'batch_stats'}`` replicated on a mesh).
"""

import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import jax
import orbax.checkpoint as ocp
from etils import epath
from orbax.checkpoint import checkpoint_managers as policies

from jaxact.runtime import mesh as mesh_lib
from jaxact.runtime.state import TrainState

log = logging.getLogger(__name__)

T = TypeVar("T")

UNREADABLE_DIR = "checkpoints_unreadable"

# checkpoint.best_mode: whether the best step has the largest or smallest metric.
BEST_MODES = ("max", "min")


class CheckpointError(RuntimeError):
  """No checkpoint step can be read; the message names the directory and the steps."""


class LoaderStateHandler(ocp.CheckpointHandler):
  """Saves the per-process data-loader state bytes, one file per process."""

  def _file(self, directory: epath.Path) -> epath.Path:
    return directory / f"process_{jax.process_index()}-of-{jax.process_count()}.bin"

  def save(self, directory: epath.Path, args: "LoaderStateSave") -> None:
    directory = epath.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    self._file(directory).write_bytes(args.state)

  def restore(
    self, directory: epath.Path, args: "LoaderStateRestore | None" = None
  ) -> bytes | None:
    path = self._file(epath.Path(directory))
    if not path.exists():
      others = sorted(p.name for p in epath.Path(directory).glob("process_*"))
      log.warning(
        "No data-loader state for this process in %s (found %s): the run was "
        "saved with a different process count; the data order restarts.",
        directory,
        others,
      )
      return None
    return path.read_bytes()


@ocp.args.register_with_handler(LoaderStateHandler, for_save=True)
@dataclasses.dataclass
class LoaderStateSave(ocp.args.CheckpointArgs):
  state: bytes


@ocp.args.register_with_handler(LoaderStateHandler, for_restore=True)
@dataclasses.dataclass
class LoaderStateRestore(ocp.args.CheckpointArgs):
  pass


def create_manager(
  directory: str | epath.Path,
  *,
  max_to_keep: int = 3,
  best_metric: str | None = None,
  best_mode: str = "max",
  async_save: bool = True,
  read_only: bool = False,
) -> ocp.CheckpointManager:
  """Open (or create) the checkpoint directory.

  Args:
    directory: ``WORKDIR/checkpoints``.
    max_to_keep: the latest ``max_to_keep`` steps are kept ...
    best_metric: ... plus the best step by this metric (``None``: no best).
    best_mode: ``'max'`` or ``'min'``.
    async_save: write in a background thread (call ``wait_until_finished``).
    read_only: open for restore only.
  """
  keep: list[Any] = [policies.LatestN(n=max_to_keep)]
  best_fn = None
  if best_metric:
    sign = 1.0 if best_mode == "max" else -1.0
    best_fn = lambda m: sign * float(m[best_metric])
    keep.append(policies.BestN(get_metric_fn=best_fn, n=1, keep_checkpoints_without_metrics=False))
  # best_fn also makes Orbax store the metrics with each step (for 'best').
  options = ocp.CheckpointManagerOptions(
    best_fn=best_fn,
    best_mode="max",
    preservation_policy=policies.AnyPreservationPolicy(keep),
    enable_async_checkpointing=async_save,
    read_only=read_only,
    create=not read_only,
    cleanup_tmp_directories=not read_only,
  )
  handlers = {
    "model": ocp.StandardCheckpointHandler(),
    "opt": ocp.StandardCheckpointHandler(),
    "data": LoaderStateHandler(),
    "config": ocp.JsonCheckpointHandler(),
  }
  return ocp.CheckpointManager(
    epath.Path(directory).absolute(), options=options, item_handlers=handlers
  )


def save(
  manager: ocp.CheckpointManager,
  state: TrainState,
  *,
  loader_state: bytes,
  config_json: Mapping[str, Any],
  metrics: Mapping[str, float] | None = None,
  force: bool = False,
) -> bool:
  """Start saving ``state`` at ``state.step`` (asynchronously if so configured)."""
  step = int(jax.device_get(state.step))
  args = ocp.args.Composite(
    model=ocp.args.StandardSave({"params": state.params, "batch_stats": state.batch_stats}),
    opt=ocp.args.StandardSave({"step": state.step, "opt_state": state.opt_state}),
    data=LoaderStateSave(loader_state),
    config=ocp.args.JsonSave(dict(config_json)),
  )
  return manager.save(step, args=args, metrics=dict(metrics) if metrics else None, force=force)


def restore_state(manager: ocp.CheckpointManager, step: int, target: TrainState) -> TrainState:
  """Restore the full train state of ``step`` onto ``target``'s shardings."""
  out = manager.restore(
    step,
    args=ocp.args.Composite(
      model=ocp.args.StandardRestore({"params": target.params, "batch_stats": target.batch_stats}),
      opt=ocp.args.StandardRestore({"step": target.step, "opt_state": target.opt_state}),
    ),
  )
  return TrainState(
    step=out.opt["step"],
    params=out.model["params"],
    batch_stats=out.model["batch_stats"],
    opt_state=out.opt["opt_state"],
  )


def restore_variables(manager: ocp.CheckpointManager, step: int, target: Mapping[str, Any]) -> dict:
  """Restore only ``{'params', 'batch_stats'}`` of ``step`` (evaluation)."""
  out = manager.restore(step, args=ocp.args.Composite(model=ocp.args.StandardRestore(dict(target))))
  return dict(out.model)


def read_config(directory: str | epath.Path) -> dict:
  """The experiment config (JSON) stored with the run's checkpoints.

  Any readable step's config (newest first): they are one run's.

  Raises:
    FileNotFoundError: no checkpoint in ``directory``.
    CheckpointError: no step has a readable config.
  """
  manager = create_manager(directory, read_only=True, async_save=False)
  try:
    steps = sorted(manager.all_steps(), reverse=True)
    if not steps:
      raise FileNotFoundError(f"No checkpoint in {manager.directory}: train first")
    errors = []
    for step in steps:
      try:
        out = manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
        return dict(out.config)
      except Exception as e:  # an unreadable step: try the one before
        errors.append(f"step {step}: {type(e).__name__}")
    raise CheckpointError(
      f"No checkpoint in {manager.directory} has a readable config ({', '.join(errors)})"
    )
  finally:
    manager.close()


def stored_model_shapes(manager: ocp.CheckpointManager, step: int) -> dict:
  """The ``model`` item of ``step`` as a tree of shapes (tuples), read from its metadata."""
  meta = manager.item_metadata(step).model
  return jax.tree.map(lambda m: tuple(m.shape), dict(meta), is_leaf=lambda m: hasattr(m, "shape"))


def restore_for_inference(
  directory: str | epath.Path,
  which: str | int = "latest",
  *,
  abstract: Any,
  best_metric: str | None = None,
  best_mode: str = "max",
  max_to_keep: int = 3,
  mesh: jax.sharding.Mesh | None = None,
) -> tuple[int, dict]:
  """Restore ``{'params', 'batch_stats'}`` of ``which`` for evaluation or inference.

  ``'latest'`` falls back to the newest readable step at or before it
  (:func:`restore_newest`); ``'best'`` (by ``best_metric``) or a step number
  must be that very step.

  Args:
    directory: ``WORKDIR/checkpoints``.
    which: ``'latest'``, ``'best'`` or a step number.
    abstract: the variables' tree of ``jax.ShapeDtypeStruct`` (shardings are
      replaced by replication on ``mesh``), or a function of a step's stored
      shapes (:func:`stored_model_shapes`) that returns it.
    best_metric, best_mode, max_to_keep: the run's ``config.checkpoint``.
    mesh: defaults to all devices.

  Returns:
    ``(step, variables)``.

  Raises:
    FileNotFoundError: no checkpoint, or not the requested one.
    CheckpointError: no candidate step can be read.
  """
  mesh = mesh or mesh_lib.create_mesh()
  sharding = mesh_lib.replicated(mesh)
  manager = create_manager(
    directory,
    read_only=True,
    async_save=False,
    max_to_keep=max_to_keep,
    best_metric=best_metric or None,
    best_mode=best_mode,
  )

  def restore(step):
    tree = abstract(stored_model_shapes(manager, step)) if callable(abstract) else abstract
    target = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), tree)
    return restore_variables(manager, step, target)

  try:
    which = str(which)
    step = resolve_step(manager, which, metric=best_metric or None, mode=best_mode)
    candidates = [s for s in manager.all_steps() if s <= step] if which == "latest" else [step]
    return restore_newest(manager, restore, steps=candidates)
  finally:
    manager.close()


def restore_loader_state(manager: ocp.CheckpointManager, step: int) -> bytes | None:
  """This process's saved data-loader position at ``step`` (``None`` if absent)."""
  return manager.restore(step, args=ocp.args.Composite(data=LoaderStateRestore())).data


def best_step(manager: ocp.CheckpointManager, metric: str, mode: str = "max") -> int | None:
  """The kept step with the best ``metric`` (``None`` if no step has metrics)."""
  scored = []
  for step in manager.all_steps():
    m = manager.metrics(step)
    if m and metric in m:
      scored.append((float(m[metric]), step))
  if not scored:
    return None
  return (max if mode == "max" else min)(scored)[1]


def resolve_step(
  manager: ocp.CheckpointManager, which: str | int, *, metric: str | None = None, mode: str = "max"
) -> int:
  """Turn ``'latest'``, ``'best'`` or a step number into an existing step.

  Raises:
    FileNotFoundError: no checkpoint, or not the requested one.
  """
  steps = manager.all_steps()
  if not steps:
    raise FileNotFoundError(
      f"No checkpoint in {manager.directory}: train first "
      "(--mode train) or point --workdir at a trained run."
    )
  which = str(which)
  if which == "latest":
    return max(steps)
  if which == "best":
    step = best_step(manager, metric, mode) if metric else None
    if step is None:
      raise FileNotFoundError(
        f"No checkpoint in {manager.directory} has the metric "
        f"{metric!r}; use eval.checkpoint='latest' or a step from {sorted(steps)}"
      )
    return step
  if which.isdigit() and int(which) in steps:
    return int(which)
  raise FileNotFoundError(
    f"eval.checkpoint={which!r}: no such checkpoint in {manager.directory}; "
    f"available steps: {sorted(steps)} (or 'latest', 'best')"
  )


def _first_line(e: BaseException) -> str:
  text = str(e).strip()
  return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"[:160]


def restore_newest(
  manager: ocp.CheckpointManager,
  restore: Callable[[int], T],
  *,
  steps: list[int] | None = None,
  move_aside: bool = False,
) -> tuple[int, T] | None:
  """Restore the newest step that can be read, newest first.

  The steps that fail to restore are reported in one warning line, with the
  step used instead, never with a traceback. With ``move_aside`` (a
  training run that will save again), process 0 moves each unreadable step
  directory to ``<workdir>/checkpoints_unreadable/<step>`` and the manager is
  reloaded, so the run can save that step number again; nothing is deleted.

  Args:
    manager: the run's checkpoint manager.
    restore: ``step -> restored value``; any exception means "unreadable".
    steps: candidate steps (default: all, newest first).
    move_aside: move unreadable steps aside (training).

  Returns:
    ``(step, restored)``, or ``None`` when the directory holds no checkpoint.

  Raises:
    CheckpointError: there are checkpoints but none can be read.
  """
  candidates = sorted(manager.all_steps() if steps is None else steps, reverse=True)
  if not candidates:
    return None
  errors: dict[int, str] = {}
  found = None
  _quiet_abandoned_reads()
  for step in candidates:
    try:
      found = (step, restore(step))
      break
    except Exception as e:  # any failure to read means "try the one before"
      errors[step] = _first_line(e)
  bad = sorted(errors)
  if bad and move_aside:
    _move_aside(manager, bad)
  where = f" and moved to {_unreadable_dir(manager)}" if move_aside else ""
  if found is None:
    raise CheckpointError(
      f"No checkpoint in {manager.directory} can be read: step(s) {bad} are damaged "
      f"({errors[bad[-1]]}){where}. Restore them from a copy, or use a new --workdir."
    )
  if bad:
    log.warning(
      "Checkpoint step(s) %s in %s cannot be read (%s)%s; using step %d, the newest readable.",
      bad,
      manager.directory,
      errors[bad[-1]],
      where,
      found[0],
    )
  return found


def _quiet_abandoned_reads() -> None:
  """Drop the echoes of an abandoned restore.

  When a read fails, Orbax closes its asyncio loop while TensorStore still
  completes the other reads of that step; each completion then reports
  "RuntimeError: Event loop is closed" through ``sys.unraisablehook`` (one
  traceback per array). They say nothing the one-line warning does not.
  """
  previous = sys.unraisablehook
  if getattr(previous, "_jaxact_quiet", False):
    return

  def hook(args):
    if args.exc_type is RuntimeError and str(args.exc_value) == "Event loop is closed":
      return
    previous(args)

  hook._jaxact_quiet = True
  sys.unraisablehook = hook


def _unreadable_dir(manager: ocp.CheckpointManager) -> str:
  return os.path.join(os.path.dirname(str(manager.directory)), UNREADABLE_DIR)


def _move_aside(manager: ocp.CheckpointManager, steps: list[int]) -> None:
  """Process 0 moves ``steps`` out of the manager's directory; all reload it."""
  mesh_lib.barrier("jaxact_unreadable_checkpoints_found")
  if jax.process_index() == 0:
    target = _unreadable_dir(manager)
    os.makedirs(target, exist_ok=True)
    for step in steps:
      src = os.path.join(str(manager.directory), str(step))
      dst = os.path.join(target, str(step))
      n = 1
      while os.path.exists(dst):
        dst = os.path.join(target, f"{step}.{n}")
        n += 1
      os.replace(src, dst)
  mesh_lib.barrier("jaxact_unreadable_checkpoints_moved")
  manager.reload()
