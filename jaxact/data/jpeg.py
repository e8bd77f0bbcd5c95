"""JPEG encoding and decoding of stored frames: one setting for RGB, one for flow.

Everything jaxact writes as JPEG goes through here — the TFDS builders
(``datasets/base.py``) and the flow extraction CLI's output formats
(``jaxact.data.frame_formats``) — so the same frames give the same bytes
whichever wrote them.

* RGB frames: quality ``RGB_QUALITY`` (90), chroma subsampling 4:4:4 (none).
* Flow components (one uint8 grayscale plane per x / y component):
  quality ``FLOW_QUALITY`` (90).

These are the settings the dataset builders have always used, so datasets
built before this module existed hold exactly the bytes it writes now.

Decoding uses simplejpeg (libjpeg-turbo's TurboJPEG API): the same pixels as
Pillow (accurate integer IDCT, fancy upsampling; tested equal), with less
per-call overhead, and it decodes straight into a caller's buffer (the
pipeline's device canvas, :mod:`jaxact.data.canvas`) and, when asked, to a
smaller size in the DCT domain. Measured per image with
``python -m jaxact.tools.bench_data`` (docs/benchmarks.md).
"""

from __future__ import annotations

import io
import math

import numpy as np
import simplejpeg
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


def header(data: bytes) -> tuple[int, int, bool]:
  """``(height, width, is_gray)`` of JPEG bytes, without decoding.

  Raises:
    ValueError: the bytes are not a readable JPEG.
  """
  h, w, colorspace, _ = simplejpeg.decode_jpeg_header(data)
  return int(h), int(w), colorspace == "Gray"


def decode(data: bytes) -> np.ndarray:
  """JPEG bytes → uint8 ``(H, W, 3)`` (RGB) or ``(H, W)`` (grayscale)."""
  if header(data)[2]:
    return simplejpeg.decode_jpeg(data, colorspace="GRAY")[..., 0]
  return simplejpeg.decode_jpeg(data, colorspace="RGB")


def reduced_size(height: int, width: int, pixels: int) -> tuple[int, int]:
  """The largest DCT-domain size ``ceil(H M / 8) × ceil(W M / 8)``, M = 8 … 1,
  with at most ``pixels`` pixels (M = 8: the full size)."""
  for m in range(8, 0, -1):
    h, w = math.ceil(height * m / 8), math.ceil(width * m / 8)
    if h * w <= pixels:
      return h, w
  raise ValueError(f"a {height}x{width} JPEG cannot be reduced to {pixels} pixels")


def decode_into(data: bytes, out: np.ndarray, *, gray: bool, size: tuple[int, int]) -> None:
  """Decodes into the start of ``out``, rows packed (pitch = the width).

  Args:
    data: JPEG bytes.
    out: a C-contiguous uint8 buffer with room for ``H' W'`` pixels (× 3 for
      RGB), e.g. one frame of the canvas.
    gray: decode one grayscale plane (``(H', W')``) instead of RGB.
    size: ``(H', W')``, the full size or one of :func:`reduced_size`'s (the
      decoder then scales in the DCT domain).

  Raises:
    ValueError: unreadable bytes, or an image of another size than expected.
  """
  h, w = size
  got = simplejpeg.decode_jpeg(
    data,
    colorspace="GRAY" if gray else "RGB",
    min_height=h,
    min_width=w,
    buffer=out,
  )
  if got.shape[:2] != (h, w):
    raise ValueError(f"a JPEG decoded to {got.shape[0]}x{got.shape[1]}, expected {h}x{w}")
