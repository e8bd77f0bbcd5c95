"""Flow <-> uint8 (the usual TV-L1 storage format) and flow-stack flips.

``v = round(255 * (f + bound) / (2 * bound))`` clipped to 0..255, so with the
default bound of 20 px, 128 ≈ no motion and one step is 40/255 ≈ 0.157 px.
A flow stack is ``(..., H, W, 2L)`` with channels ordered x1, y1, x2, y2, …

All functions accept NumPy or JAX arrays and return the same kind.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

DEFAULT_BOUND = 20.0


def _xp(x):
  return jnp if isinstance(x, jax.Array) else np


def quantize(flow, bound: float = DEFAULT_BOUND):
  """Maps float flow to uint8: ``round(255 * (f + bound) / (2 * bound))``.

  Args:
    flow: float array, any shape (e.g. ``(..., H, W, 2)``), in pixels.
    bound: displacements are clipped to ``[-bound, bound]``.

  Returns:
    uint8 array of the same shape.
  """
  if bound <= 0:
    raise ValueError(f"bound must be > 0, got {bound}")
  xp = _xp(flow)
  f = xp.asarray(flow, dtype=xp.float32)
  v = xp.round((f + np.float32(bound)) * np.float32(255.0 / (2 * bound)))
  return xp.clip(v, 0, 255).astype(xp.uint8)


def dequantize(v, bound: float = DEFAULT_BOUND):
  """Inverse of :func:`quantize`: uint8 → float32 pixels, ``v * 2b/255 - b``."""
  if bound <= 0:
    raise ValueError(f"bound must be > 0, got {bound}")
  xp = _xp(v)
  x = xp.asarray(v).astype(xp.float32)
  return x * np.float32(2 * bound / 255.0) - np.float32(bound)


def flip_flow_stack(stack, *, mirror: bool = True):
  """Horizontal flip of a flow stack ``(..., H, W, 2L)``.

  A left-right flip of the video negates every x displacement and keeps y.
  On uint8 stacks x channels (even indices) become ``255 - v``; on float
  stacks they become ``-f``.

  Args:
    stack: ``(..., H, W, 2L)`` uint8 or float flow, channels x1, y1, x2, …
    mirror: also mirror the W axis (a full horizontal flip). Pass False when
      the caller mirrors images and flows together elsewhere and only the
      sign of x is left to fix.

  Returns:
    Array of the same shape and dtype.
  """
  xp = _xp(stack)
  s = xp.asarray(stack)
  if s.ndim < 3 or s.shape[-1] % 2:
    raise ValueError(
      f"flow stack must be (..., H, W, 2L) with an even channel count, got shape {s.shape}"
    )
  if s.dtype == np.uint8:
    x = 255 - s[..., 0::2]
  else:
    x = -s[..., 0::2]
  y = s[..., 1::2]
  out = xp.stack([x, y], axis=-1).reshape(s.shape)  # re-interleave x, y
  if mirror:
    out = out[..., :, ::-1, :]
  return out
