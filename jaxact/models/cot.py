"""Contextual Transformer (CoT) layer, as in the official CoTNet code.

Paper A builds its backbone from CoTNet (Li et al., "Contextual Transformer
Networks for Visual Recognition"): each 3×3 conv of a ResNet bottleneck is
replaced by a CoT layer. With input ``X`` (N, H, W, C), ``k = 3``,
``G = C / 8`` attention groups and radix 2:

1. static context ``K1 = ReLU(BN(GroupedConv_k×k(X)))`` (4 groups);
2. attention ``A = GN(Conv1×1(ReLU(BN(Conv1×1([X, K1])))))`` with ``k²·G``
   channels, channel ``g·k² + tap`` (tap row-major over the window);
3. values ``V = BN(Conv1×1(X))``; dynamic context
   ``K2[p, c] = Σ_tap A[p, c mod G, tap] · V[p + offset(tap), c]`` (zero
   padding), then ``K2 = SiLU(BN(K2))``;
4. fusion (split attention, radix 2): ``S = mean_HW(K1 + K2)``,
   ``L = Conv1×1(ReLU(BN(Conv1×1(S))))`` with ``2C`` channels laid out
   ``c·2 + branch`` (branch 0 = K2, 1 = K1), softmax over the branch,
   ``out = w0·K2 + w1·K1``.

Submodule names mirror the official PyTorch modules (``key_embed.0`` →
``key_embed_0``, ``embed.{0,1,3,4}``, ``conv1x1.{0,1}``, ``bn``,
``se.{0,1,3}``) so checkpoints convert by name.

The local aggregation of step 3 is written as ``k²`` shifted multiply-adds on
the padded values, which XLA fuses into one loop: no ``k²``-times unfolded
copy of ``V`` is ever materialised.
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
Dtype = Any

_BN_MOMENTUM = 0.9  # PyTorch momentum 0.1.
_EPSILON = 1e-5  # PyTorch BatchNorm2d and GroupNorm default.
_RADIX = 2  # fusion branches: dynamic (K2) and static (K1) context
# Name scope of the aggregation's multiplies (tools.model_info counts them as MACs).
LOCAL_AGGREGATION_SCOPE = "cot_local_aggregation"
_conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def local_aggregation(values: Array, attention: Array, kernel_size: int) -> Array:
  """Dynamic context: per-position weighted sum of a ``k×k`` neighbourhood.

  Args:
    values: ``(N, H, W, C)``.
    attention: ``(N, H, W, G, k²)``; channel ``c`` of ``values`` uses group
      ``c mod G`` (``C`` must be divisible by ``G``).
    kernel_size: odd ``k``; the window is centred, outside is zero.

  Returns:
    ``(N, H, W, C)``: ``out[p, c] = Σ_tap attention[p, c mod G, tap] ·
    values[p + offset(tap), c]``, accumulated in float32, cast to
    ``values.dtype``.
  """
  _n, _h, _w, c = values.shape
  g = attention.shape[3]
  if c % g or attention.shape[4] != kernel_size**2:
    raise ValueError(
      f"local_aggregation: values {values.shape} do not match "
      f"attention {attention.shape} for kernel {kernel_size}"
    )
  return _aggregate(values, attention, kernel_size)


def _window(x: Array, y0: int, x0: int, h: int, w: int) -> Array:
  """``x[:, y0:y0+h, x0:x0+w]`` as static slices."""
  x = jax.lax.slice_in_dim(x, y0, y0 + h, axis=1)
  return jax.lax.slice_in_dim(x, x0, x0 + w, axis=2)


def _pad_hw(x: Array, pad: int) -> Array:
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad)) + ((0, 0),) * (x.ndim - 3))


def _shifted_sum(values: Array, attention: Array, kernel_size: int) -> Array:
  """Forward: k² shifted multiply-adds (one fused loop, float32 accumulation)."""
  n, h, w, c = values.shape
  g = attention.shape[3]
  r = kernel_size // 2
  with jax.named_scope(LOCAL_AGGREGATION_SCOPE):
    # Channel c = j·G + g  →  (j, g): group g is the last axis, as in c mod G.
    padded = _pad_hw(values, r).reshape(n, h + 2 * r, w + 2 * r, c // g, g)
    attention = attention.astype(jnp.float32)
    out = jnp.zeros((n, h, w, c // g, g), jnp.float32)
    for dy in range(kernel_size):
      for dx in range(kernel_size):
        window = _window(padded, dy, dx, h, w).astype(jnp.float32)
        out = out + window * attention[:, :, :, None, :, dy * kernel_size + dx]
  return out.reshape(n, h, w, c).astype(values.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _aggregate(values: Array, attention: Array, kernel_size: int) -> Array:
  return _shifted_sum(values, attention, kernel_size)


def _aggregate_fwd(values, attention, kernel_size):
  return _shifted_sum(values, attention, kernel_size), (values, attention)


def _aggregate_bwd(kernel_size, residuals, grad):
  """Backward, also as shifted multiply-adds (no k² gradient copies).

  ``dA[p, g, tap] = Σ_{c mod G = g} dOut[p, c] · V[p + off(tap), c]``, and
  ``dV[q, c] = Σ_tap A[q − off(tap), c mod G, tap] · dOut[q − off(tap), c]``,
  which is the forward aggregation of ``dOut`` with the mirrored, shifted
  attention ``A'[q, tap'] = A[q + off(tap'), k² − 1 − tap']``.
  """
  values, attention = residuals
  n, h, w, c = values.shape
  g = attention.shape[3]
  k, r = kernel_size, kernel_size // 2
  grad32 = grad.astype(jnp.float32).reshape(n, h, w, c // g, g)
  v_pad = _pad_hw(values, r).reshape(n, h + 2 * r, w + 2 * r, c // g, g)
  a_pad = _pad_hw(attention, r)
  d_attention, mirrored = [], []
  for dy in range(k):
    for dx in range(k):
      window = _window(v_pad, dy, dx, h, w).astype(jnp.float32)
      d_attention.append(jnp.sum(grad32 * window, axis=3))
      mirrored.append(_window(a_pad, dy, dx, h, w)[..., k * k - 1 - (dy * k + dx)])
  d_attention = jnp.stack(d_attention, axis=-1).astype(attention.dtype)
  d_values = _shifted_sum(grad.astype(values.dtype), jnp.stack(mirrored, axis=-1), k)
  return d_values, d_attention


_aggregate.defvjp(_aggregate_fwd, _aggregate_bwd)


class CotLayer(nn.Module):
  """CoT layer: stride 1, same channels in and out (``C`` divisible by 8 and 4).

  Attributes:
    kernel_size: window ``k`` of the key conv and of the local aggregation.
    share_planes: channels per attention group (``G = C / share_planes``).
    key_groups: groups of the ``k×k`` key convolution.
    reduction: the fusion's hidden size is ``max(2C/reduction, 32)`` (2 = the
      branches, dynamic and static context).
    dtype: compute dtype; param_dtype: parameter dtype.
  """

  kernel_size: int = 3
  share_planes: int = 8
  key_groups: int = 4
  reduction: int = 4
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def _conv(
    self, features: int, kernel: int, name: str, groups: int = 1, use_bias: bool = False
  ) -> nn.Conv:
    pad = kernel // 2
    return nn.Conv(
      features,
      (kernel, kernel),
      padding=((pad, pad), (pad, pad)),
      feature_group_count=groups,
      use_bias=use_bias,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      kernel_init=_conv_init,
      name=name,
    )

  def _bn(self, train: bool, name: str) -> nn.BatchNorm:
    return nn.BatchNorm(
      use_running_average=not train,
      momentum=_BN_MOMENTUM,
      epsilon=_EPSILON,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      name=name,
    )

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    """(N, H, W, C) → (N, H, W, C)."""
    n, h, w, c = x.shape
    k = self.kernel_size
    if c % self.share_planes or c % self.key_groups:
      raise ValueError(
        f"CotLayer needs channels divisible by {self.share_planes} and {self.key_groups}; got {c}"
      )
    groups = c // self.share_planes
    x = jnp.asarray(x, self.dtype)

    # 1. Static context K1.
    k1 = self._conv(c, k, "key_embed_0", groups=self.key_groups)(x)
    k1 = nn.relu(self._bn(train, "key_embed_1")(k1))

    # 2. Attention logits from [X, K1], GroupNorm per attention group.
    a = self._conv(c // 2, 1, "embed_0")(jnp.concatenate([x, k1], axis=-1))
    a = nn.relu(self._bn(train, "embed_1")(a))
    a = self._conv(k * k * groups, 1, "embed_3", use_bias=True)(a)
    a = nn.GroupNorm(
      num_groups=groups,
      epsilon=_EPSILON,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      name="embed_4",
    )(a)
    a = a.reshape(n, h, w, groups, k * k)

    # 3. Values and dynamic context K2.
    v = self._conv(c, 1, "conv1x1_0")(x)
    v = self._bn(train, "conv1x1_1")(v)
    k2 = local_aggregation(v, a, k)
    k2 = nn.silu(self._bn(train, "bn")(k2))

    # 4. Radix-2 fusion of K2 (branch 0) and K1 (branch 1).
    attn_channels = max(c * _RADIX // self.reduction, 32)
    s = jnp.mean((k2 + k1).astype(jnp.float32), axis=(1, 2), keepdims=True)
    z = self._conv(attn_channels, 1, "se_0", use_bias=True)(s)
    z = nn.relu(self._bn(train, "se_1")(z))
    logits = self._conv(c * _RADIX, 1, "se_3", use_bias=True)(z)
    weights = jax.nn.softmax(logits.astype(jnp.float32).reshape(n, 1, 1, c, _RADIX), axis=-1)
    out = weights[..., 0] * k2.astype(jnp.float32) + weights[..., 1] * k1.astype(jnp.float32)
    return out.astype(self.dtype)
