"""The 3-split averaging tool."""

import json

import pytest

from jaxact.tools import average_splits


def _write(path, top1):
  path.mkdir()
  res = {"step": 10, "num_examples": 100}
  for i, s in enumerate(("spatial", "temporal", "fused")):
    res[s] = {"top1": top1 + i / 10, "top5": 0.9, "mean_class": top1}
  (path / "eval_results.json").write_text(json.dumps(res))
  return str(path)


def test_average_three_splits(tmp_path, capsys):
  runs = [_write(tmp_path / f"s{i}", t) for i, t in enumerate((0.5, 0.6, 0.7), 1)]
  out = tmp_path / "mean.json"
  assert average_splits.main(runs + ["--output", str(out)]) == 0
  avg = json.loads(out.read_text())
  assert avg["num_splits"] == 3
  assert avg["spatial"]["top1"]["mean"] == pytest.approx(0.6)
  assert avg["fused"]["top1"]["splits"] == pytest.approx([0.7, 0.8, 0.9])
  assert "60.00" in capsys.readouterr().out


def test_missing_results_is_one_line(tmp_path, capsys):
  assert average_splits.main([str(tmp_path)]) == 1
  assert "evaluate that run first" in capsys.readouterr().err
