"""Classification metrics on accumulated scores (numpy, host side)."""

from collections.abc import Mapping, Sequence

import numpy as np

# Streams whose view-averaged scores late fusion can weigh: ``head`` is the
# network's own fused classifier, ``spatial``/``temporal`` each stream's.
FUSION_STREAMS = ("head", "spatial", "temporal")


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
  """Fraction of rows whose label is among the ``k`` highest scores.

  Args:
    scores: ``(N, K)`` class scores.
    labels: int ``(N,)``.
    k: clipped to ``K``.
  """
  if len(labels) == 0:
    return float("nan")
  k = min(k, scores.shape[1])
  top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
  return float(np.mean(np.any(top == labels[:, None], axis=1)))


def confusion_matrix(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
  """int64 ``(K, K)``: row = true class, column = predicted class."""
  out = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(out, (labels, predictions), 1)
  return out


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
  """Recall of each class ``(K,)``; NaN for classes with no example."""
  totals = confusion.sum(axis=1)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(totals > 0, np.diag(confusion) / np.maximum(totals, 1), np.nan)


def mean_class_accuracy(confusion: np.ndarray) -> float:
  """Mean of the per-class accuracies over the classes present."""
  acc = per_class_accuracy(confusion)
  return float(np.nanmean(acc)) if np.any(~np.isnan(acc)) else float("nan")


def fuse_scores(scores: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
  """Weighted sum (late fusion) of per-stream scores; streams with weight 0 are skipped.

  ``weights`` has a non-zero weight (``jaxact.config.validate``).

  Raises:
    ValueError: a weighted stream is one the model gives no scores for.
  """
  used = {k: float(w) for k, w in weights.items() if float(w)}
  missing = sorted(set(used) - set(scores))
  if missing:
    raise ValueError(
      f"config.eval.fusion_weights names {missing}, but the model gives scores for {sorted(scores)}"
    )
  return sum(w * scores[k] for k, w in used.items())


def summarize(scores: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> dict:
  """``top1``, ``top5``, ``mean_class``, ``per_class`` (name → accuracy) and
  ``confusion`` (list of rows) for ``scores (N, K)`` and ``labels (N,)``."""
  num_classes = scores.shape[1]
  conf = confusion_matrix(np.argmax(scores, 1), labels, num_classes)
  per_class = per_class_accuracy(conf)
  names = (
    list(class_names) if len(class_names) == num_classes else [str(i) for i in range(num_classes)]
  )
  return {
    "top1": topk_accuracy(scores, labels, 1),
    "top5": topk_accuracy(scores, labels, 5),
    "mean_class": mean_class_accuracy(conf),
    "per_class": {n: (None if np.isnan(a) else float(a)) for n, a in zip(names, per_class)},
    "confusion": conf.tolist(),
  }
