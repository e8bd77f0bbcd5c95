"""Host side of the device pipeline: decoded frames on a fixed-size canvas.

The host only reads and decodes; the device augments
(:mod:`jaxact.data.device_augment`). So that one compiled step serves every
frame size and aspect ratio, each image goes to the device on a canvas of
``pixels`` (P) pixels with its rows packed (pitch = the frame's own width):

* RGB: uint8 ``(T, P, 3)``; frame t's pixel ``(y, x)`` is ``rgb[t, y W + x]``;
* flow: uint8 ``(T, 2L, P)``, planar (channels x1, y1, x2, y2, …); plane c's
  pixel ``(y, x)`` is ``flow[t, c, y W + x]``.

``(H, W)`` is the example's ``src_hw`` parameter (:mod:`jaxact.data.augment_params`).
A 256×341 UCF101 frame and a 455×256 portrait Kinetics frame both fit
``P = 256 × 456``, without padding rows or transposing. The rest of the canvas
is zero (never read: the device clamps to the valid frame).

JPEGs decode straight into the canvas (:func:`jaxact.data.jpeg.decode_into`).
A frame with more than P pixels is decoded smaller in the DCT domain
(``M/8`` of its size, M = 7 … 1: :func:`jaxact.data.jpeg.reduced_size`), and
:func:`fit_params` rescales its parameters, which were drawn for the stored
size: the draws, hence the crop and rotation in the stored frame's
coordinates, are those of the full-size frame; only the resolution the device
samples from is lower. Flow values keep their meaning (pixels of the stored
frame), so ``flow_matrix`` is unchanged.
"""

from __future__ import annotations

import logging

import numpy as np

from jaxact.data import jpeg

_warned: set[tuple[int, int, int]] = set()


def frame_size(example: dict) -> tuple[int, int]:
  """``(H, W)`` of an example's stored frames (read from the first JPEG's header)."""
  h, w, _ = jpeg.header(example["frames"][0])
  return h, w


def decode_clip(
  example: dict,
  rgb_idx: np.ndarray,
  flow_idx: np.ndarray,
  pixels: int,
  frame_hw: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
  """Decodes the sampled frames and flows of one stored example onto canvases.

  Args:
    example: a record (``frames``, ``flow_x``, ``flow_y`` lists of JPEG bytes).
    rgb_idx: int ``(T,)`` RGB frame indices.
    flow_idx: int ``(T, L)`` flow indices.
    pixels: P, the canvas size in pixels.
    frame_hw: the stored frame size, if known (else read from a header).

  Returns:
    ``(rgb (T, P, 3), flow (T, 2L, P), (H', W'))`` uint8 canvases and the size
    the frames were decoded to (the stored size, or a DCT-domain reduction of
    it when that exceeds ``pixels``).

  Raises:
    ValueError: a JPEG is unreadable or of another size than the first frame.
  """
  h, w = frame_size(example) if frame_hw is None else frame_hw
  size = (h, w) if h * w <= pixels else jpeg.reduced_size(h, w, pixels)
  if size != (h, w) and (h, w, pixels) not in _warned:
    _warned.add((h, w, pixels))
    logging.warning(
      "%dx%d frames exceed config.data.canvas_pixels=%d: decoded at %dx%d (JPEG DCT "
      "scaling); set canvas_pixels >= %d to keep their full resolution",
      h,
      w,
      pixels,
      size[0],
      size[1],
      h * w,
    )
  t, l = flow_idx.shape
  rgb = np.zeros((len(rgb_idx), pixels, 3), np.uint8)
  flow = np.zeros((t, 2 * l, pixels), np.uint8)
  for a, i in enumerate(rgb_idx):
    jpeg.decode_into(example["frames"][int(i)], rgb[a], gray=False, size=size)
  n = size[0] * size[1]
  done: dict[tuple[int, int], np.ndarray] = {}
  for a in range(t):
    for b in range(l):
      for c, key in enumerate(("flow_x", "flow_y")):
        plane = flow[a, 2 * b + c]
        i = int(flow_idx[a, b])
        if (c, i) in done:  # overlapping stacks (uniform sampling) decode once
          plane[:n] = done[(c, i)]
        else:
          jpeg.decode_into(example[key][i], plane, gray=True, size=size)
          done[(c, i)] = plane[:n]
  return rgb, flow, size


def pack(rgb: np.ndarray, flow: np.ndarray, pixels: int) -> tuple[np.ndarray, np.ndarray]:
  """Decoded arrays → canvases (tests and in-memory clips).

  Args:
    rgb: uint8 ``(T, H, W, 3)``.
    flow: uint8 ``(T, H, W, 2L)``.
    pixels: P ≥ H W.

  Returns:
    ``rgb (T, P, 3)``, ``flow (T, 2L, P)`` uint8, zero beyond ``H W``.
  """
  t, h, w, _ = rgb.shape
  if h * w > pixels:
    raise ValueError(f"{h}x{w} frames do not fit a canvas of {pixels} pixels")
  r = np.zeros((t, pixels, 3), np.uint8)
  r[:, : h * w] = rgb.reshape(t, h * w, 3)
  f = np.zeros((flow.shape[0], flow.shape[-1], pixels), np.uint8)
  f[:, :, : h * w] = np.moveaxis(flow, -1, 1).reshape(flow.shape[0], -1, h * w)
  return r, f


def fit_params(params: dict, frame_hw, decoded_hw) -> dict:
  """Parameters drawn for ``frame_hw`` frames, applied to ``decoded_hw`` ones.

  Scales the affine's output from stored-frame to decoded-frame coordinates
  by the decoder's ``M/8`` (continuous pixel coordinates scale exactly; the
  decoded size is ``ceil(H M / 8)``, so ``M = round(8 H' / H)``) and sets
  ``src_hw``; a no-op when the sizes are equal. Works on :func:`augment_params.draw_params` and
  ``eval_params`` dicts (with a view axis).
  """
  (h, w), (dh, dw) = frame_hw, decoded_hw
  if (h, w) == (dh, dw):
    return params
  out = dict(params)
  m = round(8 * dh / h) / 8
  scale = np.array([[m], [m]], np.float32)
  out["affine"] = (params["affine"] * scale).astype(np.float32)
  out["src_hw"] = np.array([dh, dw], np.int32)
  return out
