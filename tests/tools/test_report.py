"""python -m jaxact.tools.report: the table equals eval_results.json, pictures, errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from jaxact.eval import figures
from jaxact.runtime import scoring
from jaxact.tools import report

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _write_run(path, seed: int, num_classes: int = 4, split: str = "test1") -> dict:
  """A run directory with the eval_results.json of random scores."""
  rng = np.random.default_rng(seed)
  labels = np.repeat(np.arange(num_classes), 3)
  scores = {}
  for stream in ("spatial", "temporal", "head"):
    x = rng.random((len(labels), num_classes))
    right = rng.random(len(labels)) < 0.6
    x[right, labels[right]] += 1.0
    scores[stream] = x / x.sum(1, keepdims=True)
  results = scoring.results_dict(
    scores,
    labels,
    [f"class_{i}" for i in range(num_classes)],
    {"spatial": 1.0, "temporal": 1.5},
    step=1000 + seed,
    views=25,
    dataset="ucf101",
    split=split,
    checkpoint="latest",
  )
  path.mkdir(parents=True)
  with open(path / "eval_results.json", "w") as f:
    json.dump(results, f, indent=1)
  return json.loads((path / "eval_results.json").read_text())


def test_table_equals_results_file(tmp_path, capsys):
  results = _write_run(tmp_path / "ucf_a1", seed=1)
  table = report.report([str(tmp_path / "ucf_a1")], pictures=False)
  assert table.columns == ["ucf_a1"]
  rows = table.to_dict()
  assert rows["step"]["ucf_a1"] == 1001
  assert rows["split"]["ucf_a1"] == "ucf101/test1"
  assert rows["examples"]["ucf_a1"] == results["num_examples"] == 12
  assert rows["views"]["ucf_a1"] == 25
  for stream in ("spatial", "temporal", "fused", "head"):
    for key, name in (("top1", "top-1"), ("top5", "top-5"), ("mean_class", "mean-class")):
      assert rows[f"{stream} {name}"]["ucf_a1"] == results[stream][key]
  # The printed table shows the same numbers in percent.
  assert report.main([str(tmp_path / "ucf_a1")]) == 0
  out = capsys.readouterr().out
  line = next(l for l in out.splitlines() if l.startswith("fused top-1"))
  assert line.split()[-1] == f"{100 * results['fused']['top1']:.2f}"
  assert "mean" not in out.splitlines()[0]  # one run: no mean column
  # Without --out the pictures are redrawn into the run directory.
  for name in (figures.CONFUSION_FILE, figures.PER_CLASS_FILE):
    with Image.open(tmp_path / "ucf_a1" / name) as im:
      assert im.format == "PNG" and im.size[0] >= 300 and im.size[1] >= 250


def test_three_splits_side_by_side_with_mean(tmp_path, capsys):
  runs = [tmp_path / f"ucf_a{i}" for i in (1, 2, 3)]
  results = [_write_run(p, seed=i, split=f"test{i}") for i, p in enumerate(runs, 1)]
  out_dir = tmp_path / "pictures"
  rc = report.main([*map(str, runs), "--out", str(out_dir)])
  assert rc == 0
  out = capsys.readouterr().out.splitlines()
  assert out[0].split() == ["ucf_a1", "ucf_a2", "ucf_a3", "mean"]
  table = report.report([str(p) for p in runs], pictures=False).to_dict()
  for key, name in (("top1", "top-1"), ("top5", "top-5"), ("mean_class", "mean-class")):
    row = table[f"temporal {name}"]
    assert [row[c] for c in ("ucf_a1", "ucf_a2", "ucf_a3")] == [r["temporal"][key] for r in results]
    assert row["mean"] == pytest.approx(np.mean([r["temporal"][key] for r in results]))
  fused = next(l for l in out if l.startswith("fused top-1")).split()
  assert fused[-1] == f"{100 * np.mean([r['fused']['top1'] for r in results]):.2f}"
  assert table["split"]["ucf_a2"] == "ucf101/test2" and table["split"]["mean"] is None
  # --out: one folder per run, the runs' own folders untouched.
  for run in runs:
    assert (out_dir / run.name / figures.CONFUSION_FILE).exists()
    assert (out_dir / run.name / figures.PER_CLASS_FILE).exists()
    assert not (run / figures.CONFUSION_FILE).exists()


def test_runs_with_one_name_are_named_by_path(tmp_path):
  for split in ("s1", "s2"):
    _write_run(tmp_path / split / "run", seed=0)
  paths = [str(tmp_path / "s1" / "run"), str(tmp_path / "s2" / "run" / "eval_results.json")]
  table = report.report(paths, pictures=False)
  assert table.columns == [paths[0], os.path.dirname(paths[1]), "mean"]


@pytest.mark.parametrize(
  "content, message",
  [
    (None, "does not exist"),
    ('{"fused": {"top1": 0.5', "is not valid JSON"),
    ("[1, 2]", "has no 'fused' metrics"),
    ('{"fused": {"top1": 0.5}}', "'fused' lacks ['top5', 'mean_class']"),
  ],
)
def test_bad_results_file_is_one_line(tmp_path, capsys, content, message):
  good = tmp_path / "good"
  _write_run(good, seed=0)
  bad = tmp_path / "bad"
  bad.mkdir()
  if content is not None:
    (bad / "eval_results.json").write_text(content)
  assert report.main([str(good), str(bad)]) == 1
  captured = capsys.readouterr()
  err = captured.err.strip()
  assert captured.out == "" and len(err.splitlines()) == 1
  assert str(bad / "eval_results.json") in err and message in err
  assert not (good / figures.CONFUSION_FILE).exists()  # nothing drawn before the error


def test_command_line_error_has_no_traceback(tmp_path):
  missing = tmp_path / "missing"
  proc = subprocess.run(
    [sys.executable, "-m", "jaxact.tools.report", str(missing)],
    capture_output=True,
    text=True,
    cwd=ROOT,
    env={**os.environ, "PYTHONPATH": ROOT},
    timeout=300,
  )
  assert proc.returncode == 1
  assert proc.stderr.strip().splitlines() == [
    f"report: error: {missing} does not exist: evaluate that run first "
    "(python -m jaxact.main ... --mode eval)"
  ]


def test_unwritable_picture_folder_is_one_line(tmp_path, capsys):
  _write_run(tmp_path / "run", seed=0)
  blocker = tmp_path / "blocker"
  blocker.write_text("a file")
  assert report.main([str(tmp_path / "run"), "--out", str(blocker / "sub")]) == 1
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "cannot write" in err and "--out" in err
