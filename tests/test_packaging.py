"""``pip install .`` ships everything a run needs: the packaged demo runs from any folder."""

import json
import os
import shutil
import subprocess
import sys
import tomllib

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def test_pyproject_lists_every_package():
  """The package list is explicit (to map configs/ to jaxact.configs): a new one must be added."""
  with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    setuptools_cfg = tomllib.load(f)["tool"]["setuptools"]
  on_disk = {"jaxact.configs"}
  for folder, dirs, files in os.walk(os.path.join(ROOT, "jaxact")):
    dirs[:] = [d for d in dirs if d != "__pycache__"]
    if "__init__.py" in files:
      on_disk.add(os.path.relpath(folder, ROOT).replace(os.sep, "."))
  assert set(setuptools_cfg["packages"]) == on_disk
  assert setuptools_cfg["package-dir"] == {"jaxact.configs": "configs"}


def _install(tmp_path) -> str:
  """Install a copy of the checkout, non-editable, into a fresh venv; return its python.

  The venv sees the system's site-packages (jax, ... and pip and setuptools:
  ``--without-pip`` so that ensurepip's old setuptools does not shadow them),
  and the install is offline: ``--no-deps --no-build-isolation``. Building
  from a copy keeps build/ and *.egg-info out of the checkout.
  """
  src = tmp_path / "src"
  ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
  for name in ("jaxact", "configs"):
    shutil.copytree(os.path.join(ROOT, name), src / name, ignore=ignore)
  for name in ("pyproject.toml", "README.md"):
    shutil.copy(os.path.join(ROOT, name), src / name)
  venv = tmp_path / "venv"
  subprocess.run(
    [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
    check=True,
  )
  python = str(venv / "bin" / "python")
  subprocess.run(
    [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(src)],
    check=True,
    cwd=tmp_path,
    env=_env(),
    timeout=600,
  )
  shutil.rmtree(src)  # the run below must not find the sources
  return python


def _env() -> dict[str, str]:
  env = dict(
    os.environ,
    JAX_PLATFORMS="cpu",
    XLA_FLAGS=f"--xla_force_host_platform_device_count=4 {FAST_COMPILE}",
  )
  env.pop("PYTHONPATH", None)  # the checkout must not be importable
  return env


def test_installed_demo_runs_from_any_folder(tmp_path):
  """Non-editable install; from an empty folder ``--config demo:smoke`` builds the
  synthetic_motion dataset, trains and evaluates.

  Also the default suite's one end-to-end run through the real data pipeline
  and registry model (about 2 min on the 2-core dev box: install, dataset
  build, first compiles).
  """
  python = _install(tmp_path)
  venv = os.path.dirname(os.path.dirname(python))
  cwd = tmp_path / "elsewhere"
  cwd.mkdir()
  where = subprocess.run(
    [
      python,
      "-c",
      "import jaxact, jaxact.configs; print(jaxact.__file__, jaxact.configs.__file__)",
    ],
    cwd=cwd,
    env=_env(),
    capture_output=True,
    text=True,
    check=True,
  ).stdout.split()
  assert all(path.startswith(venv) for path in where), where
  assert all(not path.startswith(ROOT) for path in where), where

  # The default --config is the installed demo.
  usage = subprocess.run(
    [python, "-m", "jaxact.main", "--helpfull"], cwd=cwd, env=_env(), capture_output=True, text=True
  )
  assert os.path.join(venv, "lib") in usage.stdout and "configs/demo.py" in usage.stdout

  proc = subprocess.run(
    [
      python,
      "-m",
      "jaxact.main",
      "--config=demo:smoke",
      "--workdir=run",
      f"--config.data.data_dir={tmp_path / 'tfds'}",
    ],
    cwd=cwd,
    env=_env(),
    capture_output=True,
    text=True,
    timeout=1200,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads((cwd / "run" / "eval_results.json").read_text())
  assert results["step"] == 4 and results["num_examples"] == 72
  for stream in ("spatial", "temporal", "fused"):
    assert {"top1", "top5", "mean_class", "per_class", "confusion"} <= set(results[stream])
  rows = [json.loads(line) for line in open(cwd / "run" / "metrics.jsonl")]
  assert [r["step"] for r in rows] == [1, 2, 3, 4]
  # The demo's ending (eval.explain_examples=1): a short table, then the paths of the
  # confusion matrix and of a Grad-CAM grid of one test clip.
  out = proc.stdout.splitlines()
  for stream in ("spatial", "temporal", "fused"):
    for metric in ("top-1", "top-5"):
      row = [line for line in out if line.startswith(f"{stream} {metric} ")]
      assert len(row) == 1, proc.stdout
      assert f"{100 * results[stream][metric.replace('-', '')]:.2f}" in row[0]
  paths = dict(line.split(": ", 1) for line in out if ": " in line)
  confusion = paths["confusion matrix"]
  assert confusion == str(cwd / "run" / "confusion_matrix.png") and os.path.isfile(confusion)
  grid = paths["Grad-CAM of a test clip"]
  assert os.path.dirname(grid) == str(cwd / "run" / "cam") and grid.endswith("_w0.png")
  with Image.open(grid) as img:
    assert img.format == "PNG" and img.width > 200
