"""Multi-view scoring: view averaging, padding, every example counted once."""

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import pytest
from array_loader import ArrayLoader

from jaxact.config import get_base_config
from jaxact.runtime import mesh as mesh_lib
from jaxact.runtime import scoring


class _MeanModel(nn.Module):
  """Logits are fixed functions of the normalised input means (no parameters used)."""

  @nn.compact
  def __call__(self, x, train=False):
    self.param("unused", nn.initializers.zeros, (1,))
    r = x["rgb"].mean(axis=(1, 2, 3, 4))
    f = x["flow"].mean(axis=(1, 2, 3, 4))
    spatial = jnp.stack([r, -r, 0 * r], -1)
    temporal = jnp.stack([0 * f, f, -f], -1)
    return spatial + temporal, {"spatial_logits": spatial, "temporal_logits": temporal}


def _softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def test_views_are_averaged_and_padding_dropped():
  rng = np.random.default_rng(0)
  n, v = 10, 3  # 10 examples, eval batch 4 → 2 padding rows in the last batch
  arrays = {
    "rgb": rng.integers(0, 256, (n, v, 1, 2, 2, 3), dtype=np.uint8),
    "flow": rng.integers(0, 256, (n, v, 1, 2, 2, 2), dtype=np.uint8),
    "label": rng.integers(0, 3, n).astype(np.int32),
  }
  loader = ArrayLoader(arrays, train=False, global_batch_size=4, class_names=["a", "b", "c"])
  config = get_base_config()
  config.eval.batch_size = 4
  mesh = mesh_lib.create_mesh()
  model = _MeanModel()
  variables = {"params": {"unused": jnp.zeros(1)}}
  scores, labels, views = scoring.score_dataset(model, variables, loader, mesh, config)
  assert views == v and labels.tolist() == arrays["label"].tolist()
  r = (arrays["rgb"] / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
  r = r.mean(axis=(2, 3, 4, 5))  # (n, v)
  f = ((arrays["flow"].astype(np.float64) - 128) / 128).mean(axis=(2, 3, 4, 5))
  expected_s = _softmax(np.stack([r, -r, 0 * r], -1)).mean(1)
  expected_t = _softmax(np.stack([0 * f, f, -f], -1)).mean(1)
  np.testing.assert_allclose(scores["spatial"], expected_s, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(scores["temporal"], expected_t, rtol=1e-5, atol=1e-6)

  results = scoring.results_dict(
    scores, labels, ["a", "b", "c"], {"head": 0.0, "spatial": 1.0, "temporal": 2.0}, step=7, views=v
  )
  fused = expected_s + 2 * expected_t
  assert results["num_examples"] == n and results["step"] == 7
  assert results["fused"]["top1"] == pytest.approx(np.mean(fused.argmax(1) == labels))
  assert results["spatial"]["top1"] == pytest.approx(np.mean(expected_s.argmax(1) == labels))


def test_average_views_maps_flipped_views_back():
  # Hand-made: 3 classes, 0 = "right" and 1 = "left" are mirrors, 2 is its own.
  # View 0 is the clip as stored, view 1 its flip: a "right" clip seen flipped
  # scores "left" highest.
  probs = np.array([[[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]]], np.float32)  # (B=1, V=2, K=3)
  view_perm = np.array([[[0, 1, 2], [1, 0, 2]]], np.int32)
  got = np.asarray(scoring.average_views(jnp.asarray(probs), jnp.asarray(view_perm)))
  np.testing.assert_allclose(got, [[0.75, 0.15, 0.1]], rtol=1e-6)
  # Without the permutation the flipped view argues for the wrong class.
  np.testing.assert_allclose(
    np.asarray(scoring.average_views(jnp.asarray(probs))), [[0.4, 0.5, 0.1]]
  )


def test_score_dataset_permutes_flipped_views_before_averaging():
  # _MeanModel's temporal logits are (0, f, -f) for mean flow f: a view whose
  # flow is +x scores class 1, its mirror image (-x) class 2. With classes 1
  # and 2 declared mirrors, both views of every clip must agree.
  n, k = 4, 3
  flow = np.empty((n, 2, 1, 2, 2, 2), np.uint8)
  flow[:, 0] = 160  # stored view: +x motion
  flow[:, 1] = 96  # flipped view: x negated (255 - v ~ 96 quantised)
  arrays = {
    "rgb": np.zeros((n, 2, 1, 2, 2, 3), np.uint8),
    "flow": flow,
    "label": np.ones(n, np.int32),
    "view_perm": np.broadcast_to(np.array([[0, 1, 2], [0, 2, 1]], np.int32), (n, 2, k)).copy(),
  }
  config = get_base_config()
  config.eval.batch_size = 4
  mesh = mesh_lib.create_mesh()
  variables = {"params": {"unused": jnp.zeros(1)}}

  def temporal(arrs):
    loader = ArrayLoader(arrs, train=False, global_batch_size=4, class_names=["s", "r", "l"])
    scores, _, _ = scoring.score_dataset(_MeanModel(), variables, loader, mesh, config)
    return scores["temporal"]

  f_up, f_down = (160 - 128) / 128, (96 - 128) / 128
  view0 = _softmax(np.array([0.0, f_up, -f_up]))
  view1 = _softmax(np.array([0.0, f_down, -f_down]))  # scores class 2 ("l") highest
  mapped = temporal(arrays)
  np.testing.assert_allclose(mapped, np.tile((view0 + view1[[0, 2, 1]]) / 2, (n, 1)), rtol=1e-5)
  assert (mapped.argmax(1) == 1).all()
  plain = {key: v for key, v in arrays.items() if key != "view_perm"}
  np.testing.assert_allclose(temporal(plain), np.tile((view0 + view1) / 2, (n, 1)), rtol=1e-5)
