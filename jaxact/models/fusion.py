"""Two-stream fusion of feature maps or pooled vectors (paper B, Sec. III-C).

For spatial-stream features ``a`` and temporal-stream features ``b`` of the same
shape ``(..., C)`` (maps ``(N, H, W, C)`` at conv3/conv4/conv5, or pooled
vectors ``(N, C)``):

* ``sum``:    ``y = a + b``                              → ``(..., C)``
* ``max``:    ``y = max(a, b)``                          → ``(..., C)``
* ``concat``: ``y = [a, b]`` along channels              → ``(..., 2C)``
* ``conv``:   ``y = [a, b] · W + bias``, a 1×1 convolution with a
  ``2C × C`` filter bank → ``(..., C)``. ``W`` starts as ``[I; I]`` (the
  filter bank reproduces sum fusion at initialisation, as Feichtenhofer et al.
  2016 initialise it) so fine-tuning starts from a working network.

``concat`` also accepts different channel counts (paper A concatenates FC-1
and FC-2 outputs).
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

METHODS = ("sum", "max", "concat", "conv")


def _stacked_identity_init(key, shape, dtype=jnp.float32):
  """``(2C, C)`` kernel ``[I; I]``: conv fusion starts as sum fusion."""
  del key
  two_c, c = shape
  if two_c != 2 * c:
    raise ValueError(f"conv fusion kernel must be (2C, C), got {shape}")
  eye = jnp.eye(c, dtype=dtype)
  return jnp.concatenate([eye, eye], axis=0)


def _check_method(method: str) -> None:
  if method not in METHODS:
    raise ValueError(f"Unknown fusion method {method!r}; choose one of {METHODS}")


class Fusion(nn.Module):
  """Fuse spatial and temporal features.

  Attributes:
    method: ``'sum'``, ``'max'``, ``'concat'`` or ``'conv'``.
  """

  method: str = "sum"
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """Args: a, b ``(..., C)``. Returns the fused ``(..., C)`` or ``(..., 2C)``."""
    _check_method(self.method)
    if self.method != "concat" and a.shape != b.shape:
      raise ValueError(f"{self.method} fusion needs equal shapes, got {a.shape} and {b.shape}")
    if a.shape[:-1] != b.shape[:-1]:
      raise ValueError(f"fusion needs equal leading shapes, got {a.shape} and {b.shape}")
    if self.method == "sum":
      return a + b
    if self.method == "max":
      return jnp.maximum(a, b)
    stacked = jnp.concatenate([a, b], axis=-1)
    if self.method == "concat":
      return stacked
    # A 1×1 convolution is a dense layer over the channel axis, for maps and
    # vectors alike.
    return nn.Dense(
      a.shape[-1],
      kernel_init=_stacked_identity_init,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      name="conv",
    )(stacked)
