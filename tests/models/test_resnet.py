"""Backbones: exact parameter counts, feature shapes, BN semantics, dtypes."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax_testing import random_variables

from jaxact.models import resnet

_apply = jax.jit(
  lambda model, variables, x, train=False, **kw: model.apply(variables, x, train=train, **kw),
  static_argnames=("model", "train", "mutable"),
)


def _param_count(name: str, channels: int) -> int:
  model = resnet.BACKBONES[name](num_classes=1000)
  x = jnp.zeros((1, 224, 224, channels))
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x))
  return sum(math.prod(v.shape) for v in jax.tree.leaves(variables["params"]))


@pytest.mark.parametrize(
  "name, channels, expected",
  [
    ("resnet50", 3, 25_557_032),
    ("resnet101", 3, 44_549_160),
    ("cotnet50", 3, 22_222_416),
    ("cotnet101", 3, 38_272_048),
    ("resnet101", 20, 44_602_472),
    ("cotnet101", 20, 38_325_360),
  ],
)
def test_param_counts_match_reference(name, channels, expected):
  assert _param_count(name, channels) == expected


def test_registry_keys():
  assert set(resnet.BACKBONES) == {
    "resnet50",
    "resnet101",
    "cotnet50",
    "cotnet101",
    "resnet_tiny",
    "cotnet_tiny",
  }


@pytest.mark.parametrize("name, channels", [("resnet_tiny", 3), ("cotnet_tiny", 20)])
def test_tiny_forward_shapes(name, channels):
  model = resnet.BACKBONES[name](num_classes=7)
  x = jax.random.normal(jax.random.key(1), (2, 64, 64, channels))
  variables = random_variables(model, x)
  assert variables["params"]["conv1"]["kernel"].shape == (7, 7, channels, 16)
  logits, feats = _apply(model, variables, x)
  assert logits.shape == (2, 7) and logits.dtype == jnp.float32
  expected = {
    "stem": (2, 16, 16, 16),
    "conv2": (2, 16, 16, 64),
    "conv3": (2, 8, 8, 128),
    "conv4": (2, 4, 4, 256),
    "conv5": (2, 2, 2, 512),
    "pooled": (2, 512),
  }
  assert {k: v.shape for k, v in feats.items()} == expected
  np.testing.assert_allclose(feats["pooled"], feats["conv5"].mean(axis=(1, 2)), rtol=1e-5)
  assert np.all(np.isfinite(logits))


def test_no_head_returns_none_logits():
  model = resnet.BACKBONES["resnet_tiny"](num_classes=None)
  x = jnp.ones((1, 32, 32, 3))
  variables = random_variables(model, x)
  assert "fc" not in variables["params"]
  logits, feats = _apply(model, variables, x)
  assert logits is None and feats["pooled"].shape == (1, 512)


def test_parameter_names():
  model = resnet.BACKBONES["resnet_tiny"](num_classes=5)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.ones((1, 32, 32, 3))))
  params = variables["params"]
  assert set(params) == {"conv1", "bn1", "layer1_0", "layer2_0", "layer3_0", "layer4_0", "fc"}
  assert set(params["layer2_0"]) == {
    "conv1",
    "bn1",
    "conv2",
    "bn2",
    "conv3",
    "bn3",
    "downsample_conv",
    "downsample_bn",
  }
  assert set(variables["batch_stats"]["bn1"]) == {"mean", "var"}


def test_last_bn_zero_init():
  block = resnet.Bottleneck(width=8, stride=2)
  variables = jax.jit(block.init)(jax.random.key(0), jnp.ones((1, 8, 8, 16)))
  params = variables["params"]
  assert np.all(params["bn3"]["scale"] == 0) and np.all(params["bn2"]["scale"] == 1)
  assert np.all(params["downsample_bn"]["scale"] == 1)
  assert float(jnp.std(params["conv2"]["kernel"])) > 0


def test_batchnorm_momentum_and_epsilon_match_pytorch():
  """After one training step the stem BN's running mean is 0.1 × batch mean."""
  model = resnet.BACKBONES["resnet_tiny"](num_classes=3)
  x = jax.random.normal(jax.random.key(2), (2, 32, 32, 3)) + 0.5
  variables = random_variables(model, x)
  variables["batch_stats"] = jax.tree.map(lambda v: np.zeros_like(v), variables["batch_stats"])
  variables["batch_stats"]["bn1"]["var"] = np.ones_like(variables["batch_stats"]["bn1"]["var"])
  (_, feats), updates = _apply(model, variables, x, train=True, mutable=("batch_stats",))
  kernel = variables["params"]["conv1"]["kernel"]
  y = jax.lax.conv_general_dilated(
    x, kernel, (2, 2), ((3, 3), (3, 3)), dimension_numbers=("NHWC", "HWIO", "NHWC")
  )
  batch_mean = y.mean(axis=(0, 1, 2))
  batch_var = y.var(axis=(0, 1, 2))
  np.testing.assert_allclose(
    updates["batch_stats"]["bn1"]["mean"], 0.1 * batch_mean, rtol=1e-4, atol=1e-6
  )
  # PyTorch stores the unbiased variance; Flax the biased one: both 0.9·1 + 0.1·v.
  np.testing.assert_allclose(updates["batch_stats"]["bn1"]["var"], 0.9 + 0.1 * batch_var, rtol=1e-4)
  # The stem output before ReLU/max-pool: BN with epsilon 1e-5.
  bn = variables["params"]["bn1"]
  normed = (y - batch_mean) / np.sqrt(batch_var + 1e-5) * bn["scale"] + bn["bias"]
  pooled = jax.lax.reduce_window(
    jax.nn.relu(normed),
    -jnp.inf,
    jax.lax.max,
    (1, 3, 3, 1),
    (1, 2, 2, 1),
    ((0, 0), (1, 1), (1, 1), (0, 0)),
  )
  np.testing.assert_allclose(feats["stem"], pooled, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["resnet_tiny", "cotnet_tiny"])
def test_bfloat16_compute_float32_params(name):
  x = jax.random.normal(jax.random.key(3), (2, 64, 64, 3))
  model32 = resnet.BACKBONES[name](num_classes=4)
  variables = random_variables(model32, x)
  model16 = resnet.BACKBONES[name](num_classes=4, dtype=jnp.bfloat16)
  shapes16 = jax.eval_shape(lambda: model16.init(jax.random.key(0), x))
  assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(shapes16))
  logits16, feats16 = _apply(model16, variables, x)
  logits32, _ = _apply(model32, variables, x)
  assert feats16["conv5"].dtype == jnp.bfloat16 and logits16.dtype == jnp.float32
  scale = float(jnp.abs(logits32).max())
  np.testing.assert_allclose(logits16, logits32, atol=0.1 * scale)


def test_unknown_mixer():
  bad = resnet.ResNet(num_classes=2, stage_sizes=(1,), width=16, mixer="sparse")
  with pytest.raises(ValueError, match="mixer 'sparse'"):
    jax.eval_shape(lambda: bad.init(jax.random.key(0), jnp.ones((1, 32, 32, 3))))


def test_cotnet_stride2_block_uses_avg_pool_and_no_bn2():
  model = resnet.BACKBONES["cotnet_tiny"](num_classes=2)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.ones((1, 32, 32, 3))))
  block = variables["params"]["layer2_0"]
  assert "bn2" not in block and "key_embed_0" in block["conv2"]
  assert block["downsample_conv"]["kernel"].shape == (1, 1, 64, 128)
