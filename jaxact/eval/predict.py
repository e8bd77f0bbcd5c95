"""Scores of a trained run on new videos: the evaluation path, flow included.

:class:`Predictor` restores a run's parameters and its experiment config from
a checkpoint (``WORKDIR/checkpoints/<step>``: ``model`` and ``config``), then
:meth:`Predictor.predict` turns a video into what ``--mode eval`` would see
had the video been in the test split of the run's dataset:

1. decode (``jaxact.data.video.read_frames``: a file PyAV reads or a frame
   folder) with the dataset build's resize (its ``short_side``);
2. TV-L1 flow on the accelerator with the build's parameter preset and pair
   batch, quantised with bound 20 (``jaxact.flow.FlowBatcher``);
3. the JPEG round trip the dataset stores (``datasets.base.encode_example``,
   the build's quality), so the network gets the very pixels it was trained
   and evaluated on;
4. each *window* (a run of frames) becomes one stored-like example, sampled
   into V = clips × crops views exactly as evaluation does
   (``jaxact.data.pipeline.EvalSample``: ``sampling.sample_clip``,
   ``transforms.resize_short`` and ``eval_crops``);
5. windows are batched and scored by the evaluation step
   (``jaxact.runtime.scoring.score_dataset``), and ``fused`` is the late
   fusion of ``config.eval.fusion_weights`` (``runtime.metrics.fuse_scores``).

An MMAction2 rawframes folder (``img_*``, ``flow_x_*``, ``flow_y_*``, as
``python -m jaxact.tools.extract_flow`` writes it) skips steps 1-3: its JPEG
images are used as they are, flow included.

By default a video is one window (the whole video, exactly one evaluation
example of a dataset built without ``max_frames``, which predict does not
apply); ``window`` / ``stride`` (frames, or seconds as ``'2.5s'``) slide
over long videos, and the video's scores are the mean of its windows'.

Example (a notebook)::

  from jaxact.eval.predict import Predictor
  p = Predictor("/tmp/jaxact_demo")
  result = p.predict("clip.mp4")
  result.top_k("fused", 3)   # [('right', 0.91), ('zoom_in', 0.04), ...]
  result.scores["temporal"]  # float32 (K,)
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import av
import jax
import ml_collections
import numpy as np
import tensorflow_datasets as tfds
from tqdm import tqdm

from jaxact.data import datasets, jpeg, pipeline
from jaxact.data import video as video_io
from jaxact.data.datasets import base
from jaxact.flow.batching import FlowBatcher
from jaxact.runtime import checkpoint as ckpt
from jaxact.runtime import mesh as mesh_lib
from jaxact.runtime import metrics as metrics_lib
from jaxact.runtime import scoring
from jaxact.runtime import state as state_lib
from jaxact.runtime.inputs import build_model

log = logging.getLogger(__name__)

# What is printed and ranked; ``head`` (the network's own classifier) is in
# the scores too when the model has one.
STREAMS = ("spatial", "temporal", "fused")


class PredictError(ValueError):
  """A video cannot be scored; the message is one line naming it."""


@dataclasses.dataclass(frozen=True)
class BuildSettings:
  """How the run's dataset turned a video into stored frames and flow.

  Attributes:
    short_side: frames resized so their short side has this size.
    jpeg_quality: JPEG quality of the stored frames and flow components.
    flow_preset: TV-L1 parameters (``datasets.base.FLOW_PRESETS``).
    flow_batch: frame pairs per TV-L1 call (0: all of a video's pairs).
    source: where these settings were read.
  """

  short_side: int
  jpeg_quality: int
  flow_preset: str
  flow_batch: int
  source: str


def build_settings(data_cfg: Any) -> BuildSettings:
  """The build parameters of ``data_cfg``'s dataset.

  Read from the built dataset's metadata (``metadata['config']``) when it is
  reachable, else from the builder's config of that name (a stock config);
  an unknown derived config falls back to the builder's default, said in
  ``source``.
  """
  name, config = data_cfg.name, data_cfg.builder_config or ""
  fields = None
  path = datasets.prepared_dir(name, data_cfg.data_dir or None, config)
  if path is not None:
    meta = tfds.builder_from_directory(path).info.metadata or {}
    fields = dict(meta.get("config", {})) or None
    source = path
  if fields is None:
    configs = {c.name: c for c in datasets.builder_class(name).BUILDER_CONFIGS}
    chosen = configs.get(config or next(iter(configs)))
    source = f"builder config {name}/{config or 'default'}"
    if chosen is None:
      chosen = next(iter(configs.values()))
      source = f"{name}/{chosen.name} defaults ({config!r} is not built here)"
      log.warning(
        "The dataset %s/%s of this run is not built in %r: its build settings are unknown, "
        "so frames and flow follow %s; scores may differ from the run's evaluation",
        name,
        config,
        data_cfg.data_dir,
        source,
      )
    fields = dataclasses.asdict(chosen)
  return BuildSettings(
    short_side=int(fields.get("short_side", 256)),
    jpeg_quality=int(fields.get("jpeg_quality", jpeg.RGB_QUALITY)),
    flow_preset=str(fields.get("flow_preset", "opencv")),
    flow_batch=int(fields.get("flow_batch", 32)),
    source=source,
  )


# --- videos -> stored-like examples -------------------------------------------


def is_rawframes(path: str | os.PathLike) -> bool:
  """Whether ``path`` is an MMAction2 rawframes folder (has ``flow_x_*`` images)."""
  path = os.fspath(path)
  return os.path.isdir(path) and any(n.startswith("flow_x_") for n in os.listdir(path))


def _natural(name: str):
  return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def read_rawframes(path: str | os.PathLike) -> dict:
  """An MMAction2 rawframes folder as a stored example (its JPEG bytes as they are).

  ``n`` ``img_*`` frames pair with ``n - 1`` flows (extra flows are unused;
  with fewer flows the frames past the last flow are dropped).

  Raises:
    PredictError: no frames, fewer than 2 usable frames, missing ``flow_y``
      images or images of different sizes.
  """
  path = os.fspath(path)
  names = sorted(os.listdir(path), key=_natural)

  def read(prefix):
    out = []
    for n in names:
      if n.startswith(prefix) and n.lower().endswith(video_io.IMAGE_EXTS):
        with open(os.path.join(path, n), "rb") as fh:
          out.append(fh.read())
    return out

  frames, fx, fy = read("img_"), read("flow_x_"), read("flow_y_")
  if len(fx) != len(fy):
    raise PredictError(f"{path}: {len(fx)} flow_x_ but {len(fy)} flow_y_ images")
  n = min(len(frames), len(fx) + 1)
  if n < video_io.MIN_FRAMES:
    raise PredictError(
      f"{path}: {len(frames)} img_ and {len(fx)} flow_x_ image(s); need at least "
      f"{video_io.MIN_FRAMES} frames and 1 flow"
    )
  try:
    rgb0, x0, y0 = (jpeg.decode(b) for b in (frames[0], fx[0], fy[0]))
  except OSError as e:
    raise PredictError(f"{path}: unreadable image: {e}") from None
  if rgb0.ndim != 3 or x0.ndim != 2 or y0.ndim != 2:
    raise PredictError(f"{path}: img_ must be RGB and flow_x_/flow_y_ grayscale images")
  if not rgb0.shape[:2] == x0.shape == y0.shape:
    raise PredictError(
      f"{path}: frames {rgb0.shape[1]}x{rgb0.shape[0]} and flow {x0.shape[1]}x{x0.shape[0]} differ"
    )
  return {
    "frames": frames[:n],
    "flow_x": fx[: n - 1],
    "flow_y": fy[: n - 1],
    "num_frames": n,
    "label": 0,
  }


def video_fps(path: str | os.PathLike) -> float | None:
  """Frames per second of a video file (None: a folder or unknown rate)."""
  path = os.fspath(path)
  if os.path.isdir(path):
    return None
  try:
    with av.open(path) as container:
      rate = container.streams.video[0].average_rate if container.streams.video else None
  except (av.FFmpegError, OSError):
    return None
  return float(rate) if rate else None


def video_flow(
  frames: np.ndarray, settings: BuildSettings, *, progress: bool = False
) -> np.ndarray:
  """uint8 ``(n - 1, H, W, 2)`` TV-L1 flow of a video, as the build computes it.

  The build's batcher (``jaxact.flow.FlowBatcher``) with its preset, bound
  and ``flow_batch`` pairs per call (0: all pairs in one call). The pairs
  are submitted ``flow_batch`` at a time (frames ``[kB, kB + B]``), which
  makes exactly the device batches of submitting the whole video, so that a
  long video can show a progress bar.
  """
  pairs = len(frames) - 1
  batch = settings.flow_batch if settings.flow_batch > 0 else pairs
  batcher = FlowBatcher(batch_size=batch, **base.FLOW_PRESETS[settings.flow_preset])
  flow = np.empty((pairs,) + frames.shape[1:3] + (2,), np.uint8)
  show = progress and pairs > batch
  with tqdm(total=pairs, desc="flow", unit="pair", disable=not show, file=sys.stderr) as bar:

    def store(done):
      for first, _, f in done:
        flow[first : first + len(f)] = f
        bar.update(len(f))

    for first in range(0, pairs, batch):
      store(batcher.submit(first, frames[first : first + batch + 1]))
    store(batcher.finish())
  return flow


def encode_video(frames: np.ndarray, settings: BuildSettings, *, progress: bool = False) -> dict:
  """Decoded frames → a stored example: the build's TV-L1 and JPEG round trip.

  Args:
    frames: uint8 ``(n, H, W, 3)`` (already resized to ``short_side``), n >= 2.
    settings: the build's parameters.
    progress: a progress bar over the flow of a long video.

  Returns:
    ``{'frames', 'flow_x', 'flow_y'}`` JPEG bytes, ``num_frames``, ``label``
    (0), as a record of the dataset holds them.
  """
  flow = video_flow(frames, settings, progress=progress)
  return base.encode_example(
    frames, flow, label=0, video_id="predict", quality=settings.jpeg_quality
  )


def load_video(path: str | os.PathLike, settings: BuildSettings, *, progress: bool = False) -> dict:
  """A video file, frame folder or rawframes folder as a stored example.

  Raises:
    PredictError: missing, unreadable, corrupt or too short (one line).
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise PredictError(f"{path}: no such file or folder")
  if is_rawframes(path):
    return read_rawframes(path)
  try:
    frames = video_io.read_frames(path, short_side=settings.short_side)
  except video_io.VideoDecodeError as e:
    raise PredictError(str(e)) from None
  except OSError as e:
    raise PredictError(f"{path}: {e}") from None
  return encode_video(frames, settings, progress=progress)


# --- windows --------------------------------------------------------------------


def parse_span(text: str | int | float | None, fps: float | None, what: str) -> int | None:
  """``'64'`` (frames) or ``'2.5s'`` (seconds at ``fps``) → frames (None stays None).

  Raises:
    PredictError: not a positive number, or seconds without a known frame rate.
  """
  if text is None or text == "":
    return None
  s = str(text).strip().lower()
  seconds = s.endswith("s")
  try:
    value = float(s[:-1]) if seconds else int(s)
  except ValueError:
    raise PredictError(f"--{what}={text}: give frames (64) or seconds (2.5s)") from None
  if seconds and fps is None:
    raise PredictError(
      f"--{what}={text}: seconds need a frame rate, which a frame folder (or this file) "
      "does not have; give frames"
    )
  frames = round(value * fps) if seconds else value
  if frames < 1:
    raise PredictError(f"--{what}={text}: must be at least one frame")
  return frames


def windows(num_frames: int, window: int | None, stride: int | None) -> list[tuple[int, int]]:
  """``[(start, stop), ...]`` frame ranges of the windows of a video.

  ``window=None`` (or one at least as long as the video): one window, the
  whole video. Otherwise windows of ``window`` frames every ``stride``
  (default ``window``) frames, plus one ending at the last frame when the
  stride leaves the end uncovered. A window has at least 2 frames (1 flow).
  """
  window = max(int(window), video_io.MIN_FRAMES) if window else num_frames
  if window >= num_frames:
    return [(0, num_frames)]
  stride = int(stride) if stride else window
  out = [(s, s + window) for s in range(0, num_frames - window + 1, stride)]
  if out[-1][1] < num_frames:
    out.append((num_frames - window, num_frames))
  return out


def window_example(example: dict, start: int, stop: int) -> dict:
  """Frames ``[start, stop)`` of a stored example, with their ``stop - start - 1`` flows."""
  return {
    "frames": example["frames"][start:stop],
    "flow_x": example["flow_x"][start : stop - 1],
    "flow_y": example["flow_y"][start : stop - 1],
    "num_frames": stop - start,
    "label": 0,
  }


def _batches(
  samples: pipeline.EvalSample, collate: Any, count: int, batch_size: int
) -> Iterator[dict]:
  """Evaluation batches of ``count`` examples (the last padded, ``mask=False``),
  made by ``collate`` (``pipeline.collate``)."""
  for first in range(0, count, batch_size):
    yield collate([samples.map(k) for k in range(first, first + batch_size)])


# --- results --------------------------------------------------------------------


@dataclasses.dataclass
class Prediction:
  """The scores of one video.

  Attributes:
    path: the video.
    num_frames: frames scored (stored-like, after decoding).
    fps: frame rate of a video file (None for folders).
    windows: ``[(start, stop)]`` frame ranges.
    window_scores: ``{stream: float32 (W, K)}`` per window
      (``spatial``, ``temporal``, ``head``, ``fused``; those the model has).
    scores: ``{stream: float32 (K,)}`` the mean over the windows.
    class_names: label order.
  """

  path: str
  num_frames: int
  fps: float | None
  windows: list[tuple[int, int]]
  window_scores: dict[str, np.ndarray]
  scores: dict[str, np.ndarray]
  class_names: list[str]

  def top_k(self, stream: str = "fused", k: int = 5, window: int | None = None):
    """``[(class name, score)]``, best first, of the video or one window."""
    s = self.scores[stream] if window is None else self.window_scores[stream][window]
    order = np.argsort(-s, kind="stable")[: max(1, k)]
    return [(self.class_names[i], float(s[i])) for i in order]

  def to_json(self, k: int = 5) -> dict:
    """Scores and top-k of the video and of each window, JSON-ready."""

    def block(window):
      src = self.scores if window is None else {n: v[window] for n, v in self.window_scores.items()}
      return {
        "top_k": {n: [[c, p] for c, p in self.top_k(n, k, window)] for n in src},
        "scores": {n: [float(x) for x in v] for n, v in src.items()},
      }

    return {
      "path": self.path,
      "num_frames": self.num_frames,
      "fps": self.fps,
      **block(None),
      "windows": [{"start": a, "stop": b, **block(i)} for i, (a, b) in enumerate(self.windows)],
    }


def format_top_k(pairs: Sequence[tuple[str, float]]) -> str:
  return ", ".join(f"{c} {p:.3f}" for c, p in pairs)


# --- the predictor --------------------------------------------------------------


def read_class_names(path: str | os.PathLike) -> list[str]:
  """One class name a line, in label order (blank lines ignored)."""
  with open(path, encoding="utf-8") as f:
    return [ln.strip() for ln in f if ln.strip()]


class Predictor:
  """A trained run, restored for scoring new videos.

  Args:
    workdir: the training run's directory (``WORKDIR/checkpoints``).
    checkpoint: ``'latest'`` (the newest readable step), ``'best'`` (by the
      run's ``checkpoint.best_metric``) or a step number.
    class_names: label order; default: the built dataset's metadata
      (``datasets.load_info``).
    mesh: defaults to all devices.

  Attributes:
    config: the run's experiment config (from the checkpoint).
    step: the restored step.
    class_names, settings (:class:`BuildSettings`), model, variables.

  Raises:
    FileNotFoundError: no checkpoint, or not the requested one; no class
      names (neither the dataset nor ``class_names``).
    jaxact.runtime.checkpoint.CheckpointError: no candidate step can be read.
  """

  def __init__(
    self,
    workdir: str | os.PathLike,
    checkpoint: str | int = "latest",
    *,
    class_names: Sequence[str] | None = None,
    mesh: jax.sharding.Mesh | None = None,
  ):
    self.workdir = os.fspath(workdir)
    self.mesh = mesh or mesh_lib.create_mesh()
    directory = os.path.join(self.workdir, "checkpoints")
    if not os.path.isdir(directory):
      raise FileNotFoundError(f"No checkpoint in {self.workdir}: point --workdir at a trained run")
    self.config = ml_collections.ConfigDict(ckpt.read_config(directory))
    self.class_names = list(class_names) if class_names else self._dataset_class_names()
    self.model = build_model(self.config, len(self.class_names))
    try:
      self.step, self.variables = ckpt.restore_for_inference(
        directory,
        checkpoint,
        abstract=self._abstract_variables(),
        # the run's own metric, so that 'best' ranks as training did
        best_metric=self.config.checkpoint.best_metric or None,
        best_mode=self.config.checkpoint.best_mode,
        max_to_keep=self.config.checkpoint.max_to_keep,
        mesh=self.mesh,
      )
    except ckpt.CheckpointError as e:
      if not class_names:
        raise
      raise ckpt.CheckpointError(
        f"{e} The model was built for the {len(self.class_names)} given class names: "
        "does the class names file list the run's classes, one a line?"
      ) from None
    self.settings = build_settings(self.config.data)
    self.fusion_weights = {k: float(v) for k, v in self.config.eval.fusion_weights.items()}
    self._compiled: dict = {}

  def _dataset_class_names(self) -> list[str]:
    d = self.config.data
    try:
      return list(datasets.load_info(d.name, d.data_dir or None, d.builder_config).class_names)
    except datasets.DatasetNotBuiltError as e:
      raise FileNotFoundError(
        f"The class names of {d.name!r} come from the built dataset, which is not here "
        f"({e}); pass --class_names FILE (one name a line, in label order)"
      ) from None

  def input_spec(self) -> dict[str, jax.ShapeDtypeStruct]:
    """One view's ``rgb`` / ``flow`` shapes (``(1, T, S, S, C)`` uint8)."""
    d = self.config.data
    size, t = d.image_size, d.num_steps
    return {
      "rgb": jax.ShapeDtypeStruct((1, t, size, size, 3), np.uint8),
      "flow": jax.ShapeDtypeStruct((1, t, size, size, 2 * d.flow_length), np.uint8),
    }

  def _abstract_variables(self):
    spec = self.input_spec()
    abstract = jax.eval_shape(
      lambda key: state_lib.init_variables(self.model, spec, key), jax.random.key(0)
    )
    return abstract  # replicated on the mesh by ckpt.restore_for_inference

  # --- scoring ------------------------------------------------------------------

  def score_example(
    self, example: dict, spans: Sequence[tuple[int, int]], *, progress: bool = False
  ) -> dict[str, np.ndarray]:
    """``{stream: (W, K)}`` scores of the windows ``spans`` of a stored example.

    Each window is one evaluation example (``pipeline.EvalSample``), scored
    in batches of ``config.eval.batch_size`` by the evaluation step.
    """
    c = self.config
    source = [window_example(example, a, b) for a, b in spans]
    samples = pipeline.EvalSample(source, c.data, 0, 1)
    batch = c.eval.batch_size
    scores, _, _ = scoring.score_dataset(
      self.model,
      self.variables,
      _batches(samples, pipeline.collate(c.data, train=False), len(source), batch),
      self.mesh,
      c,
      num_batches=math.ceil(len(source) / batch),
      progress=progress,
      compiled=self._compiled,
    )
    scores = dict(scores)
    scores["fused"] = metrics_lib.fuse_scores(scores, self.fusion_weights)
    return {k: np.asarray(v, np.float32) for k, v in scores.items()}

  def predict(
    self,
    path: str | os.PathLike,
    *,
    window: str | int | None = None,
    stride: str | int | None = None,
    progress: bool = False,
  ) -> Prediction:
    """Scores one video (file, frame folder or rawframes folder).

    Args:
      path: the video.
      window: frames per window (``64``) or seconds (``'2.5s'``); None: the
        whole video is one window (one evaluation example).
      stride: frames or seconds between window starts (default: ``window``).
      progress: progress bars over the flow and the window batches of a long
        video.

    Raises:
      PredictError: missing, unreadable, corrupt or too short, or a bad
        window (one line naming the video).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
      raise PredictError(f"{path}: no such file or folder")
    fps = video_fps(path)
    # A bad window is said before the flow is computed, except for a file
    # without a frame rate: it may not decode at all, which is said first.
    example = None
    if fps is None and not os.path.isdir(path):
      example = load_video(path, self.settings, progress=progress)
    try:
      size, step = parse_span(window, fps, "window"), parse_span(stride, fps, "stride")
    except PredictError as e:
      raise PredictError(f"{path}: {e}") from None
    if example is None:
      example = load_video(path, self.settings, progress=progress)
    n = int(example["num_frames"])
    spans = windows(n, size, step)
    per_window = self.score_example(
      example, spans, progress=progress and len(spans) > self.config.eval.batch_size
    )
    return Prediction(
      path=path,
      num_frames=n,
      fps=fps,
      windows=spans,
      window_scores=per_window,
      scores={k: v.mean(0) for k, v in per_window.items()},
      class_names=self.class_names,
    )


def predict(
  workdir: str | os.PathLike,
  videos: str | os.PathLike | Sequence[str | os.PathLike],
  *,
  checkpoint: str | int = "latest",
  window: str | int | None = None,
  stride: str | int | None = None,
  class_names: Sequence[str] | None = None,
) -> list[Prediction]:
  """Restore a run and score videos (see :class:`Predictor` for one-by-one use).

  Raises:
    PredictError: a video cannot be scored (use :class:`Predictor` to go on
      past failures, as the CLI does).
  """
  videos = [videos] if isinstance(videos, (str, os.PathLike)) else list(videos)
  p = Predictor(workdir, checkpoint, class_names=class_names)
  return [p.predict(v, window=window, stride=stride) for v in videos]


__all__ = [
  "STREAMS",
  "BuildSettings",
  "PredictError",
  "Prediction",
  "Predictor",
  "build_settings",
  "encode_video",
  "load_video",
  "parse_span",
  "predict",
  "read_rawframes",
  "video_flow",
  "windows",
]
