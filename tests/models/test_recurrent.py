"""LSTM and ConvLSTM heads against independent step-by-step references."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxact.models import recurrent


def _param_count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))


# --------------------------------------------------------------------- LSTM


def test_lstm_matches_torch_nn_lstm():
  torch = pytest.importorskip("torch", reason="PyTorch reference needs torch (test extra)")
  torch.manual_seed(0)
  n, t, d, h, layers = 3, 5, 7, 6, 2
  ref = torch.nn.LSTM(d, h, num_layers=layers, batch_first=True)
  x = np.random.RandomState(0).randn(n, t, d).astype(np.float32)
  with torch.no_grad():
    want, _ = ref(torch.from_numpy(x))
  params = recurrent.lstm_params_from_torch(ref.state_dict(), layers)
  head = recurrent.LSTMHead(features=h, num_layers=layers)
  last, seq = head.apply({"params": params}, jnp.asarray(x))
  np.testing.assert_allclose(np.asarray(seq), want.numpy(), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(last), want.numpy()[:, -1], rtol=1e-5, atol=1e-5)


def test_lstm_param_shapes_match_torch_count():
  head = recurrent.LSTMHead(features=16, num_layers=2)
  variables = jax.eval_shape(head.init, jax.random.key(0), jnp.zeros((2, 3, 10)))
  # PyTorch nn.LSTM(10, 16, 2) has two biases per layer; we fold them into one.
  torch_count = (4 * 16 * (10 + 16) + 2 * 4 * 16) + (4 * 16 * (16 + 16) + 2 * 4 * 16)
  assert _param_count(variables["params"]) == torch_count - 2 * 4 * 16


def test_lstm_rejects_zero_layers():
  with pytest.raises(ValueError, match="num_layers"):
    recurrent.LSTMHead(features=4, num_layers=0).init(jax.random.key(0), jnp.zeros((1, 2, 3)))


# ----------------------------------------------------------------- ConvLSTM


def _flax_cell_params(layer_params, f):
  """Our tied ConvLSTM params (gates i, f, o, g; bias-free hidden conv) in the
  layout of Flax's nn.ConvLSTMCell (gates i, g, f, o; both convs biased; the
  cell adds 1 to the forget-gate pre-activation itself)."""

  def reorder(a, forget_shift=0.0):
    i, fg, o, g = np.split(np.asarray(a), 4, axis=-1)
    return np.concatenate([i, g, fg - forget_shift, o], axis=-1)

  return {
    "ih": {
      "kernel": reorder(layer_params["input_conv"]["kernel"]),
      "bias": reorder(layer_params["input_conv"]["bias"], forget_shift=1.0),
    },
    "hh": {
      "kernel": reorder(layer_params["hidden_kernel"]),
      "bias": np.zeros((4 * f,), np.float32),
    },
  }


def test_tied_convlstm_equals_flax_cell_step_by_step():
  n, t, h, w, c, f = 2, 4, 5, 6, 3, 4
  x = jax.random.normal(jax.random.key(1), (n, t, h, w, c))
  layer = recurrent.ConvLSTMLayer(features=f, kernel_size=3, untied_first_step=False)
  params = layer.init(jax.random.key(2), x)["params"]
  # Random biases so the test also checks bias placement.
  params = jax.tree_util.tree_map(
    lambda p: p + 0.1 * jax.random.normal(jax.random.key(3), p.shape), params
  )
  ours = layer.apply({"params": params}, x)

  cell = nn.ConvLSTMCell(features=f, kernel_size=(3, 3))
  cell_params = _flax_cell_params(params, f)
  carry = (jnp.zeros((n, h, w, f)), jnp.zeros((n, h, w, f)))
  for step in range(t):
    carry, out = cell.apply({"params": cell_params}, carry, x[:, step])
    np.testing.assert_allclose(np.asarray(ours[:, step]), np.asarray(out), rtol=1e-5, atol=1e-5)


def _numpy_conv_same(x, k):
  """Plain NumPy 'SAME' convolution, NHWC × HWIO, for the untied reference."""
  kh, kw, _, o = k.shape
  xp = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
  n, h, w, _ = x.shape
  out = np.zeros((n, h, w, o), np.float64)
  for dy in range(kh):
    for dx in range(kw):
      out += np.einsum("nhwc,co->nhwo", xp[:, dy : dy + h, dx : dx + w], k[dy, dx])
  return out


def _sigmoid(z):
  return 1 / (1 + np.exp(-z))


def test_untied_convlstm_matches_numpy_reference():
  n, t, h, w, c, f = 2, 3, 4, 4, 3, 5
  x = np.random.RandomState(0).randn(n, t, h, w, c).astype(np.float32)
  layer = recurrent.ConvLSTMLayer(features=f, kernel_size=3, untied_first_step=True)
  params = layer.init(jax.random.key(0), jnp.asarray(x))["params"]
  ours = np.asarray(layer.apply({"params": params}, jnp.asarray(x)))
  p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)

  first = _numpy_conv_same(x[:, 0], p["first_input_conv"]["kernel"]) + p["first_input_conv"]["bias"]
  i, o, g = np.split(first, 3, axis=-1)
  cell = _sigmoid(i) * np.tanh(g)
  hid = _sigmoid(o) * np.tanh(cell)
  np.testing.assert_allclose(ours[:, 0], hid, rtol=1e-4, atol=1e-5)
  for step in range(1, t):
    z = (
      _numpy_conv_same(x[:, step], p["input_conv"]["kernel"])
      + p["input_conv"]["bias"]
      + _numpy_conv_same(hid, p["hidden_kernel"])
    )
    i, fg, o, g = np.split(z, 4, axis=-1)
    cell = _sigmoid(fg) * cell + _sigmoid(i) * np.tanh(g)
    hid = _sigmoid(o) * np.tanh(cell)
    np.testing.assert_allclose(ours[:, step], hid, rtol=1e-4, atol=1e-5)


def test_convlstm_param_counts_match_paper_b_release():
  # docs/reference.md § Paper B: ConvLSTM: 2048 input channels, 300 hidden, 3×3:
  # tied part 25,359,600, untied first step 16,589,700 more.
  x = jax.ShapeDtypeStruct((1, 2, 7, 7, 2048), jnp.float32)
  for untied, want in ((False, 25_359_600), (True, 41_949_300)):
    head = recurrent.ConvLSTMHead(features=300, kernel_size=3, untied_first_step=untied)
    variables = jax.eval_shape(head.init, jax.random.key(0), x)
    assert _param_count(variables["params"]) == want


def test_convlstm_forget_bias_starts_at_one():
  layer = recurrent.ConvLSTMLayer(features=3, kernel_size=3, untied_first_step=False)
  params = layer.init(jax.random.key(0), jnp.zeros((1, 2, 4, 4, 2)))["params"]
  bias = np.asarray(params["input_conv"]["bias"])
  np.testing.assert_array_equal(bias, [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("layers,kernel", [(2, 5), (3, 3)])
def test_convlstm_head_stacks_layers(layers, kernel):
  head = recurrent.ConvLSTMHead(features=4, num_layers=layers, kernel_size=kernel)
  x = jnp.ones((2, 3, 6, 6, 5))
  variables = head.init(jax.random.key(0), x)
  last, seq = head.apply(variables, x)
  assert seq.shape == (2, 3, 6, 6, 4) and last.shape == (2, 6, 6, 4)
  assert sorted(variables["params"]) == [f"layer{i}" for i in range(layers)]
  assert variables["params"]["layer0"]["hidden_kernel"].shape == (kernel, kernel, 4, 16)


def test_convlstm_head_validates_arguments():
  with pytest.raises(ValueError, match="1-3 layers"):
    recurrent.ConvLSTMHead(num_layers=4).init(jax.random.key(0), jnp.zeros((1, 2, 3, 3, 2)))
  with pytest.raises(ValueError, match="kernel_size"):
    recurrent.ConvLSTMHead(kernel_size=7).init(jax.random.key(0), jnp.zeros((1, 2, 3, 3, 2)))


def test_convlstm_bf16_compute_keeps_f32_params():
  head = recurrent.ConvLSTMHead(features=4, dtype=jnp.bfloat16)
  x = jnp.ones((1, 3, 4, 4, 2), jnp.bfloat16)
  variables = head.init(jax.random.key(0), x)
  assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(variables))
  last, _ = head.apply(variables, x)
  assert last.dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(last)))
