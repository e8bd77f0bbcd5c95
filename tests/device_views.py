"""The device augmentation of host batches, as the jitted steps run it (tests only).

The pipeline's batches are canvases plus parameters; these helpers turn them
into the uint8 views the network sees, as ``jaxact.train.step`` and
``jaxact.runtime.scoring`` do, and return NumPy arrays.
"""

import jax
import numpy as np

from jaxact.data import device_augment


def train_views(batch: dict, data_cfg) -> dict:
  """Training batch → ``rgb (B, T, S, S, 3)``, ``flow (B, T, S, S, 2L)``, ``label``, ..."""
  out = device_augment.train_inputs(
    batch, out_size=int(data_cfg.image_size), recipe=str(data_cfg.augment)
  )
  return jax.tree.map(np.asarray, out)


def eval_views(batch: dict, data_cfg) -> dict:
  """Evaluation batch → ``rgb (B, V, T, S, S, 3)``, ``flow (B, V, T, S, S, 2L)``, ..."""
  out = device_augment.eval_inputs(batch, out_size=int(data_cfg.image_size))
  return jax.tree.map(np.asarray, out)
