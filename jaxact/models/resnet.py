"""Bottleneck ResNet (torchvision layout) with a pluggable spatial mixer.

One network gives ResNet-50/101 (the mixer is a 3×3 conv + BN + ReLU) and
CoTNet-50/101 (the mixer is the CoT layer of :mod:`jaxact.models.cot`,
preceded by a 3×3/2 average pool in stride-2 blocks). Layout as torchvision:
7×7/2 stem conv, BN, ReLU, 3×3/2 max pool, four stages of bottlenecks with
the stride in the 3×3, global average pool, linear classifier.

Parameter names mirror torchvision / timm / the official CoTNet code, so
PyTorch checkpoints convert by name (:mod:`jaxact.models.convert`)::

  conv1, bn1                                   stem
  layer{1..4}_{i}/conv1, bn1, conv2, bn2, conv3, bn3
  layer{1..4}_{i}/downsample_conv, downsample_bn      (torch: downsample.0/.1)
  layer{1..4}_{i}/conv2/key_embed_0, ...       (CoT mixer: torch conv2.key_embed.0)
  fc                                           classifier (absent if num_classes is None)

BatchNorm uses PyTorch's momentum (0.1, i.e. Flax 0.9) and epsilon (1e-5);
the last BN of each block starts with scale 0. Convolutions run in ``dtype``
(e.g. bfloat16 on accelerators), parameters are kept in ``param_dtype``.
Input channels are taken from the input (3 for RGB, 2L for L stacked flows).

Grad-CAM (``jaxact.eval.cam``) reads the stage outputs ``conv2`` … ``conv5``
through :meth:`ResNet.expose`: sown as ``intermediates`` and open to
``perturbations`` only when the caller asks; parameters and numerics are
those of the plain network otherwise.
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxact.models import cot

Array = jax.Array
Dtype = Any

# PyTorch BatchNorm2d defaults: momentum 0.1 (running = 0.9 running + 0.1 batch).
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

# torchvision: kaiming_normal_(mode='fan_out', nonlinearity='relu').
conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def batch_norm(
  train: bool, dtype: Dtype, param_dtype: Dtype, name: str, zero_init: bool = False
) -> nn.BatchNorm:
  """BatchNorm with PyTorch's momentum and epsilon."""
  return nn.BatchNorm(
    use_running_average=not train,
    momentum=BN_MOMENTUM,
    epsilon=BN_EPSILON,
    dtype=dtype,
    param_dtype=param_dtype,
    name=name,
    scale_init=nn.initializers.zeros if zero_init else nn.initializers.ones,
  )


def conv(
  features: int,
  kernel: int,
  stride: int,
  dtype: Dtype,
  param_dtype: Dtype,
  name: str,
  groups: int = 1,
  use_bias: bool = False,
) -> nn.Conv:
  """PyTorch-style convolution: symmetric padding ``kernel // 2``."""
  pad = kernel // 2
  return nn.Conv(
    features,
    (kernel, kernel),
    strides=(stride, stride),
    padding=((pad, pad), (pad, pad)),
    feature_group_count=groups,
    use_bias=use_bias,
    dtype=dtype,
    param_dtype=param_dtype,
    kernel_init=conv_init,
    name=name,
  )


class Bottleneck(nn.Module):
  """1×1 reduce → spatial mixer (stride here) → 1×1 expand (×4), residual.

  Attributes:
    width: channels of the mixer; the block outputs ``4 * width``.
    stride: 1 or 2 (applied in the mixer and in the shortcut conv).
    mixer: ``'conv'`` (3×3 conv, BN, ReLU) or ``'cot'`` (CoT layer; a 3×3/2
      average pool first when ``stride == 2``).
  """

  width: int
  stride: int = 1
  mixer: str = "conv"
  zero_init_last_bn: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    """(N, H, W, Cin) → (N, H/stride, W/stride, 4·width)."""
    d, pd = self.dtype, self.param_dtype
    out_features = 4 * self.width
    shortcut = x
    y = conv(self.width, 1, 1, d, pd, "conv1")(x)
    y = nn.relu(batch_norm(train, d, pd, "bn1")(y))
    if self.mixer == "conv":
      y = conv(self.width, 3, self.stride, d, pd, "conv2")(y)
      y = nn.relu(batch_norm(train, d, pd, "bn2")(y))
    elif self.mixer == "cot":
      if self.stride > 1:
        y = nn.avg_pool(
          y, (3, 3), (self.stride, self.stride), padding=((1, 1), (1, 1)), count_include_pad=True
        )
      y = cot.CotLayer(dtype=d, param_dtype=pd, name="conv2")(y, train=train)
    else:
      raise ValueError(f"Unknown spatial mixer {self.mixer!r}; use 'conv' or 'cot'")
    y = conv(out_features, 1, 1, d, pd, "conv3")(y)
    y = batch_norm(train, d, pd, "bn3", zero_init=self.zero_init_last_bn)(y)
    if x.shape[-1] != out_features or self.stride != 1:
      shortcut = conv(out_features, 1, self.stride, d, pd, "downsample_conv")(x)
      shortcut = batch_norm(train, d, pd, "downsample_bn")(shortcut)
    return nn.relu(y + shortcut.astype(y.dtype))


class ResNet(nn.Module):
  """Bottleneck ResNet / CoTNet backbone with named feature maps.

  Attributes:
    num_classes: classifier size; ``None`` builds no ``fc`` (logits ``None``).
    stage_sizes: blocks per stage, e.g. ``(3, 4, 23, 3)`` for 101 layers.
    width: mixer width of the first stage (doubles every stage); the stem has
      ``width`` channels and stage outputs are ``4·width … 32·width``.
    mixer: spatial mixer of every bottleneck, ``'conv'`` or ``'cot'``.
    zero_init_last_bn: start each block's last BN scale at 0.
    dtype: compute dtype (e.g. ``jnp.bfloat16``); logits are float32.
    param_dtype: parameter dtype.
  """

  num_classes: int | None = 1000
  stage_sizes: Sequence[int] = (3, 4, 6, 3)
  width: int = 64
  mixer: str = "conv"
  zero_init_last_bn: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> tuple[Array | None, dict[str, Array]]:
    """Runs the backbone.

    Args:
      x: float ``(N, H, W, C)`` normalised images or flow stacks (any C).
      train: batch statistics (and their update) instead of running averages.

    Returns:
      ``(logits, features)``: logits float32 ``(N, num_classes)`` (``None``
      without a head); features ``stem`` ``(N, H/4, W/4, width)``, ``conv2``
      … ``conv5`` ``(N, H/4 … H/32, ·, 4·width … 32·width)`` and ``pooled``
      ``(N, 32·width)``.
    """
    d, pd = self.dtype, self.param_dtype
    x = jnp.asarray(x, d)
    x = conv(self.width, 7, 2, d, pd, "conv1")(x)
    x = nn.relu(batch_norm(train, d, pd, "bn1")(x))
    x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
    features = {"stem": x}
    for stage, blocks in enumerate(self.stage_sizes):
      for i in range(blocks):
        x = Bottleneck(
          width=self.width * 2**stage,
          stride=2 if stage > 0 and i == 0 else 1,
          mixer=self.mixer,
          zero_init_last_bn=self.zero_init_last_bn,
          dtype=d,
          param_dtype=pd,
          name=f"layer{stage + 1}_{i}",
        )(x, train=train)
      x = self.expose(f"conv{stage + 2}", x)
      features[f"conv{stage + 2}"] = x
    pooled = jnp.mean(x, axis=(1, 2))
    features["pooled"] = pooled
    if self.num_classes is None:
      return None, features
    logits = nn.Dense(self.num_classes, dtype=d, param_dtype=pd, name="fc")(pooled)
    return jnp.asarray(logits, jnp.float32), features

  def expose(self, name: str, x: Array) -> Array:
    """Makes a stage's output map available to Grad-CAM, numerics unchanged.

    * ``intermediates/<name>``: the map is sown when the caller makes that
      collection mutable (``apply(..., mutable=['intermediates'])``).
    * ``perturbations/<name>``: when the caller passes such a variable, it is
      added to the map (Flax ``perturb``), so the gradient with respect to a
      zero perturbation is the gradient with respect to the map.

    Without either (training, evaluation, ``init``: which never creates
    perturbations here) ``x`` is returned as is.
    """
    self.sow("intermediates", name, x)
    if self.has_variable("perturbations", name):
      x = self.perturb(name, x)
    return x


ResNet50 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), mixer="conv")
ResNet101 = functools.partial(ResNet, stage_sizes=(3, 4, 23, 3), mixer="conv")
CoTNet50 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), mixer="cot")
CoTNet101 = functools.partial(ResNet, stage_sizes=(3, 4, 23, 3), mixer="cot")
# Tiny variants for tests: one block per stage, width 16 (CoT: 2 attention
# groups, 4 key-conv groups).
ResNetTiny = functools.partial(ResNet, stage_sizes=(1, 1, 1, 1), width=16, mixer="conv")
CoTNetTiny = functools.partial(ResNet, stage_sizes=(1, 1, 1, 1), width=16, mixer="cot")

BACKBONES: dict[str, Callable[..., nn.Module]] = {
  "resnet50": ResNet50,
  "resnet101": ResNet101,
  "cotnet50": CoTNet50,
  "cotnet101": CoTNet101,
  "resnet_tiny": ResNetTiny,
  "cotnet_tiny": CoTNetTiny,
}
