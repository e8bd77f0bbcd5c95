"""Evaluation metrics against hand-computed values."""

import numpy as np
import pytest

from jaxact.runtime import metrics

SCORES = np.array(
  [
    [0.7, 0.2, 0.1],  # label 0 → right
    [0.5, 0.4, 0.1],  # label 1 → predicted 0, 1 is 2nd
    [0.1, 0.1, 0.8],  # label 2 → right
    [0.3, 0.6, 0.1],
  ]
)  # label 2 → predicted 1, 2 is 3rd
LABELS = np.array([0, 1, 2, 2])


def test_topk():
  assert metrics.topk_accuracy(SCORES, LABELS, 1) == pytest.approx(2 / 4)
  assert metrics.topk_accuracy(SCORES, LABELS, 2) == pytest.approx(3 / 4)
  assert metrics.topk_accuracy(SCORES, LABELS, 5) == 1.0  # k clipped to K


def test_confusion_and_mean_class():
  conf = metrics.confusion_matrix(SCORES.argmax(1), LABELS, 3)
  np.testing.assert_array_equal(conf, [[1, 0, 0], [1, 0, 0], [0, 1, 1]])
  np.testing.assert_allclose(metrics.per_class_accuracy(conf), [1.0, 0.0, 0.5])
  assert metrics.mean_class_accuracy(conf) == pytest.approx(0.5)
  # A class without examples is left out of the mean, not counted as 0.
  conf4 = metrics.confusion_matrix(SCORES.argmax(1), LABELS, 4)
  assert np.isnan(metrics.per_class_accuracy(conf4)[3])
  assert metrics.mean_class_accuracy(conf4) == pytest.approx(0.5)


def test_fuse_scores():
  a, b = np.eye(3)[:2], np.eye(3)[[1, 1]]
  fused = metrics.fuse_scores(
    {"spatial": a, "temporal": b, "head": a}, {"spatial": 1.0, "temporal": 1.5, "head": 0.0}
  )
  np.testing.assert_allclose(fused, a + 1.5 * b)
  with pytest.raises(ValueError, match="temporal"):
    metrics.fuse_scores({"spatial": a}, {"temporal": 1.0})


def test_summarize_fields():
  out = metrics.summarize(SCORES, LABELS, ["a", "b", "c"])
  assert out["top1"] == 0.5 and out["top5"] == 1.0 and out["mean_class"] == pytest.approx(0.5)
  assert out["per_class"] == {"a": 1.0, "b": 0.0, "c": 0.5}
  assert out["confusion"] == [[1, 0, 0], [1, 0, 0], [0, 1, 1]]
