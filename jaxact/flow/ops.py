"""Image operators of the TV-L1 scheme; spatial axes are the last two (y, x).

Each follows the matching OpenCV routine so results agree with
``cv2.optflow.DualTVL1OpticalFlow`` up to float rounding: bilinear
``cv2.resize`` (half-pixel centres, clamped), bicubic ``cv2.remap``
(a = -0.75), ``cv2.medianBlur`` (replicated border), and the finite
differences of OpenCV's ``tvl1flow.cpp``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def _shift_pad(x: jax.Array, axis: int, forward: bool) -> jax.Array:
  """Neighbour along ``axis`` with a replicated edge (x[i+1] or x[i-1])."""
  axis = axis % x.ndim
  n = x.shape[axis]
  if forward:
    body = jax.lax.slice_in_dim(x, 1, n, axis=axis)
    edge = jax.lax.slice_in_dim(x, n - 1, n, axis=axis)
    return jnp.concatenate([body, edge], axis=axis)
  body = jax.lax.slice_in_dim(x, 0, n - 1, axis=axis)
  edge = jax.lax.slice_in_dim(x, 0, 1, axis=axis)
  return jnp.concatenate([edge, body], axis=axis)


def centered_gradient(img: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Central differences ``0.5 * (I[i+1] - I[i-1])``, replicated border.

  At the border this is OpenCV's one-sided half difference.
  """
  dx = 0.5 * (_shift_pad(img, -1, True) - _shift_pad(img, -1, False))
  dy = 0.5 * (_shift_pad(img, -2, True) - _shift_pad(img, -2, False))
  return dx, dy


def forward_gradient(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Forward differences, zero on the last column (dx) / last row (dy)."""
  return _shift_pad(x, -1, True) - x, _shift_pad(x, -2, True) - x


def divergence(px: jax.Array, py: jax.Array) -> jax.Array:
  """Backward-difference divergence, the negative adjoint of the gradient.

  ``div = px[x] - px[x-1] + py[y] - py[y-1]`` with ``p[-1] = 0``.
  """
  ax, ay = px.ndim - 1, py.ndim - 2
  zx = jnp.zeros_like(jax.lax.slice_in_dim(px, 0, 1, axis=ax))
  zy = jnp.zeros_like(jax.lax.slice_in_dim(py, 0, 1, axis=ay))
  px_prev = jnp.concatenate([zx, jax.lax.slice_in_dim(px, 0, px.shape[ax] - 1, axis=ax)], axis=ax)
  py_prev = jnp.concatenate([zy, jax.lax.slice_in_dim(py, 0, py.shape[ay] - 1, axis=ay)], axis=ay)
  return px - px_prev + py - py_prev


@functools.cache
def linear_resize_matrix(n_out: int, n_in: int, scale: float | None = None) -> np.ndarray:
  """``(n_out, n_in)`` matrix of ``cv2.resize(..., INTER_LINEAR)`` on an axis.

  Source coordinate ``(d + 0.5) * scale - 0.5`` clamped to ``[0, n_in - 1]``;
  ``scale`` defaults to ``n_in / n_out`` (OpenCV uses ``1 / fx`` when a
  factor, not a size, is given).
  """
  if scale is None:
    scale = n_in / n_out
  src = (np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5
  src = np.clip(src, 0.0, n_in - 1)
  i0 = np.floor(src).astype(np.int64)
  i0 = np.minimum(i0, n_in - 1)
  frac = src - i0
  i1 = np.minimum(i0 + 1, n_in - 1)
  m = np.zeros((n_out, n_in), np.float64)
  np.add.at(m, (np.arange(n_out), i0), 1.0 - frac)
  np.add.at(m, (np.arange(n_out), i1), frac)
  return m.astype(np.float32)


def resize_linear(x: jax.Array, h: int, w: int, inv_factor: float | None = None) -> jax.Array:
  """Bilinear resize of ``(..., H, W)`` to ``(..., h, w)`` like cv2.resize.

  Args:
    x: image or flow, spatial axes last.
    h, w: output size.
    inv_factor: ``1 / fx`` when OpenCV was given a scale factor (the
      pyramid); ``None`` when it was given the output size.
  """
  my = jnp.asarray(linear_resize_matrix(h, x.shape[-2], inv_factor))
  mx = jnp.asarray(linear_resize_matrix(w, x.shape[-1], inv_factor))
  hp = jax.lax.Precision.HIGHEST
  y = jnp.einsum("...yx,Yy->...Yx", x, my, precision=hp)
  return jnp.einsum("...yx,Xx->...yX", y, mx, precision=hp)


def _cubic_weights(t: jax.Array) -> list[jax.Array]:
  """Keys cubic convolution weights (a = -0.75, OpenCV) for taps -1..2."""
  a = -0.75
  w0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
  w1 = ((a + 2) * t - (a + 3)) * t * t + 1
  s = 1 - t
  w2 = ((a + 2) * s - (a + 3)) * s * s + 1
  w3 = 1 - w0 - w1 - w2
  return [w0, w1, w2, w3]


def warp_bicubic(
  img: jax.Array, dx: jax.Array, dy: jax.Array, border: str = "constant"
) -> jax.Array:
  """Samples ``img`` (K, H, W) at ``(x + dx, y + dy)``, bicubic.

  Args:
    img: ``(K, H, W)`` channels sampled together.
    dx, dy: ``(H, W)`` displacements.
    border: ``'constant'``: taps outside the image read 0 (``cv2.remap``'s
      default, used by OpenCV's TV-L1); ``'replicate'``: clamp to the edge.

  Returns:
    ``(K, H, W)``.
  """
  k, h, w = img.shape
  yy, xx = jnp.meshgrid(
    jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij"
  )
  fx = xx + dx
  fy = yy + dy
  x0 = jnp.floor(fx)
  y0 = jnp.floor(fy)
  wx = _cubic_weights(fx - x0)
  wy = _cubic_weights(fy - y0)
  # Far-away samples are clamped first so int32 indices cannot overflow.
  x0 = jnp.clip(x0, -4, w + 4).astype(jnp.int32)
  y0 = jnp.clip(y0, -4, h + 4).astype(jnp.int32)
  flat = img.reshape(k, h * w)
  out = None
  for j in range(4):
    yj = y0 + (j - 1)
    ok_y = (yj >= 0) & (yj < h)
    yj = jnp.clip(yj, 0, h - 1)
    row = None
    for i in range(4):
      xi = x0 + (i - 1)
      ok = ok_y & (xi >= 0) & (xi < w)
      xi = jnp.clip(xi, 0, w - 1)
      v = flat[:, yj * w + xi]
      wgt = wx[i]
      if border == "constant":
        wgt = jnp.where(ok, wgt, 0.0)
      row = wgt * v if row is None else row + wgt * v
    out = wy[j] * row if out is None else out + wy[j] * row
  return out


def _oddeven_merge_sort_pairs(n: int) -> list[tuple[int, int]]:
  """Comparators of Batcher's odd-even merge sort for ``n`` (power of 2)."""
  pairs = []
  p = 1
  while p < n:
    k = p
    while k >= 1:
      for j in range(k % p, n - k, 2 * k):
        for i in range(min(k, n - j - k)):
          if (i + j) // (2 * p) == (i + j + k) // (2 * p):
            pairs.append((i + j, i + j + k))
      k //= 2
    p *= 2
  return pairs


@functools.cache
def _median_network(m: int) -> tuple[int, int, tuple[tuple[int, int], ...]]:
  """A min/max network selecting the median of ``m`` (odd) values.

  Batcher's sort on ``n = 2**ceil(log2 m)`` wires padded with ``lo`` -inf
  and ``hi`` +inf values, pruned to the comparators the median depends on.
  Returns ``(lo, target_wire, pairs)``; wires ``lo .. lo+m-1`` are inputs.
  """
  n = 1
  while n < m:
    n *= 2
  pad = n - m
  lo = pad // 2  # -inf wires 0..lo-1, +inf wires at the end
  target = lo + m // 2
  pairs = _oddeven_merge_sort_pairs(n)
  needed = {target}
  kept = []
  for a, b in reversed(pairs):
    if a in needed or b in needed:
      kept.append((a, b))
      needed.update((a, b))
  return lo, target, tuple(reversed(kept))


def median_of(values: list[jax.Array]) -> jax.Array:
  """Elementwise median of an odd number of equally shaped arrays."""
  m = len(values)
  lo, target, pairs = _median_network(m)
  neg, pos = "neg", "pos"  # static padding sentinels, folded at trace time
  n = 1
  while n < m:
    n *= 2
  wires: list = [neg] * lo + list(values) + [pos] * (n - m - lo)
  for a, b in pairs:
    x, y = wires[a], wires[b]
    if isinstance(x, str) or isinstance(y, str):
      if x == neg or y == pos:
        continue  # already ordered
      wires[a], wires[b] = y, x  # x is +inf or y is -inf: swap
      continue
    wires[a], wires[b] = jnp.minimum(x, y), jnp.maximum(x, y)
  return wires[target]


def median_filter(x: jax.Array, size: int) -> jax.Array:
  """``cv2.medianBlur``: median over ``size x size`` windows, replicated border.

  Args:
    x: ``(..., H, W)``; leading channels are filtered independently.
    size: odd window size.
  """
  r = size // 2
  pad = [(0, 0)] * (x.ndim - 2) + [(r, r), (r, r)]
  xp = jnp.pad(x, pad, mode="edge")
  h, w = x.shape[-2:]
  values = [xp[..., i : i + h, j : j + w] for i in range(size) for j in range(size)]
  return median_of(values)
