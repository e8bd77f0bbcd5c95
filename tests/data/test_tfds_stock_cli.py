"""The stock ``tfds build`` (needs TensorFlow) and ``jaxact-tfds build`` (no TF).

tensorflow-datasets 4.9.x's ``tfds`` script imports TensorFlow, apache-beam
and mlcroissant at start-up (for commands other than ``build``), so the stock
script is only tested where they are installed; CI has no TensorFlow and skips
it. ``jaxact-tfds`` (``jaxact.data.tfds_cli``) runs the same ``build`` command
without them; its full build is tested in test_builders.py.
"""

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import tomllib

import pytest

from jaxact.data import build, datasets, tfds_cli

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _missing_for_stock_tfds():
  """Why the stock ``tfds`` script cannot start here ('' if it can)."""
  for module, why in (
    (
      "tensorflow",
      "TensorFlow is not installed: tensorflow-datasets 4.9.x's "
      "`tfds` script imports it at start-up (scripts/cli/"
      "convert_format_utils.py evaluates tf.train.Example); `jaxact-tfds "
      "build` is the TF-free equivalent",
    ),
    (
      "apache_beam",
      "apache-beam is not installed: the stock `tfds` script "
      "imports it at start-up (convert_format_utils.py subclasses "
      "beam.DoFn); pip install -e '.[beam]'",
    ),
    (
      "mlcroissant",
      "mlcroissant is not installed: the stock `tfds` script "
      "imports it at start-up (scripts/cli/croissant.py)",
    ),
  ):
    if importlib.util.find_spec(module) is None:
      return why
  return ""


def _stock_tfds() -> list[str]:
  """The ``tfds`` console script of this interpreter, else its module."""
  exe = os.path.join(os.path.dirname(sys.executable), "tfds")
  if os.path.exists(exe):
    return [exe]
  return [sys.executable, "-m", "tensorflow_datasets.scripts.cli.main"]


def _ids_and_labels(name, split, data_dir, config):
  src = datasets.data_source(name, split, data_dir, config)
  return sorted((src[i]["video_id"].decode(), int(src[i]["label"])) for i in range(len(src)))


@pytest.mark.skipif(bool(_missing_for_stock_tfds()), reason=_missing_for_stock_tfds() or "n/a")
def test_stock_tfds_build_ucf101(ucf_download, tmp_path, fake_flow):
  """``tfds build jaxact_ucf101`` (the stock script) builds the official-layout
  fixture; splits, labels and video ids equal jaxact's own build."""
  config = {
    "name": "all_fast",
    "split": None,  # all three official splits
    "short_side": 24,
    "flow_preset": "fast",
    "flow_batch": 4,
  }
  data = tmp_path / "stock"
  cmd = _stock_tfds() + [
    "build",
    "jaxact_ucf101",
    "--imports",
    "jaxact.data.datasets.registered",
    "--manual_dir",
    str(ucf_download),
    "--data_dir",
    str(data),
    "--file_format",
    "array_record",
    "--config",
    json.dumps(config),
  ]
  proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-4000:]

  ref = build.ensure_built(
    "ucf101", tmp_path / "ref", ucf_download, config="all", flow_fn=fake_flow, short_side=24
  )
  info = datasets.load_info("ucf101", data, "all_fast")
  assert info.class_names == ("ApplyEyeMakeup", "HandstandPushups", "YoYo")
  assert info.split_sizes == ref.split_sizes
  for n in (1, 2, 3):
    assert info.split_sizes[f"train{n}"] == 6
    assert info.split_sizes[f"test{n}"] == 3
  assert info.skipped == ()
  for split in ref.split_sizes:
    got = _ids_and_labels("ucf101", split, data, "all_fast")
    assert got == _ids_and_labels("ucf101", split, tmp_path / "ref", ref.config), split
  test1 = dict(_ids_and_labels("ucf101", "test1", data, "all_fast"))
  assert test1 == {
    "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi": 0,
    "HandStandPushups/v_HandStandPushups_g01_c01.avi": 1,
    "YoYo/v_YoYo_g01_c01.avi": 2,
  }


def test_jaxact_tfds_console_script_has_tfds_build_flags(capsys, monkeypatch):
  """``jaxact-tfds`` is declared, points at ``tfds_cli.run``, and takes
  ``tfds build``'s flags."""
  with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
    scripts = tomllib.load(f)["project"]["scripts"]
  assert scripts["jaxact-tfds"] == "jaxact.data.tfds_cli:run"
  eps = [
    ep
    for ep in importlib.metadata.entry_points(group="console_scripts")
    if ep.name == "jaxact-tfds"
  ]
  if eps:  # installed from this pyproject (CI's pip install -e)
    assert eps[0].value == "jaxact.data.tfds_cli:run"
    assert eps[0].load() is tfds_cli.run

  monkeypatch.setattr(sys, "argv", ["jaxact-tfds", "build", "--help"])
  with pytest.raises(SystemExit) as exit_info:
    tfds_cli.run()
  assert exit_info.value.code == 0
  out = capsys.readouterr().out
  assert out.startswith("usage: jaxact-tfds")
  for flag in (
    "--imports",
    "--manual_dir",
    "--data_dir",
    "--file_format",
    "--config",
    "--overwrite",
  ):
    assert flag in out
  monkeypatch.setattr(sys, "argv", ["jaxact-tfds", "--help"])
  tfds_cli.run()
  assert "jaxact-tfds build" in capsys.readouterr().out
  monkeypatch.setattr(sys, "argv", ["jaxact-tfds", "convert_format"])
  with pytest.raises(SystemExit, match="usage: jaxact-tfds build"):
    tfds_cli.run()

  exe = os.path.join(os.path.dirname(sys.executable), "jaxact-tfds")
  if os.path.exists(exe):  # the installed script runs without TensorFlow
    proc = subprocess.run(
      [exe, "build", "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--imports" in proc.stdout
