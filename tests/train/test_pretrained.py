"""config.init_from: PyTorch files go through the models' converter, stream by stream."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fake_run
from jaxact.train import mesh as mesh_lib
from jaxact.train import optim
from jaxact.train import pretrained
from jaxact.train import state as state_lib


def _state():
  model = fake_run.TinyTwoStream(3)
  spec = {k: jax.ShapeDtypeStruct(v.shape, v.dtype)
          for k, v in fake_run.make_arrays(4).items() if k != "label"}
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
  np.testing.assert_array_equal(new.params["classifier"]["kernel"],
                                state.params["classifier"]["kernel"])
  assert new.params["spatial"]["conv"]["kernel"].sharding.is_fully_replicated


def test_init_from_errors_name_the_path(tmp_path):
  model, tx, mesh, state, config = _state()
  config.init_from.path = str(tmp_path / "missing")
  with pytest.raises(pretrained.InitFromError, match="does not exist"):
    pretrained.init_state_from(state, tx, config.init_from, mesh, model)
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
