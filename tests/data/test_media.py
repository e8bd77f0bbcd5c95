"""The media layer: JPEG settings (data.jpeg) and decode-or-skip (data.video.read_frames)."""

import io

import numpy as np
import pytest
from PIL import Image

from jaxact.data import build, jpeg, video
from jaxact.data.datasets import base
from jaxact.flow import batching


def _frames(t, h=20, w=28):
  rng = np.random.default_rng(t)
  return rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def test_jpeg_settings_are_the_builders_and_pinned():
  """RGB: quality 90, 4:4:4; flow: quality 90 grayscale — what datasets hold."""
  rgb = _frames(1)[0]
  plane = rgb[..., 0]
  assert (jpeg.RGB_QUALITY, jpeg.FLOW_QUALITY) == (90, 90)
  assert base.VideoConfig(name="x").jpeg_quality == jpeg.RGB_QUALITY

  def pil(arr, **kw):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", **kw)
    return buf.getvalue()

  assert jpeg.encode_rgb(rgb) == pil(rgb, quality=90, subsampling=0)
  assert jpeg.encode_rgb(rgb) != pil(rgb, quality=90)  # Pillow's default is 4:2:0
  assert jpeg.encode_flow(plane) == pil(plane, quality=90, subsampling=0)
  with Image.open(io.BytesIO(jpeg.encode_rgb(rgb))) as im:
    assert im.mode == "RGB" and im.layer[0][1:3] == im.layer[1][1:3] == (1, 1)  # no subsampling
  assert jpeg.decode(jpeg.encode_flow(plane)).shape == plane.shape
  assert jpeg.decode(jpeg.encode_rgb(rgb, quality=100)).shape == rgb.shape
  with pytest.raises(ValueError, match="RGB frame"):
    jpeg.encode_rgb(plane)
  with pytest.raises(ValueError, match="flow component"):
    jpeg.encode_flow(rgb)


def test_encode_example_uses_the_jpeg_settings():
  frames = _frames(3)
  flow = _frames(2)[..., :2]
  ex = base.encode_example(frames, flow, label=1, video_id="v", quality=jpeg.RGB_QUALITY)
  assert ex["frames"] == [jpeg.encode_rgb(f) for f in frames]
  assert ex["flow_x"] == [jpeg.encode_flow(f[..., 0]) for f in flow]
  assert ex["flow_y"] == [jpeg.encode_flow(f[..., 1]) for f in flow]


def test_read_frames_video_and_folder_truncate_and_reject_short(tmp_path):
  frames = _frames(5, 24, 32)
  video.write_video(tmp_path / "v.mp4", frames)
  folder = tmp_path / "clip"
  folder.mkdir()
  for i, f in enumerate(frames, start=1):
    Image.fromarray(f).save(folder / f"img_{i:05d}.png")
  assert video.is_frame_folder(folder) and not video.is_frame_folder(tmp_path / "v.mp4")
  assert video.read_frames(tmp_path / "v.mp4").shape == (5, 24, 32, 3)
  assert video.read_frames(tmp_path / "v.mp4", max_frames=3).shape == (3, 24, 32, 3)
  np.testing.assert_array_equal(video.read_frames(folder, max_frames=4), frames[:4])
  assert video.read_frames(folder, short_side=12).shape == (5, 12, 16, 3)
  with pytest.raises(video.VideoDecodeError, match="1 frame\\(s\\): need at least 2 for flow"):
    video.read_frames(folder, max_frames=1)
  with pytest.raises(video.VideoDecodeError, match="1 frame"):
    video.read_frames(tmp_path / "v.mp4", max_frames=1)


def test_read_frames_or_skip_reasons(tmp_path):
  video.write_video(tmp_path / "one.mp4", _frames(1, 16, 16))
  (tmp_path / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 100)
  assert video.read_frames_or_skip(tmp_path / "nope.mp4") == (None, "missing")
  frames, short = video.read_frames_or_skip(tmp_path / "one.mp4")
  assert frames is None and short == "1 frame(s): need at least 2 for flow"
  frames, reason = video.read_frames_or_skip(tmp_path / "bad.mp4")
  assert frames is None and reason
  # The builders' per-video path (Beam workers) skips the same way.
  encoder = base.VideoEncoder(
    short_side=16, max_frames=0, quality=90, flow_batch=0, flow_preset="fast"
  )
  assert encoder("k", str(tmp_path / "nope.mp4"), 0) == (None, "missing")
  assert encoder("k", str(tmp_path / "one.mp4"), 0) == (None, short)
  assert encoder("k", str(tmp_path / "bad.mp4"), 0) == (None, reason)
  assert encoder.decode(_frames(1)) == (None, short)


def test_video_exts_cover_both_former_lists():
  for ext in (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".3gp"):
    assert ext in video.VIDEO_EXTS


def test_build_set_uses_the_one_key_value_parser(tmp_path, capsys):
  with pytest.raises(SystemExit):
    build.main(["synthetic_motion", "--set", "clips", "--data_dir", str(tmp_path)])
  assert "--set: expected KEY=VALUE, got 'clips'" in capsys.readouterr().err


def test_per_video_flow_equals_the_batched_builder_flow():
  """VideoEncoder.flow (flow_batch 0, Beam workers) and the builder's batched
  path (FlowBatcher across videos) are the one batcher: same uint8 flow."""
  frames = np.repeat(_frames(1, 32, 32), 4, axis=0)
  frames[1:] = np.roll(frames[1:], 1, axis=2)
  frames[3] = np.roll(frames[3], 2, axis=1)
  preset = base.FLOW_PRESETS["fast"]
  whole = base.VideoEncoder(
    short_side=16, max_frames=0, quality=90, flow_batch=0, flow_preset="fast"
  ).flow(frames)
  (_, _, batched), *_ = batching.iter_flows([("v", frames)], batch_size=2, **preset)
  assert whole.shape == (3, 32, 32, 2) and whole.dtype == np.uint8
  np.testing.assert_array_equal(whole, batched)
