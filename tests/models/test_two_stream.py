"""Two-stream networks: shapes, parameter trees and counts, training under jit."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax_testing import random_variables

import jaxact.models as models

N, T, S, L = 2, 3, 32, 2


def _inputs(key=0, n=N, t=T, size=S, flow_len=L):
  k1, k2 = jax.random.split(jax.random.key(key))
  return {
    "rgb": jax.random.normal(k1, (n, t, size, size, 3)),
    "flow": jax.random.normal(k2, (n, t, size, size, 2 * flow_len)),
  }


def _count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))


@pytest.mark.parametrize(
  "name,parts",
  [
    (
      "two_stream_lstm_tiny",
      {
        "spatial",
        "temporal",
        "fc1",
        "fc2",
        "lstm",
        "classifier",
        "spatial_classifier",
        "temporal_classifier",
      },
    ),
    ("two_stream_convlstm_tiny", {"spatial", "temporal", "convlstm", "classifier"}),
  ],
)
def test_tiny_forward_shapes_and_parts(name, parts):
  model = models.create(name, num_classes=5)
  x = _inputs()
  variables = random_variables(model, x)
  assert set(variables["params"]) == parts
  assert "batch_stats" in variables
  logits, features = jax.jit(model.apply)(variables, x)
  assert logits.shape == (N, 5) and logits.dtype == jnp.float32
  assert features["spatial_logits"].shape == (N, 5)
  assert features["temporal_logits"].shape == (N, 5)
  # The temporal backbone's conv1 takes the 2L flow channels.
  assert variables["params"]["temporal"]["conv1"]["kernel"].shape[2] == 2 * L
  assert variables["params"]["spatial"]["conv1"]["kernel"].shape[2] == 3


@pytest.mark.parametrize(
  "fusion_method,layer",
  [("sum", "conv5"), ("max", "conv4"), ("concat", "conv3"), ("conv", "conv5")],
)
def test_convlstm_fusion_variants(fusion_method, layer):
  model = models.create(
    "two_stream_convlstm_tiny", num_classes=4, fusion=fusion_method, fusion_layer=layer
  )
  x = _inputs()
  variables = jax.eval_shape(model.init, jax.random.key(0), x)
  channels = {"conv3": 128, "conv4": 256, "conv5": 512}[layer]  # tiny: width 16
  c_in = 2 * channels if fusion_method == "concat" else channels
  kernel = variables["params"]["convlstm"]["layer0"]["input_conv"]["kernel"]
  assert kernel.shape == (3, 3, c_in, 4 * 16)
  assert ("fusion" in variables["params"]) == (fusion_method == "conv")


def test_lstm_variant_spatial_frames_and_fusion():
  x = _inputs()
  center = models.create("two_stream_lstm_tiny", num_classes=3)
  variables = random_variables(center, x)
  # 'center' uses only the middle RGB frame: changing the others changes nothing.
  # (Jitted: one compile is faster than running the network op by op.)
  x2 = dict(x, rgb=x["rgb"].at[:, 0].set(7.0))
  apply = jax.jit(center.apply)
  np.testing.assert_allclose(apply(variables, x)[0], apply(variables, x2)[0])
  every = jax.jit(models.create("two_stream_lstm_tiny", num_classes=3, spatial_frames="all").apply)
  assert not np.allclose(every(variables, x)[0], every(variables, x2)[0])
  summed = models.create("two_stream_lstm_tiny", num_classes=3, fusion="sum")
  summed_params = jax.eval_shape(summed.init, jax.random.key(0), x)["params"]
  assert summed_params["classifier"]["kernel"].shape == (32, 3)


def test_bad_inputs_are_reported():
  model = models.create("two_stream_convlstm_tiny", num_classes=3)
  with pytest.raises(ValueError, match="dict with 'rgb'"):
    jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 2, 32, 32, 3)))
  x = _inputs()
  x["flow"] = x["flow"][:, :2]
  with pytest.raises(ValueError, match="time steps"):
    jax.eval_shape(model.init, jax.random.key(0), x)
  with pytest.raises(ValueError, match="Unknown model"):
    models.create("two_stream_gru", num_classes=3)
  with pytest.raises(ValueError, match="Unknown backbone"):
    jax.eval_shape(
      models.create("two_stream_lstm", num_classes=3, backbone="vgg16").init,
      jax.random.key(0),
      _inputs(),
    )


def test_full_size_parameter_counts_compose_from_reference():
  """Paper B's network = two ResNet-101 (3- and 20-channel conv1, K-way fc) +
  the released ConvLSTM + classifier; counts from docs/reference.md § Model sizes."""
  k = 101
  model = models.create("two_stream_convlstm", num_classes=k)
  x = {
    "rgb": jax.ShapeDtypeStruct((1, 2, 224, 224, 3), jnp.float32),
    "flow": jax.ShapeDtypeStruct((1, 2, 224, 224, 20), jnp.float32),
  }
  params = jax.eval_shape(model.init, jax.random.key(0), x)["params"]
  fc_delta = (k - 1000) * (2048 + 1)
  assert _count(params["spatial"]) == 44_549_160 + fc_delta
  assert _count(params["temporal"]) == 44_602_472 + fc_delta
  assert _count(params["convlstm"]) == 41_949_300
  assert _count(params["classifier"]) == 300 * k + k

  model_a = models.create("two_stream_lstm", num_classes=k)
  params_a = jax.eval_shape(model_a.init, jax.random.key(0), x)["params"]
  no_fc = 1000 * 2048 + 1000
  assert _count(params_a["spatial"]) == 38_272_048 - no_fc
  assert _count(params_a["temporal"]) == 38_325_360 - no_fc


def _train_steps(name, steps, **overrides):
  model = models.create(name, num_classes=3, **overrides)
  x = _inputs(size=32)
  labels = jnp.array([0, 2])
  # Random variables from shapes: compiling model.init costs more than training.
  variables = random_variables(model, x)
  initial_stats = jax.tree_util.tree_map(np.asarray, variables["batch_stats"])
  tx = optax.adam(1e-3)
  opt_state = tx.init(variables["params"])

  @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
  def step(params, batch_stats, opt_state, rng):
    def loss_fn(p):
      (logits, feats), updates = model.apply(
        {"params": p, "batch_stats": batch_stats},
        x,
        train=True,
        mutable=["batch_stats"],
        rngs={"dropout": rng},
      )
      loss = sum(
        optax.softmax_cross_entropy_with_integer_labels(l, labels).mean()
        for l in (logits, feats["spatial_logits"], feats["temporal_logits"])
      )
      return loss, updates["batch_stats"]

    (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), new_stats, opt_state, loss, grads

  params, stats = variables["params"], variables["batch_stats"]
  losses = []
  for i in range(steps):
    params, stats, opt_state, loss, grads = step(params, stats, opt_state, jax.random.key(i))
    losses.append(float(loss))
  return losses, grads, initial_stats, stats


@pytest.mark.parametrize("name", ["two_stream_lstm_tiny", "two_stream_convlstm_tiny"])
def test_tiny_networks_train_under_jit(name):
  losses, grads, _, _ = _train_steps(name, 8)
  assert all(np.isfinite(losses))
  assert losses[-1] < losses[0]
  assert float(optax.tree.norm(grads["spatial"])) > 0


def test_frozen_backbones_get_no_gradient_and_keep_statistics():
  _, grads, before_stats, after_stats = _train_steps(
    "two_stream_convlstm_tiny", 2, freeze_backbones=True
  )
  assert float(optax.tree.norm(grads["spatial"])) == 0.0
  assert float(optax.tree.norm(grads["temporal"])) == 0.0
  assert float(optax.tree.norm(grads["convlstm"])) > 0.0
  for a, b in zip(jax.tree_util.tree_leaves(before_stats), jax.tree_util.tree_leaves(after_stats)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
