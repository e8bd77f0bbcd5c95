"""Recurrent heads: an LSTM over per-step vectors and a ConvLSTM over maps.

Both heads compute the input→hidden projection of *every* time step in one
batched matmul / convolution before the recurrence, and run only the
hidden→hidden part inside ``lax.scan``. For paper B's ConvLSTM that input
convolution is ~87% of a step's multiply-adds (2048 of the 2348 input channels
of a gate's convolutions; docs/reference.md § Paper B: ConvLSTM), and it runs
as one convolution over all T steps instead of T small ones.

Gate layouts (the concatenated gate axis of the kernels):

* :class:`LSTMLayer`: ``i, f, g, o`` — PyTorch ``nn.LSTM``'s order, so its
  ``weight_ih_l{k}``, ``weight_hh_l{k}`` and ``bias_ih + bias_hh`` map 1:1 (see
  :func:`lstm_params_from_torch`).
* :class:`ConvLSTMLayer`: ``i, f, o, g``; input convolutions carry the bias,
  hidden convolutions have none, no peepholes, forget bias initialised to 1
  (paper B's released Torch7 code). ``untied_first_step=True`` is that code's
  first step: a separate set of input convolutions for ``i, o, g`` only and no
  forget gate, ``c1 = i ⊙ g``, ``h1 = o ⊙ tanh(c1)``; later steps use the tied
  weights. ``untied_first_step=False`` is the tied form of Flax's
  ``nn.ConvLSTMCell`` (with a bias-free hidden convolution).

Recurrent state and gate nonlinearities are computed in float32 whatever the
compute ``dtype``; matmuls and convolutions run in ``dtype``.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Dtype = Any


def _gate_bias_init(num_gates: int, forget_index: int | None, forget_bias: float):
  """Bias initialiser: zeros, with ``forget_bias`` on the forget-gate slice."""

  def init(key, shape, dtype=jnp.float32):
    del key
    features = shape[-1] // num_gates
    bias = np.zeros(shape, np.float32)
    if forget_index is not None:
      bias[forget_index * features : (forget_index + 1) * features] = forget_bias
    return jnp.asarray(bias, dtype)

  return init


class LSTMLayer(nn.Module):
  """One LSTM layer over a sequence.

  Attributes:
    features: hidden size H.
    forget_bias: initial value of the forget-gate bias (PyTorch uses 0).
  """

  features: int
  forget_bias: float = 0.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    """Run the layer.

    Args:
      x: ``(N, T, D)`` inputs.

    Returns:
      ``(N, T, H)`` hidden states of every step.
    """
    h_size = self.features
    # Input projection of all steps at once (bias = PyTorch bias_ih + bias_hh).
    xp = nn.Dense(
      4 * h_size,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      bias_init=_gate_bias_init(4, 1, self.forget_bias),
      name="input",
    )(x)
    w_hh = self.param(
      "hidden_kernel",
      nn.initializers.orthogonal(column_axis=-1),
      (h_size, 4 * h_size),
      self.param_dtype,
    ).astype(self.dtype)
    # The carry is derived from the input so it inherits its sharding.
    h0 = jnp.zeros_like(xp[:, 0, :h_size], dtype=jnp.float32)

    def step(carry, xp_t):
      h, c = carry
      z = xp_t.astype(jnp.float32) + jnp.dot(
        h.astype(self.dtype), w_hh, preferred_element_type=jnp.float32
      )
      i, f, g, o = jnp.split(z, 4, axis=-1)
      c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
      h = jax.nn.sigmoid(o) * jnp.tanh(c)
      return (h, c), h

    _, hs = jax.lax.scan(step, (h0, h0), jnp.swapaxes(xp, 0, 1))
    return jnp.swapaxes(hs, 0, 1).astype(self.dtype)


class LSTMHead(nn.Module):
  """Stacked LSTM over per-step feature vectors (paper A's temporal stream).

  Attributes:
    features: hidden size of every layer.
    num_layers: number of stacked layers (≥ 1).
  """

  features: int = 512
  num_layers: int = 1
  forget_bias: float = 0.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Args: x ``(N, T, D)``. Returns ``(last (N, H), all steps (N, T, H))``."""
    if self.num_layers < 1:
      raise ValueError(f"LSTMHead needs num_layers >= 1, got {self.num_layers}")
    for layer in range(self.num_layers):
      x = LSTMLayer(
        self.features,
        forget_bias=self.forget_bias,
        dtype=self.dtype,
        param_dtype=self.param_dtype,
        name=f"layer{layer}",
      )(x)
    return x[:, -1], x


def _conv_nhwc(x: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
  """'SAME' stride-1 convolution, NHWC input, HWIO kernel, float32 result."""
  return jax.lax.conv_general_dilated(
    x,
    kernel,
    window_strides=(1, 1),
    padding="SAME",
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
    preferred_element_type=jnp.float32,
  )


class ConvLSTMLayer(nn.Module):
  """One ConvLSTM layer (paper B) over a sequence of feature maps.

  Attributes:
    features: hidden channels F (300 in paper B).
    kernel_size: 3 or 5 (both convolutions, 'SAME' padding).
    untied_first_step: use paper B's separate first-step weights.
    forget_bias: initial forget-gate bias (1 in paper B's code).
  """

  features: int = 300
  kernel_size: int = 3
  untied_first_step: bool = True
  forget_bias: float = 1.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    """Run the layer.

    Args:
      x: ``(N, T, H, W, C)`` input maps.

    Returns:
      ``(N, T, H, W, F)`` hidden maps of every step.
    """
    n, _t, h, w, c = x.shape
    f = self.features
    k = (self.kernel_size, self.kernel_size)
    conv = lambda feats, bias_init, name: nn.Conv(
      feats,
      k,
      padding="SAME",
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      bias_init=bias_init,
      name=name,
    )
    w_hh = self.param(
      "hidden_kernel", nn.initializers.lecun_normal(), k + (f, 4 * f), self.param_dtype
    ).astype(self.dtype)

    if self.untied_first_step:
      first = conv(3 * f, nn.initializers.zeros, "first_input_conv")(x[:, 0])
      i0, o0, g0 = jnp.split(first.astype(jnp.float32), 3, axis=-1)
      c0 = jax.nn.sigmoid(i0) * jnp.tanh(g0)
      h0 = jax.nn.sigmoid(o0) * jnp.tanh(c0)
      rest = x[:, 1:]
    else:
      rest = x
    # Input→hidden convolutions of all remaining steps at once.
    tr = rest.shape[1]
    xin = conv(4 * f, _gate_bias_init(4, 1, self.forget_bias), "input_conv")(
      rest.reshape(n * tr, h, w, c)
    ).reshape(n, tr, h, w, 4 * f)
    if not self.untied_first_step:
      h0 = jnp.zeros_like(xin[:, 0, ..., :f], dtype=jnp.float32)
      c0 = h0

    def step(carry, xin_t):
      h_prev, c_prev = carry
      z = xin_t.astype(jnp.float32) + _conv_nhwc(h_prev.astype(self.dtype), w_hh)
      i, fg, o, g = jnp.split(z, 4, axis=-1)
      c_new = jax.nn.sigmoid(fg) * c_prev + jax.nn.sigmoid(i) * jnp.tanh(g)
      h_new = jax.nn.sigmoid(o) * jnp.tanh(c_new)
      return (h_new, c_new), h_new

    _, hs = jax.lax.scan(step, (h0, c0), jnp.swapaxes(xin, 0, 1))
    hs = jnp.swapaxes(hs, 0, 1)
    if self.untied_first_step:
      hs = jnp.concatenate([h0[:, None], hs], axis=1)
    return hs.astype(self.dtype)


class ConvLSTMHead(nn.Module):
  """Stacked ConvLSTM (1–3 layers) over fused feature maps (paper B).

  Attributes:
    features: hidden channels of every layer (paper B: 300).
    num_layers: 1, 2 or 3.
    kernel_size: 3 or 5.
    untied_first_step: paper B's released first-step weights (True) or the
      tied Flax-style cell (False).
  """

  features: int = 300
  num_layers: int = 1
  kernel_size: int = 3
  untied_first_step: bool = True
  forget_bias: float = 1.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Args: x ``(N, T, H, W, C)``. Returns ``(last (N, H, W, F), all (N, T, H, W, F))``."""
    if self.num_layers not in (1, 2, 3):
      raise ValueError(f"ConvLSTMHead supports 1-3 layers, got {self.num_layers}")
    if self.kernel_size not in (3, 5):
      raise ValueError(f"ConvLSTMHead kernel_size must be 3 or 5, got {self.kernel_size}")
    for layer in range(self.num_layers):
      x = ConvLSTMLayer(
        self.features,
        self.kernel_size,
        self.untied_first_step,
        self.forget_bias,
        dtype=self.dtype,
        param_dtype=self.param_dtype,
        name=f"layer{layer}",
      )(x)
    return x[:, -1], x


def lstm_params_from_torch(state_dict: dict, num_layers: int, prefix: str = "") -> dict:
  """Convert PyTorch ``nn.LSTM`` weights to :class:`LSTMHead` params.

  Args:
    state_dict: name → array (numpy or torch tensor) of an ``nn.LSTM`` with
      ``batch_first`` any and no projections.
    num_layers: number of layers to convert.
    prefix: prefix of the LSTM's names in ``state_dict`` (e.g. ``'lstm.'``).

  Returns:
    ``{'layer0': {'input': {'kernel', 'bias'}, 'hidden_kernel'}, ...}``.
  """

  def get(name):
    value = state_dict[prefix + name]
    value = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
    return value.astype(np.float32)

  params = {}
  for layer in range(num_layers):
    params[f"layer{layer}"] = {
      "input": {
        "kernel": get(f"weight_ih_l{layer}").T,
        "bias": get(f"bias_ih_l{layer}") + get(f"bias_hh_l{layer}"),
      },
      "hidden_kernel": get(f"weight_hh_l{layer}").T,
    }
  return params
