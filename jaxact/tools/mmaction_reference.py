"""MMAction2-style reference clip loader: frame folders, OpenCV decode, CPU augmentation.

What an MMAction2 training pipeline on "rawframes" does per clip, in one
process, with OpenCV and NumPy (``cv2.setNumThreads(1)`` is the caller's
choice): one ``cv2.imread`` per distinct sampled image (``img_%05d.jpg`` as
``IMREAD_COLOR`` + BGR→RGB; ``flow_x_%05d.jpg`` / ``flow_y_%05d.jpg`` as
``IMREAD_GRAYSCALE``; repeated indices reuse the decoded image, as
``RawFrameDecode`` does), then the paper's augmentation as a chain of
independent transforms:

* paper A: resize short side (``cv2.resize`` bilinear), rotation of the whole
  frame (``cv2.warpAffine``; RGB fill 0, flow fill 128; flow vectors
  dequantised ``v·40/255 − 20``, rotated, requantised, in one
  ``cv2.addWeighted`` per plane), random erasing (RGB
  uniform noise, flow 128), random crop by slicing, flip (x channels
  ``255 − x``);
* paper B: jittered crop by slicing, ``cv2.resize`` of every frame and flow
  plane to the output size (flow values not rescaled, as in MMAction2's
  ``Resize``), mmcv-style colour jitter on RGB (``cv2.addWeighted`` in
  float32, grey via ``cv2.cvtColor``, contrast around each frame's mean
  grey), flip.

Random parameters are drawn with jaxact's own draw functions
(:mod:`jaxact.data.transforms`) from the generator passed in, so both
pipelines draw from the same distributions. Flow is kept as decoded, one
contiguous plane per image (``(T, 2L, H, W)``, as MMAction2 keeps a list of
planes), until the recipes' last step puts it in jaxact's layout: outputs are
uint8 ``(T, S, S, 3)`` and ``(T, S, S, 2L)`` (x1, y1, x2, y2, …).
"""

from __future__ import annotations

import math
import os

import cv2
import numpy as np

from jaxact.data import sampling, transforms


def load_clip(folder: str, rgb_idx, flow_idx) -> tuple[np.ndarray, np.ndarray]:
  """Reads and decodes the sampled images of one rawframes folder.

  Args:
    folder: holds ``img_%05d.jpg``, ``flow_x_%05d.jpg``, ``flow_y_%05d.jpg``
      (1-based).
    rgb_idx: int ``(T,)`` 0-based RGB frame indices.
    flow_idx: int ``(T, L)`` 0-based flow indices.

  Returns:
    ``rgb`` uint8 ``(T, H, W, 3)``, ``flow`` uint8 planes ``(T, 2L, H, W)``.
  """
  cache = {}

  def read(name: str, flag: int) -> np.ndarray:
    if name not in cache:
      im = cv2.imread(os.path.join(folder, name), flag)
      if im is None:
        raise FileNotFoundError(os.path.join(folder, name))
      cache[name] = cv2.cvtColor(im, cv2.COLOR_BGR2RGB) if flag == cv2.IMREAD_COLOR else im
    return cache[name]

  rgb = np.stack([read(f"img_{i + 1:05d}.jpg", cv2.IMREAD_COLOR) for i in rgb_idx])
  t, l = np.shape(flow_idx)
  flow = np.empty((t, 2 * l) + rgb.shape[1:3], np.uint8)
  for a in range(t):
    for b in range(l):
      k = int(flow_idx[a][b]) + 1
      flow[a, 2 * b] = read(f"flow_x_{k:05d}.jpg", cv2.IMREAD_GRAYSCALE)
      flow[a, 2 * b + 1] = read(f"flow_y_{k:05d}.jpg", cv2.IMREAD_GRAYSCALE)
  return rgb, flow


def _planes(x: np.ndarray, op) -> np.ndarray:
  """``op`` on every plane of ``(T, C, H, W)`` uint8 → ``(T, C, h, w)``."""
  return np.stack([np.stack([op(p) for p in planes]) for planes in x])


def resize(rgb: np.ndarray, flow: np.ndarray, h: int, w: int):
  """``cv2.resize`` (bilinear) of every frame ``(T, H, W, 3)`` and flow plane
  ``(T, 2L, H, W)`` to ``h × w`` (flow values unchanged, as MMAction2's ``Resize``)."""
  if rgb.shape[1:3] == (h, w):
    return rgb, flow
  op = lambda im: cv2.resize(im, (w, h), interpolation=cv2.INTER_LINEAR)
  return np.stack([op(f) for f in rgb]), _planes(flow, op)


def rotate(rgb: np.ndarray, flow: np.ndarray, degrees: float):
  """Rotates whole frames by ``degrees`` (counter-clockwise as seen) about the
  centre; flow vectors rotate with them.

  Args:
    rgb: uint8 ``(T, H, W, 3)``; outside the source becomes 0.
    flow: uint8 planes ``(T, 2L, H, W)`` quantised with bound 20; outside
      becomes 128.

  Returns:
    ``(rgb, flow)`` of the same shapes.
  """
  if degrees == 0:
    return rgb, flow
  h, w = rgb.shape[1:3]
  m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), degrees, 1.0)
  warp = lambda im, fill: cv2.warpAffine(
    im, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=fill
  )
  rgb = np.stack([warp(f, (0, 0, 0)) for f in rgb])
  flow = _planes(flow, lambda im: warp(im, 128))
  # Dequantise (v·40/255 − 20), rotate, requantise: linear in v, so one
  # saturating, rounding cv2.addWeighted per plane, offset 127.5 (1 − wp − wq).
  a = math.radians(degrees)
  c, s = math.cos(a), math.sin(a)  # the rotation matrix of getRotationMatrix2D
  mix = lambda p, q, wp, wq: cv2.addWeighted(p, wp, q, wq, 127.5 * (1 - wp - wq))
  out = np.empty_like(flow)
  for i in range(len(flow)):
    for x in range(0, flow.shape[1], 2):
      fx, fy = flow[i, x], flow[i, x + 1]
      out[i, x], out[i, x + 1] = mix(fx, fy, c, s), mix(fx, fy, -s, c)
  return rgb, out


def erase(rng: np.random.Generator, rgb, flow, rect):
  """Fills ``rect = (top, left, h, w)`` on every frame ``(T, H, W, 3)`` and
  plane ``(T, 2L, H, W)`` in place: RGB uniform noise, flow 128."""
  if rect is None:
    return rgb, flow
  t, l, eh, ew = rect
  rgb[:, t : t + eh, l : l + ew] = rng.integers(0, 256, (len(rgb), eh, ew, 3), dtype=np.uint8)
  flow[:, :, t : t + eh, l : l + ew] = 128
  return rgb, flow


def flip(rgb: np.ndarray, flow: np.ndarray):
  """Mirrors ``(T, H, W, 3)`` and ``(T, 2L, H, W)`` left-right; flow x planes
  become ``255 − x`` (``mmcv.iminvert``)."""
  rgb, flow = rgb[:, :, ::-1].copy(), flow[..., ::-1].copy()
  flow[:, 0::2] = 255 - flow[:, 0::2]
  return rgb, flow


def _to_jaxact(rgb: np.ndarray, flow: np.ndarray):
  """Planes ``(T, 2L, S, S)`` → ``(T, S, S, 2L)`` (MMAction2's ``FormatShape`` step)."""
  return np.ascontiguousarray(rgb), np.ascontiguousarray(flow.transpose(0, 2, 3, 1))


def color_jitter(rgb: np.ndarray, order, factors) -> np.ndarray:
  """mmcv's ``adjust_brightness`` / ``adjust_contrast`` / ``adjust_color`` per
  frame in ``order`` (0, 1, 2) with ``factors``; uint8 ``(T, H, W, 3)`` in/out."""
  out = []
  for im in rgb:
    for op, f in zip(order, factors):
      x = im.astype(np.float32)
      grey = cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)
      if op == 0:
        other = np.zeros_like(x)
      elif op == 1:
        other = np.full_like(x, round(float(grey.mean())))
      else:
        other = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB).astype(np.float32)
      im = np.clip(cv2.addWeighted(x, f, other, 1 - f, 0), 0, 255).astype(np.uint8)
    out.append(im)
  return np.stack(out)


def paper_a(rng: np.random.Generator, rgb, flow, cfg):
  """Resize short side, rotate, erase, random crop ``cfg.image_size``, flip.

  Args:
    rng: the clip's generator (angle, erasing, crop, flip drawn in that order).
    rgb: uint8 ``(T, H, W, 3)``; flow: uint8 planes ``(T, 2L, H, W)``
      (:func:`load_clip`).
    cfg: data config (``resize_short``, ``image_size``, ``rotation_degrees``,
      ``erasing_*``, ``flip_prob``).

  Returns:
    ``(rgb (T, S, S, 3), flow (T, S, S, 2L))`` uint8.
  """
  h, w = rgb.shape[1:3]
  short = max(cfg.resize_short, cfg.image_size)
  s = short / min(h, w)
  rgb, flow = resize(rgb, flow, round(h * s), round(w * s))
  h, w = rgb.shape[1:3]
  rgb, flow = rotate(rgb, flow, float(rng.uniform(-cfg.rotation_degrees, cfg.rotation_degrees)))
  rect = transforms.erasing_rect(
    rng, h, w, prob=cfg.erasing_prob, area=tuple(cfg.erasing_area), aspect=tuple(cfg.erasing_aspect)
  )
  rgb, flow = erase(rng, rgb, flow, rect)
  size = cfg.image_size
  top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
  rgb, flow = (
    rgb[:, top : top + size, left : left + size],
    flow[..., top : top + size, left : left + size],
  )
  if rng.random() < cfg.flip_prob:
    rgb, flow = flip(rgb, flow)
  return _to_jaxact(rgb, flow)


def paper_b(rng: np.random.Generator, rgb, flow, cfg):
  """Jittered crop (``crop_base``, aspect ``scale_jitter``), resize to
  ``image_size``, colour jitter on RGB (``color_jitter``), flip.

  Args: as :func:`paper_a`. Returns: as :func:`paper_a`.
  """
  top, left, ch, cw = transforms.jittered_crop_box(
    rng, *rgb.shape[1:3], base=cfg.crop_base, aspect=tuple(cfg.scale_jitter)
  )
  rgb, flow = rgb[:, top : top + ch, left : left + cw], flow[..., top : top + ch, left : left + cw]
  rgb, flow = resize(rgb, flow, cfg.image_size, cfg.image_size)
  if cfg.color_jitter > 0:
    rgb = color_jitter(rgb, *transforms.color_jitter_draws(rng, cfg.color_jitter))
  if rng.random() < cfg.flip_prob:
    rgb, flow = flip(rgb, flow)
  return _to_jaxact(rgb, flow)


RECIPES = {"paper_a": paper_a, "paper_b": paper_b}


def read_clip(folder: str, num_frames: int, cfg, rng: np.random.Generator):
  """One training clip: jaxact's sampling (``sampling.sample_clip``, first
  draws of ``rng``), :func:`load_clip`, then ``RECIPES[cfg.augment]``.

  Returns:
    ``(rgb (T, S, S, 3), flow (T, S, S, 2L))`` uint8.
  """
  rgb_idx, flow_idx = sampling.sample_clip(
    num_frames, scheme=cfg.sampling, num_steps=cfg.num_steps, flow_length=cfg.flow_length, rng=rng
  )
  rgb, flow = load_clip(folder, rgb_idx, flow_idx)
  return RECIPES[cfg.augment](rng, rgb, flow, cfg)
