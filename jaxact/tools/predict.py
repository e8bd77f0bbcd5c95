"""Score new videos with a trained run: ``python -m jaxact.tools.predict``.

Usage::

  python -m jaxact.tools.predict --workdir /tmp/jaxact_demo clip.mp4 frames_dir/ \\
      [--checkpoint latest|best|STEP] [--top_k 5] [--window 64|2.5s] [--stride 32|1s] \\
      [--json out.json] [--class_names names.txt]

The model and its config come from the run's checkpoint; each VIDEO (a file
PyAV reads, a folder of frames, or an MMAction2 rawframes folder whose
``flow_x_``/``flow_y_`` images are used as they are) goes through the
evaluation path of ``--mode eval`` (``jaxact.eval.predict``): the dataset
build's resize, TV-L1 flow and JPEG round trip, then the config's evaluation
views. Prints the top-k classes of the spatial, temporal and fused scores per
window and for the whole video (the mean of its windows); ``--json`` writes
them with every class's score. A video that cannot be scored gets one line on
stderr and the others go on; the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from jaxact.eval import predict as predict_lib
from jaxact.runtime.checkpoint import CheckpointError


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
    prog="python -m jaxact.tools.predict",
    description="Top-k actions of videos, scored by a trained run as --mode eval scores.",
  )
  p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files or frame folders")
  p.add_argument("--workdir", required=True, help="the training run's directory")
  p.add_argument("--checkpoint", default="latest", help="latest (default), best or a step number")
  p.add_argument("--top_k", type=int, default=5, help="classes shown per stream (default 5)")
  p.add_argument(
    "--window",
    default=None,
    help="frames per window (64) or seconds (2.5s); default: the whole video",
  )
  p.add_argument(
    "--stride", default=None, help="frames (32) or seconds (1s) between windows; default: --window"
  )
  p.add_argument("--json", default=None, metavar="FILE", help="also write the results here")
  p.add_argument(
    "--class_names",
    default=None,
    metavar="FILE",
    help="class names, one a line in label order (default: the run's built dataset)",
  )
  p.add_argument("--no-progress", action="store_true", help="no progress bar for long videos")
  return p


def _print(result: predict_lib.Prediction, k: int) -> None:
  fps = f", {result.fps:g} fps" if result.fps else ""
  print(f"{result.path}: {result.num_frames} frames{fps}, {len(result.windows)} window(s)")
  streams = [s for s in predict_lib.STREAMS if s in result.scores]
  for i, (a, b) in enumerate(result.windows):
    print(f"  window {i} [frames {a}-{b - 1}]")
    for s in streams:
      print(f"    {s:8s} {predict_lib.format_top_k(result.top_k(s, k, i))}")
  print("  video")
  for s in streams:
    print(f"    {s:8s} {predict_lib.format_top_k(result.top_k(s, k))}")


def main(argv: Sequence[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  if args.top_k < 1:
    print("error: --top_k must be at least 1", file=sys.stderr)
    return 2
  # Orbax logs each restore (and that the directory is read-only) through absl:
  # the scores are what is asked for. jaxact's own warnings (a damaged step) stay.
  logging.getLogger("absl").setLevel(logging.ERROR)
  try:
    names = predict_lib.read_class_names(args.class_names) if args.class_names else None
    predictor = predict_lib.Predictor(args.workdir, args.checkpoint, class_names=names)
  except (FileNotFoundError, CheckpointError, ValueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  results, errors = [], []
  for path in args.videos:
    try:
      result = predictor.predict(
        path, window=args.window, stride=args.stride, progress=not args.no_progress
      )
    except predict_lib.PredictError as e:
      print(f"error: {e}", file=sys.stderr)
      errors.append({"path": os.fspath(path), "error": str(e)})
      continue
    _print(result, args.top_k)
    sys.stdout.flush()
    results.append(result)
  if args.json:
    out = {
      "workdir": predictor.workdir,
      "step": int(predictor.step),
      "class_names": predictor.class_names,
      "fusion_weights": predictor.fusion_weights,
      "videos": [r.to_json(args.top_k) for r in results],
      "errors": errors,
    }
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump(out, f, indent=1)
  return 1 if errors else 0


if __name__ == "__main__":
  sys.exit(main())
