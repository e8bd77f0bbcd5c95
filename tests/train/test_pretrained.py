"""config.init_from: PyTorch files go through the models' converter, stream by stream."""

import fake_run
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxact.runtime import mesh as mesh_lib
from jaxact.runtime import state as state_lib
from jaxact.train import optim, pretrained


def _state():
  model = fake_run.TinyTwoStream(3)
  spec = {
    k: jax.ShapeDtypeStruct(v.shape, v.dtype)
    for k, v in fake_run.make_arrays(4).items()
    if k != "label"
  }
  config = fake_run.tiny_config()
  tx, _ = optim.create_optimizer(config.optimizer, 10, ["spatial", "temporal", "classifier"])
  mesh = mesh_lib.create_mesh()
  state, _ = state_lib.create_train_state(model, tx, spec, mesh, jax.random.key(0))
  return model, tx, mesh, state, config


def test_torch_weights_fill_each_stream(tmp_path, monkeypatch):
  from jaxact.models import convert

  model, tx, mesh, state, config = _state()
  weights = tmp_path / "imagenet.pth"
  weights.write_bytes(b"")
  calls = []

  def fake_from_torch(path, net, *, layout, variables, stream):
    calls.append((path, layout, stream))
    out = jax.tree.map(np.asarray, variables)
    out["params"][stream] = jax.tree.map(np.ones_like, out["params"][stream])
    return out

  monkeypatch.setattr(convert, "from_torch", fake_from_torch)
  config.init_from.path = str(weights)
  config.init_from.layout = "cotnet"
  new = pretrained.init_state_from(state, tx, config.init_from, mesh, model)
  assert calls == [(str(weights), "cotnet", "spatial"), (str(weights), "cotnet", "temporal")]
  for stream in ("spatial", "temporal"):
    assert all(np.all(np.asarray(x) == 1) for x in jax.tree.leaves(new.params[stream]))
  np.testing.assert_array_equal(
    new.params["classifier"]["kernel"], state.params["classifier"]["kernel"]
  )
  assert new.params["spatial"]["conv"]["kernel"].sharding.is_fully_replicated


def test_init_from_errors_name_the_path(tmp_path):
  model, tx, mesh, state, config = _state()
  config.init_from.path = str(tmp_path)  # a directory without checkpoints
  with pytest.raises(pretrained.InitFromError, match="no Orbax checkpoint"):
    pretrained.init_state_from(state, tx, config.init_from, mesh, model)


def test_merge_by_name_reports_fresh_and_unused():
  current = {"params": {"a": jnp.zeros(2), "fc": jnp.zeros((4, 3))}}
  loaded = {"params": {"a": jnp.ones(2), "fc": jnp.ones((4, 5)), "old": jnp.ones(1)}}
  merged, fresh, unused = pretrained.merge_by_name(current, loaded)
  np.testing.assert_array_equal(merged["params"]["a"], [1, 1])
  np.testing.assert_array_equal(merged["params"]["fc"], np.zeros((4, 3)))
  assert fresh == ["params/fc (shape (4, 5) != (4, 3))"] and unused == ["params/old"]


def test_real_torch_file_initialises_both_streams_of_a_registry_model(tmp_path):
  """End to end, no mock: a transformers ResNet saved with torch.save, read
  by init_from into two_stream_convlstm_tiny (ResNet-tiny backbones); the
  flow stream's 4-channel conv1 is the cross-modality average."""
  torch = pytest.importorskip("torch", reason="needs torch (test extra)")
  transformers = pytest.importorskip("transformers", reason="needs transformers (test extra)")
  import jaxact.models as models

  torch.manual_seed(0)
  # ResNet-tiny: 16-channel stem, bottleneck widths 16…128, one block per stage.
  net = transformers.ResNetForImageClassification(
    transformers.ResNetConfig(
      embedding_size=16,
      hidden_sizes=[64, 128, 256, 512],
      depths=[1, 1, 1, 1],
      layer_type="bottleneck",
      num_labels=7,
    )
  )
  path = tmp_path / "resnet_tiny_hf.pth"
  torch.save(net.state_dict(), path)
  conv1 = net.state_dict()["resnet.embedder.embedder.convolution.weight"].numpy()  # OIHW

  model = models.create("two_stream_convlstm_tiny", num_classes=3)
  spec = {
    "rgb": jax.ShapeDtypeStruct((4, 2, 32, 32, 3), jnp.float32),
    "flow": jax.ShapeDtypeStruct((4, 2, 32, 32, 4), jnp.float32),
  }
  config = fake_run.tiny_config()
  mesh = mesh_lib.create_mesh()
  abstract = jax.eval_shape(lambda k: state_lib.init_variables(model, spec, k), jax.random.key(0))
  tx, _ = optim.create_optimizer(config.optimizer, 10, list(abstract["params"]))
  state, _ = state_lib.create_train_state(model, tx, spec, mesh, jax.random.key(0))
  config.init_from.path = str(path)
  config.init_from.kind = "torch"
  config.init_from.layout = "hf"
  new = pretrained.init_state_from(state, tx, config.init_from, mesh, model)

  rgb_kernel = np.asarray(new.params["spatial"]["conv1"]["kernel"])  # HWIO
  np.testing.assert_allclose(rgb_kernel, conv1.transpose(2, 3, 1, 0), rtol=1e-6)
  flow_kernel = np.asarray(new.params["temporal"]["conv1"]["kernel"])
  want = np.repeat(conv1.mean(axis=1, keepdims=True), 4, axis=1).transpose(2, 3, 1, 0)
  np.testing.assert_allclose(flow_kernel, want, rtol=1e-5, atol=1e-7)
  # 7 ImageNet-style classes vs 3 here: each stream's fc stays fresh; the
  # ConvLSTM head is untouched.
  np.testing.assert_array_equal(
    new.params["spatial"]["fc"]["kernel"], state.params["spatial"]["fc"]["kernel"]
  )
  for a, b in zip(
    jax.tree.leaves(new.params["convlstm"]), jax.tree.leaves(state.params["convlstm"])
  ):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
