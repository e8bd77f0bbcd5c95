"""The training loop in-process with a tiny network and in-memory data."""

import glob
import json
import os
import shutil
import signal

import fake_run
import numpy as np
import pytest

from jaxact import experiment
from jaxact.runtime import checkpoint as ckpt
from jaxact.train import loop


def _losses(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return {r["step"]: r["loss"] for r in map(json.loads, f)}


def _steps(workdir):
  return sorted(int(p) for p in os.listdir(os.path.join(workdir, "checkpoints")) if p.isdigit())


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
  """One uninterrupted 6-step run with TensorBoard and final evaluation."""
  workdir = tmp_path_factory.mktemp("full")
  results = experiment.run(
    fake_run.tiny_config(tensorboard=True),
    str(workdir),
    mode="train",
    model_fn=fake_run.model_fn,
    loader_fn=fake_run.loader_fn,
  )
  return workdir, results


def test_train_writes_metrics_checkpoints_and_results(full_run):
  tmp_path, results = full_run
  rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  assert [r["step"] for r in rows] == list(range(1, 7))
  for key in (
    "loss",
    "top1_head",
    "top1_spatial",
    "top1_temporal",
    "grad_norm",
    "param_norm",
    "lr",
    "step_time",
    "clips_per_s",
  ):
    assert all(np.isfinite(r[key]) for r in rows), key
  assert rows[0]["lr"] == pytest.approx(0.05)
  assert _steps(tmp_path)[-1] == 6
  on_disk = json.load(open(tmp_path / "eval_results.json"))
  assert on_disk["step"] == 6 and on_disk["num_examples"] == 10 and on_disk["views"] == 1
  for stream in ("spatial", "temporal", "fused"):
    r = on_disk[stream]
    assert set(r) >= {"top1", "top5", "mean_class", "per_class", "confusion"}
    conf = np.asarray(r["confusion"])
    assert conf.sum() == 10
    assert r["top1"] == pytest.approx(np.trace(conf) / 10)
  assert results["fused"]["top1"] == on_disk["fused"]["top1"]
  assert (tmp_path / "tensorboard").is_dir()


def test_resume_reproduces_uninterrupted_run(full_run, tmp_path):
  full = full_run[0]
  part = tmp_path / "part"
  # Stop after step 4 (as a crash would), then rerun the full command.
  experiment.run(
    fake_run.tiny_config(num_train_steps=4, **{"eval.run_after_training": False}),
    str(part),
    mode="train",
    model_fn=fake_run.model_fn,
    loader_fn=fake_run.loader_fn,
  )
  with open(part / "metrics.jsonl", "a") as f:  # a line of a step that was never saved
    f.write(json.dumps({"step": 5, "loss": 123.0}) + "\n")
  experiment.run(
    fake_run.tiny_config(**{"eval.run_after_training": False}),
    str(part),
    mode="train",
    model_fn=fake_run.model_fn,
    loader_fn=fake_run.loader_fn,
  )
  a, b = _losses(full), _losses(part)
  assert sorted(b) == list(range(1, 7))
  np.testing.assert_allclose([b[s] for s in (5, 6)], [a[s] for s in (5, 6)], rtol=1e-6)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
  config = fake_run.tiny_config(
    checkpoint_every_steps=1, **{"optimizer.learning_rate": 1e30, "optimizer.momentum": 0.0}
  )
  with pytest.raises(loop.NonFiniteLossError) as err:
    experiment.run(
      config, str(tmp_path), mode="train", model_fn=fake_run.model_fn, loader_fn=fake_run.loader_fn
    )
  msg = str(err.value)
  bad_step = int(msg.split("at step ")[1].split(".")[0])
  assert bad_step >= 2
  assert _steps(tmp_path) and max(_steps(tmp_path)) == bad_step - 1
  assert "last good checkpoint" in msg and str(bad_step - 1) in msg
  assert not (tmp_path / "eval_results.json").exists()


class _SignalAt:
  """A training loader that sends ``sig`` to this process while batch ``n`` is loaded."""

  def __init__(self, inner, n, sig):
    self.inner, self.n, self.sig = inner, n, sig

  def __getattr__(self, name):
    return getattr(self.inner, name)

  def __iter__(self):
    for i, batch in enumerate(self.inner, start=1):
      if i == self.n:
        os.kill(os.getpid(), self.sig)
      yield batch


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl_c"])
def test_signal_saves_and_returns(tmp_path, sig):
  """SIGTERM (preemption) and a first Ctrl-C both save the current step and return."""
  previous = signal.getsignal(sig)

  def loader_fn(config, *, train):
    inner = fake_run.loader_fn(config, train=train)
    return _SignalAt(inner, 3, sig) if train else inner

  config = fake_run.tiny_config(checkpoint_every_steps=100, num_train_steps=50)
  out = experiment.run(
    config, str(tmp_path), mode="train", model_fn=fake_run.model_fn, loader_fn=loader_fn
  )
  assert out is None
  assert _steps(tmp_path) == [3]
  assert signal.getsignal(sig) is previous  # handler restored
  assert max(_losses(tmp_path)) == 3


def test_init_from_run_with_frozen_backbones(full_run, tmp_path):
  """Paper B's stage 2: start from another run, train only the head."""
  import orbax.checkpoint as ocp

  source = full_run[0]
  config = fake_run.tiny_config(
    num_train_steps=2,
    **{
      "init_from.path": str(source),
      "optimizer.frozen": ("spatial", "temporal"),
      "eval.run_after_training": False,
    },
  )
  experiment.run(
    config, str(tmp_path), mode="train", model_fn=fake_run.model_fn, loader_fn=fake_run.loader_fn
  )
  read = lambda d, s: ocp.StandardCheckpointer().restore(d / "checkpoints" / str(s) / "model")
  before, after = read(source, 6), read(tmp_path, 2)
  for part in ("spatial", "temporal"):
    jax_tree_equal = [
      np.array_equal(a, b)
      for a, b in zip(_leaves(before["params"][part]), _leaves(after["params"][part]))
    ]
    assert all(jax_tree_equal), part
    # Frozen backbones keep their BatchNorm statistics too.
    assert all(
      np.array_equal(a, b)
      for a, b in zip(_leaves(before["batch_stats"][part]), _leaves(after["batch_stats"][part]))
    )
  assert not all(
    np.array_equal(a, b)
    for a, b in zip(_leaves(before["params"]["classifier"]), _leaves(after["params"]["classifier"]))
  )


def _leaves(tree):
  import jax

  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_best_checkpoint_follows_the_metric(full_run):
  workdir = full_run[0]
  rows = {r["step"]: r for r in map(json.loads, open(workdir / "metrics.jsonl"))}
  manager = ckpt.create_manager(workdir / "checkpoints", read_only=True, best_metric="top1_head")
  saved = manager.all_steps()
  expected = max(saved, key=lambda s: (rows[s]["top1_head"], s))
  assert ckpt.resolve_step(manager, "best", metric="top1_head") == expected
  assert ckpt.resolve_step(manager, "latest") == 6
  with pytest.raises(FileNotFoundError, match="available steps"):
    ckpt.resolve_step(manager, "5")
  manager.close()


def test_validation_at_checkpoints_ranks_the_best(full_run, tmp_path):
  """eval.validate_at_checkpoints logs held-out accuracy at every checkpoint
  step, equal to what --mode eval computes for that checkpoint, and
  best_metric='val_top1_fused' ranks checkpoints by it."""
  config = fake_run.tiny_config(
    **{
      "eval.validate_at_checkpoints": True,
      "checkpoint.best_metric": "val_top1_fused",
      "checkpoint.max_to_keep": 5,
      "eval.run_after_training": False,
    }
  )
  experiment.run(
    config, str(tmp_path), mode="train", model_fn=fake_run.model_fn, loader_fn=fake_run.loader_fn
  )
  rows = {r["step"]: r for r in map(json.loads, open(tmp_path / "metrics.jsonl"))}
  assert [s for s, r in rows.items() if "val_top1_fused" in r] == [2, 4, 6]
  # Same training as the full run: the losses agree, validation changes nothing.
  np.testing.assert_allclose(
    [rows[s]["loss"] for s in range(1, 7)],
    [_losses(full_run[0])[s] for s in range(1, 7)],
    rtol=1e-6,
  )
  # The logged value is the eval mode's top-1 for that checkpoint.
  config.eval.checkpoint = "4"
  results = experiment.run(
    config, str(tmp_path), "eval", model_fn=fake_run.model_fn, loader_fn=fake_run.loader_fn
  )
  assert results["fused"]["top1"] == pytest.approx(rows[4]["val_top1_fused"])
  assert results["spatial"]["top1"] == pytest.approx(rows[4]["val_top1_spatial"])
  manager = ckpt.create_manager(
    tmp_path / "checkpoints", read_only=True, best_metric="val_top1_fused"
  )
  expected = max((2, 4, 6), key=lambda s: (rows[s]["val_top1_fused"], s))
  assert ckpt.resolve_step(manager, "best", metric="val_top1_fused") == expected
  manager.close()


def _damage(workdir, step):
  """Overwrite the array data of checkpoint ``step`` with random bytes."""
  files = glob.glob(os.path.join(workdir, "checkpoints", str(step), "model", "d", "*"))
  assert files
  rng = np.random.default_rng(step)
  for path in files:
    size = os.path.getsize(path)
    with open(path, "wb") as f:
      f.write(rng.integers(0, 256, size, dtype=np.uint8).tobytes())


def test_damaged_newest_checkpoint_resumes_from_the_one_before(full_run, tmp_path, caplog):
  config = fake_run.tiny_config(num_train_steps=4, **{"eval.run_after_training": False})
  experiment.run(
    config, str(tmp_path), "train", model_fn=fake_run.model_fn, loader_fn=fake_run.loader_fn
  )
  _damage(tmp_path, 4)
  with caplog.at_level("WARNING", logger="jaxact.runtime.checkpoint"):
    experiment.run(
      fake_run.tiny_config(**{"eval.run_after_training": False}),
      str(tmp_path),
      "train",
      model_fn=fake_run.model_fn,
      loader_fn=fake_run.loader_fn,
    )
  lines = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
  assert len(lines) == 1 and "[4]" in lines[0] and "using step 2" in lines[0], lines
  assert "\n" not in lines[0]
  # Nothing is deleted: the damaged step is kept aside; the run saved 4 and 6 again.
  assert os.listdir(tmp_path / "checkpoints_unreadable") == ["4"]
  assert _steps(tmp_path) == [2, 4, 6]
  full, resumed = _losses(full_run[0]), _losses(tmp_path)
  np.testing.assert_allclose([resumed[s] for s in (3, 4, 5, 6)], [full[s] for s in (3, 4, 5, 6)])


def test_eval_latest_falls_back_and_all_damaged_is_one_error(full_run, tmp_path, caplog):
  shutil.copytree(full_run[0] / "checkpoints", tmp_path / "checkpoints")
  _damage(tmp_path, 6)
  config = fake_run.tiny_config()
  with caplog.at_level("WARNING", logger="jaxact.runtime.checkpoint"):
    results = experiment.run(
      config, str(tmp_path), "eval", model_fn=fake_run.model_fn, loader_fn=fake_run.loader_fn
    )
  assert results["step"] == 4
  assert any("using step 4" in r.getMessage() for r in caplog.records)
  assert _steps(tmp_path) == [2, 4, 6]  # evaluation moves nothing
  for step in (2, 4):
    _damage(tmp_path, step)
  with pytest.raises(ckpt.CheckpointError, match=r"step\(s\) \[2, 4, 6\] are damaged"):
    experiment.run(
      config, str(tmp_path), "eval", model_fn=fake_run.model_fn, loader_fn=fake_run.loader_fn
    )
