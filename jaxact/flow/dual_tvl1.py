"""TV-L1 optical flow in JAX, numerically following OpenCV's DualTVL1.

The Zach–Pock–Bischof duality-based TV-L1 method with the numerical scheme of
Sánchez, Meinhardt-Llopis and Facciolo (IPOL 2013), as implemented by
``cv2.optflow.DualTVL1OpticalFlow``: an image pyramid with ``scale_step``
(bilinear, no pre-smoothing), ``warps`` warps per scale (bicubic, a = -0.75),
the thresholding step on the linearised data term, Chambolle's dual projection
for the TV term, stopping when the summed squared update falls below
``epsilon**2 * H * W`` or after ``outer_iterations * inner_iterations``
iterations, and a median filter of the flow before each outer iteration.

The whole computation (all scales, warps and iterations) is one XLA program:
pyramid sizes are static, iterations are ``lax.while_loop``s, and a batch of
pairs is vectorised with ``vmap`` (each pair stops on its own epsilon; a batch
runs until its slowest pair is done). Compiled programs are cached per
(batch shape, image shape, parameters).

Convention (OpenCV's): ``flow[..., y, x] = (dx, dy)`` with
``prev(y, x) ≈ next(y + dy, x + dx)``.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxact.flow import ops

MIN_PYRAMID_SIDE = 16  # OpenCV stops adding scales below 16 px
MIN_IMAGE_SIDE = 8  # smallest image we accept at all


@dataclasses.dataclass(frozen=True)
class TVL1Params:
  """OpenCV DualTVL1 parameters (same names, same defaults)."""

  tau: float = 0.25
  lambda_: float = 0.15
  theta: float = 0.3
  nscales: int = 5
  warps: int = 5
  epsilon: float = 0.01
  inner_iterations: int = 30
  outer_iterations: int = 10
  scale_step: float = 0.8
  gamma: float = 0.0
  median_filtering: int = 5
  border: str = "constant"

  def validate(self) -> None:
    def _pos(name, integer=False):
      v = getattr(self, name)
      if integer and (not isinstance(v, (int, np.integer)) or isinstance(v, bool)):
        raise ValueError(f"tvl1: {name} must be an integer, got {v!r}")
      if not v > 0:
        raise ValueError(f"tvl1: {name} must be > 0, got {v!r}")

    for name in ("tau", "lambda_", "theta"):
      _pos(name)
    if self.epsilon < 0:
      raise ValueError(f"tvl1: epsilon must be >= 0, got {self.epsilon!r}")
    for name in ("nscales", "warps", "inner_iterations", "outer_iterations"):
      _pos(name, integer=True)
    if not 0.0 < self.scale_step < 1.0:
      raise ValueError(f"tvl1: scale_step must be in (0, 1), got {self.scale_step!r}")
    if self.gamma < 0:
      raise ValueError(f"tvl1: gamma must be >= 0, got {self.gamma!r}")
    m = self.median_filtering
    if m > 1 and (m % 2 == 0 or m > 7):
      raise ValueError(
        f"tvl1: median_filtering must be <= 1 (off) or an odd size 3, 5 or 7, got {m!r}"
      )
    if self.border not in ("constant", "replicate"):
      raise ValueError(
        f"tvl1: border must be 'constant' (OpenCV) or 'replicate', got {self.border!r}"
      )


def pyramid_shapes(
  height: int, width: int, nscales: int, scale_step: float
) -> list[tuple[int, int]]:
  """Image sizes of the pyramid, finest first, as OpenCV computes them.

  Each level is the previous one scaled by ``scale_step`` and rounded; a level
  with a side below 16 px is not added (so there may be fewer than
  ``nscales`` levels).
  """
  shapes = [(height, width)]
  for _ in range(1, nscales):
    h, w = shapes[-1]
    nh, nw = round(h * scale_step), round(w * scale_step)
    if nh < MIN_PYRAMID_SIDE or nw < MIN_PYRAMID_SIDE:
      break
    shapes.append((nh, nw))
  return shapes


def _one_scale(i0: jax.Array, i1: jax.Array, u: jax.Array, p: TVL1Params) -> jax.Array:
  """Refines the flow ``u`` (C, H, W) of one pyramid level (one pair).

  C is 2 (dx, dy), or 3 when ``gamma > 0`` (the illumination term u3).
  Channels come first so that the innermost (vectorised) axis is W.
  """
  use_gamma = p.gamma != 0.0
  h, w = i0.shape
  scaled_eps = np.float32(p.epsilon * p.epsilon * h * w)
  l_t = np.float32(p.lambda_ * p.theta)
  taut = np.float32(p.tau / p.theta)
  theta = np.float32(p.theta)
  gamma = np.float32(p.gamma)
  i1x, i1y = ops.centered_gradient(i1)
  i1_stack = jnp.stack([i1, i1x, i1y])
  big = jnp.float32(np.finfo(np.float32).max)
  tiny = np.float32(np.finfo(np.float32).eps)

  def step(u, px, py, i1wx, i1wy, rho_c):
    # |grad I1|^2 is recomputed rather than carried: cheaper than reading it.
    grad = i1wx * i1wx + i1wy * i1wy
    # Thresholding (TH) of the linearised data term: v = u + fi * grad I1.
    rho = rho_c + i1wx * u[0] + i1wy * u[1]
    if use_gamma:
      rho = rho + gamma * u[2]
    lt_grad = l_t * grad
    fi = jnp.where(
      rho < -lt_grad,
      l_t,
      jnp.where(
        rho > lt_grad, -l_t, jnp.where(grad > tiny, -rho / jnp.where(grad > tiny, grad, 1.0), 0.0)
      ),
    )
    dv = [fi * i1wx, fi * i1wy] + ([fi * gamma] if use_gamma else [])
    # u = v + theta * div(p).
    u_new = u + jnp.stack(dv) + theta * ops.divergence(px, py)
    err = jnp.sum(jnp.square(u_new - u))
    # Dual projection: p = (p + taut * grad u) / (1 + taut * |grad u|).
    gx, gy = ops.forward_gradient(u_new)
    inv_norm = 1.0 / (1.0 + taut * jnp.sqrt(gx * gx + gy * gy))
    return u_new, (px + taut * gx) * inv_norm, (py + taut * gy) * inv_norm, err

  def warp(_, carry):
    u, px, py = carry
    warped = ops.warp_bicubic(i1_stack, u[0], u[1], p.border)
    i1w, i1wx, i1wy = warped[0], warped[1], warped[2]
    rho_c = i1w - i1wx * u[0] - i1wy * u[1] - i0

    def inner_cond(c):
      return (c[4] < p.inner_iterations) & (c[3] > scaled_eps)

    def inner_body(c):
      u, px, py, _, n = c
      u, px, py, err = step(u, px, py, i1wx, i1wy, rho_c)
      return u, px, py, err, n + 1

    def outer_cond(c):
      return (c[4] < p.outer_iterations) & (c[3] > scaled_eps)

    def outer_body(c):
      u, px, py, err, n = c
      if p.median_filtering > 1:
        u = jnp.concatenate([ops.median_filter(u[:2], p.median_filtering), u[2:]])
      u, px, py, err, _ = lax.while_loop(inner_cond, inner_body, (u, px, py, err, jnp.int32(0)))
      return u, px, py, err, n + 1

    u, px, py, _, _ = lax.while_loop(outer_cond, outer_body, (u, px, py, big, jnp.int32(0)))
    return u, px, py

  # Dual variables restart from zero at every scale.
  zeros = jnp.zeros_like(u)
  u, _, _ = lax.fori_loop(0, p.warps, warp, (u, zeros, zeros))
  return u


def _tvl1_pair(i0: jax.Array, i1: jax.Array, p: TVL1Params) -> jax.Array:
  """TV-L1 for one grayscale float pair (H, W) -> flow (2, H, W)."""
  shapes = pyramid_shapes(*i0.shape, p.nscales, p.scale_step)
  inv = 1.0 / p.scale_step
  pyr0, pyr1 = [i0], [i1]
  for h, w in shapes[1:]:
    pyr0.append(ops.resize_linear(pyr0[-1], h, w, inv))
    pyr1.append(ops.resize_linear(pyr1[-1], h, w, inv))
  channels = 3 if p.gamma != 0.0 else 2
  u = jnp.zeros((channels,) + shapes[-1], jnp.float32)
  for s in range(len(shapes) - 1, -1, -1):
    u = _one_scale(pyr0[s], pyr1[s], u, p)
    if s == 0:
      break
    h, w = shapes[s - 1]
    u = ops.resize_linear(u, h, w)
    u = jnp.concatenate([u[:2] * np.float32(inv), u[2:]])
  return u[:2]


def _to_gray(x: jax.Array) -> jax.Array:
  x = x.astype(jnp.float32)
  if x.ndim >= 3 and x.shape[-1] == 3:
    x = x @ jnp.asarray([0.299, 0.587, 0.114], jnp.float32)
  return x


def _tvl1_batch_impl(prev: jax.Array, nxt: jax.Array, params: TVL1Params) -> jax.Array:
  """(N, H, W[, 3]) x2 -> (N, H, W, 2), one compiled program per shape."""
  fn = functools.partial(_tvl1_pair, p=params)
  flow = jax.vmap(fn)(_to_gray(prev), _to_gray(nxt))  # (N, 2, H, W)
  return jnp.moveaxis(flow, 1, -1)


_tvl1_batch = jax.jit(_tvl1_batch_impl, static_argnames=("params",))
# On CPU, TV-L1's thousands of small loop iterations run much slower without
# LLVM's optimisations, so they stay on for this program even where a process
# lowers them globally to compile faster (test suites do).
_tvl1_batch_cpu = jax.jit(
  _tvl1_batch_impl,
  static_argnames=("params",),
  compiler_options={
    "xla_backend_optimization_level": 2,
    "xla_llvm_disable_expensive_passes": False,
  },
)


def _image_hw(shape: tuple[int, ...]) -> tuple[tuple[int, ...], int, int, bool]:
  """Splits an input shape into (leading dims, H, W, is_rgb)."""
  if len(shape) >= 3 and shape[-1] == 3:
    return shape[:-3], shape[-3], shape[-2], True
  if len(shape) < 2:
    raise ValueError(f"tvl1: expected (..., H, W) or (..., H, W, 3) images, got shape {shape}")
  return shape[:-2], shape[-2], shape[-1], False


def make_params(**kwargs: Any) -> TVL1Params:
  """Builds validated :class:`TVL1Params`; unknown names raise ``TypeError``.

  ``lambda`` may be spelled ``lambda_`` (Python keyword) or given via
  ``**{'lambda': x}``.
  """
  if "lambda" in kwargs:
    kwargs["lambda_"] = kwargs.pop("lambda")
  names = {f.name for f in dataclasses.fields(TVL1Params)}
  unknown = sorted(set(kwargs) - names)
  if unknown:
    raise TypeError(f"tvl1: unknown parameter(s) {unknown}; known: {sorted(names)}")
  p = TVL1Params(**kwargs)
  p.validate()
  return p


def effective_nscales(height: int, width: int, params: TVL1Params) -> int:
  """Number of pyramid levels actually used for an image size."""
  return len(pyramid_shapes(height, width, params.nscales, params.scale_step))


def tvl1(prev, next, *, check_finite: bool = True, **params: Any) -> jax.Array:  # pylint: disable=redefined-builtin
  """TV-L1 optical flow from ``prev`` to ``next`` (OpenCV DualTVL1 scheme).

  Args:
    prev: ``(..., H, W)`` grayscale or ``(..., H, W, 3)`` RGB images, uint8 or
      float in [0, 255]. Leading dimensions are batch dimensions.
    next: same shape as ``prev``.
    check_finite: raise ``ValueError`` on NaN/inf input (skipped when called
      under a JAX transformation with traced inputs).
    **params: OpenCV's parameters and defaults: ``tau=0.25, lambda_=0.15,
      theta=0.3, nscales=5, warps=5, epsilon=0.01, inner_iterations=30,
      outer_iterations=10, scale_step=0.8, gamma=0.0, median_filtering=5``;
      plus ``border='constant'`` (OpenCV's warping border: zeros) or
      ``'replicate'``.

  Returns:
    float32 ``(..., H, W, 2)`` flow ``(dx, dy)`` with
    ``prev(y, x) ≈ next(y + dy, x + dx)``.

  Raises:
    ValueError: shapes differ, NaN/inf input, bad parameters, or images
      smaller than 8 px. Images too small for ``nscales`` levels use fewer
      levels (like OpenCV) and a ``UserWarning`` says so.
  """
  p = make_params(**params)
  prev_shape, next_shape = jnp.shape(prev), jnp.shape(next)
  if prev_shape != next_shape:
    raise ValueError(f"tvl1: prev and next shapes differ: {prev_shape} vs {next_shape}")
  lead, h, w, rgb = _image_hw(tuple(prev_shape))
  for name, x in (("prev", prev), ("next", next)):
    is_float = jnp.issubdtype(jnp.result_type(x), jnp.floating)
    concrete = not isinstance(x, jax.core.Tracer)
    if check_finite and is_float and concrete and not bool(jnp.isfinite(jnp.asarray(x)).all()):
      raise ValueError(f"tvl1: {name} contains NaN or inf values")
  if h < MIN_IMAGE_SIDE or w < MIN_IMAGE_SIDE:
    raise ValueError(
      f"tvl1: images must be at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} px, got {w}x{h} (W x H)"
    )
  used = effective_nscales(h, w, p)
  if used < p.nscales:
    warnings.warn(
      f"tvl1: {w}x{h} images allow only {used} of nscales="
      f"{p.nscales} pyramid levels (coarsest side >= "
      f"{MIN_PYRAMID_SIDE} px); using {used}",
      stacklevel=2,
    )
  img_shape = (h, w, 3) if rgb else (h, w)
  n = int(np.prod(lead)) if lead else 1
  a = jnp.reshape(jnp.asarray(prev), (n,) + img_shape)
  b = jnp.reshape(jnp.asarray(next), (n,) + img_shape)
  run = _tvl1_batch_cpu if jax.default_backend() == "cpu" else _tvl1_batch
  flow = run(a, b, params=p)
  return jnp.reshape(flow, tuple(lead) + (h, w, 2))
