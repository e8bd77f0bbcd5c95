"""JPEG encoding of stored frames: one setting for RGB, one for flow.

Everything jaxact writes as JPEG goes through here — the TFDS builders
(``datasets/base.py``) and the flow extraction CLI's output formats
(``jaxact.data.frame_formats``) — so the same frames give the same bytes
whichever wrote them.

* RGB frames: quality ``RGB_QUALITY`` (90), chroma subsampling 4:4:4 (none).
* Flow components (one uint8 grayscale plane per x / y component):
  quality ``FLOW_QUALITY`` (90).

These are the settings the dataset builders have always used, so datasets
built before this module existed hold exactly the bytes it writes now.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

RGB_QUALITY = 90
FLOW_QUALITY = 90
# Pillow's ``subsampling``: 0 = 4:4:4 (no chroma subsampling). Flow planes are
# grayscale (no chroma); the option is passed to both so the encoder settings
# are those the builders always used.
_SUBSAMPLING = 0


def _encode(image: np.ndarray, quality: int) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(image).save(buf, format="JPEG", quality=quality, subsampling=_SUBSAMPLING)
  return buf.getvalue()


def encode_rgb(frame: np.ndarray, quality: int = RGB_QUALITY) -> bytes:
  """uint8 ``(H, W, 3)`` RGB frame → JPEG bytes (4:4:4)."""
  frame = np.asarray(frame)
  if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
    raise ValueError(f"an RGB frame is uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
  return _encode(frame, quality)


def encode_flow(plane: np.ndarray, quality: int = FLOW_QUALITY) -> bytes:
  """One quantised flow component, uint8 ``(H, W)`` → grayscale JPEG bytes."""
  plane = np.asarray(plane)
  if plane.dtype != np.uint8 or plane.ndim != 2:
    raise ValueError(f"a flow component is uint8 (H, W), got {plane.dtype} {plane.shape}")
  return _encode(plane, quality)


def decode(data: bytes) -> np.ndarray:
  """JPEG bytes → uint8 ``(H, W, 3)`` (RGB) or ``(H, W)`` (grayscale)."""
  with Image.open(io.BytesIO(data)) as im:
    return np.asarray(im)
