"""Every experiment config loads, documents itself and validates; bad configs fail clearly."""

import importlib.util
import os
import re
import time

import pytest

from jaxact import config as config_lib
from jaxact import configs, keyvalue
from jaxact.data.datasets import DatasetNotBuiltError, kinetics400

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {
  "demo.py": ["", "smoke", "lstm", "smoke,lstm"],
  "kinetics.py": ["", "smoke"],
  "ucf101_paper_a.py": ["split=1", "split=2", "split=3", "smoke"],
  "hmdb51_paper_a.py": ["split=3", "smoke"],
  "ucf101_paper_b.py": ["split=1,stage=1", "split=2,stage=2", "smoke", "smoke,stage=2"],
  "hmdb51_paper_b.py": ["split=3,stage=1", "stage=2", "smoke"],
}
PAPER_CONFIGS = sorted(set(CONFIGS) - {"demo.py"})


def load(name: str, arg: str = ""):
  """``configs/NAME`` of the checkout, as ``--config configs/NAME:ARG`` loads it."""
  spec = importlib.util.spec_from_file_location(name[:-3], os.path.join(ROOT, "configs", name))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module, module.get_config(arg or None)


def test_every_config_is_tested():
  files = {f for f in os.listdir(os.path.join(ROOT, "configs")) if f.endswith(".py")}
  assert files - {"__init__.py", "common.py"} == set(CONFIGS)


def test_configs_are_the_installed_package():
  """``jaxact.configs`` is this checkout's configs/ (editable) or a copy of it."""
  for name in [*CONFIGS, "common.py"]:
    with (
      open(os.path.join(ROOT, "configs", name)) as f,
      open(os.path.join(os.path.dirname(configs.__file__), name)) as g,
    ):
      assert f.read() == g.read(), name


@pytest.mark.parametrize("name,arg", [(n, a) for n, args in CONFIGS.items() for a in args])
def test_config_validates(name, arg):
  _, config = load(name, arg)
  config_lib.validate(config, device_count=4)
  config_lib.validate(config, device_count=4, process_count=2, mode="eval")


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_docstring_gives_command_hardware_time_result(name):
  module, _ = load(name)
  doc = module.__doc__.lower()
  for word in ("python -m jaxact.main", "hardware", "time", "expected result", "smoke"):
    assert word in doc, (name, word)


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_paper_docstrings_claim_no_unmeasured_numbers(name):
  """Times are not measured yet; results are the paper's; the settings cite docs/reference.md."""
  module, _ = load(name)
  doc = module.__doc__
  assert "not measured yet" in doc
  assert not re.search(r"~\s*\d", doc), "an estimate: measure it or say 'not measured yet'"
  assert "REFERENCE.md" not in doc and "docs/reference.md" in doc
  assert "reported by paper" in doc


def test_paper_settings():
  _, a = load("ucf101_paper_a.py", "split=2")
  # One build ('all') serves the three official splits.
  assert (a.data.builder_config, a.data.train_split, a.data.eval_split) == (
    "all",
    "train2",
    "test2",
  )
  assert a.batch_size == 64
  assert a.optimizer.name == "sgd" and a.optimizer.momentum == 0.9
  assert a.optimizer.learning_rate == 1e-3 and tuple(a.optimizer.decay_steps) == (450,)
  assert a.num_train_steps == 500 and a.data.flow_length == 10
  assert a.model.overrides.backbone == "cotnet101" and a.model.overrides.fusion == "concat"
  assert (a.data.sampling, a.data.num_steps, a.data.eval_crops) == ("segments", 3, 3)
  assert a.loss.head_weight == 1 and a.checkpoint.best_metric == "top1_head"
  _, b1 = load("hmdb51_paper_b.py", "stage=1")
  assert b1.loss.head_weight == 0 and b1.loss.spatial_weight > 0 and b1.loss.temporal_weight > 0
  assert b1.optimizer.learning_rate == 5e-6 and b1.optimizer.weight_decay == 1e-4
  assert b1.optimizer.lr_multipliers.temporal > 1
  assert dict(b1.eval.fusion_weights) == {"head": 0.0, "spatial": 1.0, "temporal": 1.5}
  _, b2 = load("hmdb51_paper_b.py", "stage=2")
  assert tuple(b2.optimizer.frozen) == ("spatial", "temporal")
  assert b2.model.overrides.freeze_backbones and b2.optimizer.name == "adam"
  assert b2.optimizer.learning_rate == 5e-5 and b2.data.num_steps == 25
  assert b2.model.overrides.fusion == "sum" and b2.model.overrides.fusion_layer == "conv5"
  assert b2.loss.head_weight == 1 and b2.checkpoint.best_metric == "top1_head"
  assert b2.init_from.kind == "orbax"
  # Kinetics-400's test CSV has no labels; the builder's splits are train/validation.
  _, k = load("kinetics.py")
  assert k.data.eval_split == "validation" and k.data.eval_split in kinetics400.SPLITS
  assert k.data.train_split in kinetics400.SPLITS


def test_smoke_shrinks_paper_configs():
  for name, arg in (("ucf101_paper_a.py", "smoke"), ("ucf101_paper_b.py", "smoke,stage=2")):
    _, c = load(name, arg)
    assert c.model.name.endswith("_tiny") and c.num_train_steps == 2 and c.batch_size == 4
    assert c.compute_dtype == "float32" and c.init_from.path == ""
    assert set(c.model.overrides) <= {"fusion", "freeze_backbones"}


def test_schema_names():
  """One word per concept: the head is the network's fused classifier."""
  base = config_lib.get_base_config()
  assert set(base.loss) == {"head_weight", "spatial_weight", "temporal_weight", "label_smoothing"}
  assert base.checkpoint.best_metric == "top1_head"
  assert set(base.eval.fusion_weights) == {"head", "spatial", "temporal"}


@pytest.mark.parametrize(
  "name,arg,error,message",
  [
    ("ucf101_paper_b.py", "split=4", config_lib.ConfigError, "split=4"),
    ("ucf101_paper_b.py", "stage=3", config_lib.ConfigError, "stage=3"),
    ("ucf101_paper_a.py", "splt=2", keyvalue.KeyValueError, "splt"),
    ("kinetics.py", "split=1", keyvalue.KeyValueError, "Unknown config argument 'split'"),
    ("hmdb51_paper_a.py", "split=two", keyvalue.KeyValueError, "not a int"),
    ("demo.py", "smoke=maybe", keyvalue.KeyValueError, "not a bool"),
  ],
)
def test_bad_config_arguments(name, arg, error, message):
  with pytest.raises(error, match=message):
    load(name, arg)


def _set(path, value):
  def change(c):
    *parents, leaf = path.split(".")
    for p in parents:
      c = c[p]
    c[leaf] = value

  return change


@pytest.mark.parametrize(
  "change,message",
  [
    (_set("batch_size", 6), "not divisible by the 4 devices"),
    (lambda c: setattr(c, "batchsize", 8), "Unknown config key"),
    (_set("model.name", "resnet_9000"), "not a registered model"),
    (_set("model.overrides.convlstm_featurs", 8), "convlstm_featurs.*convlstm_features"),
    (_set("compute_dtype", "float16"), "config.compute_dtype='float16'.*'bfloat16'"),
    (_set("eval.checkpoint", "last"), "eval.checkpoint"),
    (_set("optimizer.name", "lamb"), "config.optimizer.name='lamb'.*'adamw'"),
    (_set("optimizer.schedule", "linear"), "config.optimizer.schedule='linear'.*'cosine'"),
    (_set("optimizer.learning_rate", 0.0), "learning_rate"),
    (_set("data.manual_dir", "/no/such/dir"), "manual_dir"),
    (_set("data.name", "ucf-101"), "config.data.name='ucf-101'.*'ucf101'"),
    (_set("data.augment", "paper_c"), "config.data.augment='paper_c'.*'paper_a', 'paper_b'"),
    (_set("data.sampling", "random"), "config.data.sampling='random'.*'segments', 'uniform'"),
    (_set("data.eval_crops", 5), r"config.data.eval_crops=5.*1, 3, 10"),
    (_set("data.num_steps", 0), "config.data.num_steps=0 must be a positive integer"),
    (_set("data.flow_length", 0), "config.data.flow_length=0"),
    (_set("data.image_size", -1), "config.data.image_size=-1"),
    (_set("data.flip_prob", 1.5), "config.data.flip_prob"),
    (_set("init_from.path", "/no/such/weights.pth"), "init_from.path"),
    (_set("init_from.kind", "pytorch"), "config.init_from.kind='pytorch'.*'torch'"),
    (_set("init_from.layout", "tv"), "config.init_from.layout='tv'.*'torchvision'"),
    (_set("init_from.step", "best"), "config.init_from.step='best'"),
    (_set("grad_accum_steps", 3), "grad_accum_steps"),
    (_set("eval.validate_at_checkpoints", False), "validate_at_checkpoints"),
    (_set("checkpoint.best_mode", "maximum"), "config.checkpoint.best_mode='maximum'.*'min'"),
    (_set("eval.fusion_weights.head", 0.0), "fusion_weights.*every weight is 0.*fusion_weights"),
    (_set("eval.fusion_weights.spatial", -1.0), "fusion_weights.*>= 0"),
    (
      lambda c: setattr(c.eval.fusion_weights, "rgb", 1.0),
      r"Unknown config key.*eval.fusion_weights.rgb",
    ),
    (
      lambda c: c.loss.update(head_weight=0.0, spatial_weight=0.0, temporal_weight=0.0),
      "every loss weight is 0.*head_weight=1",
    ),
    (_set("loss.label_smoothing", 1.0), "label_smoothing"),
  ],
)
def test_validation_messages(change, message):
  _, config = load("demo.py", "smoke")
  change(config)
  with pytest.raises(config_lib.ConfigError, match=message):
    config_lib.validate(config, device_count=4)


def test_batch_divisible_by_processes():
  _, config = load("demo.py", "smoke")
  config.batch_size = config.eval.batch_size = 6
  with pytest.raises(config_lib.ConfigError, match="not divisible by the 4 processes"):
    config_lib.validate(config, device_count=2, process_count=4)


def test_unknown_mode():
  _, config = load("demo.py", "smoke")
  with pytest.raises(config_lib.ConfigError, match="--mode='test'"):
    config_lib.validate(config, device_count=1, mode="test")


def test_typo_fails_before_the_dataset_is_built(tmp_path):
  """``build_dataset=True`` and no dataset yet: ``validate`` reads nothing and fails fast."""
  _, config = load("demo.py", "smoke")
  assert config.build_dataset
  config.data.data_dir = str(tmp_path / "tfds")
  config.data.augment = "paper-a"
  start = time.monotonic()
  with pytest.raises(config_lib.ConfigError, match="config.data.augment='paper-a'"):
    config_lib.validate(config, device_count=4)
  assert time.monotonic() - start < 5
  assert not (tmp_path / "tfds").exists()


def test_validate_reads_no_dataset_validate_dataset_does(tmp_path):
  _, config = load("ucf101_paper_a.py", "smoke")
  config.data.data_dir = str(tmp_path)
  config_lib.validate(config, device_count=4)  # not built: not validate's business
  with pytest.raises(DatasetNotBuiltError, match="python -m jaxact.data.build ucf101"):
    config_lib.validate_dataset(config)
  with pytest.raises(DatasetNotBuiltError, match="python -m jaxact.data.build ucf101"):
    config_lib.validate_dataset(config, mode="eval")
