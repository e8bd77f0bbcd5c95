"""Host side of the device augmentation: per-example parameters (NumPy).

For each recipe of :mod:`jaxact.data.transforms`, :func:`draw_params` draws
from the example's ``np.random.Generator`` exactly the numbers the CPU recipe
draws, in the same order, so one seed gives the same rotation, crop, erasing
rectangle, colour factors and flip as today (only the erased pixels' noise
values differ: same distribution, drawn on the device). It returns a dict of
fixed-shape arrays that :func:`jaxact.data.device_augment.augment` consumes:

* ``affine`` ``(2, 3)`` float32: output pixel centre ``(x + .5, y + .5, 1)`` →
  source point in continuous pixel coordinates of the decoded frame (pixel i
  spans ``[i, i + 1)``). It composes resize, rotation, crop and flip, so the
  device resamples each image once.
* ``flow_matrix`` ``(2, 2)`` float32: what the geometry does to a flow vector
  ``(x, y)`` (the inverse of the affine's linear part: a resize scales, a
  rotation rotates, a flip negates x).
* ``src_hw`` ``(2,)`` int32: the valid size of the decoded frame on the canvas
  (its top-left corner).
* ``flip`` bool, ``erase`` ``(4,)`` int32 ``(top, left, bottom, right)`` in
  output pixels (empty when ``bottom <= top``), ``erase_seed`` uint32,
  ``jitter`` bool, ``jitter_order`` ``(3,)`` int32 (0 brightness, 1 contrast,
  2 saturation, applied in that order), ``jitter_factors`` ``(3,)`` float32.

Every recipe returns every key, so a batch has one structure whatever the
recipe. :func:`eval_params` gives the evaluation views (1/3/10 crops) with a
leading view axis on the per-view keys.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from jaxact.data import transforms

RECIPES = ("paper_a", "paper_b", "baseline", "none")

# Keys with one entry per evaluation view (leading V axis in eval_params).
VIEW_KEYS = ("affine", "flow_matrix", "flip")


def _translate(tx: float, ty: float) -> np.ndarray:
  return np.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])


def _scale(sx: float, sy: float) -> np.ndarray:
  return np.diag([sx, sy, 1.0])


def _hflip(size: int) -> np.ndarray:
  """Output x ← ``size - x`` (a mirror of a ``size``-wide output)."""
  return np.array([[-1.0, 0.0, size], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def _rotation(degrees: float, cx: float, cy: float) -> np.ndarray:
  """Rotated frame point → frame point, as ``transforms.rotate_crop`` samples."""
  a = math.radians(degrees)
  c, s = math.cos(a), math.sin(a)
  rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
  return _translate(cx, cy) @ rot @ _translate(-cx, -cy)


class _Frame:
  """A chain of resizes: current frame size and current → decoded-frame map."""

  def __init__(self, hw):
    self.h0, self.w0 = int(hw[0]), int(hw[1])
    self.h, self.w = self.h0, self.w0

  def resize(self, h: int, w: int):
    self.h, self.w = h, w

  def resize_short(self, short: int):
    """``transforms.resize_short``: no-op when the short side already fits."""
    if min(self.h, self.w) == short:
      return
    s = short / min(self.h, self.w)
    self.resize(max(1, round(self.h * s)), max(1, round(self.w * s)))

  def to_source(self) -> np.ndarray:
    """Current-frame point → decoded-frame point (a composed resize)."""
    return _scale(self.w0 / self.w, self.h0 / self.h)


def _pack(
  m: np.ndarray,
  frame: _Frame,
  *,
  flip: bool,
  erase=(0, 0, 0, 0),
  erase_seed: int = 0,
  jitter: bool = False,
  jitter_order=(0, 1, 2),
  jitter_factors=(1.0, 1.0, 1.0),
) -> dict:
  return {
    "affine": m[:2].astype(np.float32),
    "flow_matrix": np.linalg.inv(m[:2, :2]).astype(np.float32),
    "src_hw": np.array([frame.h0, frame.w0], np.int32),
    "flip": np.bool_(flip),
    "erase": np.asarray(erase, np.int32),
    "erase_seed": np.uint32(erase_seed),
    "jitter": np.bool_(jitter),
    "jitter_order": np.asarray(jitter_order, np.int32),
    "jitter_factors": np.asarray(jitter_factors, np.float32),
  }


def _paper_a(rng, frame: _Frame, cfg, num_frames: int) -> dict:
  size = cfg.image_size
  frame.resize_short(cfg.resize_short)
  if min(frame.h, frame.w) < size:
    frame.resize_short(size)
  h, w = frame.h, frame.w
  degrees = (
    float(rng.uniform(-cfg.rotation_degrees, cfg.rotation_degrees))
    if cfg.rotation_degrees > 0
    else 0.0
  )
  rect = transforms.erasing_rect(
    rng,
    h,
    w,
    prob=cfg.erasing_prob,
    area=tuple(cfg.erasing_area),
    aspect=tuple(cfg.erasing_aspect),
  )
  top = int(rng.integers(0, h - size + 1))
  left = int(rng.integers(0, w - size + 1))
  erase, seed = (0, 0, 0, 0), 0
  if rect is not None:
    # transforms.erase: the rectangle shifted into the crop and clipped to it.
    et, el, eh, ew = rect
    t0, l0 = max(et - top, 0), max(el - left, 0)
    t1, l1 = min(et - top + eh, size), min(el - left + ew, size)
    if t1 > t0 and l1 > l0:
      # The CPU path draws the noise here; drawing it too keeps the stream
      # (and so the flip) identical, and its bytes seed the device's noise.
      noise = rng.integers(0, 256, (num_frames, t1 - t0, l1 - l0, 3), dtype=np.uint8)
      erase, seed = (t0, l0, t1, l1), zlib.crc32(noise.tobytes())
  flip = bool(rng.random() < cfg.flip_prob)
  if flip:  # erase before the flip: mirror the rectangle into output coordinates
    erase = (erase[0], size - erase[3], erase[2], size - erase[1])
  rot = _rotation(degrees, w / 2.0, h / 2.0) if degrees != 0 else np.eye(3)
  m = frame.to_source() @ rot @ _translate(left, top)
  if flip:
    m = m @ _hflip(size)
  return _pack(m, frame, flip=flip, erase=erase, erase_seed=seed)


def _paper_b(rng, frame: _Frame, cfg) -> dict:
  size = cfg.image_size
  h, w = frame.h, frame.w
  top, left, ch, cw = transforms.jittered_crop_box(
    rng, h, w, base=cfg.crop_base, aspect=tuple(cfg.scale_jitter)
  )
  jitter, order, factors = False, (0, 1, 2), (1.0, 1.0, 1.0)
  if cfg.color_jitter > 0:
    jitter = True
    order, factors = transforms.color_jitter_draws(rng, cfg.color_jitter)
  flip = bool(rng.random() < cfg.flip_prob)
  m = _translate(left, top) @ _scale(cw / size, ch / size)
  if flip:
    m = m @ _hflip(size)
  return _pack(m, frame, flip=flip, jitter=jitter, jitter_order=order, jitter_factors=factors)


def _baseline(rng, frame: _Frame, cfg, *, train: bool) -> dict:
  size = cfg.image_size
  frame.resize_short(cfg.resize_short)
  if min(frame.h, frame.w) < size:
    frame.resize_short(size)
  h, w = frame.h, frame.w
  if train:
    top = int(rng.integers(0, h - size + 1))
    left = int(rng.integers(0, w - size + 1))
    flip = bool(rng.random() < cfg.flip_prob)
  else:
    top, left, flip = (h - size) // 2, (w - size) // 2, False
  m = frame.to_source() @ _translate(left, top)
  if flip:
    m = m @ _hflip(size)
  return _pack(m, frame, flip=flip)


def draw_params(rng: np.random.Generator, recipe: str, frame_hw, cfg, num_frames=None) -> dict:
  """Draws one example's augmentation parameters, as the CPU recipe would.

  Args:
    rng: the example's generator (Grain's per-example RNG); consumed exactly
      as ``transforms.TRAIN_AUGMENTS[recipe]`` consumes it.
    recipe: ``'paper_a'``, ``'paper_b'``, ``'baseline'`` or ``'none'``.
    frame_hw: ``(H, W)`` of the decoded frames (the valid part of the canvas).
    cfg: the data config (``resize_short``, ``image_size``, ``rotation_degrees``,
      ``erasing_*``, ``crop_base``, ``scale_jitter``, ``color_jitter``,
      ``flip_prob``).
    num_frames: T of the clip (paper A's erasing noise has one plane per
      frame); defaults to ``cfg.num_steps``.

  Returns:
    The dict of fixed-shape NumPy arrays described in the module docstring.
  """
  frame = _Frame(frame_hw)
  if recipe == "paper_a":
    t = cfg.num_steps if num_frames is None else num_frames
    return _paper_a(rng, frame, cfg, int(t))
  if recipe == "paper_b":
    return _paper_b(rng, frame, cfg)
  if recipe == "baseline":
    return _baseline(rng, frame, cfg, train=True)
  if recipe == "none":
    return _baseline(rng, frame, cfg, train=False)
  raise ValueError(f"unknown recipe {recipe!r}; expected one of {RECIPES}")


def eval_params(frame_hw, cfg) -> dict:
  """Views of ``resize_short`` + ``transforms.eval_crops`` (``cfg.eval_crops``).

  Returns:
    The :func:`draw_params` dict with a leading view axis V (1, 3 or 10) on
    ``affine``, ``flow_matrix`` and ``flip``; no erasing, no colour jitter.
  """
  size, n = cfg.image_size, cfg.eval_crops
  frame = _Frame(frame_hw)
  frame.resize_short(cfg.resize_short)
  if min(frame.h, frame.w) < size:
    frame.resize_short(size)
  windows = transforms.eval_crop_windows(frame.h, frame.w, size, n)
  views = [(y, x, False) for y, x in windows]
  if n == 10:
    views += [(y, x, True) for y, x in windows]
  packed = []
  for y, x, flip in views:
    m = frame.to_source() @ _translate(x, y)
    if flip:
      m = m @ _hflip(size)
    packed.append(_pack(m, frame, flip=flip))
  out = packed[0]
  for k in VIEW_KEYS:
    out[k] = np.stack([p[k] for p in packed])
  return out


def stack_params(params: list[dict]) -> dict:
  """Stacks per-example dicts into one batch dict (leading axis B)."""
  return {k: np.stack([p[k] for p in params]) for k in params[0]}
