"""End-to-end tests of ``python -m jaxact.tools.extract_flow`` on generated videos."""

import json
import os

import numpy as np
import pytest
from moving_square import moving_square
from PIL import Image

from jaxact.data import build, datasets, frame_formats
from jaxact.data import video as video_io
from jaxact.data.datasets import base
from jaxact.flow import batching
from jaxact.tools import extract_flow

# A cheap solve keeps the test fast; the CLI passes it through --param.
PARAMS = {
  "nscales": 2,
  "warps": 2,
  "inner_iterations": 10,
  "outer_iterations": 1,
  "median_filtering": 1,
}
# The builders' 'fast' preset, for the byte comparison with a dataset build.
FAST = base.FLOW_PRESETS["fast"]
PARAM_ARGS = [a for k, v in PARAMS.items() for a in ("--param", f"{k}={v}")]


@pytest.fixture
def inputs(tmp_path):
  d = tmp_path / "videos" / "walk"
  d.mkdir(parents=True)
  video_io.write_video(d / "a.mp4", moving_square(6))
  video_io.write_video(d / "b.avi", moving_square(4, offset=3), codec="mpeg4", quality="normal")
  (d / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 500)
  folder = tmp_path / "frames" / "c"
  folder.mkdir(parents=True)
  for i, f in enumerate(moving_square(5, offset=1), start=1):
    Image.fromarray(f).save(folder / f"img_{i:05d}.png")
  return tmp_path


def _run(args):
  return extract_flow.main(args + ["--no-progress", "--batch", "4"] + PARAM_ARGS)


def test_extract_formats_resume_and_corrupt_input(inputs, capsys):
  out = inputs / "out"
  rc = _run(
    [str(inputs / "videos"), str(inputs / "frames" / "c"), "--out", str(out), "--format", "both"]
  )
  text = capsys.readouterr().out
  assert rc == 1  # one input failed
  assert "done 3, skipped (already done) 0, failed 1" in text
  assert "broken.mp4" in text
  log = [json.loads(l) for l in open(out / extract_flow.FAILURES_LOG)]
  assert [r["name"] for r in log] == ["walk/broken"]

  # MMAction2 layout: n frames -> n images and n-1 flow_x / flow_y images.
  for name, n in (("walk/a", 6), ("walk/b", 4), ("c", 5)):
    files = sorted(os.listdir(out / name))
    assert [f for f in files if f.startswith("img_")] == [
      f"img_{i:05d}.jpg" for i in range(1, n + 1)
    ]
    for axis in "xy":
      assert [f for f in files if f.startswith(f"flow_{axis}_")] == [
        f"flow_{axis}_{i:05d}.jpg" for i in range(1, n)
      ]
    mm = frame_formats.load_mmaction(str(out / name))
    compact = frame_formats.load_compact(str(out / (name + ".npz")))
    assert compact["flow"].shape == (n - 1, 32, 40, 2)
    assert compact["rgb"].shape == (n, 32, 40, 3)
    assert compact["bound"] == 20.0
    # JPEG flow images hold the same values up to JPEG error.
    assert np.abs(mm["flow"].astype(int) - compact["flow"]).mean() < 2.0

  # The flow is the TV-L1 flow of the decoded frames, and it sees the motion.
  frames = video_io.read_video(inputs / "videos" / "walk" / "a.mp4")
  ref = batching.video_flow(frames, batch_size=4, **PARAMS)
  got = frame_formats.load_compact(str(out / "walk" / "a.npz"))["flow"]
  assert np.abs(got.astype(int) - ref).max() <= 1
  dx = got[:, 10:20, 10:24, 0].astype(float).mean()
  assert dx > 128 + 3  # moving right: x flow above "no motion"
  assert abs(got[:, 10:20, 10:24, 1].astype(float).mean() - 128) < 3

  # Second run: everything finished is skipped, untouched.
  mtime = os.path.getmtime(out / "walk" / "a.npz")
  rc = _run(
    [str(inputs / "videos"), str(inputs / "frames" / "c"), "--out", str(out), "--format", "both"]
  )
  text = capsys.readouterr().out
  assert "done 0, skipped (already done) 3, failed 1" in text
  assert os.path.getmtime(out / "walk" / "a.npz") == mtime


def test_resume_after_interruption(inputs, monkeypatch, capsys):
  out = inputs / "out"
  videos = str(inputs / "videos" / "walk")
  real_write = frame_formats.write_mmaction
  calls = []

  def write_then_die(out_dir, name, frames, flow, quality=90):
    calls.append(name)
    if len(calls) == 2:
      # Die half-way through writing the second video.
      tmp = os.path.join(out_dir, f".{name}.tmp-{os.getpid()}")
      os.makedirs(tmp, exist_ok=True)
      open(os.path.join(tmp, "img_00001.jpg"), "wb").write(b"partial")
      raise KeyboardInterrupt
    return real_write(out_dir, name, frames, flow, quality)

  monkeypatch.setattr(frame_formats, "write_mmaction", write_then_die)
  with pytest.raises(KeyboardInterrupt):
    _run([videos, "--out", str(out)])
  monkeypatch.setattr(frame_formats, "write_mmaction", real_write)
  done_first = calls[0]
  assert os.path.isdir(out / done_first)
  assert not os.path.exists(out / calls[1])  # never half-visible

  # A temp folder of a dead process from an earlier crash is cleaned too.
  stale = out / ".stale.tmp-999999999"
  stale.mkdir()
  rc = _run([videos, "--out", str(out)])
  text = capsys.readouterr().out
  assert "done 1, skipped (already done) 1, failed 1" in text
  assert rc == 1
  assert os.path.isdir(out / calls[1])
  assert not stale.exists()
  leftovers = [n for n in os.listdir(out) if ".tmp-" in n]
  assert leftovers == []


def test_module_entry_point():
  import subprocess
  import sys

  r = subprocess.run(
    [sys.executable, "-m", "jaxact.tools.extract_flow", "--help"],
    capture_output=True,
    text=True,
    timeout=120,
    check=False,
  )
  assert r.returncode == 0 and "--short-side" in r.stdout


def test_cli_errors(tmp_path, capsys):
  assert (
    extract_flow.main(
      [str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "o"), "--no-progress"]
    )
    == 2
  )
  assert "input not found" in capsys.readouterr().err
  assert (
    extract_flow.main(
      [str(tmp_path), "--out", str(tmp_path / "o"), "--param", "warp=3", "--no-progress"]
    )
    == 2
  )
  assert "unknown parameter" in capsys.readouterr().err


def test_cli_writes_the_bytes_of_a_dataset_build(inputs, tmp_path):
  """Same frames → byte-identical RGB and flow JPEGs from the builder and the CLI."""
  manual = inputs / "videos"  # one class folder, "walk" (broken.mp4 is skipped by both)
  info = build.ensure_built(
    "video_folder", tmp_path / "tfds", manual, short_side=32, flow_preset="fast", flow_batch=4
  )
  assert info.split_sizes == {"train": 2}
  out = tmp_path / "out"
  params = [a for k, v in FAST.items() for a in ("--param", f"{k}={v}")]
  rc = extract_flow.main(
    [str(manual), "--out", str(out), "--short-side", "32", "--no-progress", "--batch", "3"] + params
  )
  assert rc == 1  # broken.mp4
  source = datasets.data_source("video_folder", "train", tmp_path / "tfds", info.config)
  compared = 0
  for i in range(len(source)):
    ex = source[i]
    folder = out / os.path.splitext(ex["video_id"].decode())[0]
    n = int(ex["num_frames"])
    assert len(ex["flow_x"]) == n - 1 >= 1
    for key, pattern, count in (
      ("frames", "img_{:05d}.jpg", n),
      ("flow_x", "flow_x_{:05d}.jpg", n - 1),
      ("flow_y", "flow_y_{:05d}.jpg", n - 1),
    ):
      for j in range(count):
        assert (folder / pattern.format(j + 1)).read_bytes() == ex[key][j], (folder, key, j)
        compared += 1
  assert compared == (6 + 2 * 5) + (4 + 2 * 3)  # walk/a: 6 frames, walk/b: 4


def test_default_batch_is_chosen_by_device_kind(inputs, monkeypatch, capsys):
  """Without --batch the CLI takes ``jaxact.flow.auto_batch_size`` (1 on CPU)."""
  used = []

  class Spy(batching.FlowBatcher):
    def __init__(self, batch_size=None, **kwargs):
      super().__init__(batch_size, **kwargs)
      used.append(self.batch_size)

  monkeypatch.setattr(extract_flow, "FlowBatcher", Spy)
  args = [str(inputs / "frames" / "c"), "--out", str(inputs / "out"), "--no-progress"]
  assert extract_flow.main(args + PARAM_ARGS) == 0
  assert "done 1" in capsys.readouterr().out
  assert used == [batching.auto_batch_size()]
  monkeypatch.setattr(batching, "auto_batch_size", lambda platform=None: 4)
  monkeypatch.setattr(extract_flow, "auto_batch_size", batching.auto_batch_size)
  assert extract_flow.main(args[:2] + [str(inputs / "out4"), "--no-progress"] + PARAM_ARGS) == 0
  assert used[1:] == [4]
