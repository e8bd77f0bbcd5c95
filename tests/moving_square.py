"""Test frames with known motion, shared by the flow batcher and extraction CLI tests."""

import numpy as np


def moving_square(t, h=32, w=40, step=2, offset=0):
  """uint8 ``(t, h, w, 3)``: a textured square moving right by ``step`` px per frame."""
  yy, xx = np.mgrid[0:h, 0:w]
  base = 90 + 40 * np.sin(xx / 3.0) * np.cos(yy / 4.0)
  out = np.empty((t, h, w, 3), np.uint8)
  for i in range(t):
    img = base.copy()
    x0 = 6 + offset + step * i
    patch = 200 + 40 * np.sin((xx[8:22, x0 : x0 + 12] - x0) / 2.0)
    img[8:22, x0 : x0 + 12] = patch
    out[i] = np.repeat(np.clip(img, 0, 255)[..., None], 3, -1)
  return out
