"""Augmentation of one clip: RGB ``(T, H, W, 3)`` and flow ``(T, H, W, 2L)`` uint8.

Every geometric op is applied identically to the RGB frames and the flow
stack, and transforms the flow *vectors* too (docs/reference.md, TV-L1/flow conventions; flow
quantised with bound 20: ``v = round(255 (f + 20) / 40)``):

* horizontal flip → x channels become ``255 - v``;
* resize by ``(sy, sx)`` → x displacements × sx, y × sy;
* rotation of the image by θ → vectors rotated by θ;
* crop → unchanged vectors.

Paper A's "data variation": resize to 256 → random rotation → random erasing
→ random crop 224 → horizontal flip. Paper B's: random crop 256 with aspect
jitter 3/4–4/3 → resize 224 → colour jitter (RGB only) (→ flip). Randomness
comes from a ``np.random.Generator`` passed in (Grain's per-example RNG).

Mirror pairs: a horizontal flip turns "moving right" into "moving left". A
dataset may declare such pairs of classes (``DatasetInfo.mirror``: the label
permutation ``mirror[k]`` of the flip, classes in no pair mapping to
themselves). :func:`augment` then returns, for a flipped clip, the label
``mirror[label]``; without a permutation (``mirror=None``) a flip keeps the
label, as it always did. The recipes draw the flip last, after all other
randomness, so the draws do not depend on the declaration. In evaluation,
:func:`eval_view_flips` says which multi-crop views are flipped and
:func:`view_permutations` gives, per view, the permutation that maps the
view's class scores back to the unflipped clip's classes.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from jaxact.flow.quantize import dequantize as flow_to_float
from jaxact.flow.quantize import flip_flow_stack

# uint8 quantised flow <-> float32 pixels (bound 20): one definition, in jaxact.flow.
from jaxact.flow.quantize import quantize as flow_to_uint8


def _scale_lut(s: float) -> np.ndarray:
  return flow_to_uint8(flow_to_float(np.arange(256, dtype=np.uint8)) * s)


def scale_flow(flow: np.ndarray, sx: float, sy: float) -> np.ndarray:
  """Multiplies x displacements by ``sx`` and y by ``sy`` (uint8 in/out)."""
  out = flow.copy()
  if sx != 1.0:
    out[..., 0::2] = _scale_lut(sx)[flow[..., 0::2]]
  if sy != 1.0:
    out[..., 1::2] = _scale_lut(sy)[flow[..., 1::2]]
  return out


def _per_channel(
  x: np.ndarray, out_hw: tuple[int, int], op, luts: tuple[np.ndarray, ...] | None = None
) -> np.ndarray:
  """Applies a PIL op to every ``(H, W)`` plane of ``(T, H, W, C)`` uint8.

  ``luts[c % len(luts)]`` (256 uint8 entries) is then applied to channel c
  (flow x/y rescaling rides along).
  """
  t, _, _, c = x.shape
  out = np.empty((t, c) + tuple(out_hw), np.uint8)
  for i in range(t):
    for j in range(c):
      out[i, j] = np.asarray(op(Image.fromarray(x[i, ..., j])))
  if luts is not None:
    k = len(luts)
    grouped = out.reshape((t, c // k, k) + tuple(out_hw))
    for p, lut in enumerate(luts):
      grouped[:, :, p] = lut[grouped[:, :, p]]
  return np.ascontiguousarray(out.transpose(0, 2, 3, 1))


def _per_frame(x: np.ndarray, op) -> np.ndarray:
  """Applies a PIL op to every RGB frame of ``(T, H, W, 3)`` uint8."""
  return np.stack([np.asarray(op(Image.fromarray(f))) for f in x])


def resize(rgb: np.ndarray, flow: np.ndarray, size_hw: tuple[int, int]):
  """Resizes both to ``(h, w)``; flow displacements scale with the image.

  Args:
    rgb: uint8 ``(T, H, W, 3)``.
    flow: uint8 ``(T, H, W, 2L)``.
    size_hw: target ``(h, w)``.

  Returns:
    ``(rgb (T, h, w, 3), flow (T, h, w, 2L))``.
  """
  h0, w0 = rgb.shape[1:3]
  h, w = size_hw
  if (h, w) == (h0, w0):
    return rgb, flow
  op = lambda im: im.resize((w, h), Image.BILINEAR)
  luts = (_scale_lut(w / w0), _scale_lut(h / h0))
  return _per_frame(rgb, op), _per_channel(flow, (h, w), op, luts)


def resize_short(rgb, flow, short: int):
  """Resizes so the short side is ``short`` (aspect kept)."""
  h, w = rgb.shape[1:3]
  if min(h, w) == short:
    return rgb, flow
  s = short / min(h, w)
  return resize(rgb, flow, (max(1, round(h * s)), max(1, round(w * s))))


def crop(rgb, flow, top: int, left: int, h: int, w: int):
  """Crops both to the window ``[top:top+h, left:left+w]``."""
  return (rgb[:, top : top + h, left : left + w], flow[:, top : top + h, left : left + w])


def center_crop(rgb, flow, size: int):
  """Centre ``size``×``size`` crop (frames smaller than ``size`` are resized)."""
  h, w = rgb.shape[1:3]
  if min(h, w) < size:
    rgb, flow = resize_short(rgb, flow, size)
    h, w = rgb.shape[1:3]
  return crop(rgb, flow, (h - size) // 2, (w - size) // 2, size, size)


def random_crop(rng: np.random.Generator, rgb, flow, size: int):
  """Uniformly placed ``size``×``size`` crop."""
  h, w = rgb.shape[1:3]
  if min(h, w) < size:
    rgb, flow = resize_short(rgb, flow, size)
    h, w = rgb.shape[1:3]
  top = int(rng.integers(0, h - size + 1))
  left = int(rng.integers(0, w - size + 1))
  return crop(rgb, flow, top, left, size, size)


def hflip(rgb, flow):
  """Mirrors left-right; flow x becomes ``255 - v`` (negated), y unchanged."""
  return (np.ascontiguousarray(rgb[:, :, ::-1]), np.ascontiguousarray(flip_flow_stack(flow)))


def rotate_crop(rgb, flow, degrees: float, top: int, left: int, h: int, w: int):
  """Rotates by ``degrees`` (counter-clockwise as seen) about the frame centre,
  then crops ``[top:top+h, left:left+w]`` — in one bilinear resample.

  RGB outside the source is black, flow 128 (no motion); the flow vectors
  are rotated by the same angle.
  """
  if degrees == 0:
    return crop(rgb, flow, top, left, h, w)
  fh, fw = rgb.shape[1:3]
  cx, cy = fw / 2.0, fh / 2.0
  a = math.radians(degrees)
  cos, sin = math.cos(a), math.sin(a)
  # Output pixel (x, y) ← rotated-frame point (x + left, y + top) ← source
  # point c + A^T (p - c), with A the rotation in y-down image coordinates.
  coeffs = (
    cos,
    -sin,
    cx + cos * (left - cx) - sin * (top - cy),
    sin,
    cos,
    cy + sin * (left - cx) + cos * (top - cy),
  )

  def op(fill):
    return lambda im: im.transform((w, h), Image.AFFINE, coeffs, Image.BILINEAR, fillcolor=fill)

  rgb_out = _per_frame(rgb, op((0, 0, 0)))
  planes = flow_to_float(_per_channel(flow, (h, w), op(128)))
  fx, fy = planes[..., 0::2], planes[..., 1::2]
  # A maps (x, y) to (x cos a + y sin a, -x sin a + y cos a).
  out = np.empty_like(planes)
  out[..., 0::2] = fx * cos + fy * sin
  out[..., 1::2] = -fx * sin + fy * cos
  return rgb_out, flow_to_uint8(out)


def rotate(rgb, flow, degrees: float):
  """Rotates the whole frame by ``degrees`` (see :func:`rotate_crop`)."""
  h, w = rgb.shape[1:3]
  return rotate_crop(rgb, flow, degrees, 0, 0, h, w)


def erasing_rect(
  rng: np.random.Generator,
  h: int,
  w: int,
  *,
  prob: float,
  area: tuple[float, float],
  aspect: tuple[float, float],
):
  """Random-erasing rectangle ``(top, left, h, w)`` or None (Zhong et al.)."""
  if rng.random() >= prob:
    return None
  for _ in range(10):
    a = rng.uniform(*area) * h * w
    r = math.exp(rng.uniform(math.log(aspect[0]), math.log(aspect[1])))
    eh, ew = round(math.sqrt(a * r)), round(math.sqrt(a / r))
    if 0 < eh < h and 0 < ew < w:
      return (int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1)), eh, ew)
  return None


def erase(rng: np.random.Generator, rgb, flow, top: int, left: int, h: int, w: int):
  """Fills a rectangle (clipped to the frame) on every frame: RGB with
  uniform noise, flow with 128 (no motion)."""
  fh, fw = rgb.shape[1:3]
  t0, l0 = max(top, 0), max(left, 0)
  t1, l1 = min(top + h, fh), min(left + w, fw)
  if t1 <= t0 or l1 <= l0:
    return rgb, flow
  rgb, flow = rgb.copy(), flow.copy()
  rgb[:, t0:t1, l0:l1] = rng.integers(0, 256, (rgb.shape[0], t1 - t0, l1 - l0, 3), dtype=np.uint8)
  flow[:, t0:t1, l0:l1] = 128
  return rgb, flow


def random_erasing(
  rng: np.random.Generator,
  rgb,
  flow,
  *,
  prob: float,
  area: tuple[float, float],
  aspect: tuple[float, float],
):
  """Erases one random rectangle, the same on all T frames and both streams."""
  rect = erasing_rect(rng, *rgb.shape[1:3], prob=prob, area=area, aspect=aspect)
  if rect is None:
    return rgb, flow
  return erase(rng, rgb, flow, *rect)


def random_resized_crop(
  rng: np.random.Generator, rgb, flow, *, base: int, aspect: tuple[float, float], size: int
):
  """Paper B: a ``base`` crop with aspect jitter, resized to ``size``².

  The crop has area ``base²`` (limited by the frame) and aspect ratio
  log-uniform in ``aspect``; flow displacements are rescaled per axis.
  """
  top, left, ch, cw = jittered_crop_box(rng, *rgb.shape[1:3], base=base, aspect=aspect)
  rgb, flow = crop(rgb, flow, top, left, ch, cw)
  return resize(rgb, flow, (size, size))


def jittered_crop_box(
  rng: np.random.Generator, h: int, w: int, *, base: int, aspect: tuple[float, float]
) -> tuple[int, int, int, int]:
  """Paper B's crop ``(top, left, h, w)`` of an ``h × w`` frame: area ``base²``
  (limited by the frame), aspect ratio log-uniform in ``aspect``."""
  base = min(base, h, w)
  r = math.exp(rng.uniform(math.log(aspect[0]), math.log(aspect[1])))
  cw = min(w, max(1, round(base * math.sqrt(r))))
  ch = min(h, max(1, round(base / math.sqrt(r))))
  top = int(rng.integers(0, h - ch + 1))
  left = int(rng.integers(0, w - cw + 1))
  return top, left, ch, cw


def color_jitter(rng: np.random.Generator, rgb: np.ndarray, strength: float) -> np.ndarray:
  """Brightness, contrast and saturation factors in ``[1-s, 1+s]``, in a
  random order, the same for all frames of the clip (RGB only).

  The three ops are affine in RGB, so they are composed into one
  ``M x + b`` applied by PIL's colour-matrix conversion (rounded, clipped);
  contrast pivots on the clip's mean grey level at its turn.
  """
  if strength <= 0:
    return rgb
  weights = np.asarray([0.299, 0.587, 0.114])
  mean_rgb = rgb[:, ::4, ::4].reshape(-1, 3).mean(0)  # contrast pivot
  m, b = np.eye(3), np.zeros(3)
  for op, f in zip(*color_jitter_draws(rng, strength)):
    if op == 0:  # brightness
      m, b = f * m, f * b
    elif op == 1:  # contrast around the current mean grey
      grey = weights @ (m @ mean_rgb + b)
      m, b = f * m, f * b + (1 - f) * grey
    else:  # saturation: blend with the pixel's grey
      sat = f * np.eye(3) + (1 - f) * np.outer(np.ones(3), weights)
      m, b = sat @ m, sat @ b
  matrix = tuple(float(v) for row in np.concatenate([m, b[:, None]], 1) for v in row)
  return _per_frame(rgb, lambda im: im.convert("RGB", matrix))


def color_jitter_draws(
  rng: np.random.Generator, strength: float
) -> tuple[tuple[int, ...], tuple[float, ...]]:
  """The colour jitter's random numbers: the order of (brightness, contrast,
  saturation) = (0, 1, 2) and each op's factor in ``[1-s, 1+s]``."""
  order = tuple(int(o) for o in rng.permutation(3))
  factors = tuple(float(rng.uniform(1 - strength, 1 + strength)) for _ in order)
  return order, factors


def random_flip(rng: np.random.Generator, rgb, flow, prob: float):
  """Flips with probability ``prob`` (one draw): ``(rgb, flow, flipped)``."""
  if rng.random() < prob:
    rgb, flow = hflip(rgb, flow)
    return rgb, flow, True
  return rgb, flow, False


def mirror_label(label: int, flipped: bool, mirror: np.ndarray | None) -> int:
  """The label of a clip after an (optional) horizontal flip.

  Args:
    label: the clip's class.
    flipped: whether the clip was mirrored left-right.
    mirror: the dataset's flip permutation (``DatasetInfo.mirror``), or None
      when it declares no mirror pairs (the label is kept).
  """
  if flipped and mirror is not None:
    return int(mirror[label])
  return int(label)


def _paper_a_geometry(rng: np.random.Generator, rgb, flow, cfg):
  rgb, flow = resize_short(rgb, flow, cfg.resize_short)
  h, w = rgb.shape[1:3]
  size = cfg.image_size
  if min(h, w) < size:
    rgb, flow = resize_short(rgb, flow, size)
    h, w = rgb.shape[1:3]
  degrees = (
    float(rng.uniform(-cfg.rotation_degrees, cfg.rotation_degrees))
    if cfg.rotation_degrees > 0
    else 0.0
  )
  rect = erasing_rect(
    rng, h, w, prob=cfg.erasing_prob, area=tuple(cfg.erasing_area), aspect=tuple(cfg.erasing_aspect)
  )
  top = int(rng.integers(0, h - size + 1))
  left = int(rng.integers(0, w - size + 1))
  rgb, flow = rotate_crop(rgb, flow, degrees, top, left, size, size)
  if rect is not None:
    et, el, eh, ew = rect
    rgb, flow = erase(rng, rgb, flow, et - top, el - left, eh, ew)
  return rgb, flow


def _paper_b_geometry(rng: np.random.Generator, rgb, flow, cfg):
  rgb, flow = random_resized_crop(
    rng, rgb, flow, base=cfg.crop_base, aspect=tuple(cfg.scale_jitter), size=cfg.image_size
  )
  return color_jitter(rng, rgb, cfg.color_jitter), flow


def _baseline_geometry(rng: np.random.Generator, rgb, flow, cfg):
  rgb, flow = resize_short(rgb, flow, cfg.resize_short)
  return random_crop(rng, rgb, flow, cfg.image_size)


def paper_a_train(rng: np.random.Generator, rgb, flow, cfg):
  """Paper A's data variation: resize, rotate, erase, random crop, flip.

  Rotation and crop are fused into one resample of the crop window; the
  erased rectangle is drawn on the rotated frame and shifted into the crop.
  """
  rgb, flow, _ = augment("paper_a", rng, rgb, flow, 0, cfg)
  return rgb, flow


def paper_b_train(rng: np.random.Generator, rgb, flow, cfg):
  """Paper B: random crop ``crop_base`` + aspect jitter, resize, colour, flip."""
  rgb, flow, _ = augment("paper_b", rng, rgb, flow, 0, cfg)
  return rgb, flow


def baseline_train(rng: np.random.Generator, rgb, flow, cfg):
  """Two-stream baseline: resize, random crop, flip."""
  rgb, flow, _ = augment("baseline", rng, rgb, flow, 0, cfg)
  return rgb, flow


def no_augment(rng, rgb, flow, cfg):
  """Evaluation geometry: resize short side, centre crop."""
  del rng
  rgb, flow = resize_short(rgb, flow, cfg.resize_short)
  return center_crop(rgb, flow, cfg.image_size)


# Recipes that end with a random horizontal flip (``cfg.flip_prob``): their
# geometry before the flip.
_BEFORE_FLIP = {
  "paper_a": _paper_a_geometry,
  "paper_b": _paper_b_geometry,
  "baseline": _baseline_geometry,
}


def augment(
  name: str,
  rng: np.random.Generator,
  rgb,
  flow,
  label: int,
  cfg,
  mirror: np.ndarray | None = None,
):
  """Training augmentation ``name`` of one labelled clip.

  Args:
    name: a key of ``TRAIN_AUGMENTS``.
    rng: the example's generator.
    rgb: uint8 ``(T, H, W, 3)``.
    flow: uint8 ``(T, H, W, 2L)``.
    label: the clip's class.
    cfg: the data config.
    mirror: the dataset's flip permutation (``DatasetInfo.mirror``) or None.

  Returns:
    ``(rgb, flow, label)``: a flipped clip has label ``mirror[label]`` when a
    permutation is given (:func:`mirror_label`).
  """
  if name not in _BEFORE_FLIP:
    rgb, flow = TRAIN_AUGMENTS[name](rng, rgb, flow, cfg)
    return rgb, flow, int(label)
  rgb, flow = _BEFORE_FLIP[name](rng, rgb, flow, cfg)
  rgb, flow, flipped = random_flip(rng, rgb, flow, cfg.flip_prob)
  return rgb, flow, mirror_label(label, flipped, mirror)


TRAIN_AUGMENTS = {
  "paper_a": paper_a_train,
  "paper_b": paper_b_train,
  "baseline": baseline_train,
  "none": no_augment,
}


# Views per clip that evaluation can take (centre; 3 along the long side; 10).
EVAL_CROPS = (1, 3, 10)


def eval_crops(rgb, flow, *, size: int, num_crops: int):
  """Multi-crop views ``(C, T, size, size, ·)`` of an already resized clip.

  ``num_crops``: 1 (centre), 3 (start/centre/end along the long side, full
  short side), 10 (4 corners + centre, and their horizontal flips).
  """
  h, w = rgb.shape[1:3]
  if min(h, w) < size:
    rgb, flow = resize_short(rgb, flow, size)
    h, w = rgb.shape[1:3]
  windows = eval_crop_windows(h, w, size, num_crops)
  views = [crop(rgb, flow, y, x, size, size) for y, x in windows]
  if num_crops == 10:
    views += [hflip(r, f) for r, f in views]
  return (np.stack([v[0] for v in views]), np.stack([v[1] for v in views]))


def eval_crop_windows(h: int, w: int, size: int, num_crops: int) -> list[tuple[int, int]]:
  """Top-left corners ``(y, x)`` of the unflipped evaluation crops of an ``h × w`` frame.

  1: the centre; 3: start, centre and end along the long side; 10: the four
  corners and the centre (whose mirrors are the other five views).
  """
  if num_crops == 1:
    return [((h - size) // 2, (w - size) // 2)]
  if num_crops == 3:
    if w >= h:
      return [((h - size) // 2, x) for x in (0, (w - size) // 2, w - size)]
    return [(y, (w - size) // 2) for y in (0, (h - size) // 2, h - size)]
  if num_crops == 10:
    return [
      (0, 0),
      (0, w - size),
      (h - size, 0),
      (h - size, w - size),
      ((h - size) // 2, (w - size) // 2),
    ]
  raise ValueError(f"eval_crops must be 1, 3 or 10, got {num_crops}")


def eval_view_flips(num_crops: int) -> np.ndarray:
  """bool ``(C,)``: which views of :func:`eval_crops` are mirrored (10 crops:
  the last 5)."""
  if num_crops not in EVAL_CROPS:
    raise ValueError(f"eval_crops must be 1, 3 or 10, got {num_crops}")
  return np.arange(num_crops) >= 5 if num_crops == 10 else np.zeros(num_crops, bool)


def view_permutations(flipped: np.ndarray, mirror: np.ndarray) -> np.ndarray:
  """int32 ``(V, K)``: per view, the permutation that maps its class scores
  back to the unflipped clip: ``clip_scores[k] = view_scores[perm[v, k]]``.

  Identity for an unflipped view, ``mirror`` (an involution: its own
  inverse) for a flipped one.
  """
  identity = np.arange(len(mirror), dtype=np.int32)
  return np.stack([np.asarray(mirror, np.int32) if f else identity for f in flipped])
