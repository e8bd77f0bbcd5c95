"""On-disk formats for extracted frames and flow.

``mmaction``: one folder per video, the layout MMAction2/denseflow users
expect: ``img_00001.jpg … img_{n}.jpg`` (RGB) and ``flow_x_00001.jpg …
flow_x_{n-1}.jpg``, ``flow_y_…`` (uint8 flow, bound 20 → 128 = no motion).
n frames give n − 1 flows; nothing is dropped.

``compact``: one ``<video>.npz`` per video: ``flow`` uint8 ``(n-1, H, W, 2)``
stored losslessly (zlib), RGB frames as concatenated JPEG bytes
(``rgb_jpeg`` + ``rgb_offsets``), and ``bound``. About the size of the JPEG
folders in a single file, with exact flow values. Read with
:func:`load_compact`.

Writers write to a temporary name and rename when complete, so an output that
exists is finished (this is what makes extraction resumable).
"""

from __future__ import annotations

import io
import itertools
import os
import shutil

import numpy as np
from PIL import Image

FORMATS = ("mmaction", "compact")


def output_path(out_dir: str, name: str, fmt: str) -> str:
  """Final path of a video's output in format ``fmt``."""
  if fmt == "mmaction":
    return os.path.join(out_dir, name)
  if fmt == "compact":
    return os.path.join(out_dir, name + ".npz")
  raise ValueError(f"unknown format {fmt!r}; known: {FORMATS}")


def is_done(out_dir: str, name: str, fmts: tuple[str, ...]) -> bool:
  return all(os.path.exists(output_path(out_dir, name, f)) for f in fmts)


def _jpeg(arr: np.ndarray, quality: int) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
  return buf.getvalue()


def _tmp_name(final: str) -> str:
  head, tail = os.path.split(final)
  return os.path.join(head, f".{tail}.tmp-{os.getpid()}")


def write_mmaction(
  out_dir: str, name: str, frames: np.ndarray, flow: np.ndarray, quality: int = 95
) -> str:
  """Writes ``img_*.jpg`` / ``flow_x_*.jpg`` / ``flow_y_*.jpg`` for a video.

  Args:
    out_dir: root output folder.
    name: video name (may contain ``/`` for class sub-folders).
    frames: ``(n, H, W, 3)`` uint8 RGB.
    flow: ``(n - 1, H, W, 2)`` uint8 quantised flow.
    quality: JPEG quality.

  Returns:
    The video's folder.
  """
  final = output_path(out_dir, name, "mmaction")
  os.makedirs(os.path.dirname(final) or ".", exist_ok=True)
  tmp = _tmp_name(final)
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  for i, f in enumerate(frames, start=1):
    Image.fromarray(f).save(os.path.join(tmp, f"img_{i:05d}.jpg"), quality=quality)
  for i, f in enumerate(flow, start=1):
    Image.fromarray(f[..., 0]).save(os.path.join(tmp, f"flow_x_{i:05d}.jpg"), quality=quality)
    Image.fromarray(f[..., 1]).save(os.path.join(tmp, f"flow_y_{i:05d}.jpg"), quality=quality)
  os.replace(tmp, final)
  return final


def write_compact(
  out_dir: str, name: str, frames: np.ndarray, flow: np.ndarray, bound: float, quality: int = 95
) -> str:
  """Writes ``<name>.npz`` (see module docstring); returns its path."""
  final = output_path(out_dir, name, "compact")
  os.makedirs(os.path.dirname(final) or ".", exist_ok=True)
  jpegs = [_jpeg(f, quality) for f in frames]
  offsets = np.cumsum([0] + [len(j) for j in jpegs]).astype(np.int64)
  tmp = _tmp_name(final)
  with open(tmp, "wb") as fh:
    np.savez_compressed(
      fh,
      flow=flow,
      rgb_jpeg=np.frombuffer(b"".join(jpegs), np.uint8),
      rgb_offsets=offsets,
      bound=np.float32(bound),
    )
  os.replace(tmp, final)
  return final


def load_compact(path: str) -> dict[str, np.ndarray]:
  """Reads a compact file: ``{'rgb': (n,H,W,3), 'flow': (n-1,H,W,2), 'bound'}``."""
  with np.load(path) as z:
    data = z["rgb_jpeg"].tobytes()
    off = z["rgb_offsets"]
    rgb = np.stack(
      [
        np.asarray(Image.open(io.BytesIO(data[a:b])).convert("RGB"))
        for a, b in itertools.pairwise(off)
      ]
    )
    return {"rgb": rgb, "flow": z["flow"], "bound": float(z["bound"])}


def load_mmaction(folder: str) -> dict[str, np.ndarray]:
  """Reads an mmaction folder: ``{'rgb': (n,H,W,3), 'flow': (n-1,H,W,2)}``."""
  names = sorted(os.listdir(folder))

  def read(prefix):
    files = [n for n in names if n.startswith(prefix)]
    return [np.asarray(Image.open(os.path.join(folder, n))) for n in files]

  rgb = np.stack(read("img_"))
  fx, fy = read("flow_x_"), read("flow_y_")
  flow = (
    np.stack([np.stack(fx), np.stack(fy)], -1)
    if fx
    else np.zeros((0,) + rgb.shape[1:3] + (2,), np.uint8)
  )
  return {"rgb": rgb, "flow": flow}
