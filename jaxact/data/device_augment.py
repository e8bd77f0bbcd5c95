"""Device side of the augmentation: batched, jittable, one resample per image.

Inputs are the host's canvases (:mod:`jaxact.data.canvas`): uint8 RGB
``(B, T, P, 3)`` and planar flow ``(B, T, 2L, P)``, example b's frames packed
row-major in the first ``H W`` pixels, ``(H, W) = params['src_hw'][b]`` (the
rest is ignored), so one compiled function serves every frame size and
aspect ratio. The parameters come from :mod:`jaxact.data.augment_params`
(drawn on the host from Grain's per-example RNG). Outputs are uint8
``(B, T, S, S, 3)`` and ``(B, T, S, S, 2L)`` — what the CPU recipes return, so
``jaxact.data.normalize`` applies unchanged afterwards.

Per example, all T frames and both streams share one set of sample points:
``affine`` maps every output pixel centre to a source point; a gather-based
bilinear sampler reads the four neighbours (clamped to the valid frame, as
PIL does); points outside the valid frame get the fill (RGB black, flow
"128", as ``transforms.rotate_crop``). Flow is resampled as float
displacements, multiplied by ``flow_matrix`` (flip negates x, a resize scales,
a rotation rotates the vectors) and quantised once (bound 20). Paper A's
erasing and paper B's colour jitter then follow the CPU order
(``transforms.paper_a_train`` / ``paper_b_train``).

:func:`train_inputs` and :func:`eval_inputs` turn a host batch into the
network's uint8 inputs inside the jitted train / eval step.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxact.data.augment_params import RECIPES

_GREY = np.asarray([0.299, 0.587, 0.114], np.float32)


def _sample_points(affine, src_hw, size: int):
  """Flat neighbour indices, weights and validity of the ``size``² output grid."""
  c = jnp.arange(size, dtype=jnp.float32) + 0.5
  x, y = c[None, :], c[:, None]
  qx = affine[0, 0] * x + affine[0, 1] * y + affine[0, 2]
  qy = affine[1, 0] * x + affine[1, 1] * y + affine[1, 2]
  h, w = src_hw[0], src_hw[1]
  valid = (qx >= 0) & (qx < w) & (qy >= 0) & (qy < h)
  xs, ys = qx - 0.5, qy - 0.5
  x0, y0 = jnp.floor(xs), jnp.floor(ys)
  dx, dy = (xs - x0).reshape(-1), (ys - y0).reshape(-1)
  x0 = x0.astype(jnp.int32)
  y0 = y0.astype(jnp.int32)
  xa, xb = jnp.clip(x0, 0, w - 1), jnp.clip(x0 + 1, 0, w - 1)
  ya, yb = jnp.clip(y0, 0, h - 1) * w, jnp.clip(y0 + 1, 0, h - 1) * w
  taps = tuple((yy + xx).reshape(-1) for yy, xx in ((ya, xa), (ya, xb), (yb, xa), (yb, xb)))
  return (taps, (dy, dx)), valid


def _bilinear(flat, points, axis: int):
  """Samples packed pixels along ``axis`` of uint8 ``flat`` at the points →
  float32, that axis replaced by the ``S²`` outputs."""
  (aa, ab, ba, bb), (dy, dx) = points
  shape = [1] * flat.ndim
  shape[axis] = -1
  dx, dy = dx.reshape(shape), dy.reshape(shape)

  def tap(idx):
    return jnp.take(flat, idx, axis=axis).astype(jnp.float32)

  top = tap(aa) * (1 - dx) + tap(ab) * dx
  bottom = tap(ba) * (1 - dx) + tap(bb) * dx
  return top * (1 - dy) + bottom * dy


def _round_u8(x):
  return jnp.clip(jnp.floor(x + 0.5), 0, 255)


def _geometry(p, rgb, flow, size: int):
  """One view: resampled RGB (float, integer-valued, ``(T, S, S, 3)``) and
  uint8 flow ``(T, S, S, 2L)``, from canvases ``(T, P, 3)`` / ``(T, 2L, P)``.

  Flow is transformed in quantisation units, ``u = v - 127.5`` (the bound-20
  dequantisation is ``u * 40/255``, linear, so ``quantize(M dequantize(v))`` is
  ``round(M u + 127.5)``). The planar canvas is first made channels-last, so
  each tap gathers whole ``2L``-channel pixels; each output channel mixes with
  its x/y partner, read by a second gather from the pair-swapped canvas (XLA
  fuses that; mixing after one gather, or gathering single planar values,
  measured 3–6× slower on XLA:CPU).
  """
  points, valid = _sample_points(p["affine"], p["src_hw"], size)
  t = rgb.shape[0]
  v = valid.reshape(1, -1, 1)
  rgb_out = jnp.where(v, _round_u8(_bilinear(rgb, points, axis=1)), 0.0)
  rgb_out = rgb_out.reshape(t, size, size, 3)
  c2 = flow.shape[1]
  flow = jnp.moveaxis(flow, 1, -1)  # (T, P, 2L)
  swapped = flow.reshape(flow.shape[:2] + (c2 // 2, 2))[..., ::-1].reshape(flow.shape)
  fill = 128.0  # transforms.rotate_crop's fill, before the vector transform
  u = jnp.where(v, _bilinear(flow, points, axis=1), fill) - 127.5
  u_partner = jnp.where(v, _bilinear(swapped, points, axis=1), fill) - 127.5
  m = p["flow_matrix"]
  is_x = jnp.arange(c2) % 2 == 0
  own = jnp.where(is_x, m[0, 0], m[1, 1])
  partner = jnp.where(is_x, m[0, 1], m[1, 0])
  out = _round_u8(own * u + partner * u_partner + 127.5).astype(jnp.uint8)
  return rgb_out, out.reshape(t, size, size, c2)


def _erase(p, rgb, flow):
  """Paper A's erasing: RGB noise, flow "128" (x "127" once flipped, as on CPU)."""
  _, s = rgb.shape[:2]
  t0, l0, t1, l1 = p["erase"][0], p["erase"][1], p["erase"][2], p["erase"][3]
  r = jnp.arange(s)
  inside = ((r >= t0) & (r < t1))[:, None] & ((r >= l0) & (r < l1))[None, :]
  inside = inside[None, :, :, None]
  noise = jax.random.bits(jax.random.key(p["erase_seed"]), rgb.shape, jnp.uint8)
  rgb = jnp.where(inside, noise.astype(jnp.float32), rgb)
  c2 = flow.shape[-1]
  fill = jnp.where(jnp.arange(c2) % 2 == 0, jnp.where(p["flip"], 127, 128), 128)
  flow = jnp.where(inside, fill.astype(jnp.uint8), flow)
  return rgb, flow


def _jitter_matrix(p, mean_rgb):
  """``transforms.color_jitter``'s ``M x + b`` from the drawn order and factors."""
  grey = jnp.asarray(_GREY)
  m, b = jnp.eye(3), jnp.zeros(3)
  for i in range(3):
    op, f = p["jitter_order"][i], p["jitter_factors"][i]
    g = grey @ (m @ mean_rgb + b)
    sat = f * jnp.eye(3) + (1 - f) * jnp.outer(jnp.ones(3), grey)
    m_new = jnp.where(op == 2, sat @ m, f * m)
    b_new = jnp.select([op == 0, op == 1], [f * b, f * b + (1 - f) * g], sat @ b)
    m, b = m_new, b_new
  return m, b


def _color_jitter(p, rgb):
  """Colour jitter of the (flipped) output; the contrast pivot is the mean of
  the unflipped clip's ``[:, ::4, ::4]`` pixels, as on the CPU."""
  s = rgb.shape[1]
  r = jnp.arange(s)
  cols = jnp.where(p["flip"], s - 1 - r, r) % 4 == 0
  sel = ((r % 4 == 0)[:, None] & cols[None, :]).astype(jnp.float32)
  mean_rgb = jnp.einsum("tyxc,yx->c", rgb, sel) / (rgb.shape[0] * jnp.sum(sel))
  m, b = _jitter_matrix(p, mean_rgb)
  out = _round_u8(jnp.einsum("ij,tyxj->tyxi", m, rgb) + b)
  return jnp.where(p["jitter"], out, rgb)


def _one(p, rgb, flow, *, size: int, recipe: str):
  rgb_out, flow_out = _geometry(p, rgb, flow, size)
  if recipe == "paper_a":
    rgb_out, flow_out = _erase(p, rgb_out, flow_out)
  if recipe == "paper_b":
    rgb_out = _color_jitter(p, rgb_out)
  return rgb_out.astype(jnp.uint8), flow_out


@functools.partial(jax.jit, static_argnames=("out_size", "recipe"))
def augment(params: dict, rgb, flow, *, out_size: int, recipe: str):
  """Augments a batch on the device, as ``transforms.TRAIN_AUGMENTS[recipe]``.

  Args:
    params: batched :func:`jaxact.data.augment_params.draw_params` dicts
      (leading axis B; :func:`jaxact.data.augment_params.stack_params`).
    rgb: uint8 ``(B, T, P, 3)`` canvas (:mod:`jaxact.data.canvas`).
    flow: uint8 ``(B, T, 2L, P)`` planar canvas (bound-20 quantised flow).
    out_size: S (``cfg.image_size``).
    recipe: ``'paper_a'``, ``'paper_b'``, ``'baseline'`` or ``'none'`` (which
      stages run after the resampling; static).

  Returns:
    ``(rgb (B, T, S, S, 3), flow (B, T, S, S, 2L))`` uint8.
  """
  if recipe not in RECIPES:
    raise ValueError(f"unknown recipe {recipe!r}; expected one of {RECIPES}")
  one = functools.partial(_one, size=out_size, recipe=recipe)
  return jax.vmap(one)(params, rgb, flow)


@functools.partial(jax.jit, static_argnames=("out_size",))
def eval_views(params: dict, rgb, flow, *, out_size: int):
  """Evaluation views on the device, as ``resize_short`` + ``eval_crops``.

  Args:
    params: batched :func:`jaxact.data.augment_params.eval_params` dicts
      (``affine`` ``(B, V, 2, 3)``, ``flow_matrix`` ``(B, V, 2, 2)``, ...).
    rgb: uint8 ``(B, T, P, 3)`` canvas (one clip per row; several clips per
      video go into B).
    flow: uint8 ``(B, T, 2L, P)`` planar canvas.
    out_size: S.

  Returns:
    ``(rgb (B, V, T, S, S, 3), flow (B, V, T, S, S, 2L))`` uint8.
  """

  def one(p, r, f):
    def view(affine, flow_matrix):
      q = dict(p, affine=affine, flow_matrix=flow_matrix)
      ro, fo = _geometry(q, r, f, out_size)
      return ro.astype(jnp.uint8), fo

    return jax.vmap(view)(p["affine"], p["flow_matrix"])

  return jax.vmap(one)(params, rgb, flow)


def train_inputs(batch: dict, *, out_size: int, recipe: str) -> dict:
  """A host training batch → the network's uint8 inputs (call inside the step).

  Args:
    batch: ``rgb (B, T, P, 3)``, ``flow (B, T, 2L, P)`` canvases and ``aug``
      (batched :func:`jaxact.data.augment_params.draw_params`), plus other
      keys (``label``) passed through. A batch without ``aug`` (already
      augmented arrays, e.g. a custom loader's) is returned as is.
    out_size: S (``config.data.image_size``).
    recipe: ``config.data.augment``.

  Returns:
    The batch with ``rgb (B, T, S, S, 3)`` and ``flow (B, T, S, S, 2L)``
    uint8 and without ``aug``.
  """
  if "aug" not in batch:
    return batch
  out = {k: v for k, v in batch.items() if k != "aug"}
  out["rgb"], out["flow"] = augment(
    batch["aug"], batch["rgb"], batch["flow"], out_size=out_size, recipe=recipe
  )
  return out


def eval_inputs(batch: dict, *, out_size: int) -> dict:
  """A host evaluation batch → the network's multi-view uint8 inputs.

  Args:
    batch: ``rgb (B, C, T, P, 3)``, ``flow (B, C, T, 2L, P)`` canvases of C
      clips per video and ``aug`` (``eval_params`` per clip, leading axes
      ``(B, C)``; the per-view keys then have a view axis of ``Vc`` crops),
      plus ``label``, ``mask``, ... passed through. Without ``aug``, as is.
    out_size: S.

  Returns:
    The batch with ``rgb (B, V, T, S, S, 3)``, ``flow (B, V, T, S, S, 2L)``,
    ``V = C Vc`` clip-major (clip c's crops are views ``c Vc … c Vc + Vc - 1``),
    and without ``aug``.
  """
  if "aug" not in batch:
    return batch
  b, c = batch["rgb"].shape[:2]

  def fold(x):
    return x.reshape((b * c,) + x.shape[2:])

  params = jax.tree.map(fold, batch["aug"])
  rgb, flow = eval_views(params, fold(batch["rgb"]), fold(batch["flow"]), out_size=out_size)
  out = {k: v for k, v in batch.items() if k != "aug"}
  out["rgb"] = rgb.reshape((b, -1) + rgb.shape[2:])
  out["flow"] = flow.reshape((b, -1) + flow.shape[2:])
  return out
