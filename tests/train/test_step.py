"""Optimizers, schedules and the pure train step, against hand computations."""

import fake_run
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxact.runtime import mesh as mesh_lib
from jaxact.runtime import state as state_lib
from jaxact.train import optim
from jaxact.train import step as step_lib


def _opt(**kw):
  return fake_run.tiny_config(**{f"optimizer.{k}": v for k, v in kw.items()}).optimizer


def test_step_schedule_and_warmup():
  sched = optim.create_schedule(
    _opt(learning_rate=1e-3, schedule="step", decay_steps=(450,), decay_factor=0.1), 500
  )
  assert float(sched(0)) == pytest.approx(1e-3)
  assert float(sched(449)) == pytest.approx(1e-3)
  assert float(sched(450)) == pytest.approx(1e-4)
  warm = optim.create_schedule(_opt(learning_rate=1.0, warmup_steps=10), 100)
  assert float(warm(5)) == pytest.approx(0.5)
  assert float(warm(10)) == pytest.approx(1.0)


def test_frozen_parts_and_lr_multipliers():
  params = {
    "spatial": {"w": jnp.ones(3)},
    "temporal": {"w": jnp.ones(3)},
    "classifier": {"w": jnp.ones(3)},
  }
  grads = jax.tree.map(lambda p: jnp.full_like(p, 2.0), params)
  cfg = _opt(
    learning_rate=0.1,
    momentum=0.0,
    frozen=("spatial",),
    lr_multipliers=ml_collections.ConfigDict({"temporal": 10.0}),
  )
  tx, _ = optim.create_optimizer(cfg, 10, list(params))
  updates, _ = tx.update(grads, tx.init(params), params)
  np.testing.assert_allclose(updates["spatial"]["w"], 0.0)
  np.testing.assert_allclose(updates["classifier"]["w"], -0.1 * 2.0)
  np.testing.assert_allclose(updates["temporal"]["w"], -0.1 * 10.0 * 2.0, rtol=1e-6)


def test_sgd_weight_decay_is_coupled_like_pytorch():
  params = {"w": jnp.array([2.0])}
  tx, _ = optim.create_optimizer(_opt(learning_rate=0.1, momentum=0.0, weight_decay=0.5), 10, ["w"])
  updates, _ = tx.update({"w": jnp.array([1.0])}, tx.init(params), params)
  # torch.optim.SGD: p -= lr * (g + wd * p) = 0.1 * (1 + 0.5 * 2).
  np.testing.assert_allclose(updates["w"], [-0.2], rtol=1e-6)


def test_unknown_frozen_group_is_named():
  with pytest.raises(ValueError, match="fc9"):
    optim.create_optimizer(_opt(frozen=("fc9",)), 10, ["spatial", "temporal"])


class _Linear(fake_run.nn.Module):
  """No BatchNorm, no dropout: accumulation must equal the full batch exactly."""

  @fake_run.nn.compact
  def __call__(self, x, train=False):
    h = x["flow"].reshape(x["flow"].shape[0], -1)
    logits = fake_run.nn.Dense(3, name="classifier")(h)
    return logits, {"spatial_logits": logits, "temporal_logits": logits}


def _one_step(accum: int, batch: dict):
  config = fake_run.tiny_config(grad_accum_steps=accum, **{"optimizer.momentum": 0.0})
  model = _Linear()
  mesh = mesh_lib.create_mesh()
  spec = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in batch.items() if k != "label"}
  tx, sched = optim.create_optimizer(config.optimizer, 10, ["classifier"])
  state, _shardings = state_lib.create_train_state(model, tx, spec, mesh, jax.random.key(0))
  fn = jax.jit(step_lib.make_train_step(model, config, sched, tx), donate_argnums=0)
  state, metrics = fn(state, mesh_lib.global_batch(mesh, batch))
  return jax.device_get(state.params), jax.device_get(metrics)


def test_gradient_accumulation_equals_full_batch():
  batch = fake_run.make_arrays(8)
  full_params, full_m = _one_step(1, batch)
  acc_params, acc_m = _one_step(2, batch)
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), full_params, acc_params
  )
  assert acc_m["loss"] == pytest.approx(full_m["loss"], rel=1e-5)
  # The loss is the weighted sum of fused and per-stream cross-entropies.
  assert set(full_m) >= {
    "loss",
    "top1_head",
    "top1_spatial",
    "top1_temporal",
    "grad_norm",
    "param_norm",
    "lr",
  }


def test_cross_entropy_matches_numpy():
  logits = jnp.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
  labels = jnp.array([0, 2])
  p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  expected = -np.mean(np.log(p[[0, 1], [0, 2]]))
  assert float(step_lib.cross_entropy(logits, labels)) == pytest.approx(expected, rel=1e-6)


def test_global_batch_is_sharded_over_all_devices():
  mesh = mesh_lib.create_mesh()
  batch = fake_run.make_arrays(8)
  gb = mesh_lib.global_batch(mesh, batch)
  assert gb["rgb"].shape == (8,) + batch["rgb"].shape[1:]
  assert len(gb["rgb"].sharding.device_set) == jax.device_count() == 4
  np.testing.assert_array_equal(np.asarray(gb["label"]), batch["label"])
