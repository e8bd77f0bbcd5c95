"""Multi-view scoring of an evaluation split, shared by evaluation and training.

Each test video is scored on V = clips × crops views; the softmax scores of
the views are averaged per stream (``spatial``, ``temporal`` and ``head``, the
network's own fused classifier), then ``fused`` = the weighted late fusion
given by ``config.eval.fusion_weights`` (``jaxact.runtime.metrics``).

A mirrored view of a dataset with mirror pairs ("moving right" seen flipped is
"moving left") scores the mirror classes: the batch's ``view_perm`` ``(B, V,
K)`` (``jaxact.data.pipeline``) maps each view's scores back to the clip's
classes, ``clip[k] = view[view_perm[v, k]]``, before the views are averaged.

``jaxact.eval.evaluate`` scores a restored checkpoint with it; the training
loop scores its in-memory variables at every checkpoint with
:class:`Validator` (``config.eval.validate_at_checkpoints``).
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from jaxact.data import device_augment
from jaxact.data.normalize import normalize_inputs
from jaxact.runtime import mesh as mesh_lib
from jaxact.runtime import metrics as metrics_lib
from jaxact.runtime import reporting

# config.compute_dtype → the models' compute dtype (parameters stay float32).
COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def stream_logits(logits: jax.Array, features: Mapping[str, Any]) -> dict[str, jax.Array]:
  """``{'head', 'spatial', 'temporal'}`` float32 logits ``(N, K)`` of a model output.

  ``head`` is the network's own classifier over both streams; a stream whose
  ``<name>_logits`` feature the model does not return is left out.
  """
  out = {"head": logits.astype(jnp.float32)}
  for name in ("spatial", "temporal"):
    key = f"{name}_logits"
    if key in features:
      out[name] = features[key].astype(jnp.float32)
  return out


def make_eval_step(
  model: nn.Module, compute_dtype: str, image_size: int = 0
) -> Callable[[dict, dict], dict]:
  """Build the multi-view scoring step.

  Args:
    model: the network.
    compute_dtype: a key of ``COMPUTE_DTYPES``.
    image_size: S of the views the step makes on the device from the
      pipeline's canvases (``config.data.image_size``; needed for batches with
      ``aug``, see ``jaxact.data.device_augment.eval_inputs``).

  Returns:
    ``scores(variables, batch)``: with ``batch`` the pipeline's (``rgb (B, C,
    T, P, 3)``, ``flow (B, C, T, 2L, P)`` canvases, ``aug``) or already made
    views, ``batch['rgb']`` uint8 ``(B, V, T, H, W, 3)`` and ``batch['flow']``
    ``(B, V, T, H, W, 2L)``, returns ``{'head', 'spatial', 'temporal'}``
    softmax probabilities averaged over the ``V`` views, float32 ``(B, K)``
    (missing streams left out). An optional ``batch['view_perm']`` int
    ``(B, V, K)`` first permutes each view's probabilities
    (:func:`average_views`).
  """
  dtype = COMPUTE_DTYPES[compute_dtype]

  def scores(variables, batch):
    b, v = batch["label"].shape[0], views_of(batch)
    if "aug" in batch:
      batch = device_augment.eval_inputs(batch, out_size=image_size)
    views = {
      k: batch[k].reshape((b * v,) + batch[k].shape[2:]) for k in ("rgb", "flow") if k in batch
    }
    logits, features = model.apply(variables, normalize_inputs(views, dtype), train=False)
    streams = stream_logits(logits, features)
    perm = batch.get("view_perm")
    return {
      k: average_views(jax.nn.softmax(x, -1).reshape(b, v, -1), perm) for k, x in streams.items()
    }

  return scores


def average_views(probs: jax.Array, view_perm: jax.Array | None = None) -> jax.Array:
  """Mean over views of ``probs`` ``(B, V, K)`` → ``(B, K)``.

  ``view_perm`` int ``(B, V, K)`` (or None: as is) maps each view's class
  scores back to the clip's classes first: ``out[b, v, k] = probs[b, v,
  view_perm[b, v, k]]`` (a flipped view's "left" score is the clip's "right").
  """
  if view_perm is not None:
    probs = jnp.take_along_axis(probs, view_perm.astype(jnp.int32), axis=-1)
  return probs.mean(1)


def views_of(batch: dict) -> int:
  """V of an evaluation batch: canvases and ``aug`` (clips × views per clip)
  or made views (their axis 1)."""
  if "aug" in batch:
    return batch["aug"]["affine"].shape[1] * batch["aug"]["affine"].shape[2]
  return batch["rgb"].shape[1] if "rgb" in batch else batch["flow"].shape[1]


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
    batches: this process's evaluation batches: the pipeline's canvases and
      ``aug`` (``jaxact.data.pipeline.EvalSample``) or views ``rgb (B, V, T,
      H, W, 3)``, ``flow (B, V, T, H, W, 2L)``; and ``label``, ``mask``,
      ``index`` ``(B,)``.
    mesh: the data-parallel mesh.
    config: the experiment config (``compute_dtype``; ``data`` names in errors).
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
    gb = mesh_lib.global_batch(mesh, batch)
    if scores_fn is None:  # every batch has the same shape (the last one is padded)
      jitted = jax.jit(
        make_eval_step(model, config.compute_dtype, config.data.image_size),
        out_shardings=mesh_lib.batch_sharded(mesh),
      )
      scores_fn = compiled["eval_step"] = jitted.lower(variables, gb).compile()
      mesh_lib.barrier("jaxact_eval_step_compiled")
    out = {k: _gather(v) for k, v in scores_fn(variables, gb).items()}
    views = views_of(batch)
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
  """The ``eval_results.json`` content (``info`` adds step, split, ...).

  ``fused`` is the late fusion of the streams' scores by ``fusion_weights``;
  ``head`` the network's own classifier.
  """
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
      self._model,
      variables,
      iter(self._loader),
      self._mesh,
      self._config,
      compiled=self._compiled,
    )
    results = results_dict(
      scores, labels, list(self._loader.class_names), dict(self._config.eval.fusion_weights)
    )
    return {
      f"val_top1_{name}": float(results[name]["top1"])
      for name in ("spatial", "temporal", "fused")
      if name in results
    }
