"""The model benchmark tool runs end to end on tiny models (timings not asserted)."""

import json

from jaxact.tools import bench


def test_bench_reports_forward_and_train_step(capsys):
  bench.main(["--model", "resnet_tiny", "--batch", "2", "--size", "32", "--repeats", "1"])
  records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
  assert [r["what"] for r in records] == ["forward", "train_step"]
  for r in records:
    assert r["model"] == "resnet_tiny" and r["seconds"] > 0 and r["clips_per_s"] > 0
    # XLA's cost analysis counts the work of the call; a train step does more.
    assert r["flops_per_call"] > 0
  assert records[1]["flops_per_call"] > 2 * records[0]["flops_per_call"]
  assert "mfu" not in records[0]  # no known peak on CPU


def test_bench_two_stream_inputs():
  x = bench.make_inputs("two_stream_lstm_tiny", 2, 3, 32, 2, "float32")
  assert x["rgb"].shape == (2, 3, 32, 32, 3) and x["flow"].shape == (2, 3, 32, 32, 4)
  assert bench.make_inputs("resnet_tiny", 2, 3, 32, 2, "float32").shape == (2, 32, 32, 3)
