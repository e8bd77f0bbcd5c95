"""The model benchmark tool runs end to end on tiny models (timings not asserted)."""

import json

import jax.numpy as jnp
import pytest

from jaxact.tools import bench


def test_bench_reports_forward_and_train_step(capsys):
  bench.main(["--model", "resnet_tiny", "--batch", "2", "--size", "32", "--repeats", "3"])
  records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
  assert [r["what"] for r in records] == ["forward", "train_step"]
  for r in records:
    assert r["model"] == "resnet_tiny" and r["clips_per_s"] > 0
    # The median with its spread over the repeats.
    assert r["repeats"] == 3 and 0 < r["seconds_min"] <= r["seconds"] <= r["seconds_max"]
    assert "load_1min" in r and "xla_flags" in r
    # XLA's cost analysis counts the work of the call; a train step does more.
    assert r["flops_per_call"] > 0
  assert records[1]["flops_per_call"] > 2 * records[0]["flops_per_call"]
  assert "mfu" not in records[0]  # no known peak on CPU


def test_bench_times_the_device_augmentation_beside_the_train_step():
  # The plumbing, on the cheapest model (--augment auto picks two-stream models only).
  records = bench.bench_model(
    "resnet_tiny",
    batch=2,
    frames=2,
    size=32,
    flow_length=2,
    dtype=jnp.float32,
    num_classes=3,
    repeats=2,
    augment="paper_a",
  )
  assert [r["what"] for r in records] == ["forward", "train_step", "device_augment"]
  step, aug = records[1], records[2]
  assert aug["recipe"] == "paper_a" and aug["repeats"] == 2
  assert aug["share_of_train_step"] == pytest.approx(aug["seconds"] / step["seconds"], rel=1e-2)
  assert bench.augment_recipe("two_stream_convlstm", "auto") == "paper_b"
  assert bench.augment_recipe("resnet101", "auto") is None
  assert bench.augment_recipe("two_stream_lstm", "none") is None


def test_time_interleaved_round_robin():
  calls = []
  fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
  times = bench.time_interleaved(fns, repeats=2)
  assert calls == ["a", "b"] + ["a", "b"] * 2  # one warm-up each, then alternating
  assert {name: len(t) for name, t in times.items()} == {"a": 2, "b": 2}
  assert bench.summarize([3.0, 1.0, 2.0]) == {
    "seconds": 2.0,
    "seconds_min": 1.0,
    "seconds_max": 3.0,
    "repeats": 3,
  }


def test_bench_torch_reference_ratio_of_medians(capsys, monkeypatch):
  pytest.importorskip("torch")
  pytest.importorskip("transformers")
  # Compare with the tiny model: the plumbing is tested, not ResNet-101's speed.
  monkeypatch.setattr(bench, "TORCH_REFERENCE_MODEL", "resnet_tiny")
  bench.main(
    ["--model", "resnet_tiny", "--batch", "2", "--size", "32", "--repeats", "2", "--torch"]
  )
  records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
  assert [(r["model"], r["what"]) for r in records] == [
    ("resnet_tiny", "forward"),
    ("resnet_tiny", "train_step"),
    ("torch_transformers_resnet101", "forward"),
    ("torch_transformers_resnet101", "train_step"),
  ]
  for ours, ref in zip(records[:2], records[2:], strict=True):
    assert ref["repeats"] == 2 and ref["seconds_min"] <= ref["seconds"] <= ref["seconds_max"]
    assert ref["ratio_torch_over_jaxact"] == pytest.approx(
      ref["seconds"] / ours["seconds"], rel=1e-2
    )


def test_bench_two_stream_inputs():
  x = bench.make_inputs("two_stream_lstm_tiny", 2, 3, 32, 2, "float32")
  assert x["rgb"].shape == (2, 3, 32, 32, 3) and x["flow"].shape == (2, 3, 32, 32, 4)
  assert bench.make_inputs("resnet_tiny", 2, 3, 32, 2, "float32").shape == (2, 32, 32, 3)
