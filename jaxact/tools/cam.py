r"""Grad-CAM pictures of a trained two-stream network on a video.

  python -m jaxact.tools.cam --workdir RUN VIDEO [VIDEO ...] --out DIR \
      [--class K|NAME] [--layer conv5|conv4|conv3] [--logit head|stream] \
      [--stream both|spatial|temporal] [--step latest|N] [--windows N]

For each video (a file, a folder of frames or a rawframes folder): the input
path of ``python -m jaxact.tools.predict`` (decode, TV-L1 flow and JPEG round
trip as the dataset build does them; ``--short-side`` / ``--flow-preset``
override the build's), ``--windows`` evaluation clips (default
``config.data.eval_clips``) sampled and centre-cropped as in evaluation, then
Grad-CAM (``jaxact.eval.cam``) of the class (default: the network's
prediction per window) for the spatial stream on the RGB frames and the
temporal stream on the flow. Writes

* ``DIR/<video>_w<k>.png``: window k as a grid, rows: RGB frames with the
  spatial map, flow (hue: direction, brightness: magnitude) with the temporal
  map; columns: time steps; titled with the class and the scores;
* ``DIR/<video>.gif``: the overlays of all windows, step by step.

The network, its input geometry and the class names come from the run's
checkpoint (``RUN/checkpoints/<step>/``: ``model`` and ``config``); class
names also need the run's dataset to be built (indices otherwise). A
missing or undecodable video is reported in one line and the others still
run (exit status 1).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxact import models
from jaxact.data import datasets, video
from jaxact.data.datasets.base import FLOW_PRESETS
from jaxact.eval import cam as cam_lib
from jaxact.eval import predict
from jaxact.models import two_stream
from jaxact.runtime import checkpoint as ckpt
from jaxact.runtime import state as state_lib


class CamError(RuntimeError):
  """A run that cannot be used; the message says why in one line."""


def load_run(workdir: str, step: str = "latest") -> tuple[Any, dict, dict, int, list[str]]:
  """``(model, variables, config, step, class_names)`` of a run's checkpoint.

  The number of classes is read from the checkpoint; ``config`` is the run's
  experiment config as a dict.
  """
  directory = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(directory):
    raise CamError(f"{directory} does not exist: --workdir must be a trained run")
  config = ckpt.read_config(directory)
  model_cfg = dict(config["model"])
  if model_cfg.get("name") not in two_stream.TWO_STREAM_MODELS:
    raise CamError(
      f"the run's model {model_cfg.get('name')!r} is not a two-stream network "
      f"({', '.join(two_stream.TWO_STREAM_MODELS)})"
    )
  overrides = {
    k: v for k, v in dict(model_cfg.get("overrides") or {}).items() if k not in ("dtype",)
  }
  data = dict(config["data"])
  built: dict[int, Any] = {}

  def abstract(shapes):
    # The number of classes is the stored classifier's.
    num_classes = int(shapes["params"]["classifier"]["bias"][0])
    model = built[num_classes] = models.create(
      model_cfg["name"], num_classes=num_classes, **overrides
    )
    spec = {
      "rgb": jax.ShapeDtypeStruct(_input_shape(data, 3), np.float32),
      "flow": jax.ShapeDtypeStruct(_input_shape(data, 2 * int(data["flow_length"])), np.float32),
    }
    return jax.eval_shape(lambda: state_lib.init_variables(model, spec, jax.random.key(0)))

  chosen, variables = ckpt.restore_for_inference(directory, step, abstract=abstract)
  num_classes = int(np.shape(variables["params"]["classifier"]["bias"])[0])
  variables = jax.tree.map(np.asarray, variables)
  return built[num_classes], variables, config, int(chosen), _class_names(data, num_classes)


def _input_shape(data: dict, channels: int) -> tuple[int, ...]:
  size = int(data["image_size"])
  return (1, int(data["num_steps"]), size, size, channels)


def _class_names(data: dict, num_classes: int) -> list[str]:
  try:
    info = datasets.load_info(
      data["name"], data.get("data_dir") or None, data.get("builder_config", "")
    )
    names = list(info.class_names)
  except (FileNotFoundError, KeyError, ValueError):
    return [str(i) for i in range(num_classes)]
  return names if len(names) == num_classes else [str(i) for i in range(num_classes)]


def _check_variables(model, variables: dict, batch: dict) -> None:
  """The checkpoint's tree must be the network's (same names and shapes)."""
  x = {k: batch[k][:1].astype(np.float32) for k in ("rgb", "flow")}
  want = jax.eval_shape(lambda: state_lib.init_variables(model, x, jax.random.key(0)))
  shape = lambda t: jax.tree.map(lambda a: tuple(a.shape), t)
  if shape(want) != shape(variables):
    raise CamError("the checkpoint's parameters do not match the network its config names")


def _target(arg: str | None, class_names: list[str]) -> int | None:
  if arg is None:
    return None
  if arg.isdigit() and int(arg) < len(class_names):
    return int(arg)
  if arg in class_names:
    return class_names.index(arg)
  raise CamError(f"--class {arg!r} is neither a class index < {len(class_names)} nor a class name")


def video_stem(path: str) -> str:
  """``v_Drum_g01_c01.avi`` → ``v_Drum_g01_c01``; a frame folder → its name."""
  base = os.path.basename(os.path.normpath(path))
  return base if os.path.isdir(path) else os.path.splitext(base)[0]


def run_video(
  path: str,
  out_dir: str,
  *,
  model,
  variables: dict,
  config: dict,
  class_names: list[str],
  target: int | None,
  layer: str,
  logit: str,
  streams: tuple[str, ...],
  num_windows: int,
  settings: predict.BuildSettings,
  max_frames: int | None = None,
) -> list[str]:
  """Grad-CAM pictures of one video; returns the written files."""
  data = dict(config["data"])
  batch = cam_lib.video_windows(
    path, data, settings=settings, num_windows=num_windows, max_frames=max_frames
  )
  _check_variables(model, variables, batch)
  return cam_lib.write_cam_pictures(
    out_dir,
    video_stem(path),
    model,
    variables,
    batch,
    class_names=class_names,
    target=target,
    layer=layer,
    logit=logit,
    streams=streams,
  )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  p = argparse.ArgumentParser(
    prog="python -m jaxact.tools.cam",
    description="Grad-CAM pictures (PNG grid per window, animated GIF) of a trained "
    "two-stream network on videos.",
  )
  p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files or frame folders")
  p.add_argument("--workdir", required=True, help="the trained run (holds checkpoints/)")
  p.add_argument("--out", required=True, help="output folder")
  p.add_argument(
    "--class",
    dest="target",
    default=None,
    metavar="K|NAME",
    help="class index or name (default: the prediction of each window)",
  )
  p.add_argument("--layer", default="conv5", choices=cam_lib.LAYERS, help="backbone stage")
  p.add_argument(
    "--logit", default="head", choices=cam_lib.LOGITS, help="fused head logit or each stream's own"
  )
  p.add_argument(
    "--stream", default="both", choices=("both",) + cam_lib.STREAMS, help="streams to map"
  )
  p.add_argument("--step", default="latest", help="checkpoint step (default: latest)")
  p.add_argument("--windows", type=int, default=0, help="clips per video (default: eval_clips)")
  p.add_argument(
    "--short-side", type=int, default=0, help="decode size (default: the dataset build's)"
  )
  p.add_argument(
    "--flow-preset",
    default=None,
    choices=tuple(FLOW_PRESETS),
    help="TV-L1 parameters (default: the dataset build's)",
  )
  p.add_argument("--max-frames", type=int, default=0, help="decode at most this many frames")
  return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
  args = parse_args(argv)
  try:
    model, variables, config, step, class_names = load_run(args.workdir, args.step)
    target = _target(args.target, class_names)
  except (CamError, FileNotFoundError, ckpt.CheckpointError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  data = dict(config["data"])
  # The dataset build's decode size and TV-L1 preset, unless overridden.
  settings = predict.build_settings(ml_collections.ConfigDict(data))
  if args.short_side:
    settings = dataclasses.replace(settings, short_side=args.short_side)
  if args.flow_preset:
    settings = dataclasses.replace(settings, flow_preset=args.flow_preset)
  streams = cam_lib.STREAMS if args.stream == "both" else (args.stream,)
  failed = 0
  for path in args.videos:
    try:
      files = run_video(
        path,
        args.out,
        model=model,
        variables=variables,
        config=config,
        class_names=class_names,
        target=target,
        layer=args.layer,
        logit=args.logit,
        streams=streams,
        num_windows=args.windows or int(data.get("eval_clips", 1)),
        settings=settings,
        max_frames=args.max_frames or None,
      )
    except (video.VideoDecodeError, predict.PredictError) as e:
      print(f"error: {e}", file=sys.stderr)
      failed += 1
      continue
    except CamError as e:
      print(f"error: {e}", file=sys.stderr)
      return 2
    print(f"{path}: step {step} → {', '.join(files)}")
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
