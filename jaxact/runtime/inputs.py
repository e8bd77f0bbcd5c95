"""What the launcher builds from a config for the loops: the model and the loaders.

``jaxact.experiment.run`` builds the dataset when asked (:func:`ensure_dataset`), then
the model (:func:`build_model`) and the Grain loaders (:func:`open_loader`),
and hands them to ``jaxact.train.loop`` and ``jaxact.eval.evaluate``; the
loops receive objects, never factories. A custom network or input pipeline
plugs in by passing other objects with the same interface (:class:`Loader`).
"""

from typing import Any, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.experimental import multihost_utils

from jaxact import models
from jaxact.data import build, pipeline


class Loader(Protocol):
  """What the loops need from an input pipeline (``jaxact.data.pipeline.GrainLoader``).

  Training loaders yield batches forever: ``rgb`` uint8 ``(B, T, H, W, 3)``,
  ``flow`` uint8 ``(B, T, H, W, 2L)``, ``label`` int32 ``(B,)`` (B = this
  process's share of the global batch). Evaluation loaders make one pass per
  ``iter()`` with a view axis, ``rgb (B, V, T, H, W, 3)``, plus ``mask`` and
  ``index`` ``(B,)`` for the padded last batch.
  """

  num_examples: int
  num_classes: int
  class_names: list[str]

  def __iter__(self): ...
  def get_state(self) -> bytes: ...
  def set_state(self, state: bytes) -> None: ...


def build_model(config: Any, num_classes: int) -> nn.Module:
  """``jaxact.models.create(config.model.name, ...)`` with the config's overrides.

  ``config.compute_dtype='bfloat16'`` sets the model's compute ``dtype``
  (parameters stay float32).
  """
  overrides = dict(config.model.overrides)
  if config.compute_dtype == "bfloat16":
    overrides.setdefault("dtype", jnp.bfloat16)
  return models.create(config.model.name, num_classes=num_classes, **overrides)


def ensure_dataset(config: Any) -> None:
  """Build ``config.data``'s dataset if it is missing (process 0; the others wait)."""
  if jax.process_index() == 0:
    build.ensure_built(
      config.data.name,
      config.data.data_dir or None,
      config.data.manual_dir or None,
      config=config.data.builder_config,
    )
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices("jaxact_dataset_built")


def open_loader(config: Any, *, train: bool) -> Loader:
  """This process's Grain loader of the training (``train=True``) or evaluation split."""
  return pipeline.create_loader(
    config.data,
    split=config.data.train_split if train else config.data.eval_split,
    train=train,
    global_batch_size=config.batch_size if train else config.eval.batch_size,
    seed=config.seed,
    process_index=jax.process_index(),
    process_count=jax.process_count(),
  )
