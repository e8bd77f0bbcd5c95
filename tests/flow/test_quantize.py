"""Tests for flow quantisation and flow-stack flips (docs/reference.md conventions)."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxact.flow import dequantize, flip_flow_stack, quantize


def test_quantize_formula_and_clipping():
  f = np.array([-25.0, -20.0, -10.0, 0.0, 0.1, 10.0, 20.0, 33.0], np.float32)
  v = quantize(f)
  assert v.dtype == np.uint8
  # v = round(255 * (f + 20) / 40), clipped; computed by hand.
  np.testing.assert_array_equal(v, [0, 0, 64, 128, 128, 191, 255, 255])


def test_zero_motion_is_128_and_roundtrip_error_is_half_a_step():
  assert quantize(np.zeros(3, np.float32)).tolist() == [128, 128, 128]
  f = np.linspace(-19.9, 19.9, 1001).astype(np.float32)
  err = np.abs(dequantize(quantize(f)) - f)
  assert err.max() <= 0.5 * 40 / 255 + 1e-5
  np.testing.assert_allclose(dequantize(np.array([0, 255], np.uint8)), [-20, 20], atol=1e-5)


def test_custom_bound_and_jax_arrays():
  f = jnp.asarray([-5.0, 0.0, 5.0])
  v = quantize(f, bound=5)
  assert isinstance(v, jnp.ndarray) and v.dtype == jnp.uint8
  assert np.asarray(v).tolist() == [0, 128, 255]
  with pytest.raises(ValueError):
    quantize(f, bound=0)


def test_flip_flow_stack_negates_x_and_mirrors():
  rng = np.random.default_rng(0)
  flow = rng.uniform(-15, 15, (2, 4, 5, 6)).astype(np.float32)  # L = 3
  flipped = flip_flow_stack(flow)
  # Channels x1, y1, x2, y2, x3, y3: x negated, y kept, W mirrored.
  np.testing.assert_array_equal(flipped[..., 0::2], -flow[..., ::-1, 0::2])
  np.testing.assert_array_equal(flipped[..., 1::2], flow[..., ::-1, 1::2])
  # Flipping twice is the identity.
  np.testing.assert_array_equal(flip_flow_stack(flipped), flow)


def test_flip_uint8_matches_float_flip_up_to_one_step():
  rng = np.random.default_rng(1)
  flow = rng.uniform(-19, 19, (3, 4, 4)).astype(np.float32)
  v = quantize(flow)
  fv = flip_flow_stack(v, mirror=False)
  assert fv.dtype == np.uint8
  np.testing.assert_array_equal(fv[..., 0::2], 255 - v[..., 0::2])
  np.testing.assert_array_equal(fv[..., 1::2], v[..., 1::2])
  ref = quantize(flip_flow_stack(flow, mirror=False))
  assert np.abs(fv.astype(int) - ref).max() <= 1


def test_flip_rejects_odd_channels():
  with pytest.raises(ValueError, match="even"):
    flip_flow_stack(np.zeros((4, 4, 3), np.uint8))
