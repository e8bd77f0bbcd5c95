"""Video decoding with PyAV: files or frame folders to RGB uint8 arrays.

Every failure a user can hit (missing file, corrupt or empty video, absurd
size) raises :class:`VideoDecodeError`, a ``ValueError`` that names the path
and the reason in one line.

What the dataset builders and the flow extraction CLI decode goes through
:func:`read_frames` (a video file or a frame folder, truncated to
``max_frames``, at least ``MIN_FRAMES`` frames so there is a flow) or
:func:`read_frames_or_skip` (the same, returning the reason to skip instead of
raising). ``VIDEO_EXTS`` / ``IMAGE_EXTS`` are the one list of file types both
search for.

Example::

  frames = read_video('v_ApplyEyeMakeup_g01_c01.avi', short_side=256)
  frames.shape  # (T, 256, 340, 3), uint8
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence

import av
import numpy as np
from PIL import Image

# Guards against inputs that would exhaust memory or hang a pipeline.
MAX_SIDE = 8192
MAX_FRAMES = 100_000
MAX_BYTES = 8 * 1024**3  # decoded uint8 frames held in memory at once

# File types searched for as videos and as frames (lower-case suffixes).
VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".3gp")
IMAGE_EXTS = (".jpg", ".jpeg", ".png")
# Flow pairs consecutive frames: a video needs at least this many.
MIN_FRAMES = 2


class VideoDecodeError(ValueError):
  """A video or frame folder could not be decoded.

  Attributes:
    path: the offending file or folder.
    reason: a short human-readable reason.
  """

  def __init__(self, path: str | os.PathLike, reason: str):
    self.path = os.fspath(path)
    self.reason = reason
    super().__init__(f"{self.path}: {reason}")


def resized_size(height: int, width: int, short_side: int | None) -> tuple[int, int]:
  """Returns ``(new_h, new_w)`` with the short side ``short_side``.

  The aspect ratio is kept (long side rounded to the nearest integer); sizes
  need not be even. ``short_side=None`` keeps the size.
  """
  if short_side is None:
    return height, width
  if short_side <= 0:
    raise ValueError(f"short_side must be positive, got {short_side}")
  if height <= width:
    return short_side, max(1, int(width * short_side / height + 0.5))
  return max(1, int(height * short_side / width + 0.5)), short_side


def resize_short_side(frame: np.ndarray, short_side: int | None) -> np.ndarray:
  """Resizes one ``(H, W, 3)`` uint8 frame so its short side is ``short_side``.

  Bilinear with antialiasing when shrinking (Pillow), so flow computed on the
  result does not alias.
  """
  h, w = frame.shape[:2]
  nh, nw = resized_size(h, w, short_side)
  if (nh, nw) == (h, w):
    return frame
  img = Image.fromarray(frame)
  return np.asarray(img.resize((nw, nh), Image.Resampling.BILINEAR))


def _check_size(
  path, height: int, width: int, short_side: int | None, n_frames: int, max_bytes: int
) -> None:
  if height <= 0 or width <= 0:
    raise VideoDecodeError(path, f"invalid frame size {width}x{height}")
  if max(height, width) > MAX_SIDE:
    raise VideoDecodeError(path, f"frame size {width}x{height} exceeds the {MAX_SIDE} px limit")
  if n_frames > MAX_FRAMES:
    raise VideoDecodeError(
      path,
      f"{n_frames} frames exceed the {MAX_FRAMES} frame limit; pass max_frames to read a prefix",
    )
  nh, nw = resized_size(height, width, short_side)
  need = n_frames * nh * nw * 3
  if need > max_bytes:
    raise VideoDecodeError(
      path,
      f"{n_frames} frames of {nw}x{nh} need {need / 2**30:.1f} GiB, "
      f"over the {max_bytes / 2**30:.1f} GiB budget (max_bytes); pass "
      "short_side or max_frames",
    )


def iter_video(
  path: str | os.PathLike,
  *,
  short_side: int | None = None,
  max_frames: int | None = None,
  max_bytes: int = MAX_BYTES,
) -> Iterator[np.ndarray]:
  """Yields the frames of a video file as RGB uint8 ``(H, W, 3)`` arrays.

  Args:
    path: video file (any container/codec FFmpeg in the PyAV wheel reads).
    short_side: resize so the short side has this many pixels (aspect kept).
    max_frames: stop after this many frames.
    max_bytes: memory budget for all decoded frames (checked against the
      container's frame count before decoding, and while decoding).

  Raises:
    VideoDecodeError: missing, unreadable, corrupt or absurdly large input.
      Decoding errors part-way raise too: frames are never dropped silently.
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise VideoDecodeError(path, "no such file")
  if os.path.isdir(path):
    raise VideoDecodeError(path, "is a directory (use read_frame_folder)")
  try:
    container = av.open(path, mode="r")
  except (av.FFmpegError, OSError) as e:
    raise VideoDecodeError(path, f"cannot open: {e}") from None
  with container:
    if not container.streams.video:
      raise VideoDecodeError(path, "no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    limit = MAX_FRAMES if max_frames is None else max_frames
    expected = stream.frames or 0
    if max_frames is not None:
      expected = min(expected, max_frames)
    ctx = stream.codec_context
    if ctx.width and ctx.height:
      _check_size(path, ctx.height, ctx.width, short_side, expected, max_bytes)
    count = 0
    try:
      for frame in container.decode(stream):
        if count >= limit:
          if max_frames is None:
            raise VideoDecodeError(
              path, f"more than {MAX_FRAMES} frames; pass max_frames to read a prefix"
            )
          break
        arr = frame.to_ndarray(format="rgb24")
        if count == 0:
          _check_size(path, arr.shape[0], arr.shape[1], short_side, 1, max_bytes)
        count += 1
        h, w = resized_size(arr.shape[0], arr.shape[1], short_side)
        if count * h * w * 3 > max_bytes:
          _check_size(path, arr.shape[0], arr.shape[1], short_side, count, max_bytes)
        yield resize_short_side(arr, short_side)
    except (av.FFmpegError, OSError, ValueError) as e:
      if isinstance(e, VideoDecodeError):
        raise
      raise VideoDecodeError(path, f"decoding failed after {count} frames: {e}") from None
    if count == 0:
      raise VideoDecodeError(path, "no decodable frames")


def read_video(
  path: str | os.PathLike,
  *,
  short_side: int | None = None,
  max_frames: int | None = None,
  max_bytes: int = MAX_BYTES,
) -> np.ndarray:
  """Decodes a whole video file to RGB frames.

  Args:
    path: video file.
    short_side: resize so the short side has this many pixels (aspect kept).
    max_frames: read at most this many frames from the start.
    max_bytes: memory budget for the decoded frames.

  Returns:
    uint8 array ``(T, H, W, 3)``, T >= 1.

  Raises:
    VideoDecodeError: missing, unreadable, corrupt, empty or too large input.
  """
  frames = list(iter_video(path, short_side=short_side, max_frames=max_frames, max_bytes=max_bytes))
  return np.stack(frames)


def _natural_key(name: str):
  return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def list_frame_files(path: str | os.PathLike) -> list[str]:
  """Sorted RGB frame files of a folder: ``img_*.jpg`` if any, else all images.

  Sorting is numeric-aware (``img_2`` before ``img_10``). Flow images
  (``flow_x_*``, ``flow_y_*``) are never listed.
  """
  path = os.fspath(path)
  names = [n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTS)]
  imgs = [n for n in names if n.startswith("img_")]
  if not imgs:
    imgs = [n for n in names if not n.startswith(("flow_x", "flow_y"))]
  return [os.path.join(path, n) for n in sorted(imgs, key=_natural_key)]


def read_frame_folder(
  path: str | os.PathLike, *, short_side: int | None = None, max_bytes: int = MAX_BYTES
) -> np.ndarray:
  """Reads a folder of frames (``img_00001.jpg``… or any ``*.jpg``/``*.png``).

  Args:
    path: folder holding the frames.
    short_side: resize so the short side has this many pixels (aspect kept).
    max_bytes: memory budget for the decoded frames.

  Returns:
    uint8 array ``(T, H, W, 3)``, RGB.

  Raises:
    VideoDecodeError: missing folder, no frames, unreadable image, frames of
      different sizes, or too large.
  """
  path = os.fspath(path)
  if not os.path.isdir(path):
    raise VideoDecodeError(path, "no such frame folder")
  files = list_frame_files(path)
  if not files:
    raise VideoDecodeError(path, "no img_*.jpg / *.jpg / *.png frames")
  frames = []
  frames_hw = None
  for i, f in enumerate(files):
    try:
      with Image.open(f) as img:
        arr = np.asarray(img.convert("RGB"))
    except (OSError, ValueError) as e:
      raise VideoDecodeError(f, f"unreadable image: {e}") from None
    if i == 0:
      _check_size(path, arr.shape[0], arr.shape[1], short_side, len(files), max_bytes)
      frames_hw = arr.shape[:2]
    elif arr.shape[:2] != frames_hw:
      raise VideoDecodeError(
        f,
        f"size {arr.shape[1]}x{arr.shape[0]} differs from the first "
        f"frame ({frames_hw[1]}x{frames_hw[0]})",
      )
    frames.append(resize_short_side(arr, short_side))
  return np.stack(frames)


def is_frame_folder(path: str | os.PathLike) -> bool:
  """Whether ``path`` is a folder holding image files (a video as frames)."""
  path = os.fspath(path)
  return os.path.isdir(path) and any(n.lower().endswith(IMAGE_EXTS) for n in os.listdir(path))


def read_frames(
  path: str | os.PathLike, *, short_side: int | None = None, max_frames: int | None = None
) -> np.ndarray:
  """Decodes a video file or a frame folder into frames to compute flow on.

  Args:
    path: a video file, or a folder of frames (:func:`read_frame_folder`).
    short_side: resize so the short side has this many pixels (aspect kept).
    max_frames: keep at most this many frames from the start (None: all).

  Returns:
    uint8 ``(T, H, W, 3)`` RGB, ``MIN_FRAMES <= T``.

  Raises:
    VideoDecodeError: missing, unreadable, too large, or fewer than
      ``MIN_FRAMES`` frames.
  """
  path = os.fspath(path)
  if os.path.isdir(path):
    frames = read_frame_folder(path, short_side=short_side)
    if max_frames is not None:
      frames = frames[:max_frames]
  else:
    frames = read_video(path, short_side=short_side, max_frames=max_frames)
  return require_flow_pair(path, frames)


def require_flow_pair(name: str | os.PathLike, frames: np.ndarray) -> np.ndarray:
  """Returns ``frames`` if they hold at least ``MIN_FRAMES`` frames.

  Raises:
    VideoDecodeError: (naming ``name``) fewer frames, so no flow.
  """
  if len(frames) < MIN_FRAMES:
    raise VideoDecodeError(name, f"{len(frames)} frame(s): need at least {MIN_FRAMES} for flow")
  return frames


def read_frames_or_skip(
  path: str | os.PathLike, *, short_side: int | None = None, max_frames: int | None = None
) -> tuple[np.ndarray | None, str | None]:
  """:func:`read_frames` that reports instead of raising.

  Returns:
    ``(frames, None)``, or ``(None, reason)`` for an input to skip:
    ``'missing'`` when ``path`` does not exist, else the decoding error's
    reason.
  """
  if not os.path.exists(path):
    return None, "missing"
  try:
    return read_frames(path, short_side=short_side, max_frames=max_frames), None
  except VideoDecodeError as e:
    return None, e.reason
  except OSError as e:
    return None, str(e)


def write_video(
  path: str | os.PathLike,
  frames: Sequence[np.ndarray] | np.ndarray,
  fps: int = 25,
  *,
  codec: str | None = None,
  quality: str = "high",
) -> str:
  """Encodes RGB uint8 frames to a video file (for test fixtures and demos).

  Args:
    path: output file; the container follows the extension (``.mp4``,
      ``.avi``, ``.mkv``).
    frames: ``(T, H, W, 3)`` uint8 RGB.
    fps: frame rate.
    codec: FFmpeg encoder; default ``libx264`` when the PyAV wheel has it,
      else ``mpeg4``.
    quality: ``'high'`` (near-lossless, 4:4:4 with libx264 so odd sizes work)
      or ``'normal'`` (typical 4:2:0 settings; even sizes needed).

  Returns:
    The codec used.
  """
  frames = np.asarray(frames)
  if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
    raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
  if codec is None:
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
  _, h, w, _ = frames.shape
  with av.open(os.fspath(path), mode="w") as out:
    stream = out.add_stream(codec, rate=fps)
    stream.width, stream.height = w, h
    if codec == "libx264" and quality == "high":
      stream.pix_fmt = "yuv444p"
      stream.options = {"crf": "0", "preset": "ultrafast"}
    else:
      stream.pix_fmt = "yuv420p"
      if codec == "libx264":
        stream.options = {"crf": "18", "preset": "fast"}
      elif codec == "mpeg4":
        stream.options = {"qscale": "2"} if quality == "high" else {}
        stream.bit_rate = 8_000_000
    for arr in frames:
      frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
      for packet in stream.encode(frame):
        out.mux(packet)
    for packet in stream.encode():
      out.mux(packet)
  return codec
