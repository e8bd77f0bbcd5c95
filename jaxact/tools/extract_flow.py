"""Extract RGB frames and TV-L1 flow from videos: ``python -m jaxact.tools.extract_flow``.

Usage::

  python -m jaxact.tools.extract_flow /data/UCF101/videos --out /data/ucf101_frames \\
      --short-side 256 --batch 64 --format mmaction

INPUT may be video files, frame folders (``img_*.jpg`` / ``*.jpg`` /
``*.png``) or folders searched recursively for videos (output names keep the
sub-folders, e.g. ``ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01``). Decoding is
that of the dataset builders (``jaxact.data.video.read_frames``), frame pairs
from many videos are batched together on the accelerator by the builders' one
batcher (``jaxact.flow.FlowBatcher``), and images are encoded with their JPEG
settings (``jaxact.data.jpeg``): for the same frames and JPEG quality, the
files hold the bytes a jaxact TFDS dataset stores. Finished videos are
skipped when the command is run again (outputs appear atomically), and
unreadable videos are reported, logged to ``OUT/extract_failures.jsonl`` and
skipped without stopping the run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from jaxact import keyvalue
from jaxact.data import frame_formats, jpeg
from jaxact.data import video as video_io
from jaxact.flow.batching import FlowBatcher, auto_batch_size
from jaxact.flow.cache import DEFAULT_CACHE_DIR, enable_compilation_cache
from jaxact.flow.quantize import DEFAULT_BOUND

FAILURES_LOG = "extract_failures.jsonl"


@dataclasses.dataclass(frozen=True)
class Source:
  """One input: a video file or a frame folder, and its output name."""

  path: str
  name: str


def find_sources(inputs: Sequence[str]) -> list[Source]:
  """Expands INPUT arguments into videos / frame folders with unique names.

  Raises:
    FileNotFoundError: an input does not exist.
    ValueError: two inputs would write to the same output name.
  """
  sources = []
  for inp in inputs:
    inp = os.path.normpath(inp)
    if os.path.isfile(inp):
      sources.append(Source(inp, os.path.splitext(os.path.basename(inp))[0]))
    elif os.path.isdir(inp):
      if video_io.is_frame_folder(inp):
        sources.append(Source(inp, os.path.basename(inp)))
        continue
      for root, dirs, files in os.walk(inp):
        dirs.sort()
        rel = os.path.relpath(root, inp)
        if root != inp and video_io.is_frame_folder(root):
          sources.append(Source(root, rel))
          dirs[:] = []
          continue
        for f in sorted(files):
          if f.lower().endswith(video_io.VIDEO_EXTS):
            name = os.path.splitext(f)[0]
            if rel != ".":
              name = os.path.join(rel, name)
            sources.append(Source(os.path.join(root, f), name))
    else:
      raise FileNotFoundError(f"input not found: {inp}")
  seen: dict[str, str] = {}
  for s in sources:
    if s.name in seen:
      raise ValueError(f"two inputs map to the output name {s.name!r}: {seen[s.name]} and {s.path}")
    seen[s.name] = s.path
  return sources


def _decoded(
  sources: Sequence[Source], short_side: int | None, max_frames: int | None, workers: int
) -> Iterator[tuple[Source, np.ndarray | None, str | None]]:
  """Yields ``(source, frames, None)`` or ``(source, None, reason)`` in order,
  decoding ahead (``jaxact.data.video.read_frames_or_skip``)."""

  def decode(src):
    return video_io.read_frames_or_skip(src.path, short_side=short_side, max_frames=max_frames)

  with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
    futures: list = []
    it = iter(sources)
    ahead = max(2, 2 * workers)
    for src in it:
      futures.append((src, pool.submit(decode, src)))
      if len(futures) >= ahead:
        break
    while futures:
      src, fut = futures.pop(0)
      nxt = next(it, None)
      if nxt is not None:
        futures.append((nxt, pool.submit(decode, nxt)))
      frames, reason = fut.result()
      yield src, frames, reason


def _clean_stale_tmp(out_dir: str) -> None:
  """Removes temporary outputs left by a run that died (this machine)."""
  for root, dirs, files in os.walk(out_dir):
    for n in list(dirs) + files:
      if n.startswith(".") and ".tmp-" in n:
        pid = n.rsplit(".tmp-", 1)[1]
        if pid.isdigit() and not _pid_alive(int(pid)):
          p = os.path.join(root, n)
          shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
          if n in dirs:
            dirs.remove(n)


def _pid_alive(pid: int) -> bool:
  if pid == os.getpid():
    return True
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


@dataclasses.dataclass
class Summary:
  done: int = 0
  skipped: int = 0
  failed: int = 0
  pairs: int = 0
  seconds: float = 0.0
  failures: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def extract(
  inputs: Sequence[str],
  out_dir: str,
  *,
  short_side: int | None = None,
  batch_size: int | None = None,
  fmts: Iterable[str] = ("mmaction",),
  bound: float = DEFAULT_BOUND,
  jpeg_quality: int = jpeg.RGB_QUALITY,
  max_frames: int | None = None,
  workers: int = 2,
  progress: bool = True,
  tvl1_params: dict[str, Any] | None = None,
) -> Summary:
  """Extracts frames and quantised TV-L1 flow for every input.

  Args:
    inputs: video files, frame folders, or folders to search for videos.
    out_dir: output root.
    short_side: resize frames so the short side has this many pixels.
    batch_size: frame pairs per device call, mixed across videos (None:
      by device kind, ``jaxact.flow.auto_batch_size``).
    fmts: any of ``'mmaction'``, ``'compact'`` (see
      :mod:`jaxact.data.frame_formats`).
    bound: flow quantisation bound (px).
    jpeg_quality: JPEG quality of the written RGB frames and flow components
      (default: ``jaxact.data.jpeg``'s, that of the dataset builders).
    max_frames: read at most this many frames per video.
    workers: decoding threads.
    progress: show a progress bar.
    tvl1_params: TV-L1 parameters (OpenCV names).

  Returns:
    A :class:`Summary` (counts, failures with reasons).
  """
  fmts = tuple(fmts)
  for f in fmts:
    frame_formats.output_path(out_dir, "x", f)  # validates the format name
  os.makedirs(out_dir, exist_ok=True)
  _clean_stale_tmp(out_dir)
  sources = find_sources(inputs)
  summary = Summary()
  todo = []
  for s in sources:
    if frame_formats.is_done(out_dir, s.name, fmts):
      summary.skipped += 1
    else:
      todo.append(s)
  batcher = FlowBatcher(batch_size=batch_size, bound=bound, **(tvl1_params or {}))
  bar = tqdm(total=len(todo), unit="video", disable=not progress, desc="flow", dynamic_ncols=True)
  start = time.time()

  def save(finished):
    for src, frames, flow in finished:
      if "mmaction" in fmts:
        frame_formats.write_mmaction(out_dir, src.name, frames, flow, jpeg_quality)
      if "compact" in fmts:
        frame_formats.write_compact(out_dir, src.name, frames, flow, bound, jpeg_quality)
      summary.done += 1
      bar.update(1)
    elapsed = max(time.time() - start, 1e-9)
    bar.set_postfix(pairs_per_s=f"{batcher.pairs_done / elapsed:.1f}", failed=summary.failed)

  log_path = os.path.join(out_dir, FAILURES_LOG)
  for src, frames, reason in _decoded(todo, short_side, max_frames, workers):
    if frames is None:
      summary.failed += 1
      summary.failures.append((src.path, reason))
      bar.write(f"skipped {src.path}: {reason}")
      with open(log_path, "a") as fh:
        fh.write(
          json.dumps({"path": src.path, "name": src.name, "reason": reason, "time": time.time()})
          + "\n"
        )
      bar.update(1)
      continue
    save(batcher.submit(src, frames))
  save(batcher.finish())
  bar.close()
  summary.pairs = batcher.pairs_done
  summary.seconds = time.time() - start
  return summary


def _parse_param(text: str) -> tuple[str, Any]:
  """``--param NAME=VALUE`` (``jaxact.keyvalue``); ``-`` in NAME reads ``_``."""
  try:
    key, value = keyvalue.parse_item(text)
  except keyvalue.KeyValueError as e:
    raise argparse.ArgumentTypeError(str(e)) from None
  return key.replace("-", "_"), value


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
    prog="python -m jaxact.tools.extract_flow",
    description="Extract RGB frames and TV-L1 optical flow (JAX, batched).",
  )
  parser.add_argument(
    "inputs", nargs="+", metavar="INPUT", help="video files, frame folders or folders of videos"
  )
  parser.add_argument("--out", required=True, help="output folder")
  parser.add_argument(
    "--short-side", type=int, default=None, help="resize frames to this short side (keeps aspect)"
  )
  parser.add_argument(
    "--batch",
    type=int,
    default=None,
    help="frame pairs per device call (default: jaxact.flow.auto_batch_size, "
    "128 on a GPU/TPU, 1 on CPU where a batch runs until its "
    "slowest pair converges)",
  )
  parser.add_argument(
    "--format",
    default="mmaction",
    choices=["mmaction", "compact", "both"],
    help="mmaction: img_/flow_x_/flow_y_ JPEG folders; compact: one .npz per video; both",
  )
  parser.add_argument(
    "--bound",
    type=float,
    default=DEFAULT_BOUND,
    help="flow clipping bound in px for uint8 (default 20)",
  )
  parser.add_argument(
    "--jpeg-quality",
    type=int,
    default=jpeg.RGB_QUALITY,
    help="JPEG quality of RGB frames and flow images (default: the dataset builders')",
  )
  parser.add_argument("--max-frames", type=int, default=None)
  parser.add_argument("--workers", type=int, default=2, help="decoding threads")
  parser.add_argument(
    "--param",
    action="append",
    default=[],
    type=_parse_param,
    metavar="NAME=VALUE",
    help="TV-L1 parameter, e.g. --param warps=3 (OpenCV "
    "names: tau, lambda_, theta, nscales, warps, epsilon, "
    "inner_iterations, outer_iterations, scale_step, gamma, "
    "median_filtering)",
  )
  parser.add_argument("--no-progress", action="store_true")
  parser.add_argument(
    "--compile-cache",
    default=DEFAULT_CACHE_DIR,
    help="persistent XLA compilation cache, so a resumed "
    "run does not compile again ('' to disable; an already-set "
    "JAX_COMPILATION_CACHE_DIR wins)",
  )
  args = parser.parse_args(argv)
  if args.compile_cache:
    enable_compilation_cache(args.compile_cache)
  fmts = frame_formats.FORMATS if args.format == "both" else (args.format,)
  if args.batch is None:
    args.batch = auto_batch_size()
  try:
    summary = extract(
      args.inputs,
      args.out,
      short_side=args.short_side,
      batch_size=args.batch,
      fmts=fmts,
      bound=args.bound,
      jpeg_quality=args.jpeg_quality,
      max_frames=args.max_frames,
      workers=args.workers,
      progress=not args.no_progress,
      tvl1_params=dict(args.param),
    )
  except (FileNotFoundError, ValueError, TypeError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  rate = summary.pairs / summary.seconds if summary.seconds else 0.0
  print(
    f"done {summary.done}, skipped (already done) {summary.skipped}, "
    f"failed {summary.failed}; {summary.pairs} flow pairs in "
    f"{summary.seconds:.1f} s ({rate:.1f} pairs/s)"
  )
  for path, reason in summary.failures:
    print(f"  failed: {path}: {reason}")
  return 1 if summary.failed else 0


if __name__ == "__main__":
  sys.exit(main())
