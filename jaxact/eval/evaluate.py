"""Evaluation of a checkpoint: ``--mode eval`` and the end of training.

Restores the parameters of ``config.eval.checkpoint`` (``'latest'``: the
newest readable step), scores the evaluation split on V = clips × crops views
(``jaxact.runtime.scoring``: per-stream view-averaged softmax scores, then
``fused`` = their weighted late fusion) and writes ``WORKDIR/eval_results.json``,
with its pictures ``confusion_matrix.png`` and ``per_class_accuracy.png`` beside it
(``jaxact.eval.figures``; also to TensorBoard when ``config.tensorboard`` is set).
"""

import json
import logging
import os
from typing import Any

import jax

from jaxact.eval import figures
from jaxact.runtime import checkpoint as ckpt
from jaxact.runtime import mesh as mesh_lib
from jaxact.runtime import scoring
from jaxact.runtime import state as state_lib
from jaxact.runtime.inputs import Loader

log = logging.getLogger(__name__)

RESULTS_FILE = figures.RESULTS_FILE


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
  model: Any,
  loader: Loader,
  mesh: jax.sharding.Mesh | None = None,
) -> dict:
  """Restore the parameters of ``config.eval.checkpoint`` and evaluate them.

  Args:
    config: the validated experiment config (``eval.checkpoint``:
      ``'latest'``, ``'best'`` or a step number).
    workdir: the training run's directory.
    model: the network (``jaxact.runtime.inputs.build_model``).
    loader: this process's evaluation loader (one pass per ``iter()``).
    mesh: defaults to all devices.

  Returns:
    The results, also written to ``WORKDIR/eval_results.json``; process 0
    draws them into ``WORKDIR/confusion_matrix.png`` and
    ``WORKDIR/per_class_accuracy.png`` (and TensorBoard when
    ``config.tensorboard`` is set).

  Raises:
    FileNotFoundError: no checkpoint, or not the requested one.
    jaxact.runtime.checkpoint.CheckpointError: no candidate step can be read.
  """
  mesh = mesh or mesh_lib.create_mesh()
  iterator = iter(loader)
  first = next(iterator)
  abstract = state_lib.abstract_variables_for(model, first, config.data.image_size)
  step, variables = ckpt.restore_for_inference(
    os.path.join(workdir, "checkpoints"),
    config.eval.checkpoint,
    abstract=abstract,
    best_metric=config.checkpoint.best_metric or None,
    best_mode=config.checkpoint.best_mode,
    max_to_keep=config.checkpoint.max_to_keep,
    mesh=mesh,
  )
  log.info(
    "Evaluating step %d on %d examples of %s/%s",
    step,
    loader.num_examples,
    config.data.name,
    config.data.eval_split,
  )
  scores, labels, views = scoring.score_dataset(
    model,
    variables,
    _chain(first, iterator),
    mesh,
    config,
    num_batches=-(-loader.num_examples // config.eval.batch_size),
    progress=config.progress_bar,
  )
  results = scoring.results_dict(
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
    write_pictures(results, workdir, tensorboard=bool(config.tensorboard))
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


def write_pictures(results: dict, workdir: str, *, tensorboard: bool) -> None:
  """Draw the result pictures next to ``eval_results.json`` (and into ``WORKDIR/tensorboard``).

  The results are already on disk: a picture that cannot be drawn or written
  is a warning that says how to redraw it, not a failed evaluation.
  """
  try:
    figures.write_figures(
      results,
      workdir,
      tensorboard_dir=os.path.join(workdir, "tensorboard") if tensorboard else None,
    )
  except Exception as e:  # e.g. a full disk; the results file is written
    log.warning(
      "Could not draw the result pictures in %s (%s: %s); redraw them with "
      "python -m jaxact.tools.report %s",
      workdir,
      type(e).__name__,
      e,
      workdir,
    )


def _chain(first: dict, rest):
  yield first
  yield from rest
