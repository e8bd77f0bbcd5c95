"""Every experiment config loads, documents itself and validates; bad configs fail clearly."""

import importlib.util
import os

import pytest

from jaxact import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {
  "demo.py": ["", "smoke", "lstm", "smoke,lstm"],
  "kinetics.py": ["", "smoke"],
  "ucf101_paper_a.py": ["split=1", "split=2", "split=3", "smoke"],
  "hmdb51_paper_a.py": ["split=3", "smoke"],
  "ucf101_paper_b.py": ["split=1,stage=1", "split=2,stage=2", "smoke", "smoke,stage=2"],
  "hmdb51_paper_b.py": ["split=3,stage=1", "stage=2", "smoke"],
}


def load(name: str, arg: str = ""):
  spec = importlib.util.spec_from_file_location(name[:-3], os.path.join(ROOT, "configs", name))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module, module.get_config(arg or None)


@pytest.mark.parametrize("name,arg", [(n, a) for n, args in CONFIGS.items() for a in args])
def test_config_validates(name, arg):
  _, config = load(name, arg)
  config_lib.validate(config, device_count=4, check_dataset=False)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_docstring_gives_command_hardware_time_result(name):
  module, _ = load(name)
  doc = module.__doc__.lower()
  for word in ("python -m jaxact.main", "hardware", "time", "expected result", "smoke"):
    assert word in doc, (name, word)


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
  _, b1 = load("hmdb51_paper_b.py", "stage=1")
  assert b1.loss.fused_weight == 0 and b1.loss.spatial_weight > 0 and b1.loss.temporal_weight > 0
  assert b1.optimizer.learning_rate == 5e-6 and b1.optimizer.weight_decay == 1e-4
  assert b1.optimizer.lr_multipliers.temporal > 1
  _, b2 = load("hmdb51_paper_b.py", "stage=2")
  assert tuple(b2.optimizer.frozen) == ("spatial", "temporal")
  assert b2.model.overrides.freeze_backbones and b2.optimizer.name == "adam"
  assert b2.optimizer.learning_rate == 5e-5 and b2.data.num_steps == 25
  assert b2.model.overrides.fusion == "sum" and b2.model.overrides.fusion_layer == "conv5"
  # Kinetics-400's test CSV has no labels; the builder's splits are train/validation.
  from jaxact.data.datasets import kinetics400

  _, k = load("kinetics.py")
  assert k.data.eval_split == "validation" and k.data.eval_split in kinetics400.SPLITS
  assert k.data.train_split in kinetics400.SPLITS


def test_bad_config_arguments():
  with pytest.raises(config_lib.ConfigError, match="split=4"):
    load("ucf101_paper_b.py", "split=4")
  with pytest.raises(config_lib.ConfigError, match="splt"):
    load("ucf101_paper_a.py", "splt=2")


@pytest.mark.parametrize(
  "change,message",
  [
    (lambda c: setattr(c, "batch_size", 6), "not divisible by the 4 devices"),
    (lambda c: setattr(c, "batchsize", 8), "Unknown config key"),
    (lambda c: setattr(c.model, "name", "resnet_9000"), "not a registered model"),
    (lambda c: setattr(c.eval, "checkpoint", "last"), "eval.checkpoint"),
    (lambda c: setattr(c.optimizer, "name", "lamb"), "optimizer.name"),
    (lambda c: setattr(c.data, "manual_dir", "/no/such/dir"), "manual_dir"),
    (lambda c: setattr(c.init_from, "path", "/no/such/weights.pth"), "init_from.path"),
    (lambda c: setattr(c, "grad_accum_steps", 3), "grad_accum_steps"),
    (lambda c: setattr(c.eval, "validate_at_checkpoints", False), "validate_at_checkpoints"),
  ],
)
def test_validation_messages(change, message):
  _, config = load("demo.py", "smoke")
  change(config)
  with pytest.raises(config_lib.ConfigError, match=message):
    config_lib.validate(config, device_count=4, check_dataset=False)


def test_missing_dataset_names_build_command(tmp_path):
  from jaxact.data.datasets import DatasetNotBuiltError

  _, config = load("ucf101_paper_a.py", "smoke")
  config.data.data_dir = str(tmp_path)
  with pytest.raises(DatasetNotBuiltError, match="python -m jaxact.data.build ucf101"):
    config_lib.validate(config, device_count=4)
