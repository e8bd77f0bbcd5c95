"""Optimizers and learning-rate schedules built from ``config.optimizer``.

Config fields (all in ``config.optimizer``):

* ``name``: ``'sgd'`` (momentum, PyTorch-style coupled weight decay), ``'adam'``
  (coupled L2 like ``torch.optim.Adam``) or ``'adamw'`` (decoupled decay).
* ``learning_rate``, ``momentum``, ``nesterov``, ``b1``, ``b2``, ``eps``,
  ``weight_decay``.
* ``schedule``: ``'constant'``, ``'step'`` (× ``decay_factor`` at each of
  ``decay_steps``) or ``'cosine'``; ``warmup_steps`` of linear warm-up first.
* ``grad_clip_norm``: clip by global norm (0 = off).
* ``lr_multipliers``: ``{top-level parameter name: factor}``, e.g. paper B's
  much larger learning rate for the temporal stream.
* ``frozen``: top-level parameter names that are not trained at all (their
  updates are zero and their BatchNorm statistics are kept).
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax


def _sgd(cfg: Any, lr: optax.Schedule) -> optax.GradientTransformation:
  wd = float(cfg.weight_decay)
  parts = [optax.add_decayed_weights(wd)] if wd else []
  parts.append(optax.sgd(lr, momentum=float(cfg.momentum) or None, nesterov=bool(cfg.nesterov)))
  return optax.chain(*parts)


def _adam(cfg: Any, lr: optax.Schedule) -> optax.GradientTransformation:
  wd = float(cfg.weight_decay)
  parts = [optax.add_decayed_weights(wd)] if wd else []
  parts.append(optax.adam(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps))
  return optax.chain(*parts)


def _adamw(cfg: Any, lr: optax.Schedule) -> optax.GradientTransformation:
  return optax.adamw(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=float(cfg.weight_decay))


# config.optimizer.name → (cfg, lr schedule) → transformation. jaxact.config
# validates the name against these keys.
OPTIMIZERS: dict[str, Callable[[Any, optax.Schedule], optax.GradientTransformation]] = {
  "sgd": _sgd,
  "adam": _adam,
  "adamw": _adamw,
}

# config.optimizer.schedule → (cfg, base lr, num_train_steps) → schedule.
SCHEDULES: dict[str, Callable[[Any, float, int], optax.Schedule]] = {
  "constant": lambda cfg, base, n: optax.constant_schedule(base),
  "step": lambda cfg, base, n: optax.piecewise_constant_schedule(
    base, {int(s): float(cfg.decay_factor) for s in cfg.decay_steps}
  ),
  "cosine": lambda cfg, base, n: optax.cosine_decay_schedule(base, max(1, n - cfg.warmup_steps)),
}


def create_schedule(cfg: Any, num_train_steps: int) -> optax.Schedule:
  """Learning rate as a function of the (optimizer) step.

  Args:
    cfg: ``config.optimizer`` (validated: ``schedule`` is a key of :data:`SCHEDULES`).
    num_train_steps: total steps (for cosine decay).

  Returns:
    An optax schedule ``step -> lr``.
  """
  base = float(cfg.learning_rate)
  sched = SCHEDULES[cfg.schedule](cfg, base, num_train_steps)
  if cfg.warmup_steps:
    warm = optax.linear_schedule(0.0, base, int(cfg.warmup_steps))
    sched = optax.join_schedules([warm, sched], [int(cfg.warmup_steps)])
  return sched


def _scaled(schedule: optax.Schedule, factor: float) -> optax.Schedule:
  return lambda step: schedule(step) * factor


def part_labels(
  params: Mapping[str, Any], frozen: Sequence[str], multipliers: Mapping[str, float]
) -> dict[str, Any]:
  """Label every top-level parameter subtree ``frozen``, ``x<name>`` or ``default``."""
  labels = {}
  for name, sub in params.items():
    if name in frozen:
      label = "frozen"
    elif name in multipliers:
      label = f"x{name}"
    else:
      label = "default"
    labels[name] = _broadcast(sub, label)
  return labels


def _broadcast(tree: Any, label: str) -> Any:
  if isinstance(tree, Mapping):
    return {k: _broadcast(v, label) for k, v in tree.items()}
  return label


def create_optimizer(
  cfg: Any, num_train_steps: int, param_names: Sequence[str]
) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """Build the optimizer for parameters whose top-level names are ``param_names``.

  Args:
    cfg: ``config.optimizer``.
    num_train_steps: total optimizer steps.
    param_names: top-level keys of ``params`` (``spatial``, ``temporal``, ...).

  Returns:
    ``(optimizer, schedule)``; ``schedule(step)`` is the base learning rate.

  Raises:
    ValueError: a name in ``frozen`` / ``lr_multipliers`` is not a parameter
      group of the model.
  """
  schedule = create_schedule(cfg, num_train_steps)
  frozen = tuple(cfg.frozen)
  multipliers = dict(cfg.lr_multipliers)
  unknown = sorted((set(frozen) | set(multipliers)) - set(param_names))
  if unknown:
    raise ValueError(
      f"config.optimizer.frozen / lr_multipliers name {unknown}, which are not parameter "
      f"groups of the model; its groups are {sorted(param_names)}"
    )
  transforms = {"default": OPTIMIZERS[cfg.name](cfg, schedule), "frozen": optax.set_to_zero()}
  for name, factor in multipliers.items():
    transforms[f"x{name}"] = OPTIMIZERS[cfg.name](cfg, _scaled(schedule, float(factor)))
  label_fn: Callable[[Any], Any] = lambda params: part_labels(params, frozen, multipliers)
  tx = optax.multi_transform(transforms, label_fn)
  if cfg.grad_clip_norm:
    tx = optax.chain(optax.clip_by_global_norm(float(cfg.grad_clip_norm)), tx)
  return tx, schedule


def global_norm(tree: Any) -> jnp.ndarray:
  """L2 norm over every leaf of ``tree`` (float32 scalar)."""
  return optax.tree.norm(jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), tree))
