"""The pure, jittable training step.

``train_step(state, batch) -> (state, metrics)``: augments the host's batch on
the device (``jaxact.data.device_augment.train_inputs``: one resample per
image, per example, no cross-device traffic), normalises it, runs the model
with dropout (RNG folded with the step), optional gradient accumulation over
micro-batches, and returns scalar metrics (loss, top-1 per stream, gradient
and parameter norms, learning rate).
"""

import functools
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxact.data import device_augment
from jaxact.data.normalize import normalize_inputs
from jaxact.runtime.scoring import COMPUTE_DTYPES, stream_logits
from jaxact.runtime.state import TrainState
from jaxact.train import optim

# Loss terms: config.loss.<name>_weight → which logits it reads ("head": the
# network's own classifier over both streams; see runtime.scoring.stream_logits).
LOSS_TERMS = ("head", "spatial", "temporal")


def cross_entropy(logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0) -> jax.Array:
  """Mean softmax cross-entropy of ``logits (N, K)`` against int ``labels (N,)``."""
  num_classes = logits.shape[-1]
  targets = jax.nn.one_hot(labels, num_classes)
  if label_smoothing:
    targets = optax.smooth_labels(targets, label_smoothing)
  return optax.softmax_cross_entropy(logits, targets).mean()


def _top1(logits: jax.Array, labels: jax.Array) -> jax.Array:
  return jnp.mean(jnp.argmax(logits, -1) == labels)


def make_train_step(
  model: nn.Module, config: Any, schedule: optax.Schedule, tx: optax.GradientTransformation
) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
  """Build the (un-jitted) train step for ``config``.

  Args:
    model: two-stream network returning ``(logits, features)``.
    config: the experiment config (``seed``, ``loss``, ``compute_dtype``,
      ``grad_accum_steps``, ``optimizer.frozen``, ``data.image_size``,
      ``data.augment``).
    schedule: base learning-rate schedule (for the ``lr`` metric).
    tx: the optimizer.

  Returns:
    ``step(state, batch) -> (state, metrics)`` with ``batch`` the pipeline's
    (canvases ``rgb (B, T, P, 3)``, ``flow (B, T, 2L, P)``, ``aug``, ``label``
    int32 ``(B,)``) or already augmented ``rgb`` uint8 ``(B, T, H, W, 3)``,
    ``flow`` uint8 ``(B, T, H, W, 2L)``, ``label``; ``metrics`` a dict of
    float32 scalars.
  """
  dtype = COMPUTE_DTYPES[config.compute_dtype]
  weights = {name: float(config.loss[f"{name}_weight"]) for name in LOSS_TERMS}
  smoothing = float(config.loss.label_smoothing)
  accum = int(config.grad_accum_steps)
  frozen = tuple(config.optimizer.frozen)
  base_key = jax.random.key(config.seed)
  inputs_fn = functools.partial(
    device_augment.train_inputs, out_size=config.data.image_size, recipe=config.data.augment
  )

  def loss_fn(params, batch_stats, batch, rng):
    inputs = normalize_inputs(batch, dtype)
    (logits, features), updates = model.apply(
      {"params": params, "batch_stats": batch_stats},
      inputs,
      train=True,
      rngs={"dropout": rng},
      mutable=["batch_stats"],
    )
    streams = stream_logits(logits, features)
    labels = batch["label"]
    loss = 0.0
    for name, w in weights.items():
      if w:
        if name not in streams:
          raise ValueError(
            f"config.loss.{name}_weight={w} but the model returns no '{name}_logits' feature"
          )
        loss = loss + w * cross_entropy(streams[name], labels, smoothing)
    metrics = {f"top1_{k}": _top1(v, labels) for k, v in streams.items()}
    metrics["loss"] = loss
    return loss, (updates.get("batch_stats", batch_stats), metrics)

  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

  def step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    rng = jax.random.fold_in(base_key, state.step)
    batch = inputs_fn(batch)
    if accum == 1:
      (_, (batch_stats, metrics)), grads = grad_fn(state.params, state.batch_stats, batch, rng)
    else:
      # Micro-batch j takes examples j, j + A, j + 2A, ...: every device keeps
      # only its own examples, so no data moves between devices.
      def split(x):
        return x.reshape((x.shape[0] // accum, accum) + x.shape[1:]).swapaxes(0, 1)

      micro = jax.tree.map(split, batch)

      def body(carry, xs):
        grad_sum, stats = carry
        mb, i = xs
        (_, (stats, m)), g = grad_fn(state.params, stats, mb, jax.random.fold_in(rng, i))
        return (jax.tree.map(jnp.add, grad_sum, g), stats), m

      zeros = jax.tree.map(jnp.zeros_like, state.params)
      (grads, batch_stats), ms = jax.lax.scan(
        body, (zeros, state.batch_stats), (micro, jnp.arange(accum))
      )
      grads = jax.tree.map(lambda g: g / accum, grads)
      metrics = jax.tree.map(jnp.mean, ms)
    if frozen and isinstance(batch_stats, Mapping):
      batch_stats = {
        k: (state.batch_stats[k] if k in frozen else v) for k, v in batch_stats.items()
      }
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = dict(metrics)
    metrics["grad_norm"] = optim.global_norm(grads)
    metrics["param_norm"] = optim.global_norm(params)
    metrics["lr"] = jnp.asarray(schedule(state.step), jnp.float32)
    metrics = {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}
    new_state = state.replace(
      step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state
    )
    return new_state, metrics

  return step
