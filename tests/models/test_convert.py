"""PyTorch weight import: parity with transformers ResNet and the CoTNet reference."""

import logging

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax_testing import random_variables

from jaxact.models import convert, resnet

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
import torch_cotnet  # noqa: E402  (needs torch)


def _hf_resnet(depths, hidden_sizes, embedding_size, num_labels=None, seed=0):
  """Random-weight transformers ResNet (no download), BN statistics randomised."""
  torch.manual_seed(seed)
  config = transformers.ResNetConfig(
    num_channels=3,
    embedding_size=embedding_size,
    hidden_sizes=list(hidden_sizes),
    depths=list(depths),
    layer_type="bottleneck",
    hidden_act="relu",
    downsample_in_first_stage=False,
    num_labels=num_labels or 2,
  )
  cls = transformers.ResNetForImageClassification if num_labels else transformers.ResNetModel
  model = cls(config)
  torch_cotnet.randomize_bn(model, torch.Generator().manual_seed(seed + 1))
  return model.eval()


def _hf_tiny(num_labels=10):
  return _hf_resnet((1, 1, 1, 1), (64, 128, 256, 512), 16, num_labels)


def _nhwc(x):
  return jnp.asarray(x.permute(0, 2, 3, 1).numpy())


def _jit_apply(model):
  return jax.jit(lambda v, x: model.apply(v, x, train=False))


def _assert_close(actual, expected, rtol=1e-4):
  expected = np.asarray(expected)
  np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


def test_resnet101_matches_transformers():
  ref = _hf_resnet((3, 4, 23, 3), (256, 512, 1024, 2048), 64, num_labels=10)
  x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
  with torch.no_grad():
    expected = ref(pixel_values=x).logits.numpy()
  model = resnet.BACKBONES["resnet101"](num_classes=10)
  variables = convert.from_torch(ref.state_dict(), model, layout="hf")
  logits, _ = _jit_apply(model)(variables, _nhwc(x))
  _assert_close(logits, expected)


def test_torchvision_layout_matches_reference():
  torch.manual_seed(0)
  ref = torch_cotnet.CoTNet(layers=(1, 2, 1, 1), width=16, num_classes=6, mixer="conv")
  torch_cotnet.randomize_bn(ref, torch.Generator().manual_seed(4))
  ref.eval()
  x = torch.randn(2, 3, 48, 48, generator=torch.Generator().manual_seed(5))
  with torch.no_grad():
    expected = ref(x).numpy()
  model = resnet.ResNet(num_classes=6, stage_sizes=(1, 2, 1, 1), width=16)
  variables = convert.from_torch(ref.state_dict(), model, layout="torchvision")
  logits, _ = _jit_apply(model)(variables, _nhwc(x))
  _assert_close(logits, expected)


def test_other_num_classes_keeps_fresh_classifier(caplog):
  ref = _hf_tiny(num_labels=10)
  x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(6))
  with torch.no_grad():
    pooled = ref.resnet(pixel_values=x).pooler_output.flatten(1).numpy()
  model = resnet.BACKBONES["resnet_tiny"](num_classes=5)
  with caplog.at_level(logging.WARNING, logger="jaxact.models.convert"):
    variables = convert.from_torch(ref.state_dict(), model, layout="hf")
  assert "classifier left freshly initialised" in caplog.text
  assert variables["params"]["fc"]["kernel"].shape == (512, 5)
  assert float(jnp.std(variables["params"]["fc"]["kernel"])) > 0
  _, feats = _jit_apply(model)(variables, _nhwc(x))
  _assert_close(feats["pooled"], pooled)


def test_hf_base_model_without_classifier():
  ref = _hf_tiny(num_labels=None)  # ResNetModel: no 'resnet.' prefix, no classifier
  x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(7))
  with torch.no_grad():
    pooled = ref(pixel_values=x).pooler_output.flatten(1).numpy()
  model = resnet.BACKBONES["resnet_tiny"](num_classes=None)
  variables = convert.from_torch(ref.state_dict(), model, layout="hf")
  _, feats = _jit_apply(model)(variables, _nhwc(x))
  _assert_close(feats["pooled"], pooled)


def test_cross_modality_conv1_for_flow_input(caplog):
  """2L-channel conv1 = RGB mean replicated: equals the RGB net fed Σ flow / 3."""
  ref = _hf_tiny(num_labels=10)
  flow = torch.randn(2, 20, 32, 32, generator=torch.Generator().manual_seed(8))
  rgb_equivalent = flow.sum(1, keepdim=True).repeat(1, 3, 1, 1) / 3
  with torch.no_grad():
    expected = ref(pixel_values=rgb_equivalent).logits.numpy()
  model = resnet.BACKBONES["resnet_tiny"](num_classes=10)
  with caplog.at_level(logging.WARNING, logger="jaxact.models.convert"):
    variables = convert.from_torch(ref.state_dict(), model, layout="hf", input_channels=20)
  assert "cross-modality" in caplog.text
  kernel = np.asarray(variables["params"]["conv1"]["kernel"])
  assert kernel.shape == (7, 7, 20, 16)
  np.testing.assert_allclose(kernel[:, :, 0], kernel[:, :, 19])
  logits, _ = _jit_apply(model)(variables, _nhwc(flow))
  _assert_close(logits, expected)


def test_mismatches_are_reported_together():
  sd = {k: v.clone() for k, v in _hf_tiny().state_dict().items()}
  del sd["resnet.encoder.stages.1.layers.0.layer.1.convolution.weight"]
  sd["resnet.encoder.stages.9.extra.weight"] = torch.zeros(3)
  sd["resnet.embedder.embedder.normalization.weight"] = torch.ones(17)
  model = resnet.BACKBONES["resnet_tiny"](num_classes=10)
  with pytest.raises(convert.WeightImportError) as info:
    convert.from_torch(sd, model, layout="hf")
  msg = str(info.value)
  assert "missing from checkpoint (1)" in msg
  assert "resnet.encoder.stages.1.layers.0.layer.1.convolution.weight" in msg
  assert "unexpected in checkpoint (1)" in msg and "stages.9.extra.weight" in msg
  assert "shape mismatch (1)" in msg and "embedder.normalization.weight" in msg
  # Non-strict: logged, the rest loaded, the model's own values kept.
  base = random_variables(model, jnp.zeros((1, 32, 32, 3)))
  variables = convert.from_torch(sd, model, layout="hf", strict=False, variables=base)
  np.testing.assert_allclose(variables["params"]["fc"]["bias"], sd["classifier.1.bias"].numpy())
  np.testing.assert_array_equal(
    variables["params"]["layer2_0"]["conv2"]["kernel"],
    base["params"]["layer2_0"]["conv2"]["kernel"],
  )


def test_wrong_layout_is_a_clear_error():
  sd = _hf_tiny().state_dict()
  model = resnet.BACKBONES["resnet_tiny"](num_classes=10)
  with pytest.raises(convert.WeightImportError, match="missing from checkpoint") as info:
    convert.from_torch(sd, model, layout="torchvision")
  msg = str(info.value)
  assert "Nothing matched" in msg and "resnet.embedder" in msg and "... and " in msg
  assert len(msg.splitlines()) < 60
  with pytest.raises(ValueError, match="Unknown layout"):
    convert.from_torch(sd, model, layout="keras")


class _ToyTwoStream(nn.Module):
  """Two resnet_tiny backbones named like the two-stream networks'."""

  @nn.compact
  def __call__(self, x, train=False):
    _, fs = resnet.ResNetTiny(num_classes=None, name="spatial")(x["rgb"], train)
    _, ft = resnet.ResNetTiny(num_classes=None, name="temporal")(x["flow"], train)
    return nn.Dense(3, name="classifier")(jnp.concatenate([fs["pooled"], ft["pooled"]], -1))


def test_fill_one_stream_of_two_stream_variables(caplog):
  ref = _hf_tiny(num_labels=10)
  model = _ToyTwoStream()
  x = {"rgb": jnp.zeros((1, 32, 32, 3)), "flow": jnp.zeros((1, 32, 32, 20))}
  variables = random_variables(model, x)
  with caplog.at_level(logging.WARNING, logger="jaxact.models.convert"):
    filled = convert.from_torch(
      ref.state_dict(), model, layout="hf", stream="temporal", variables=variables
    )
  assert "cross-modality" in caplog.text and "no classifier" in caplog.text
  rgb_kernel = ref.state_dict()["resnet.embedder.embedder.convolution.weight"].numpy()
  np.testing.assert_allclose(
    filled["params"]["temporal"]["conv1"]["kernel"][:, :, 5],
    rgb_kernel.mean(1).transpose(1, 2, 0),
    rtol=1e-6,
  )
  np.testing.assert_allclose(
    filled["batch_stats"]["temporal"]["bn1"]["var"],
    ref.state_dict()["resnet.embedder.embedder.normalization.running_var"],
  )
  for col in ("params", "batch_stats"):  # the spatial stream and the head are untouched
    jax.tree.map(np.testing.assert_array_equal, filled[col]["spatial"], variables[col]["spatial"])
  np.testing.assert_array_equal(
    filled["params"]["classifier"]["kernel"], variables["params"]["classifier"]["kernel"]
  )
  with pytest.raises(ValueError, match="variables"):
    convert.from_torch(ref.state_dict(), model, layout="hf", stream="temporal")
  with pytest.raises(ValueError, match="stream='spatial'"):
    convert.from_torch(ref.state_dict(), model, layout="hf", variables=variables)
  with pytest.raises(ValueError, match="variables=model.init"):
    convert.from_torch(ref.state_dict(), model, layout="hf")


def test_fill_registered_two_stream_network():
  """The contract with jaxact.models.two_stream: streams named spatial/temporal."""
  from jaxact import models

  name = next(n for n in models.names() if n.startswith("two_stream") and n.endswith("_tiny"))
  model = models.create(name, num_classes=4)
  x = {"rgb": jnp.zeros((1, 2, 32, 32, 3)), "flow": jnp.zeros((1, 2, 32, 32, 4))}
  rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
  shapes = jax.eval_shape(lambda: model.init(rngs, x, train=False))
  variables = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
  sd = _hf_tiny().state_dict()
  for stream in ("spatial", "temporal"):
    variables = convert.from_torch(sd, model, layout="hf", stream=stream, variables=variables)
  np.testing.assert_allclose(
    variables["params"]["spatial"]["layer4_0"]["conv3"]["kernel"],
    variables["params"]["temporal"]["layer4_0"]["conv3"]["kernel"],
  )
  assert float(np.abs(variables["params"]["spatial"]["bn1"]["scale"]).max()) > 0


def test_checkpoint_files(tmp_path):
  ref = _hf_tiny(num_labels=10)
  sd = ref.state_dict()
  pth = tmp_path / "ckpt.pth"
  torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}, pth)
  from safetensors.numpy import save_file

  st = tmp_path / "ckpt.safetensors"
  save_file({k: v.numpy() for k, v in sd.items()}, str(st))
  loaded = convert.load_state_dict(pth)
  assert set(loaded) == {k for k in sd if not k.endswith("num_batches_tracked")}
  model = resnet.BACKBONES["resnet_tiny"](num_classes=10)
  a = convert.from_torch(pth, model, layout="hf")
  b = convert.from_torch(st, model, layout="hf")
  jax.tree.map(np.testing.assert_array_equal, a, b)
  with pytest.raises(FileNotFoundError, match="nope.pth"):
    convert.load_state_dict(tmp_path / "nope.pth")
  bad = tmp_path / "bad.pth"
  bad.write_bytes(b"not a checkpoint")
  with pytest.raises(convert.WeightImportError, match="bad.pth"):
    convert.load_state_dict(bad)
