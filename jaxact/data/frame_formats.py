"""On-disk formats for extracted frames and flow (``python -m jaxact.tools.extract_flow``).

``mmaction``: one folder per video, the layout MMAction2/denseflow users
expect: ``img_00001.jpg … img_{n}.jpg`` (RGB) and ``flow_x_00001.jpg …
flow_x_{n-1}.jpg``, ``flow_y_…`` (uint8 flow, bound 20 → 128 = no motion).
n frames give n − 1 flows; nothing is dropped.

Every JPEG is encoded by :mod:`jaxact.data.jpeg`, so an image here holds the
same bytes as the same frame or flow component in a jaxact TFDS dataset built
with the same JPEG quality.

``compact``: one ``<video>.npz`` per video: ``flow`` uint8 ``(n-1, H, W, 2)``
stored losslessly (zlib), RGB frames as concatenated JPEG bytes
(``rgb_jpeg`` + ``rgb_offsets``), and ``bound``. About the size of the JPEG
folders in a single file, with exact flow values. Read with
:func:`load_compact`.

Writers write to a temporary name and rename when complete, so an output that
exists is finished (this is what makes extraction resumable).
"""

from __future__ import annotations

import itertools
import os
import shutil

import numpy as np

from jaxact.data import jpeg

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


def _tmp_name(final: str) -> str:
  head, tail = os.path.split(final)
  return os.path.join(head, f".{tail}.tmp-{os.getpid()}")


def _write_bytes(path: str, data: bytes) -> None:
  with open(path, "wb") as fh:
    fh.write(data)


def write_mmaction(
  out_dir: str, name: str, frames: np.ndarray, flow: np.ndarray, quality: int = jpeg.RGB_QUALITY
) -> str:
  """Writes ``img_*.jpg`` / ``flow_x_*.jpg`` / ``flow_y_*.jpg`` for a video.

  Args:
    out_dir: root output folder.
    name: video name (may contain ``/`` for class sub-folders).
    frames: ``(n, H, W, 3)`` uint8 RGB.
    flow: ``(n - 1, H, W, 2)`` uint8 quantised flow.
    quality: JPEG quality of the RGB frames and the flow components.

  Returns:
    The video's folder.
  """
  final = output_path(out_dir, name, "mmaction")
  os.makedirs(os.path.dirname(final) or ".", exist_ok=True)
  tmp = _tmp_name(final)
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  for i, f in enumerate(frames, start=1):
    _write_bytes(os.path.join(tmp, f"img_{i:05d}.jpg"), jpeg.encode_rgb(f, quality))
  for i, f in enumerate(flow, start=1):
    _write_bytes(os.path.join(tmp, f"flow_x_{i:05d}.jpg"), jpeg.encode_flow(f[..., 0], quality))
    _write_bytes(os.path.join(tmp, f"flow_y_{i:05d}.jpg"), jpeg.encode_flow(f[..., 1], quality))
  os.replace(tmp, final)
  return final


def write_compact(
  out_dir: str,
  name: str,
  frames: np.ndarray,
  flow: np.ndarray,
  bound: float,
  quality: int = jpeg.RGB_QUALITY,
) -> str:
  """Writes ``<name>.npz`` (see module docstring); returns its path."""
  final = output_path(out_dir, name, "compact")
  os.makedirs(os.path.dirname(final) or ".", exist_ok=True)
  jpegs = [jpeg.encode_rgb(f, quality) for f in frames]
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
    rgb = np.stack([jpeg.decode(data[a:b]) for a, b in itertools.pairwise(off)])
    return {"rgb": rgb, "flow": z["flow"], "bound": float(z["bound"])}


def load_mmaction(folder: str) -> dict[str, np.ndarray]:
  """Reads an mmaction folder: ``{'rgb': (n,H,W,3), 'flow': (n-1,H,W,2)}``."""
  names = sorted(os.listdir(folder))

  def read(prefix):
    files = [n for n in names if n.startswith(prefix)]
    out = []
    for n in files:
      with open(os.path.join(folder, n), "rb") as fh:
        out.append(jpeg.decode(fh.read()))
    return out

  rgb = np.stack(read("img_"))
  fx, fy = read("flow_x_"), read("flow_y_")
  flow = (
    np.stack([np.stack(fx), np.stack(fy)], -1)
    if fx
    else np.zeros((0,) + rgb.shape[1:3] + (2,), np.uint8)
  )
  return {"rgb": rgb, "flow": flow}
