"""Multi-view evaluation of a checkpoint: ``--mode eval`` and the end of training.

Each test video is scored on V = clips × crops views; the softmax scores of
the views are averaged per stream (``spatial``, ``temporal`` and ``head``, the
network's own fused classifier), then ``fused`` = the weighted sum given by
``config.eval.fusion_weights``. Results go to ``WORKDIR/eval_results.json``.
"""

import itertools
import json
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxact.eval import metrics as metrics_lib
from jaxact.train import checkpoint as ckpt
from jaxact.train import inputs as inputs_lib
from jaxact.train import mesh as mesh_lib
from jaxact.train import reporting
from jaxact.train import state as state_lib
from jaxact.train import step as step_lib

log = logging.getLogger(__name__)

RESULTS_FILE = "eval_results.json"


def _gather(x: jax.Array) -> np.ndarray:
  if jax.process_count() == 1:
    return np.asarray(jax.device_get(x))
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def score_dataset(
  model: Any,
  variables: dict,
  batches: Iterable[dict],
  mesh: jax.sharding.Mesh,
  config: Any,
  *,
  num_batches: int = 0,
  progress: bool = False,
  compiled: dict | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, int]:
  """Score every example of an evaluation pass once.

  Args:
    model: the network.
    variables: ``{'params', 'batch_stats'}`` replicated on ``mesh``.
    batches: this process's evaluation batches: ``rgb (B, V, T, H, W, 3)``,
      ``flow (B, V, T, H, W, 2L)``, ``label``, ``mask``, ``index`` ``(B,)``.
    mesh: the data-parallel mesh.
    config: the experiment config.
    num_batches: expected number of batches (progress bar only).
    progress: show a progress bar (process 0).
    compiled: a dict that keeps the compiled eval step between calls (key
      ``'eval_step'``), for repeated scoring with the same shapes.

  Returns:
    ``(scores, labels, views)``: per-stream averaged softmax scores
    ``{name: (N, K)}`` ordered by example index, labels ``(N,)`` and V.
  """
  compiled = {} if compiled is None else compiled
  scores_fn = compiled.get("eval_step")
  by_index: dict[int, tuple[dict[str, np.ndarray], int]] = {}
  views = 0
  bar = reporting.Progress(
    num_batches, 0, enabled=progress and jax.process_index() == 0, desc="eval"
  )
  for batch in batches:
    views = batch["rgb"].shape[1] if "rgb" in batch else batch["flow"].shape[1]
    gb = mesh_lib.global_batch(mesh, batch)
    if scores_fn is None:  # every batch has the same shape (the last one is padded)
      jitted = jax.jit(
        step_lib.make_eval_step(model, config), out_shardings=mesh_lib.batch_sharded(mesh)
      )
      scores_fn = compiled["eval_step"] = jitted.lower(variables, gb).compile()
      mesh_lib.barrier("jaxact_eval_step_compiled")
    out = {k: _gather(v) for k, v in scores_fn(variables, gb).items()}
    labels, mask, index = (_gather(gb[k]) for k in ("label", "mask", "index"))
    for row in np.nonzero(mask)[0]:
      by_index[int(index[row])] = ({k: v[row] for k, v in out.items()}, int(labels[row]))
    bar.update(1)
  bar.close()
  if not by_index:
    raise ValueError(
      f"The evaluation split {config.data.eval_split!r} of {config.data.name!r} yielded no example"
    )
  order = sorted(by_index)
  streams = by_index[order[0]][0].keys()
  scores = {k: np.stack([by_index[i][0][k] for i in order]) for k in streams}
  labels = np.asarray([by_index[i][1] for i in order], np.int64)
  return scores, labels, views


def results_dict(
  scores: dict[str, np.ndarray],
  labels: np.ndarray,
  class_names: list[str],
  fusion_weights: dict[str, float],
  **info: Any,
) -> dict:
  """The ``eval_results.json`` content (``info`` adds step, split, ...)."""
  scores = dict(scores)
  scores["fused"] = metrics_lib.fuse_scores(scores, fusion_weights)
  out = dict(info)
  out["num_examples"] = len(labels)
  out["fusion_weights"] = {k: float(v) for k, v in fusion_weights.items()}
  out["class_names"] = list(class_names)
  for name in ("spatial", "temporal", "fused", "head"):
    if name in scores:
      out[name] = metrics_lib.summarize(scores[name], labels, class_names)
  return out


class Validator:
  """Scores the evaluation split with in-memory variables during training.

  Used when ``config.eval.validate_at_checkpoints`` is set: the result is
  logged with the step and ranks checkpoints for ``checkpoint.best_metric``.
  The eval step is compiled once and reused at every checkpoint.
  """

  def __init__(self, model: Any, config: Any, mesh: jax.sharding.Mesh, loader: Any):
    self._model, self._config, self._mesh, self._loader = model, config, mesh, loader
    self._compiled: dict = {}

  def __call__(self, variables: dict) -> dict[str, float]:
    """Args: variables ``{'params', 'batch_stats'}`` on the mesh.

    Returns:
      ``{'val_top1_spatial', 'val_top1_temporal', 'val_top1_fused'}`` (the
      streams the model has), the same on every process.
    """
    scores, labels, _ = score_dataset(
      self._model, variables, iter(self._loader), self._mesh, self._config, compiled=self._compiled
    )
    results = results_dict(
      scores, labels, list(self._loader.class_names), dict(self._config.eval.fusion_weights)
    )
    return {
      f"val_top1_{name}": float(results[name]["top1"])
      for name in ("spatial", "temporal", "fused")
      if name in results
    }


def write_results(workdir: str, results: dict) -> str:
  """Write ``WORKDIR/eval_results.json`` atomically (process 0 only)."""
  path = os.path.join(workdir, RESULTS_FILE)
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump(results, f, indent=1)
    os.replace(tmp, path)
  return path


def evaluate_checkpoint(
  config: Any,
  workdir: str,
  *,
  model_fn: Callable[[Any, int], Any] = inputs_lib.create_model,
  loader_fn: Callable[..., Any] = inputs_lib.create_loader,
  mesh: jax.sharding.Mesh | None = None,
) -> dict:
  """Restore the parameters of ``config.eval.checkpoint`` and evaluate them.

  Args:
    config: the experiment config (``eval.checkpoint``: ``'latest'``,
      ``'best'`` or a step number).
    workdir: the training run's directory.
    model_fn, loader_fn: as in ``jaxact.train.loop.train_and_evaluate``.
    mesh: defaults to all devices.

  Returns:
    The results, also written to ``WORKDIR/eval_results.json``.
  """
  mesh = mesh or mesh_lib.create_mesh()
  if loader_fn is inputs_lib.create_loader:
    inputs_lib.ensure_dataset(config)
  manager = ckpt.create_manager(
    os.path.join(workdir, "checkpoints"),
    read_only=True,
    async_save=False,
    max_to_keep=config.checkpoint.max_to_keep,
    best_metric=config.checkpoint.best_metric or None,
    best_mode=config.checkpoint.best_mode,
  )
  try:
    step = ckpt.resolve_step(
      manager,
      config.eval.checkpoint,
      metric=config.checkpoint.best_metric or None,
      mode=config.checkpoint.best_mode,
    )
    loader = loader_fn(config, train=False)
    model = model_fn(config, loader.num_classes)
    iterator = iter(loader)
    first = next(iterator)
    spec = {
      k: jax.ShapeDtypeStruct((1,) + v.shape[2:], v.dtype)
      for k, v in first.items()
      if k in ("rgb", "flow")
    }
    abstract = jax.eval_shape(
      lambda key: state_lib.init_variables(model, spec, key), jax.random.key(0)
    )
    target = jax.tree.map(
      lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=mesh_lib.replicated(mesh)), abstract
    )
    variables = ckpt.restore_variables(manager, step, target)
  finally:
    manager.close()
  log.info(
    "Evaluating step %d on %d examples of %s/%s",
    step,
    loader.num_examples,
    config.data.name,
    config.data.eval_split,
  )
  scores, labels, views = score_dataset(
    model,
    variables,
    itertools.chain([first], iterator),
    mesh,
    config,
    num_batches=-(-loader.num_examples // config.eval.batch_size),
    progress=config.progress_bar,
  )
  results = results_dict(
    scores,
    labels,
    list(loader.class_names),
    dict(config.eval.fusion_weights),
    step=int(step),
    views=int(views),
    dataset=config.data.name,
    split=config.data.eval_split,
    checkpoint=str(config.eval.checkpoint),
  )
  path = write_results(workdir, results)
  if jax.process_index() == 0:
    log.info(
      "Step %d: top-1 spatial %.4f, temporal %.4f, fused %.4f (%d examples, %d views) → %s",
      step,
      results.get("spatial", {}).get("top1", float("nan")),
      results.get("temporal", {}).get("top1", float("nan")),
      results["fused"]["top1"],
      results["num_examples"],
      views,
      path,
    )
  return results
