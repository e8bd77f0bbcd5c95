"""``python -m jaxact.main`` as users run it: clear one-line errors, the demo end to end."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from jaxact import configs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Tiny test models: skip LLVM's expensive passes (as tests/conftest.py does).
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def _main(*args, devices=4, timeout=600, cwd=ROOT):
  env = dict(
    os.environ,
    JAX_PLATFORMS="cpu",
    XLA_FLAGS=f"--xla_force_host_platform_device_count={devices} {FAST_COMPILE}",
  )
  return subprocess.run(
    [sys.executable, "-m", "jaxact.main", *args],
    cwd=cwd,
    env=env,
    capture_output=True,
    text=True,
    timeout=timeout,
  )


def _assert_clear_error(proc, *needles):
  assert proc.returncode != 0
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  for needle in needles:
    assert needle in proc.stderr, proc.stderr[-3000:]


def test_batch_not_divisible_by_devices(tmp_path):
  proc = _main("--config=configs/demo.py:smoke", f"--workdir={tmp_path}", "--config.batch_size=6")
  _assert_clear_error(proc, "jaxact: error:", "not divisible by the 4 devices")
  assert not (tmp_path / "checkpoints").exists()


def test_unknown_override_key(tmp_path):
  proc = _main("--config=configs/demo.py:smoke", f"--workdir={tmp_path}", "--config.batchsize=8")
  _assert_clear_error(proc, "batchsize")


def test_missing_dataset_gives_build_command(tmp_path):
  proc = _main(
    "--config=configs/ucf101_paper_a.py:smoke",
    f"--workdir={tmp_path / 'run'}",
    f"--config.data.data_dir={tmp_path}",
  )
  _assert_clear_error(proc, "jaxact: error:", "python -m jaxact.data.build ucf101")


def test_eval_without_checkpoint(tmp_path):
  script = os.path.join(ROOT, "tests", "train", "fake_run.py")
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
  proc = subprocess.run(
    [sys.executable, script, f"--config={script}", f"--workdir={tmp_path}", "--mode=eval"],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )
  _assert_clear_error(proc, "jaxact: error:", "No checkpoint in", "--mode train")


@pytest.mark.slow
def test_demo_smoke_two_processes_match_one(tmp_path):
  """The real pipeline and registry model: 2 processes × 2 devices give the
  losses of 1 process × 4 devices (each process reads its slice of every
  global batch)."""
  data_dir = tmp_path / "tfds"
  single = _main(
    "--config=configs/demo.py:smoke",
    f"--workdir={tmp_path / 'one'}",
    f"--config.data.data_dir={data_dir}",
    timeout=1200,
  )
  assert single.returncode == 0, single.stderr[-3000:]
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=FAST_COMPILE)
  multi = subprocess.run(
    [
      sys.executable,
      os.path.join(ROOT, "launch", "local_multiprocess.py"),
      "--num_processes=2",
      "--devices_per_process=2",
      "--",
      "--config=configs/demo.py:smoke",
      f"--workdir={tmp_path / 'two'}",
      f"--config.data.data_dir={data_dir}",
    ],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=1200,
  )
  assert multi.returncode == 0, multi.stdout[-3000:]
  losses = lambda run: [json.loads(l)["loss"] for l in open(tmp_path / run / "metrics.jsonl")]
  assert len(losses("one")) == 4
  np.testing.assert_allclose(losses("two"), losses("one"), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
  "config,needle",
  [
    ("configs/demo.py:smok", "Unknown config argument 'smok'"),
    ("configs/no_such_config.py", "No such file"),
  ],
)
def test_bad_config_file(tmp_path, config, needle):
  _assert_clear_error(_main(f"--config={config}", f"--workdir={tmp_path}"), needle)


def test_packaged_config_by_name_from_another_folder(tmp_path):
  """``--config NAME:ARG`` loads the installed config (here with a bad ARG: fails in seconds)."""
  proc = _main("--config=demo:smok", f"--workdir={tmp_path}", cwd=tmp_path)
  _assert_clear_error(proc, "Unknown config argument 'smok'")


def test_resolve_config(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  packaged = os.path.dirname(configs.__file__)
  demo = os.path.join(packaged, "demo.py")
  assert configs.resolve("demo") == demo
  assert configs.resolve("demo.py:smoke,lstm") == f"{demo}:smoke,lstm"
  assert configs.resolve("ucf101_paper_b:split=2,stage=2") == (
    os.path.join(packaged, "ucf101_paper_b.py") + ":split=2,stage=2"
  )
  # An existing file is used as given; other values are left for ml_collections to report.
  (tmp_path / "demo.py").write_text("")
  assert configs.resolve("demo.py:smoke") == "demo.py:smoke"
  for value in ("common", "__init__", "no_such_config:smoke", "configs/kinetics.py", ""):
    assert configs.resolve(value) == value
  assert configs.names() == sorted(
    f[:-3]
    for f in os.listdir(os.path.join(ROOT, "configs"))
    if f.endswith(".py") and f[0] != "_" and f != "common.py"
  )


def test_nan_loss_is_one_line_and_keeps_checkpoints(tmp_path):
  script = os.path.join(ROOT, "tests", "train", "fake_run.py")
  config = f"{script}:optimizer.learning_rate=1e30;optimizer.momentum=0.0;checkpoint_every_steps=1"
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
  proc = subprocess.run(
    [sys.executable, script, f"--config={config}", f"--workdir={tmp_path}"],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )
  _assert_clear_error(proc, "jaxact: error: The loss became", "last good checkpoint")
  bad = int(proc.stderr.split("at step ")[1].split(".")[0])
  steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
  assert steps and steps[-1] == bad - 1


def test_unreachable_coordinator_is_one_line(tmp_path):
  import socket

  with socket.socket() as s:  # a port nobody listens on
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  proc = _main(
    "--config=configs/demo.py:smoke",
    f"--workdir={tmp_path}",
    f"--coordinator_address=127.0.0.1:{port}",
    "--num_processes=2",
    "--process_id=1",
    "--initialization_timeout=2",
  )
  _assert_clear_error(proc, "jaxact: error:", f"127.0.0.1:{port}", "did not answer")


def _fake_run(*args, env=None, **kwargs):
  script = os.path.join(ROOT, "tests", "train", "fake_run.py")
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", **(env or {}))
  return [sys.executable, script, f"--config={script}", *args], env


@pytest.mark.parametrize("where", ["file", "below_a_file"])
def test_workdir_that_is_a_file_is_one_line(tmp_path, where):
  path = tmp_path / "not_a_dir"
  path.write_text("x")
  workdir = path if where == "file" else path / "run"
  cmd, env = _fake_run(f"--workdir={workdir}")
  proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  needle = "is a file, not a directory" if where == "file" else "cannot create --workdir"
  _assert_clear_error(proc, "jaxact: error:", needle)
  assert len(proc.stderr.strip().splitlines()[-1]) < 300


def test_second_ctrl_c_exits_at_once(tmp_path):
  """The first Ctrl-C asks for a save at the next step; a second one exits now."""
  cmd, env = _fake_run(
    f"--workdir={tmp_path}", "--config.num_train_steps=100000", env={"FAKE_BATCH_SLEEP": "2"}
  )
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
  try:
    metrics = tmp_path / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while not (metrics.exists() and metrics.read_text().strip()):  # training has started
      assert proc.poll() is None and time.monotonic() < deadline
      time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
  finally:
    proc.kill()
  assert proc.returncode == 130, stderr[-2000:]
  assert "Ctrl-C: saving" in stderr and "exiting now, without saving" in stderr
  assert "Traceback" not in stderr
