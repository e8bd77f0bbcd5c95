"""Grad-CAM of a tiny two-stream network trained in the test to tell a motion's
direction points at the moving region; a re-initialised network's maps differ.

The network is trained on the sum of its head's and its temporal stream's
cross-entropies (Adam, inference-mode batch norm), and its temporal stream is
mapped through its own classifier's logit
(``logit='stream'``): the temporal-stream Grad-CAM. At 48 px the two-stream
head (ConvLSTM on a 2x2 conv5 map) does not learn the task in the test's
budget, so the fused logit is not what this test explains.

The clips are generated: a static random texture with one small textured patch
moving left or right at a random position. Their flow is constructed directly
(the exact known motion, a uniform quantised value, inside the patch and 128 —
no motion — elsewhere) instead of computing TV-L1: the test is about Grad-CAM,
not the flow (TV-L1 has its own tests in tests/flow).
"""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxact.models as models
from jaxact.data.normalize import normalize_inputs
from jaxact.eval import cam

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from flax_testing import random_variables

T, L, S, P = 2, 2, 48, 10  # steps, flow pairs per step, frame size, patch size
SPEED = 2  # px a frame
FLOW = 40  # the patch's quantised horizontal flow: 128 ± FLOW
LAYER, CELL = "conv3", 8  # Grad-CAM layer and its cell in input pixels (stride 8)
STEPS = 60  # Adam steps of 16 clips (peak inside 0.97 at 60 and at 80 steps; 0.90 at 40)


def _clips(n: int, seed: int):
  """``n`` clips: uint8 rgb ``(n,T,S,S,3)``, flow ``(n,T,S,S,2L)``, labels
  (0 left, 1 right) and each patch's box ``(y0, x0, y1, x1)`` over the clip."""
  rng = np.random.default_rng(seed)
  rgb = np.empty((n, T, S, S, 3), np.uint8)
  flow = np.full((n, T, S, S, 2 * L), 128, np.uint8)
  labels = rng.integers(0, 2, n)
  boxes = np.empty((n, 4), int)
  travel = SPEED * T * L  # frames seen: T steps of L pairs
  for i in range(n):
    d = 1 if labels[i] else -1
    background = rng.integers(0, 256, (S, S, 3), np.uint8)
    patch = rng.integers(0, 256, (P, P, 3), np.uint8)
    y0 = int(rng.integers(2, S - P - 2))
    x0 = int(rng.integers(travel + 2, S - P - travel - 2))
    xs = [x0 + d * SPEED * (t * L + j) for t in range(T) for j in range(L + 1)]
    boxes[i] = (y0, min(xs), y0 + P, max(xs) + P)
    for t in range(T):
      x = x0 + d * SPEED * t * L  # the step's first frame
      rgb[i, t] = background
      rgb[i, t, y0 : y0 + P, x : x + P] = patch
      for j in range(L):  # pair j of the step: the patch at its frame's place
        xj = x + d * SPEED * j
        flow[i, t, y0 : y0 + P, xj : xj + P, 2 * j] = 128 + d * FLOW
  return rgb, flow, labels, boxes


def _inputs(rgb, flow):
  return normalize_inputs({"rgb": rgb, "flow": flow}, jnp.float32)


def _peak_inside(maps: np.ndarray, boxes: np.ndarray) -> np.ndarray:
  """Whether each clip's map ``(n, T, S, S)`` peaks inside its patch's box
  dilated by one Grad-CAM cell (CELL px) on every side."""
  inside = []
  for m, (y0, x0, y1, x1) in zip(maps, boxes):
    _, y, x = np.unravel_index(np.argmax(m), m.shape)
    inside.append(m.max() > 0 and y0 - CELL <= y < y1 + CELL and x0 - CELL <= x < x1 + CELL)
  return np.asarray(inside)


def test_temporal_map_peaks_in_the_moving_patch_and_depends_on_the_weights():
  model = models.create("two_stream_convlstm_tiny", num_classes=2)
  rgb, flow, labels, _ = _clips(256, seed=0)
  x0 = _inputs(rgb[:2], flow[:2])
  variables = random_variables(model, x0, seed=0)
  params, state = variables["params"], {"batch_stats": variables["batch_stats"]}
  tx = optax.adam(3e-3)
  opt = tx.init(params)

  @jax.jit
  def step(params, opt, x, y):
    def loss(p):
      logits, features = model.apply({"params": p, **state}, x)
      ce = optax.softmax_cross_entropy_with_integer_labels
      return ce(features["temporal_logits"], y).mean() + ce(logits, y).mean()

    value, grads = jax.value_and_grad(loss)(params)
    updates, opt = tx.update(grads, opt, params)
    return optax.apply_updates(params, updates), opt, value

  rng = np.random.default_rng(1)
  for _ in range(STEPS):
    idx = rng.choice(len(labels), 16, replace=False)
    params, opt, value = step(params, opt, _inputs(rgb[idx], flow[idx]), jnp.asarray(labels[idx]))
  trained = {"params": params, **state}

  rgb, flow, labels, boxes = _clips(40, seed=2)  # held out
  x = _inputs(rgb, flow)
  _, features = jax.jit(model.apply)(trained, x)
  accuracy = np.mean(np.argmax(np.asarray(features["temporal_logits"]), -1) == labels)
  assert accuracy >= 0.95, accuracy
  kw = {"layer": LAYER, "target": labels, "logit": "stream", "streams": ("temporal",)}
  result = cam.grad_cam(model, trained, x, **kw)
  inside = _peak_inside(result.maps["temporal"], boxes)
  print(f"\naccuracy {accuracy:.2f}, loss {float(value):.3f}, peak inside {inside.mean():.2f}")
  assert inside.mean() >= 0.9, inside

  # Sanity check (Adebayo et al. 2018): new random weights give other maps.
  fresh = random_variables(model, x0, seed=7)
  other = cam.grad_cam(model, fresh, x, **kw).maps["temporal"]
  a = result.maps["temporal"].reshape(len(labels), -1)
  b = other.reshape(len(labels), -1)
  assert not np.allclose(a, b, atol=1e-3)
  # An all-zero map (every channel weighted negatively) correlates with nothing: 0.
  corr = [np.corrcoef(u, v)[0, 1] if u.std() and v.std() else 0.0 for u, v in zip(a, b)]
  zero = np.mean(b.max(-1) == 0)
  print(f"re-initialised: mean correlation {np.mean(corr):.2f}, all-zero maps {zero:.2f}")
  assert np.mean(corr) < 0.5, corr
