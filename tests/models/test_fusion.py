"""Fusion methods: hand-computed expectations on small arrays."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxact.models import fusion


@pytest.fixture
def maps():
  rng = np.random.RandomState(0)
  return rng.randn(2, 3, 3, 4).astype(np.float32), rng.randn(2, 3, 3, 4).astype(np.float32)


def _apply(method, a, b):
  module = fusion.Fusion(method)
  variables = module.init(jax.random.key(0), a, b)
  return variables, np.asarray(module.apply(variables, a, b))


def test_sum_max_concat(maps):
  a, b = maps
  assert _apply("sum", a, b)[0] == {}
  np.testing.assert_allclose(_apply("sum", a, b)[1], a + b, rtol=1e-6)
  np.testing.assert_allclose(_apply("max", a, b)[1], np.maximum(a, b))
  np.testing.assert_allclose(_apply("concat", a, b)[1], np.concatenate([a, b], -1))


def test_conv_fusion_starts_as_sum_and_is_a_1x1_conv(maps):
  a, b = maps
  variables, out = _apply("conv", a, b)
  np.testing.assert_allclose(out, a + b, rtol=1e-5, atol=1e-6)
  kernel = np.random.RandomState(1).randn(8, 4).astype(np.float32)
  bias = np.arange(4, dtype=np.float32)
  params = {"params": {"conv": {"kernel": kernel, "bias": bias}}}
  got = np.asarray(fusion.Fusion("conv").apply(params, a, b))
  want = np.einsum("nhwc,co->nhwo", np.concatenate([a, b], -1), kernel) + bias
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  assert variables["params"]["conv"]["kernel"].shape == (8, 4)


def test_vectors_and_channel_counts():
  a, b = jnp.ones((2, 6)), jnp.ones((2, 3))
  assert fusion.Fusion("concat").apply({}, a, b).shape == (2, 9)
  with pytest.raises(ValueError, match="equal shapes"):
    fusion.Fusion("sum").apply({}, a, b)


def test_unknown_method():
  with pytest.raises(ValueError, match="Unknown fusion method 'avg'"):
    fusion.Fusion("avg").apply({}, jnp.ones((1, 2)), jnp.ones((1, 2)))
