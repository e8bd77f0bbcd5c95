"""An in-memory loader over numpy arrays: the test double of the Grain loader.

It has the interface of ``jaxact.runtime.inputs.Loader`` and the Grain
pipeline's sharding semantics, so the loop, checkpoint and multi-process
tests run in seconds without a dataset.
"""

import json

import numpy as np


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
    return json.dumps({"pos": self._pos}).encode()

  def set_state(self, state: bytes) -> None:
    self._pos = int(json.loads(state.decode())["pos"])

  def _order(self, epoch: int):
    return np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)

  def __iter__(self):
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
