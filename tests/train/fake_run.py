"""A tiny two-stream network and in-memory data for the train/eval tests.

The network follows the two-stream contract of ``jaxact.models`` (dict input
``rgb``/``flow``, ``(logits, features)`` with ``spatial_logits`` and
``temporal_logits``, BatchNorm statistics, dropout RNG, top-level parameter
groups ``spatial``, ``temporal``, ``classifier``) but compiles in about a
second, so the loop, checkpoint and multi-process tests stay fast.

Run as a script it is ``python -m jaxact.main`` with these fakes plugged in
(same flags), for the subprocess tests (kill -9, multi-process, restore on
another device count).
"""

import functools
import os
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl import app

# Script and --config modes load this file directly: tests/ holds array_loader.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from array_loader import ArrayLoader

NUM_CLASSES = 3
FRAMES, SIZE, FLOW_CHANNELS = 2, 8, 4


class TinyStream(nn.Module):
  num_classes: int

  @nn.compact
  def __call__(self, x, train: bool):
    n, t = x.shape[:2]
    h = nn.Conv(4, (3, 3), name="conv")(x.reshape((n * t,) + x.shape[2:]))
    h = nn.BatchNorm(use_running_average=not train, momentum=0.9, name="bn")(h)
    h = nn.relu(h).mean(axis=(1, 2)).reshape(n, t, -1).mean(1)
    return h, nn.Dense(self.num_classes, name="fc")(h)


class TinyTwoStream(nn.Module):
  num_classes: int
  dropout: float = 0.1

  @nn.compact
  def __call__(self, x, train: bool = False):
    hs, ls = TinyStream(self.num_classes, name="spatial")(x["rgb"], train)
    ht, lt = TinyStream(self.num_classes, name="temporal")(x["flow"], train)
    h = nn.Dropout(self.dropout, deterministic=not train)(jnp.concatenate([hs, ht], -1))
    logits = nn.Dense(self.num_classes, name="classifier")(h)
    return logits, {"spatial_logits": ls, "temporal_logits": lt}


def make_arrays(n: int, seed: int = 0) -> dict:
  """Learnable random data: the class shifts the mean flow value."""
  rng = np.random.default_rng(seed)
  label = rng.integers(0, NUM_CLASSES, n).astype(np.int32)
  rgb = rng.integers(0, 256, (n, FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
  flow = rng.integers(60, 196, (n, FRAMES, SIZE, SIZE, FLOW_CHANNELS)).astype(np.int64)
  flow = np.clip(flow + 40 * (label[:, None, None, None, None] - 1), 0, 255).astype(np.uint8)
  return {"rgb": rgb, "flow": flow, "label": label}


def model_fn(config, num_classes):
  del config
  return TinyTwoStream(num_classes)


class SlowArrayLoader:
  """Wraps a loader and sleeps ``FAKE_BATCH_SLEEP`` seconds per training batch
  (so a subprocess test can kill a run in the middle)."""

  def __init__(self, loader, delay: float):
    self._loader, self._delay = loader, delay

  def __getattr__(self, name):
    return getattr(self._loader, name)

  def __iter__(self):
    for batch in self._loader:
      time.sleep(self._delay)
      yield batch


def loader_fn(config, *, train: bool, num_train: int = 48, num_eval: int = 10):
  arrays = make_arrays(num_train if train else num_eval, seed=0 if train else 1)
  delay = float(os.environ.get("FAKE_BATCH_SLEEP", "0"))
  loader = ArrayLoader(
    arrays,
    train=train,
    global_batch_size=config.batch_size if train else config.eval.batch_size,
    seed=config.seed,
    process_index=jax.process_index(),
    process_count=jax.process_count(),
    class_names=[f"class{i}" for i in range(NUM_CLASSES)],
  )
  return SlowArrayLoader(loader, delay) if train and delay else loader


def tiny_config(**overrides):
  """A few-step config for the fakes (no dataset needed)."""
  from jaxact.config import get_base_config

  c = get_base_config()
  c.batch_size = 8
  c.num_train_steps = 6
  c.log_every_steps = 1
  c.checkpoint_every_steps = 2
  c.optimizer.name = "sgd"
  c.optimizer.learning_rate = 0.05
  c.optimizer.momentum = 0.9
  c.loss.spatial_weight = 0.5
  c.loss.temporal_weight = 0.5
  c.eval.batch_size = 4
  c.progress_bar = False
  c.tensorboard = False
  for key, value in overrides.items():
    node = c
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return c


def get_config(arg=None):
  """``--config tests/train/fake_run.py[:key=value;...]`` for the script mode."""
  overrides = {}
  for item in filter(None, (arg or "").split(";")):
    k, v = item.split("=", 1)
    overrides[k] = type(_default(k))(v) if not isinstance(_default(k), bool) else v == "True"
  return tiny_config(**overrides)


def _default(key):
  node = tiny_config()
  for p in key.split("."):
    node = node[p]
  return node


if __name__ == "__main__":
  # Defines jaxact.main's absl flags: only in script mode, never when imported by tests.
  from absl import app

  from jaxact import main as jaxact_main

  app.run(
    functools.partial(jaxact_main.main, model_fn=model_fn, loader_fn=loader_fn),
    flags_parser=jaxact_main.parse_flags,
  )
