"""Grad-CAM maps (jaxact.eval.cam) on the tiny two-stream networks."""

import sys
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxact.models as models
from jaxact.eval import cam
from jaxact.models import recurrent

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from flax_testing import random_variables

N, T, S, L, K = 3, 2, 64, 2, 3
# Fusion at conv4: the head's logit reaches conv4 only through the fused map.
CONVLSTM = models.create("two_stream_convlstm_tiny", num_classes=K, fusion_layer="conv4")


def _inputs(seed=0):
  rng = np.random.default_rng(seed)
  return {
    "rgb": jnp.asarray(rng.normal(size=(N, T, S, S, 3)), jnp.float32),
    "flow": jnp.asarray(rng.normal(size=(N, T, S, S, 2 * L)), jnp.float32),
  }


def test_maps_equal_an_independent_computation():
  x = _inputs()
  v = random_variables(CONVLSTM, x)
  result = cam.grad_cam(CONVLSTM, v, x, layer="conv4")
  # The activations Grad-CAM sees, and the gradients of the head's logit.
  run = cam._compiled(cam.cam_model(CONVLSTM), "conv4", "head", cam.STREAMS)
  logits, target, acts, grads = run(v, x, jnp.full((N,), -1, jnp.int32))
  plain_logits, features = CONVLSTM.apply(v, x)
  np.testing.assert_allclose(np.asarray(logits["head"]), np.asarray(plain_logits), rtol=1e-5)
  np.testing.assert_array_equal(np.asarray(target), np.argmax(np.asarray(plain_logits), -1))
  # Sum fusion: the network's own fused map is the sum of the two conv4 maps.
  fused = np.asarray(features["fused"])
  a_s = np.asarray(acts["spatial"]).reshape(fused.shape)
  a_t = np.asarray(acts["temporal"]).reshape(fused.shape)
  np.testing.assert_allclose(a_s + a_t, fused, rtol=1e-5, atol=1e-5)

  # Independent gradient: the head (ConvLSTM → mean → classifier) alone,
  # differentiated with respect to the fused map.
  lstm = recurrent.ConvLSTMHead(CONVLSTM.convlstm_features, 1, 3, True)
  dense = nn.Dense(K)

  def head_score(f):
    last, _ = lstm.apply({"params": v["params"]["convlstm"]}, f)
    out = dense.apply({"params": v["params"]["classifier"]}, jnp.mean(last, axis=(1, 2)))
    return jnp.sum(out[jnp.arange(N), target])

  g = np.asarray(jax.grad(head_score)(jnp.asarray(fused)))  # (N, T, h, w, C)
  for stream in cam.STREAMS:
    np.testing.assert_allclose(np.asarray(grads[stream]).reshape(g.shape), g, rtol=1e-4, atol=1e-6)

  # Grad-CAM by hand, in NumPy.
  for stream, a in (("spatial", a_s), ("temporal", a_t)):
    weights = g.mean(axis=(2, 3), keepdims=True)
    want = np.maximum((weights * a).sum(-1), 0)
    np.testing.assert_allclose(result.raw[stream], want, rtol=1e-4, atol=1e-6)
    assert result.raw[stream].shape == (N, T, S // 16, S // 16)
    assert result.maps[stream].shape == (N, T, S, S)
    maps = result.maps[stream]
    assert maps.min() >= 0 and maps.max() <= 1
    for n in range(N):
      assert maps[n].max() == pytest.approx(1.0) or want[n].max() == 0


def test_map_mass_is_where_the_flow_carries_the_signal():
  """Only the top-left quadrant of the flow moves; RGB is blank. Every class's
  temporal map lies mostly in that quadrant (the rest is the receptive fields'
  spill-over across its border: conv3 at 128 px keeps it small)."""
  size = 128
  rng = np.random.default_rng(1)
  flow = np.zeros((N, T, size, size, 2 * L), np.float32)
  flow[:, :, : size // 2, : size // 2] = rng.normal(size=(1, T, size // 2, size // 2, 2 * L))
  x = {"rgb": jnp.zeros((N, T, size, size, 3)), "flow": jnp.asarray(flow)}
  v = random_variables(CONVLSTM, x)
  # No BN offsets in the backbones: a still region gives zero activations.
  v = jax.tree_util.tree_map_with_path(
    lambda p, a: (
      np.zeros_like(a)
      if jax.tree_util.keystr(p).endswith(("['bias']", "['mean']"))
      and ("'spatial'" in jax.tree_util.keystr(p) or "'temporal'" in jax.tree_util.keystr(p))
      else a
    ),
    v,
  )
  result = cam.grad_cam(CONVLSTM, v, x, layer="conv3", target=np.arange(N))
  explained = 0
  for k in range(N):  # clip k explains class k
    raw = result.raw["temporal"][k]
    if raw.max() == 0:
      continue  # every channel weighted negatively for this class: an empty map
    explained += 1
    for m in (raw, result.maps["temporal"][k]):
      h = m.shape[1] // 2
      quadrants = [m[:, :h, :h], m[:, :h, h:], m[:, h:, :h], m[:, h:, h:]]
      mass = np.asarray([q.sum() for q in quadrants]) / m.sum()
      assert mass[0] > 0.6 and mass[0] > 4 * mass[1:].max(), mass
  assert explained >= 1
  assert result.maps["spatial"].max() == 0  # a blank RGB input has no activation


def test_lstm_network_maps_both_streams_at_the_input_size():
  model = models.create("two_stream_lstm_tiny", num_classes=K)
  x = {"rgb": _inputs()["rgb"][:1, :, :32, :32], "flow": _inputs()["flow"][:1, :, :32, :32]}
  v = random_variables(model, x)
  result = cam.grad_cam(model, v, x, layer="conv3", logit="stream", target=2)
  # The spatial stream sees the centre frame only (paper A): one map.
  assert result.maps["spatial"].shape == (1, 1, 32, 32)
  np.testing.assert_array_equal(result.steps["spatial"], [T // 2])
  assert result.maps["temporal"].shape == (1, T, 32, 32)
  np.testing.assert_array_equal(result.steps["temporal"], np.arange(T))
  assert result.raw["temporal"].shape == (1, T, 4, 4)
  assert result.target.tolist() == [2]
  assert set(result.logits) == {"head", "spatial", "temporal"}


def test_outputs_and_variables_are_unchanged_without_perturbations():
  x = _inputs()
  shapes = jax.eval_shape(lambda: CONVLSTM.init(jax.random.key(0), x))
  assert set(shapes) == {"params", "batch_stats"}  # init creates no perturbations
  v = random_variables(CONVLSTM, x)
  plain = jax.jit(CONVLSTM.apply)(v, x)
  sown, state = jax.jit(lambda v, x: CONVLSTM.apply(v, x, mutable=["intermediates"]))(v, x)
  assert set(state["intermediates"]["temporal"]) == {"conv2", "conv3", "conv4", "conv5"}
  zeros = {
    s: {"conv4": jnp.zeros(state["intermediates"][s]["conv4"][0].shape)} for s in cam.STREAMS
  }
  perturbed = jax.jit(CONVLSTM.apply)({**v, "perturbations": zeros}, x)
  for other in (sown, perturbed):
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(other)):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_bad_options_are_reported():
  x = _inputs()
  with pytest.raises(ValueError, match="layer"):
    cam.grad_cam(CONVLSTM, {}, x, layer="conv9")
  with pytest.raises(ValueError, match="logit"):
    cam.grad_cam(CONVLSTM, {}, x, logit="fused")
  with pytest.raises(ValueError, match="streams"):
    cam.grad_cam(CONVLSTM, {}, x, streams=("audio",))


def test_frozen_backbones_get_the_same_maps():
  """Paper B's second stage stops the backbones' gradient; Grad-CAM still sees it."""
  x = _inputs()
  v = random_variables(CONVLSTM, x)
  frozen = CONVLSTM.clone(freeze_backbones=True)
  a = cam.grad_cam(CONVLSTM, v, x, layer="conv4")
  b = cam.grad_cam(frozen, v, x, layer="conv4")
  assert a.raw["temporal"].max() > 0
  for stream in cam.STREAMS:
    np.testing.assert_array_equal(a.raw[stream], b.raw[stream])
