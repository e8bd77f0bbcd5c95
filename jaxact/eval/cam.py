"""Grad-CAM of the two-stream networks: where each stream looks for a class.

Grad-CAM (Selvaraju et al., 2017) of a class score ``y`` at a convolutional
map ``A`` (``h × w × C``): channel weights ``α_c`` = the spatial mean of
``∂y/∂A_c``, map ``ReLU(Σ_c α_c A_c)``, upsampled (bilinear) to the input.
For a two-stream network it is taken per stream and per time step: the
spatial stream's map at the chosen stage for each RGB frame it sees, the
temporal stream's for each flow stack. The score is the network's own fused
classifier (``logit='head'``, default) or each stream's own classifier
(``logit='stream'``); the class is the head's prediction unless given.

The maps come from the backbones' stage outputs (``conv3``, ``conv4``,
``conv5``; :meth:`jaxact.models.resnet.ResNet.expose`): the activations are
sown into ``intermediates`` and the gradients are those of zero
``perturbations`` added to the same maps, so parameters and numerics are the
network's own. A network with frozen backbones (paper B's second stage
stops their gradient) is rebuilt unfrozen for the maps; in evaluation mode
both compute the same scores. Maps are computed in float32.

Normalisation: each stream's maps of one clip share one scale (divided by
their maximum), so the time steps of a clip can be compared; a map that is
zero everywhere (every gradient-weighted sum negative) stays zero.

Pictures (:func:`write_grid`, :func:`write_animation`): RGB frames with the
spatial map and flow as a colour-coded image (hue: direction, value:
magnitude) with the temporal map, overlaid with the ``jet`` colour map.

:func:`video_windows` turns a video into network inputs through the input
path of ``jaxact.eval.predict`` (the dataset build's decode, TV-L1 and JPEG
round trip), sampled by ``pipeline.EvalSample`` with one centre crop per
clip: the network sees what it was trained and evaluated on.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import hsv_to_rgb
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from jaxact.data import device_augment, pipeline, sampling, video
from jaxact.data.normalize import normalize_inputs
from jaxact.eval import predict
from jaxact.flow.quantize import dequantize
from jaxact.runtime.scoring import stream_logits

LAYERS = ("conv3", "conv4", "conv5")
STREAMS = ("spatial", "temporal")
LOGITS = ("head", "stream")
STREAM_INPUT = {"spatial": "rgb", "temporal": "flow"}
# Overlay: weight of the colour-mapped Grad-CAM over the picture.
OVERLAY_ALPHA = 0.5


@dataclasses.dataclass
class CamResult:
  """Grad-CAM of a batch of N clips.

  Attributes:
    logits: ``{'head', 'spatial', 'temporal'}`` float32 ``(N, K)``.
    target: int ``(N,)`` the class each map explains.
    maps: ``{stream: (N, Ts, H, W)}`` float32 in [0, 1], at the input size.
    raw: ``{stream: (N, Ts, h, w)}`` the maps before upsampling and scaling.
    steps: ``{stream: (Ts,)}`` the input time step of each map (the LSTM
      network's spatial stream sees only the centre frame: one map).
  """

  logits: dict[str, np.ndarray]
  target: np.ndarray
  maps: dict[str, np.ndarray]
  raw: dict[str, np.ndarray]
  steps: dict[str, np.ndarray]

  def probabilities(self, name: str = "head") -> np.ndarray:
    """Softmax of ``logits[name]`` ``(N, K)``."""
    return np.asarray(jax.nn.softmax(self.logits[name], axis=-1))


def cam_model(model: nn.Module) -> nn.Module:
  """``model`` in float32 and with gradients through its backbones (same scores)."""
  changes: dict[str, Any] = {}
  if hasattr(model, "dtype"):
    changes["dtype"] = jnp.float32
  if getattr(model, "freeze_backbones", False):
    changes["freeze_backbones"] = False
  return model.clone(**changes) if changes else model


def grad_cam_maps(acts: jax.Array, grads: jax.Array) -> jax.Array:
  """Grad-CAM ``ReLU(Σ_c mean_hw(∂y/∂A_c) A_c)`` of maps ``(..., h, w, C)`` → ``(..., h, w)``."""
  weights = jnp.mean(grads, axis=(-3, -2), keepdims=True)
  return jax.nn.relu(jnp.sum(weights * acts, axis=-1))


def upsample_and_scale(raw: jax.Array, size_hw: tuple[int, int]) -> jax.Array:
  """``(N, Ts, h, w)`` → ``(N, Ts, H, W)`` bilinear, each clip divided by its maximum."""
  n, ts = raw.shape[:2]
  up = jax.image.resize(raw, (n, ts) + tuple(size_hw), "bilinear")
  peak = jnp.max(up, axis=(1, 2, 3), keepdims=True)
  return jnp.where(peak > 0, up / jnp.where(peak > 0, peak, 1.0), 0.0)


def _check(layer: str, logit: str, streams: Sequence[str]) -> None:
  if layer not in LAYERS:
    raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")
  if logit not in LOGITS:
    raise ValueError(f"logit must be one of {LOGITS}, got {logit!r}")
  bad = [s for s in streams if s not in STREAMS]
  if bad or not streams:
    raise ValueError(f"streams must be a non-empty subset of {STREAMS}, got {list(streams)}")


@functools.lru_cache(maxsize=8)
def _compiled(model: nn.Module, layer: str, logit: str, streams: tuple[str, ...]):
  """The jitted ``(variables, inputs, target) -> (logits, target, acts, grads)``."""

  def forward(variables, inputs, perts):
    full = dict(variables)
    if perts is not None:
      full["perturbations"] = perts
    (logits, features), state = model.apply(full, inputs, train=False, mutable=["intermediates"])
    acts = {s: state["intermediates"][s][layer][0] for s in streams}
    return stream_logits(logits, features), acts

  def run(variables, inputs, target):
    variables = {k: variables[k] for k in ("params", "batch_stats") if k in variables}
    shapes = jax.eval_shape(lambda: forward(variables, inputs, None))[1]
    zeros = {s: {layer: jnp.zeros(a.shape, a.dtype)} for s, a in shapes.items()}
    logits = forward(variables, inputs, None)[0]
    target = jnp.where(target < 0, jnp.argmax(logits["head"], axis=-1), target)
    rows = jnp.arange(target.shape[0])

    def score(perts):
      out, acts = forward(variables, inputs, perts)
      # 'stream': each stream's perturbation reaches only its own classifier,
      # so one sum gives every stream the gradient of its own score.
      names = ["head"] if logit == "head" else list(streams)
      return sum(jnp.sum(out[k][rows, target]) for k in names), acts

    grads, acts = jax.grad(score, has_aux=True)(zeros)
    return logits, target, acts, {s: grads[s][layer] for s in streams}

  return jax.jit(run)


def grad_cam(
  model: nn.Module,
  variables: Mapping[str, Any],
  inputs: Mapping[str, jax.Array],
  *,
  layer: str = "conv5",
  target: int | Sequence[int] | np.ndarray | None = None,
  logit: str = "head",
  streams: Sequence[str] = STREAMS,
) -> CamResult:
  """Grad-CAM of a two-stream network on normalised inputs.

  Args:
    model: a two-stream network (``jaxact.models.create('two_stream_*')``).
    variables: its ``{'params', 'batch_stats'}``.
    inputs: normalised ``{'rgb': (N, T, H, W, 3), 'flow': (N, T, H, W, 2L)}``
      (``jaxact.data.normalize.normalize_inputs``).
    layer: backbone stage, ``'conv5'`` (default), ``'conv4'`` or ``'conv3'``.
    target: class per clip (an int for all, or ``(N,)``); ``None`` or a
      negative entry: the head's prediction.
    logit: ``'head'``: the fused classifier's logit; ``'stream'``: each
      stream's own classifier's.
    streams: which streams to map.

  Returns:
    :class:`CamResult`.
  """
  streams = tuple(streams)
  _check(layer, logit, streams)
  inputs = {k: jnp.asarray(v, jnp.float32) for k, v in inputs.items() if k in ("rgb", "flow")}
  n, t = inputs["flow"].shape[:2]
  if target is None:
    target = -1
  target_arr = np.broadcast_to(np.asarray(target, np.int32), (n,)).copy()
  fn = _compiled(cam_model(model), layer, logit, streams)
  logits, tgt, acts, grads = fn(dict(variables), inputs, jnp.asarray(target_arr))
  maps, raw, steps = {}, {}, {}
  for s in streams:
    x = inputs[STREAM_INPUT[s]]
    r = grad_cam_maps(acts[s], grads[s])
    r = r.reshape((n, -1) + r.shape[1:])
    ts = r.shape[1]
    raw[s] = np.asarray(r)
    maps[s] = np.asarray(upsample_and_scale(r, x.shape[2:4]))
    steps[s] = np.arange(t) if ts == x.shape[1] else np.asarray([x.shape[1] // 2])
  return CamResult(
    logits={k: np.asarray(v) for k, v in logits.items()},
    target=np.asarray(tgt),
    maps=maps,
    raw=raw,
    steps=steps,
  )


# ----------------------------------------------------------------- inputs


def video_windows(
  path: str | os.PathLike,
  data_cfg: Mapping[str, Any],
  *,
  settings: predict.BuildSettings,
  num_windows: int = 1,
  max_frames: int | None = None,
) -> dict[str, np.ndarray]:
  """A video's evaluation windows as uint8 network inputs, as evaluation would see them.

  The video becomes a stored-like example by the path of
  ``jaxact.eval.predict`` (decode at the build's ``short_side``, the build's
  TV-L1 and JPEG round trip; a rawframes folder as it is), then
  ``pipeline.EvalSample`` samples ``num_windows`` clips (clip k of
  ``num_windows``) and the evaluation step's device views
  (``device_augment.eval_inputs``) take one centre crop of each.

  Args:
    path: a video file, frame folder or rawframes folder.
    data_cfg: the run's ``config.data`` (a mapping).
    settings: the dataset build's parameters (``predict.build_settings``).
    num_windows: clips to sample.
    max_frames: use at most this many frames (None: all).

  Returns:
    ``rgb`` uint8 ``(W, T, S, S, 3)``, ``flow`` uint8 ``(W, T, S, S, 2L)``,
    ``frames`` int ``(W, T)`` (the RGB frame index of each step) and
    ``num_frames``.

  Raises:
    jaxact.data.video.VideoDecodeError: missing, corrupt or too short video.
    jaxact.eval.predict.PredictError: a bad rawframes folder.
  """
  path = os.fspath(path)
  if predict.is_rawframes(path):
    example = predict.read_rawframes(path)
    if max_frames:
      example = predict.window_example(example, 0, min(max_frames, example["num_frames"]))
  else:
    frames = video.read_frames(path, short_side=settings.short_side, max_frames=max_frames)
    example = predict.encode_video(frames, settings)
  n = int(example["num_frames"])
  cfg = {**dict(data_cfg), "eval_clips": int(num_windows), "eval_crops": 1}
  cfg = ml_collections.ConfigDict(cfg)
  sample = pipeline.EvalSample([example], cfg, 0, 1).map(0)
  batch = pipeline.collate(cfg, train=False)([sample])
  views = device_augment.eval_inputs(batch, out_size=cfg.image_size)
  steps = [
    sampling.sample_clip(
      n,
      scheme=str(cfg["sampling"]),
      num_steps=int(cfg["num_steps"]),
      flow_length=int(cfg["flow_length"]),
      clip=k,
      num_clips=num_windows,
    )[0]
    for k in range(num_windows)
  ]
  return {
    "rgb": np.asarray(views["rgb"][0]),
    "flow": np.asarray(views["flow"][0]),
    "frames": np.stack(steps),
    "num_frames": n,
  }


def normalized(batch: Mapping[str, np.ndarray]) -> dict[str, jax.Array]:
  """uint8 windows → float32 network inputs (as the evaluation step does)."""
  return normalize_inputs(batch, jnp.float32)


# --------------------------------------------------------------- pictures


def write_cam_pictures(
  out_dir: str,
  stem: str,
  model: nn.Module,
  variables: Mapping[str, Any],
  batch: Mapping[str, np.ndarray],
  *,
  class_names: Sequence[str] | None,
  target: int | None = None,
  layer: str = "conv5",
  logit: str = "head",
  streams: Sequence[str] = STREAMS,
) -> list[str]:
  """Grad-CAM of uint8 windows ``batch`` (:func:`video_windows`) drawn into ``out_dir``.

  Writes ``<stem>_w<k>.png`` (:func:`write_grid`) per window and
  ``<stem>.gif`` (:func:`write_animation`); returns their paths. What
  ``python -m jaxact.tools.cam`` and the demo's ending write.
  """
  result = grad_cam(
    model, variables, normalized(batch), layer=layer, target=target, logit=logit, streams=streams
  )
  n = len(result.target)
  written = []
  for k in range(n):
    heading = f"{stem}, window {k + 1}/{n}: " + title(result, k, class_names, logit, layer)
    path = os.path.join(out_dir, f"{stem}_w{k}.png")
    written.append(write_grid(path, result, batch, k, heading=heading))
  path = os.path.join(out_dir, f"{stem}.gif")
  written.append(write_animation(path, animation_frames(result, batch)))
  return written


def _mean_motion(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean x and y displacement (pixels) of a uint8 flow stack ``(..., 2L)``."""
  f = dequantize(np.asarray(flow))
  return f[..., 0::2].mean(-1), f[..., 1::2].mean(-1)


def flow_to_rgb(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
  """uint8 flow ``(H, W, 2L)`` → uint8 ``(H, W, 3)`` colour code of the stack's mean motion.

  Hue: direction (red → right, and around the colour wheel), value:
  magnitude divided by ``max_magnitude`` (default: the picture's largest,
  at least 1 px, so that still frames stay dark), saturation 1.
  """
  dx, dy = _mean_motion(flow)
  mag = np.hypot(dx, dy)
  scale = max(float(mag.max()), 1.0) if max_magnitude is None else float(max_magnitude)
  hsv = np.stack(
    [(np.arctan2(dy, dx) / (2 * np.pi)) % 1.0, np.ones_like(mag), np.clip(mag / scale, 0, 1)],
    axis=-1,
  )
  return (hsv_to_rgb(hsv) * 255 + 0.5).astype(np.uint8)


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
  """uint8 ``(H, W, 3)`` picture with a [0, 1] map ``(H, W)`` in ``jet`` on top."""
  heat = colormaps["jet"](np.clip(cam, 0, 1))[..., :3]
  out = (1 - alpha) * image.astype(np.float32) / 255 + alpha * heat
  return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


def _stream_pictures(
  result: CamResult, batch: Mapping[str, np.ndarray], index: int
) -> dict[str, list[tuple[np.ndarray, bool]]]:
  """Per stream, per time step: ``(picture, has_map)``."""
  rgb, flow = batch["rgb"][index], batch["flow"][index]
  scale = max(float(np.hypot(*_mean_motion(flow)).max()), 1.0)  # one scale per window
  base = {"spatial": list(rgb), "temporal": [flow_to_rgb(f, scale) for f in flow]}
  out = {}
  for s in STREAMS:
    pics = [(p, False) for p in base[s]]
    if s in result.maps:
      for j, step in enumerate(result.steps[s]):
        pics[int(step)] = (overlay(base[s][int(step)], result.maps[s][index, j]), True)
    out[s] = pics
  return out


def title(
  result: CamResult, index: int, class_names: Sequence[str] | None, logit: str, layer: str
) -> str:
  """One line: the class, each stream's probability of it, the prediction, layer and logit."""
  names = list(class_names or [])
  k = int(result.target[index])
  name = lambda c: f"'{names[c]}'" if c < len(names) else str(c)
  probs = ", ".join(f"{s} p={result.probabilities(s)[index, k]:.2f}" for s in result.logits)
  pred = int(np.argmax(result.logits["head"][index]))
  return f"class {name(k)}: {probs} (predicted {name(pred)}); Grad-CAM at {layer}, {logit} logit"


def write_grid(
  path: str,
  result: CamResult,
  batch: Mapping[str, np.ndarray],
  index: int,
  *,
  heading: str,
) -> str:
  """PNG grid of window ``index``: rows RGB + spatial map, flow + temporal map; columns steps."""
  pics = _stream_pictures(result, batch, index)
  t = len(pics["spatial"])
  frames = batch.get("frames")
  side = 2.4  # inches per picture
  width, height = max(side * t + 0.6, 5.0), 2 * side + 1.2
  fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
  FigureCanvasAgg(fig)
  axes = fig.subplots(2, t, squeeze=False)
  labels = {"spatial": "RGB + spatial Grad-CAM", "temporal": "flow + temporal Grad-CAM"}
  for r, s in enumerate(STREAMS):
    for c, (pic, has_map) in enumerate(pics[s]):
      ax = axes[r, c]
      ax.imshow(pic, interpolation="nearest")
      ax.set_xticks([])
      ax.set_yticks([])
      step = f"t={c}" + (f" (frame {int(frames[index, c])})" if frames is not None else "")
      if not has_map:  # a step the stream does not see, or a stream not mapped
        step += "\nnot seen by this stream" if s in result.maps else "\n(not mapped)"
      ax.set_title(step, fontsize=8)
      if c == 0:
        ax.set_ylabel(labels[s], fontsize=8)
  fig.suptitle(heading.replace("$", r"\$"), fontsize=9, wrap=True)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=100)
  return path


def animation_frames(
  result: CamResult, batch: Mapping[str, np.ndarray], *, min_side: int = 224
) -> list[np.ndarray]:
  """One uint8 frame per window and step: RGB overlay beside flow overlay, labelled."""
  out = []
  for w in range(result.target.shape[0]):
    pics = _stream_pictures(result, batch, w)
    for t, ((a, _), (b, _)) in enumerate(zip(pics["spatial"], pics["temporal"])):
      img = Image.fromarray(np.concatenate([a, b], axis=1))
      zoom = max(1, -(-min_side // a.shape[0]))
      img = img.resize((img.width * zoom, img.height * zoom), Image.Resampling.NEAREST)
      ImageDraw.Draw(img).text((4, 4), f"w{w} t{t}", fill=(255, 255, 255))
      out.append(np.asarray(img))
  return out


def write_animation(path: str, frames: Sequence[np.ndarray], *, fps: float = 2.0) -> str:
  """Animated GIF of ``frames`` (looping)."""
  images = [Image.fromarray(f) for f in frames]
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
  return path
