"""Input normalisation, done on the device inside the jitted step.

The pipeline ships uint8 RGB frames and uint8 flow (4x less host→device traffic
than float32); the step turns them into network inputs with these functions.

* RGB: ``(x / 255 - mean) / std`` with ImageNet statistics (what ImageNet-
  pretrained torchvision / timm / CoTNet weights expect).
* Flow: ``(v - 128) / 128`` on the quantised values (docs/reference.md: not ImageNet
  statistics); ``v = 128`` is no motion.
"""

from collections.abc import Mapping

import jax.numpy as jnp

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FLOW_CENTER = 128.0


def normalize_rgb(rgb, dtype=jnp.float32):
  """uint8 or [0, 255] float RGB ``(..., 3)`` → ImageNet-normalised ``dtype``."""
  x = jnp.asarray(rgb, jnp.float32) / 255.0
  x = (x - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)
  return x.astype(dtype)


def normalize_flow(flow, dtype=jnp.float32):
  """Quantised flow ``(..., 2L)`` with values 0…255 → ``(v - 128) / 128``."""
  x = (jnp.asarray(flow, jnp.float32) - FLOW_CENTER) / FLOW_CENTER
  return x.astype(dtype)


def normalize_inputs(batch: Mapping[str, jnp.ndarray], dtype=jnp.float32) -> dict:
  """Return ``{'rgb': ..., 'flow': ...}`` network inputs from a raw batch.

  Keys other than ``rgb`` and ``flow`` are ignored; either may be absent.
  """
  out = {}
  if "rgb" in batch:
    out["rgb"] = normalize_rgb(batch["rgb"], dtype)
  if "flow" in batch:
    out["flow"] = normalize_flow(batch["flow"], dtype)
  return out
