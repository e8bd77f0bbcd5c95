"""Subprocess tests: several processes, kill -9 and resume, restore on 1 device.

Each runs ``tests/train/fake_run.py`` (``python -m jaxact.main`` with a tiny
network and in-memory data, same flags) with its own virtual CPU device count.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(HERE, "fake_run.py")
# Shared by every run so that losses are comparable.
CONFIG = SCRIPT + ":num_train_steps=30;checkpoint_every_steps=5;eval.run_after_training=False"


def _env(devices: int, **extra) -> dict:
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  env["JAX_PLATFORMS"] = "cpu"
  env.update(extra)
  return env


def _cmd(workdir, *args, config=CONFIG):
  return [sys.executable, SCRIPT, f"--config={config}", f"--workdir={workdir}", *args]


def _run(cmd, env, timeout=300):
  proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def _losses(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return {r["step"]: r["loss"] for r in map(json.loads, f)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """An uninterrupted run: 1 process × 4 devices, 30 steps."""
  workdir = tmp_path_factory.mktemp("reference")
  _run(_cmd(workdir), _env(4))
  return workdir


def test_two_processes_match_one(reference, tmp_path):
  """launch/local_multiprocess.py: 2 processes × 2 devices == 1 process × 4 devices."""
  config = CONFIG.replace("num_train_steps=30", "num_train_steps=3").replace(
    "eval.run_after_training=False", "eval.run_after_training=True"
  )
  env = _env(2, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
  proc = subprocess.run(
    [
      sys.executable,
      os.path.join(ROOT, "launch", "local_multiprocess.py"),
      "--num_processes=2",
      "--devices_per_process=2",
      "--module=fake_run",
      "--",
      f"--config={config}",
      f"--workdir={tmp_path}",
    ],
    env=env,
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  assert "[p0]" in proc.stdout and "[p1]" in proc.stdout
  multi, single = _losses(tmp_path), _losses(reference)
  assert sorted(multi) == [1, 2, 3]
  np.testing.assert_allclose(
    [multi[s] for s in (1, 2, 3)], [single[s] for s in (1, 2, 3)], rtol=1e-5, atol=1e-5
  )
  # Evaluation across processes counts each of the 10 examples exactly once.
  results = json.loads((tmp_path / "eval_results.json").read_text())
  assert results["num_examples"] == 10 and results["step"] == 3
  assert sum(map(sum, results["fused"]["confusion"])) == 10
  # Both processes wrote their own data-loader position into the checkpoint.
  data_dir = tmp_path / "checkpoints" / "3" / "data"
  assert sorted(p.name for p in data_dir.glob("process_*")) == [
    "process_0-of-2.bin",
    "process_1-of-2.bin",
  ]


def test_kill9_then_restart_continues_identically(reference, tmp_path):
  proc = subprocess.Popen(
    _cmd(tmp_path),
    env=_env(4, FAKE_BATCH_SLEEP="0.3"),
    cwd=ROOT,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.PIPE,
    text=True,
  )
  ckpt = tmp_path / "checkpoints"
  deadline = time.time() + 240
  killed_after = None
  while time.time() < deadline and proc.poll() is None:
    steps = sorted(int(p.name) for p in ckpt.glob("*") if p.name.isdigit()) if ckpt.exists() else []
    logged = _losses(tmp_path) if (tmp_path / "metrics.jsonl").exists() else {}
    if steps and steps[-1] >= 10 and logged and max(logged) >= steps[-1] + 2:
      os.kill(proc.pid, signal.SIGKILL)
      killed_after = max(logged)
      break
    time.sleep(0.05)
  proc.wait(timeout=60)
  assert killed_after is not None and killed_after < 30, "the run was not killed mid-training"
  restored = max(int(p.name) for p in ckpt.glob("*") if p.name.isdigit())
  assert restored < killed_after  # some finished steps were not saved: they are redone
  _run(_cmd(tmp_path), _env(4))
  resumed, uninterrupted = _losses(tmp_path), _losses(reference)
  assert sorted(resumed) == list(range(1, 31))
  steps = list(range(restored + 1, 31))
  np.testing.assert_allclose(
    [resumed[s] for s in steps], [uninterrupted[s] for s in steps], rtol=1e-6
  )


def test_checkpoint_from_4_devices_evaluates_on_1(reference, tmp_path):
  _run(_cmd(reference, "--mode=eval"), _env(4))
  four = json.loads((reference / "eval_results.json").read_text())
  _run(_cmd(reference, "--mode=eval", "--config.eval.checkpoint=25"), _env(1))
  one_at_25 = json.loads((reference / "eval_results.json").read_text())
  _run(_cmd(reference, "--mode=eval"), _env(1))
  one = json.loads((reference / "eval_results.json").read_text())
  assert four["step"] == one["step"] == 30 and one_at_25["step"] == 25
  for stream in ("spatial", "temporal", "fused"):
    assert one[stream]["confusion"] == four[stream]["confusion"]
    assert one[stream]["top1"] == four[stream]["top1"]


def test_training_resumes_on_another_device_count(reference, tmp_path):
  import shutil

  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  config = CONFIG.replace("num_train_steps=30", "num_train_steps=32")
  _run(_cmd(workdir, config=config), _env(1))
  losses = _losses(workdir)
  assert sorted(losses) == list(range(1, 33)) and np.isfinite([losses[31], losses[32]]).all()
  # Same data order and parameters: the first resumed step matches the 4-device
  # run's next step computed from the same state (step 31 of a 32-step run).
  four = tmp_path / "four"
  shutil.copytree(reference, four)
  _run(_cmd(four, config=config), _env(4))
  np.testing.assert_allclose(losses[31], _losses(four)[31], rtol=1e-5)


def test_sigterm_on_one_process_stops_both_at_the_same_saved_step(reference, tmp_path):
  """Preemption of one host of a 2-process run: both processes agree at the
  next log step, save that step together and exit 0; rerunning the same
  command resumes there and reproduces the uninterrupted losses."""
  import socket

  def launch(extra_env):
    with socket.socket() as s:  # a free coordinator port for each launch
      s.bind(("127.0.0.1", 0))
      port = s.getsockname()[1]
    return [
      subprocess.Popen(
        _cmd(
          tmp_path,
          f"--coordinator_address=127.0.0.1:{port}",
          "--num_processes=2",
          f"--process_id={i}",
        ),
        env=_env(2, **extra_env),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
      )
      for i in range(2)
    ]

  procs = launch({"FAKE_BATCH_SLEEP": "0.3"})
  deadline = time.time() + 240
  signalled = False
  while time.time() < deadline and all(p.poll() is None for p in procs):
    logged = _losses(tmp_path) if (tmp_path / "metrics.jsonl").exists() else {}
    if logged and max(logged) >= 3:
      procs[1].send_signal(signal.SIGTERM)
      signalled = True
      break
    time.sleep(0.05)
  codes = [p.wait(timeout=120) for p in procs]
  assert signalled, "the run ended before it could be signalled"
  assert codes == [0, 0], [p.stderr.read()[-2000:] for p in procs]
  saved = sorted(int(p.name) for p in (tmp_path / "checkpoints").glob("*") if p.name.isdigit())
  stopped_at = max(_losses(tmp_path))
  assert saved[-1] == stopped_at < 30  # the step it stopped at was saved
  assert not (tmp_path / "eval_results.json").exists()  # preempted: no evaluation
  procs = launch({})
  codes = [p.wait(timeout=300) for p in procs]
  assert codes == [0, 0], [p.stderr.read()[-2000:] for p in procs]
  resumed, uninterrupted = _losses(tmp_path), _losses(reference)
  assert sorted(resumed) == list(range(1, 31))
  steps = list(range(stopped_at + 1, 31))
  np.testing.assert_allclose(
    [resumed[s] for s in steps], [uninterrupted[s] for s in steps], rtol=1e-5, atol=1e-5
  )
