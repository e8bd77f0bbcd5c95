"""``config.init_from``: start training from other weights.

* ``kind='orbax'``: another jaxact run (its workdir, its ``checkpoints/`` or
  one step directory's parent). Parameters and BatchNorm statistics are merged
  *by name*: every entry with the same path and shape is taken; the rest (a
  new classifier for another number of classes, a head that the source did not
  have) keeps its fresh initialisation and is listed in the log. Paper B's
  second stage starts this way from the first stage's run.
* ``kind='torch'``: a PyTorch ``.pth``/``.safetensors`` ImageNet checkpoint,
  loaded into the ``streams`` backbones by ``jaxact.models.convert.from_torch``
  (cross-modality conv1 for the flow stream).
* ``kind='auto'``: a directory is ``orbax``, a file is ``torch``.
"""

import logging
import os
from typing import Any

import flax
import jax
import optax
from etils import epath

from jaxact.models import convert
from jaxact.runtime import checkpoint as ckpt
from jaxact.runtime import mesh as mesh_lib
from jaxact.runtime.state import TrainState

log = logging.getLogger(__name__)


# config.init_from.kind: 'auto' picks 'orbax' for a directory, 'torch' for a file.
KINDS = ("auto", "orbax", "torch")


class InitFromError(ValueError):
  """``config.init_from`` points to nothing usable; the message says why."""


def _checkpoint_dir(path: str) -> epath.Path:
  p = epath.Path(os.path.expanduser(path))
  for candidate in (p / "checkpoints", p):
    if candidate.is_dir() and any(c.name.isdigit() for c in candidate.iterdir()):
      return candidate
  raise InitFromError(
    f"config.init_from.path={path!r} holds no Orbax checkpoint "
    "(expected a run's workdir or its checkpoints/ directory)"
  )


def load_orbax_variables(path: str, step: str, mesh: jax.sharding.Mesh) -> dict:
  """``{'params', 'batch_stats'}`` of another run's checkpoint, replicated on ``mesh``."""
  manager = ckpt.create_manager(_checkpoint_dir(path), read_only=True, async_save=False)
  try:
    chosen = ckpt.resolve_step(manager, step)
    tree = manager.item_metadata(chosen)["model"].tree
    target = jax.tree.map(
      lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=mesh_lib.replicated(mesh)), tree
    )
    log.info("init_from: %s step %d", manager.directory, chosen)
    return ckpt.restore_variables(manager, chosen, target)
  finally:
    manager.close()


def merge_by_name(current: dict, loaded: dict) -> tuple[dict, list[str], list[str]]:
  """Take every leaf of ``loaded`` whose path and shape match ``current``.

  Returns:
    ``(merged, kept_fresh, ignored)``: the merged tree, the paths of
    ``current`` left as they were, and the paths of ``loaded`` not used.
  """
  flat_cur = flax.traverse_util.flatten_dict(flax.core.unfreeze(current), sep="/")
  flat_new = flax.traverse_util.flatten_dict(flax.core.unfreeze(loaded), sep="/")
  merged, fresh = {}, []
  for key, value in flat_cur.items():
    new = flat_new.get(key)
    if new is not None and tuple(new.shape) == tuple(value.shape):
      merged[key] = new.astype(value.dtype)
    else:
      merged[key] = value
      fresh.append(
        key if new is None else f"{key} (shape {tuple(new.shape)} != {tuple(value.shape)})"
      )
  ignored = sorted(set(flat_new) - set(flat_cur))
  return flax.traverse_util.unflatten_dict(merged, sep="/"), fresh, ignored


def init_state_from(
  state: TrainState,
  tx: optax.GradientTransformation,
  cfg: Any,
  mesh: jax.sharding.Mesh,
  model: Any = None,
) -> TrainState:
  """Return ``state`` with parameters from ``cfg.path`` and a fresh optimizer.

  Args:
    state: freshly initialised state.
    tx: the optimizer (its state is re-initialised for the new parameters).
    cfg: ``config.init_from`` (``path``, ``kind``, ``step``, ``layout``, ``streams``).
    mesh: the mesh (results are replicated on it).
    model: the network (needed for ``kind='torch'``).

  Raises:
    InitFromError: nothing in the path matches the model.
  """
  path = os.path.expanduser(cfg.path)  # jaxact.config.validate: it exists, kind in KINDS
  kind = cfg.kind if cfg.kind != "auto" else ("orbax" if os.path.isdir(path) else "torch")
  current = {"params": state.params, "batch_stats": state.batch_stats}
  if kind == "orbax":
    loaded = load_orbax_variables(path, str(cfg.step), mesh)
    variables, fresh, ignored = merge_by_name(current, loaded)
    n_total = len(jax.tree.leaves(current))
    if len(fresh) == n_total:
      raise InitFromError(
        f"config.init_from.path={cfg.path!r}: no parameter matches the model "
        "by name and shape (is it a checkpoint of another architecture?)"
      )
    if fresh:
      log.warning(
        "init_from: %d of %d entries keep their fresh initialisation: %s",
        len(fresh),
        n_total,
        ", ".join(fresh[:20]) + (" ..." if len(fresh) > 20 else ""),
      )
    if ignored:
      log.warning(
        "init_from: %d checkpoint entries unused: %s",
        len(ignored),
        ", ".join(ignored[:20]) + (" ..." if len(ignored) > 20 else ""),
      )
  else:  # "torch"
    variables = jax.device_get(current)
    for stream in cfg.streams:
      variables = convert.from_torch(
        path, model, layout=cfg.layout, variables=variables, stream=stream
      )
  replicated = mesh_lib.replicated(mesh)
  params = jax.device_put(variables["params"], replicated)
  batch_stats = jax.device_put(variables.get("batch_stats", {}), replicated)
  opt_state = jax.jit(tx.init, out_shardings=replicated)(params)
  return state.replace(params=params, batch_stats=batch_stats, opt_state=opt_state)
