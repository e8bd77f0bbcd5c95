"""Default model and data-loader factories used by the train and eval loops.

Both loops accept replacements (``model_fn``, ``loader_fn``) with the same
signatures, so a custom network or input pipeline plugs in without forking.
"""

from typing import Any, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp


class Loader(Protocol):
  """What the loops need from an input pipeline (``jaxact.data.pipeline``)."""

  num_examples: int
  num_classes: int
  class_names: list[str]

  def __iter__(self): ...
  def get_state(self) -> bytes: ...
  def set_state(self, state: bytes) -> None: ...


def create_model(config: Any, num_classes: int) -> nn.Module:
  """``jaxact.models.create(config.model.name, ...)`` with the config's overrides.

  ``config.compute_dtype='bfloat16'`` sets the model's compute ``dtype``
  (parameters stay float32).
  """
  from jaxact import models

  overrides = dict(config.model.overrides)
  if config.compute_dtype == "bfloat16":
    overrides.setdefault("dtype", jnp.bfloat16)
  return models.create(config.model.name, num_classes=num_classes, **overrides)


def ensure_dataset(config: Any) -> None:
  """Build ``config.data``'s dataset if ``config.build_dataset`` and it is missing.

  Process 0 builds; the other processes wait for it.
  """
  if not config.get("build_dataset", False):
    return
  from jaxact.data import build

  if jax.process_index() == 0:
    build.ensure_built(
      config.data.name,
      config.data.data_dir or None,
      config.data.manual_dir or None,
      config=config.data.builder_config,
    )
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices("jaxact_dataset_built")


def create_loader(config: Any, *, train: bool) -> Loader:
  """The Grain loader for training (``train=True``) or evaluation of this process."""
  from jaxact.data import pipeline

  return pipeline.create_loader(
    config.data,
    split=config.data.train_split if train else config.data.eval_split,
    train=train,
    global_batch_size=config.batch_size if train else config.eval.batch_size,
    seed=config.seed,
    process_index=jax.process_index(),
    process_count=jax.process_count(),
  )


class ArrayLoader:
  """An in-memory :class:`Loader` over numpy arrays (custom data, tests).

  Training: shuffles per epoch with ``seed``, repeats forever, drops the
  partial batch; evaluation: one pass in order, padded, with ``mask`` and
  ``index`` (and a view axis V = 1 added when the arrays have none). Each
  process takes every ``process_count``-th example of the global batch
  positions, like the Grain pipeline.

  Args:
    arrays: ``rgb`` uint8 ``(N, T, H, W, 3)`` (or ``(N, V, T, H, W, 3)`` for
      evaluation), ``flow`` uint8, ``label`` int ``(N,)``.
    train: training or evaluation behaviour.
    global_batch_size: batch over all processes.
    seed: shuffling seed.
    process_index, process_count: this process's slice.
    class_names: defaults to ``'0'``, ``'1'``, ...
  """

  def __init__(
    self,
    arrays: dict,
    *,
    train: bool,
    global_batch_size: int,
    seed: int = 0,
    process_index: int = 0,
    process_count: int = 1,
    class_names: list[str] | None = None,
  ):
    import numpy as np

    self._np = np
    self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
    self.train = train
    self.num_examples = len(self.arrays["label"])
    self.num_classes = (
      int(self.arrays["label"].max()) + 1 if class_names is None else len(class_names)
    )
    self.class_names = class_names or [str(i) for i in range(self.num_classes)]
    self.batch = global_batch_size
    self.local = global_batch_size // process_count
    self.seed, self.pi, self.pc = seed, process_index, process_count
    self._pos = 0  # global batches yielded so far

  def get_state(self) -> bytes:
    import json

    return json.dumps({"pos": self._pos}).encode()

  def set_state(self, state: bytes) -> None:
    import json

    self._pos = int(json.loads(state.decode())["pos"])

  def _order(self, epoch: int):
    return self._np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)

  def __iter__(self):
    np = self._np
    if self.train:
      per_epoch = self.num_examples // self.batch
      while True:
        epoch, k = divmod(self._pos, per_epoch)
        ids = self._order(epoch)[k * self.batch : (k + 1) * self.batch]
        ids = ids[self.pi * self.local : (self.pi + 1) * self.local]
        self._pos += 1
        yield {k2: v[ids] for k2, v in self.arrays.items()}
    else:
      n_batches = -(-self.num_examples // self.batch)
      for b in range(n_batches):
        ids = np.arange(b * self.batch, (b + 1) * self.batch)[
          self.pi * self.local : (self.pi + 1) * self.local
        ]
        mask = ids < self.num_examples
        safe = np.where(mask, ids, 0)
        out = {k: v[safe] for k, v in self.arrays.items()}
        for k in ("rgb", "flow"):
          if k in out and out[k].ndim == 5:
            out[k] = out[k][:, None]
        out["mask"] = mask
        out["index"] = np.where(mask, ids, -1).astype(np.int64)
        out["label"] = np.where(mask, out["label"], 0).astype(np.int32)
        yield out
