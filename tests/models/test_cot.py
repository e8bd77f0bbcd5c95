"""CoT layer and CoTNet: numerics against a PyTorch reference with official names."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax_testing import random_variables

from jaxact.models import convert, cot, resnet

torch = pytest.importorskip("torch")
import torch_cotnet  # noqa: E402  (needs torch)


def _naive_aggregation(values, attention, k):
  """Loop over positions, channels and taps: the definition, in NumPy."""
  _n, h, w, c = values.shape
  g = attention.shape[3]
  out = np.zeros_like(values)
  r = k // 2
  for y in range(h):
    for x in range(w):
      for ch in range(c):
        for dy in range(k):
          for dx in range(k):
            yy, xx = y + dy - r, x + dx - r
            if 0 <= yy < h and 0 <= xx < w:
              out[:, y, x, ch] += attention[:, y, x, ch % g, dy * k + dx] * values[:, yy, xx, ch]
  return out


@pytest.mark.parametrize("k", [3, 5])
def test_local_aggregation_matches_definition(k):
  rng = np.random.default_rng(0)
  values = rng.normal(size=(2, 5, 6, 8)).astype(np.float32)
  attention = rng.normal(size=(2, 5, 6, 2, k * k)).astype(np.float32)
  out = jax.jit(cot.local_aggregation, static_argnums=2)(values, attention, k)
  np.testing.assert_allclose(out, _naive_aggregation(values, attention, k), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k", [3, 5])
def test_local_aggregation_gradients(k):
  """The hand-written backward (shifted sums) against finite differences."""
  from jax.test_util import check_grads

  values = jax.random.normal(jax.random.key(0), (2, 5, 6, 16))
  attention = jax.random.normal(jax.random.key(1), (2, 5, 6, 4, k * k))
  check_grads(
    lambda v, a: cot.local_aggregation(v, a, k),
    (values, attention),
    order=1,
    modes=["rev"],
    atol=1e-2,
    rtol=1e-2,
  )


def test_local_aggregation_materialises_no_unfolded_copy():
  """No intermediate of the traced program is k² times the size of the values."""
  values = jnp.zeros((2, 14, 14, 64))
  attention = jnp.zeros((2, 14, 14, 8, 9))
  limit = 2 * 16 * 16 * 64 * 9 // 8  # the padded values (or attention)

  def sizes(jaxpr):
    for eqn in jaxpr.eqns:
      yield from (int(np.prod(v.aval.shape)) for v in eqn.outvars)
      for p in eqn.params.values():
        if hasattr(p, "eqns") or hasattr(p, "jaxpr"):
          yield from sizes(getattr(p, "jaxpr", p))

  loss = lambda v, a: jnp.sum(cot.local_aggregation(v, a, 3) ** 2)
  forward = jax.make_jaxpr(lambda v, a: cot.local_aggregation(v, a, 3))(values, attention)
  backward = jax.make_jaxpr(jax.grad(loss, argnums=(0, 1)))(values, attention)
  assert max(sizes(forward.jaxpr)) <= limit
  assert max(sizes(backward.jaxpr)) <= limit


def _torch_to_jax_input(x):
  return jnp.asarray(x.permute(0, 2, 3, 1).numpy())


def test_cot_layer_matches_pytorch_reference():
  torch.manual_seed(0)
  gen = torch.Generator().manual_seed(1)
  ref = torch_cotnet.CotLayer(32, 3)
  torch_cotnet.randomize_bn(ref, gen)
  ref.eval()
  x = torch.randn(2, 32, 9, 10, generator=gen)
  with torch.no_grad():
    expected = ref(x).permute(0, 2, 3, 1).numpy()
  layer = cot.CotLayer()
  xj = _torch_to_jax_input(x)
  variables = convert.from_torch(
    ref.state_dict(), layer, layout="cotnet", variables=random_variables(layer, xj)
  )
  out = jax.jit(lambda v, x: layer.apply(v, x, train=False))(variables, xj)
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_cot_layer_training_mode_matches_pytorch_reference():
  """Batch statistics (train=True) as in PyTorch's train mode, running means too."""
  torch.manual_seed(0)
  gen = torch.Generator().manual_seed(3)
  ref = torch_cotnet.CotLayer(16, 3)
  torch_cotnet.randomize_bn(ref, gen)
  layer = cot.CotLayer()
  x = torch.randn(4, 16, 6, 7, generator=gen)
  xj = _torch_to_jax_input(x)
  variables = convert.from_torch(
    ref.state_dict(), layer, layout="cotnet", variables=random_variables(layer, xj)
  )
  ref.train()
  with torch.no_grad():
    expected = ref(x).permute(0, 2, 3, 1).numpy()
  out, updates = jax.jit(lambda v, x: layer.apply(v, x, train=True, mutable=["batch_stats"]))(
    variables, xj
  )
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
  np.testing.assert_allclose(
    updates["batch_stats"]["embed_1"]["mean"],
    ref.embed[1].running_mean.numpy(),
    rtol=1e-4,
    atol=1e-6,
  )


def test_cotnet_tiny_matches_pytorch_reference():
  torch.manual_seed(0)
  gen = torch.Generator().manual_seed(2)
  ref = torch_cotnet.CoTNet(layers=(1, 1, 1, 1), width=16, num_classes=10)
  torch_cotnet.randomize_bn(ref, gen)
  ref.eval()
  x = torch.randn(2, 3, 64, 64, generator=gen)
  with torch.no_grad():
    expected = ref(x).numpy()
  model = resnet.BACKBONES["cotnet_tiny"](num_classes=10)
  variables = convert.from_torch(ref.state_dict(), model, layout="cotnet")
  logits, _ = jax.jit(lambda v, x: model.apply(v, x, train=False))(
    variables, _torch_to_jax_input(x)
  )
  np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_cot_layer_trains():
  """Gradients reach every parameter; BN statistics update in training mode."""
  layer = cot.CotLayer()
  x = jax.random.normal(jax.random.key(0), (2, 6, 6, 16))
  variables = random_variables(layer, x)

  def loss(params):
    out, updates = layer.apply(
      {"params": params, "batch_stats": variables["batch_stats"]},
      x,
      train=True,
      mutable=["batch_stats"],
    )
    return jnp.mean(out**2), updates

  grads, updates = jax.jit(jax.grad(loss, has_aux=True))(variables["params"])
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    assert float(jnp.abs(g).max()) > 0, jax.tree_util.keystr(path)
  old = variables["batch_stats"]["conv1x1_1"]["mean"]
  assert not np.allclose(updates["batch_stats"]["conv1x1_1"]["mean"], old)


def test_cot_layer_rejects_bad_channels():
  with pytest.raises(ValueError, match="divisible"):
    jax.eval_shape(lambda: cot.CotLayer().init(jax.random.key(0), jnp.ones((1, 4, 4, 12))))
