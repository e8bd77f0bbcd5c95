"""The TV-L1 building blocks against the OpenCV routines they replicate."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxact.flow import ops

cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def img():
  return np.random.default_rng(0).uniform(0, 255, (37, 45)).astype(np.float32)


@pytest.mark.parametrize("m", [9, 25, 49])
def test_median_network_is_exact(m):
  rng = np.random.default_rng(m)
  vals = [rng.normal(size=(64,)).astype(np.float32) for _ in range(m)]
  vals[0][:8] = vals[1][:8]  # ties
  got = np.asarray(ops.median_of([jnp.asarray(v) for v in vals]))
  np.testing.assert_array_equal(got, np.median(np.stack(vals), 0))


@pytest.mark.parametrize("k", [3, 5])
def test_median_filter_matches_medianblur(img, k):
  got = np.asarray(ops.median_filter(jnp.asarray(img)[None], k))[0]
  np.testing.assert_array_equal(got, cv2.medianBlur(img, k))


def test_pyramid_resize_matches_cv2(img):
  small = cv2.resize(img, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_LINEAR)
  got = np.asarray(ops.resize_linear(jnp.asarray(img), *small.shape, 1 / 0.8))
  np.testing.assert_allclose(got, small, atol=1e-3)
  up = cv2.resize(small, (45, 37), interpolation=cv2.INTER_LINEAR)
  got = np.asarray(ops.resize_linear(jnp.asarray(small), 37, 45))
  np.testing.assert_allclose(got, up, atol=1e-3)


@pytest.mark.parametrize(
  "border,cv_border", [("constant", cv2.BORDER_CONSTANT), ("replicate", cv2.BORDER_REPLICATE)]
)
def test_bicubic_warp_matches_remap(img, border, cv_border):
  rng = np.random.default_rng(1)
  dx = rng.uniform(-4, 4, img.shape).astype(np.float32)
  dy = rng.uniform(-4, 4, img.shape).astype(np.float32)
  yy, xx = np.mgrid[0:37, 0:45].astype(np.float32)
  ref = cv2.remap(img, xx + dx, yy + dy, cv2.INTER_CUBIC, borderMode=cv_border)
  got = np.asarray(
    ops.warp_bicubic(jnp.asarray(img)[None], jnp.asarray(dx), jnp.asarray(dy), border)
  )[0]
  # OpenCV interpolates with fixed-point tables; differences are tiny.
  np.testing.assert_allclose(got, ref, atol=0.05)
  assert np.abs(got - ref).mean() < 1e-3


def test_gradients_and_divergence_are_adjoint(img):
  # <grad u, p> = -<u, div p> for the forward gradient / backward divergence.
  rng = np.random.default_rng(2)
  u = jnp.asarray(img)
  px, py = (rng.normal(size=img.shape).astype(np.float32) for _ in range(2))
  # Dual fields vanish on the last column / row (as they do in TV-L1).
  px[:, -1] = 0
  py[-1, :] = 0
  px, py = jnp.asarray(px), jnp.asarray(py)
  gx, gy = ops.forward_gradient(u)
  lhs = float(jnp.sum(gx * px + gy * py))
  rhs = -float(jnp.sum(u * ops.divergence(px, py)))
  assert abs(lhs - rhs) < 1e-3 * abs(lhs)
  cx, cy = ops.centered_gradient(u)
  np.testing.assert_allclose(np.asarray(cx)[:, 1:-1], 0.5 * (img[:, 2:] - img[:, :-2]), atol=1e-4)
  np.testing.assert_allclose(np.asarray(cy)[0], 0.5 * (img[1] - img[0]), atol=1e-4)
