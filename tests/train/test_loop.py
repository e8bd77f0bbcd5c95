"""The training loop in-process with a tiny network and in-memory data."""

import json
import os
import signal

import fake_run
import numpy as np
import pytest

from jaxact import main as jaxact_main
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
  results = jaxact_main.run(
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
  jaxact_main.run(
    fake_run.tiny_config(num_train_steps=4, **{"eval.run_after_training": False}),
    str(part),
    mode="train",
    model_fn=fake_run.model_fn,
    loader_fn=fake_run.loader_fn,
  )
  with open(part / "metrics.jsonl", "a") as f:  # a line of a step that was never saved
    f.write(json.dumps({"step": 5, "loss": 123.0}) + "\n")
  jaxact_main.run(
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
    jaxact_main.run(
      config, str(tmp_path), mode="train", model_fn=fake_run.model_fn, loader_fn=fake_run.loader_fn
    )
  msg = str(err.value)
  bad_step = int(msg.split("at step ")[1].split(".")[0])
  assert bad_step >= 2
  assert _steps(tmp_path) and max(_steps(tmp_path)) == bad_step - 1
  assert "last good checkpoint" in msg and str(bad_step - 1) in msg
  assert not (tmp_path / "eval_results.json").exists()


def test_sigterm_saves_and_returns(tmp_path):
  class SignalLoader:
    def __init__(self, inner):
      self.inner, self.n = inner, 0

    def __getattr__(self, name):
      return getattr(self.inner, name)

    def __iter__(self):
      for batch in self.inner:
        self.n += 1
        if self.n == 3:  # SIGTERM while the batch of step 3 is loaded
          os.kill(os.getpid(), signal.SIGTERM)
        yield batch

  def loader_fn(config, *, train):
    inner = fake_run.loader_fn(config, train=train)
    return SignalLoader(inner) if train else inner

  config = fake_run.tiny_config(checkpoint_every_steps=100, num_train_steps=50)
  out = jaxact_main.run(
    config, str(tmp_path), mode="train", model_fn=fake_run.model_fn, loader_fn=loader_fn
  )
  assert out is None
  assert _steps(tmp_path) == [3]
  assert signal.getsignal(signal.SIGTERM) is not None  # handler restored
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
  jaxact_main.run(
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
  from jaxact.runtime import checkpoint as ckpt

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
  from jaxact.runtime import checkpoint as ckpt

  config = fake_run.tiny_config(
    **{
      "eval.validate_at_checkpoints": True,
      "checkpoint.best_metric": "val_top1_fused",
      "checkpoint.max_to_keep": 5,
      "eval.run_after_training": False,
    }
  )
  jaxact_main.run(
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
  results = jaxact_main.run(
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
