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

JPEGs decode straight into the canvas (:func:`jaxact.data.jpeg.decode_into`);
the pipeline's batch function (:class:`Collate`) decodes every sampled clip
(:class:`PendingClip`) into the batch's own canvases.
A frame with more than P pixels is decoded smaller in the DCT domain
(``M/8`` of its size, M = 7 … 1: :func:`jaxact.data.jpeg.reduced_size`), and
:func:`fit_params` rescales its parameters, which were drawn for the stored
size: the draws, hence the crop and rotation in the stored frame's
coordinates, are those of the full-size frame; only the resolution the device
samples from is lower. Flow values keep their meaning (pixels of the stored
frame), so ``flow_matrix`` is unchanged.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from jaxact.data import jpeg

_warned: set[tuple[int, int, int]] = set()


class StoredFrameError(ValueError):
  """A stored JPEG of a built dataset cannot be decoded (damaged storage)."""


def _damaged(example: dict, error: ValueError) -> StoredFrameError:
  """The one-line error of a damaged record (``where``: the record's place,
  from the index's image lists or ``pipeline.LazyRecords``)."""
  where = example.get("where") or getattr(example["frames"], "where", "a stored video")
  return StoredFrameError(
    f"{where}: a stored frame cannot be decoded ({error}); the dataset is damaged: build it again"
  )


def frame_size(example: dict) -> tuple[int, int]:
  """``(H, W)`` of an example's stored frames (read from the first JPEG's header).

  Raises:
    StoredFrameError: the header is unreadable.
  """
  try:
    h, w, _ = jpeg.header(example["frames"][0])
  except ValueError as e:
    raise _damaged(example, e) from None
  return h, w


def decoded_size(frame_hw: tuple[int, int], pixels: int) -> tuple[int, int]:
  """The size frames of ``frame_hw`` are decoded to on a canvas of ``pixels``:
  as stored, or the largest DCT-domain reduction that fits (said once per size)."""
  h, w = frame_hw
  if h * w <= pixels:
    return h, w
  size = jpeg.reduced_size(h, w, pixels)
  if (h, w, pixels) not in _warned:
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
  return size


@dataclasses.dataclass(frozen=True)
class PendingClip:
  """A sampled clip whose JPEGs are decoded later, straight into a batch.

  The pipeline's samplers return these and :class:`Collate` decodes every
  clip of a batch into the batch's own canvases: no per-clip canvas, no copy
  of it into the batch.

  Attributes:
    example: the record (``frames``, ``flow_x``, ``flow_y``: JPEG bytes, read
      when indexed).
    rgb_idx: int ``(T,)`` RGB frame indices.
    flow_idx: int ``(T, L)`` flow indices.
    size: ``(H', W')`` the frames are decoded to (:func:`decoded_size`).
  """

  example: Any
  rgb_idx: np.ndarray
  flow_idx: np.ndarray
  size: tuple[int, int]

  def decode_into(self, rgb: np.ndarray, flow: np.ndarray) -> None:
    """Decodes into zeroed canvases ``rgb (T, P, 3)`` and ``flow (T, 2L, P)``.

    Raises:
      StoredFrameError: a JPEG is unreadable or of another size than the
        first frame (one line: which record, which image).
    """
    try:
      self._decode(rgb, flow)
    except StoredFrameError:
      raise
    except ValueError as e:
      where = getattr(self.example["frames"], "where", "a stored video")
      raise StoredFrameError(
        f"{where}: a stored frame cannot be decoded ({e}); the dataset is damaged: build it again"
      ) from None

  def _decode(self, rgb: np.ndarray, flow: np.ndarray) -> None:
    ex, size = self.example, self.size
    for a, i in enumerate(self.rgb_idx):
      jpeg.decode_into(ex["frames"][int(i)], rgb[a], gray=False, size=size)
    n = size[0] * size[1]
    t, l = self.flow_idx.shape
    done: dict[tuple[int, int], np.ndarray] = {}
    for a in range(t):
      for b in range(l):
        for c, key in enumerate(("flow_x", "flow_y")):
          plane = flow[a, 2 * b + c]
          i = int(self.flow_idx[a, b])
          if (c, i) in done:  # overlapping stacks (uniform sampling) decode once
            plane[:n] = done[(c, i)]
          else:
            jpeg.decode_into(ex[key][i], plane, gray=True, size=size)
            done[(c, i)] = plane[:n]


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
  size = decoded_size(frame_size(example) if frame_hw is None else frame_hw, pixels)
  clip = PendingClip(example, np.asarray(rgb_idx), np.asarray(flow_idx), size)
  t, l = clip.flow_idx.shape
  rgb = np.zeros((len(clip.rgb_idx), pixels, 3), np.uint8)
  flow = np.zeros((t, 2 * l, pixels), np.uint8)
  clip.decode_into(rgb, flow)
  return rgb, flow, size


class Collate:
  """Grain ``batch_fn``: a list of sampled examples → one batch, decoded in place.

  Training examples carry ``clip``, a :class:`PendingClip`; evaluation
  examples carry ``clips``, a tuple of ``num_clips`` of them, or None for a
  padding example. The batch gets ``rgb (B, T, P, 3)`` / ``(B, C, T, P, 3)``
  and ``flow (B, T, 2L, P)`` / ``(B, C, T, 2L, P)`` uint8 canvases, zero
  where no frame is; every other key is stacked (nested dicts too).

  Args:
    pixels: P.
    num_steps, flow_length: T and L.
    num_clips: C for evaluation batches; None for training batches.
  """

  def __init__(self, pixels: int, num_steps: int, flow_length: int, num_clips: int | None = None):
    self.pixels, self.t, self.l = int(pixels), int(num_steps), int(flow_length)
    self.num_clips = num_clips

  def __call__(self, examples: Sequence[dict]) -> dict:
    key = "clip" if self.num_clips is None else "clips"
    lead = (len(examples),) if self.num_clips is None else (len(examples), self.num_clips)
    rgb = np.zeros(lead + (self.t, self.pixels, 3), np.uint8)
    flow = np.zeros(lead + (self.t, 2 * self.l, self.pixels), np.uint8)
    for b, ex in enumerate(examples):
      if self.num_clips is None:
        ex[key].decode_into(rgb[b], flow[b])
      elif ex[key] is not None:
        for c, clip in enumerate(ex[key]):
          clip.decode_into(rgb[b, c], flow[b, c])
    rest = [{k: v for k, v in ex.items() if k != key} for ex in examples]
    out = jax.tree.map(lambda *xs: np.stack(xs), *rest)
    out["rgb"], out["flow"] = rgb, flow
    return out


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
