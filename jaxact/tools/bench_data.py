"""Benchmark: jaxact's host CPU per training clip vs an MMAction2-style OpenCV reference.

Builds, in one folder, the same synthetic videos twice — as a jaxact TFDS
dataset (per-frame JPEG bytes in ArrayRecord, with the frame index) and as
MMAction2 "rawframes" folders (``img_%05d.jpg``, ``flow_x_%05d.jpg``,
``flow_y_%05d.jpg``: the same JPEG bytes) — and prints, for paper A
(``segments``, T=3, L=10, recipe ``paper_a``) and paper B (``uniform``, T=25,
L=10, recipe ``paper_b``), output 224×224:

1. **MMAction2 / OpenCV**: per clip, ``cv2.imread`` of every sampled image and
   the paper's augmentation on the CPU with OpenCV / NumPy
   (:mod:`jaxact.tools.mmaction_reference`);
2. **jaxact host**: what a Grain worker runs per clip,
   ``pipeline.LazyRecords(source)[i]`` then
   ``pipeline.TrainSample(cfg).random_map(example, rng)``.

   Both in clips per CPU-second of this process (``time.process_time``; one
   OpenCV thread), every 8 clips collated into a batch (the reference:
   ``np.stack``, as MMAction2's collate; jaxact: ``pipeline.collate``, Grain's
   ``batch_fn``, which decodes the clips straight into the batch), the same
   clips (same seeds, so the same sampled frames),
   timed in turn within each round (the order alternates; one warm-up round,
   then ``--repeats``): median (min–max), and the ratio jaxact / OpenCV taken
   within each round;
3. **device augmentation**: ``device_augment.augment`` of a batch of
   ``--device_batch`` host outputs, milliseconds per clip after compilation
   (wall and process CPU), on whatever device JAX has (XLA:CPU on a box
   without an accelerator);
4. **host cores per H100**: one H100 at 25% MFU of its 989 TFLOP/s dense
   bf16 peak consumes ``0.25 · 989e12 / F`` clips/s, with ``F`` = train FLOPs
   per clip = 3 (forward + backward) × 2 × the MACs of the paper's
   two-stream model on one clip (``model_info.count_macs`` of the traced
   forward; nothing compiled); cores = that / jaxact's host clips per
   CPU-second;
5. with ``--decoders``: Pillow, simplejpeg and ``cv2.imdecode`` time per
   stored JPEG (RGB frames 4:4:4 q90; grayscale flow planes) and whether each
   gives Pillow's pixels exactly.

``--markdown`` prints the rows as markdown tables too (docs/benchmarks.md).
Timings on a shared box are noisy: the load average is printed with them.

Usage::

  python -m jaxact.tools.bench_data [--videos 8] [--frames 150] [--clips 24] [--repeats 3]
  python -m jaxact.tools.bench_data --markdown --workdir /tmp/bench_data  # keeps the data
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import simplejpeg
from absl import app, flags
from PIL import Image

from jaxact import models
from jaxact.configs import ucf101_paper_a, ucf101_paper_b
from jaxact.data import (
  build,
  datasets,
  device_augment,
  pipeline,
  record_index,
)
from jaxact.tools import mmaction_reference, model_info

_VIDEOS = flags.DEFINE_integer("videos", 8, "videos in the benchmark set")
_FRAMES = flags.DEFINE_integer("frames", 150, "frames per video")
_SIDE = flags.DEFINE_integer("side", 256, "frame side (stored square frames)")
_CLIPS = flags.DEFINE_integer("clips", 24, "clips timed per layout, paper and round")
_REPEATS = flags.DEFINE_integer(
  "repeats", 3, "timed rounds (after one warm-up round); median and min–max printed"
)
_DEVICE_BATCH = flags.DEFINE_integer(
  "device_batch", 8, "clips per device_augment.augment call (0: skip the device timing)"
)
_DECODERS = flags.DEFINE_bool("decoders", True, "compare JPEG decoders per image")
_FLOPS = flags.DEFINE_bool(
  "flops", True, "trace the papers' models for train FLOPs per clip and cores per H100"
)
_MARKDOWN = flags.DEFINE_bool("markdown", False, "also print markdown tables")
_WORKDIR = flags.DEFINE_string(
  "workdir", "", "keep the data here and reuse it (default: a temporary folder, removed)"
)

H100_BF16_FLOPS = 989e12  # dense bf16 peak (NVIDIA H100 SXM datasheet)
MFU = 0.25


def load() -> str:
  """``'load average 1.23 / 1.10 / 0.95'`` (1 / 5 / 15 min)."""
  return "load average " + " / ".join(f"{v:.2f}" for v in os.getloadavg())


def smooth_flow(frames: np.ndarray) -> np.ndarray:
  """A cheap stand-in for TV-L1: smooth random motion fields, quantised.

  Low-frequency fields of a few pixels over a mostly static background
  compress like real TV-L1 flow; the content does not matter for read speed.
  """
  t, h, w, _ = frames.shape
  rng = np.random.default_rng(int(frames[0, 0, 0, 0]))
  out = np.empty((t - 1, h, w, 2), np.uint8)
  for i in range(t - 1):
    for c in range(2):
      coarse = rng.normal(0, 3.0, (5, 5)).astype(np.float32)
      field = np.asarray(Image.fromarray(coarse, mode="F").resize((w, h), Image.BICUBIC))
      out[i, ..., c] = np.clip(np.rint(128 + field * 255 / 40), 0, 255)
  return out


def build_both(workdir: str, videos: int, frames: int, side: int):
  """The TFDS dataset and the MMAction2-style folders, same JPEG bytes.

  Returns:
    ``(info, source, folders)``: the dataset's ``DatasetInfo``, its TFDS data
    source (train split, all videos) and the folder holding one rawframes
    folder per video (``video_%05d``, in source order). An existing build in
    ``workdir`` is reused.
  """
  data_dir = os.path.join(workdir, "tfds")
  info = build.ensure_built(
    "synthetic_motion",
    data_dir,
    flow_fn=smooth_flow,
    clips=videos,
    frames=frames,
    size=side,
    short_side=side,
    train_fraction=1.0,
  )
  source = datasets.data_source("synthetic_motion", "train", data_dir, info.config)
  folders = os.path.join(workdir, "rawframes")
  for i in range(len(source)):
    d = os.path.join(folders, f"video_{i:05d}")
    if os.path.isdir(d):
      continue
    ex = source[i]
    os.makedirs(d + ".tmp", exist_ok=True)
    for j, b in enumerate(ex["frames"]):
      _write(os.path.join(d + ".tmp", f"img_{j + 1:05d}.jpg"), b)
    for j, (bx, by) in enumerate(zip(ex["flow_x"], ex["flow_y"])):
      _write(os.path.join(d + ".tmp", f"flow_x_{j + 1:05d}.jpg"), bx)
      _write(os.path.join(d + ".tmp", f"flow_y_{j + 1:05d}.jpg"), by)
    os.rename(d + ".tmp", d)
  return info, source, folders


def _write(path, data):
  with open(path, "wb") as f:
    f.write(data)


def _allocated(path: str) -> int:
  total = 0
  for d, _, files in os.walk(path):
    for f in files:
      total += os.stat(os.path.join(d, f)).st_blocks * 512
  return total


def paper_experiments() -> dict:
  """``{'paper A': config, 'paper B': config}``: the experiment configs of
  ``configs/ucf101_paper_a.py`` and ``configs/ucf101_paper_b.py:stage=2``
  (T=25), as training runs them."""
  return {
    "paper A": ucf101_paper_a.get_config(""),
    "paper B": ucf101_paper_b.get_config("stage=2"),
  }


def paper_configs() -> dict:
  """``{'paper A': data config, 'paper B': data config}`` (:func:`paper_experiments`):
  each paper's sampling (T=3 segments / T=25 uniform, L=10), recipe, 224."""
  return {k: c.data for k, c in paper_experiments().items()}


def time_host(records, folders: str, cfg, clips: int, repeats: int, batch: int = 8) -> dict:
  """Clips per CPU-second of the OpenCV reference and of jaxact's host path.

  Clip k reads video ``k mod N`` with generator ``default_rng(k)`` in both
  layouts, so both decode the same sampled frames. Every ``batch`` clips are
  collated into one batch (``np.stack`` of each array, what Grain's ``batch``
  and MMAction2's collate do), which is timed too: jaxact's canvases are
  larger than the reference's augmented clips. Each round times the two in
  turn (OpenCV first in even rounds, jaxact first in odd ones); round 0 warms
  up (page cache, allocator, imports) and is dropped.

  Args:
    records: ``pipeline.LazyRecords`` of the dataset.
    folders: the rawframes folders of the same videos (:func:`build_both`).
    cfg: a data config of :func:`paper_configs`.
    clips: clips per layout and round.
    repeats: timed rounds.
    batch: clips per collated batch.

  Returns:
    ``{'opencv': float (repeats,), 'jaxact': float (repeats,)}`` clips per
    CPU-second.
  """
  n = len(records)
  names = sorted(d for d in os.listdir(folders) if d.startswith("video_"))
  counts = [sum(f.startswith("img_") for f in os.listdir(os.path.join(folders, d))) for d in names]
  sample = pipeline.TrainSample(cfg, mirror=None)
  collate = {"opencv": lambda clips: jax.tree.map(lambda *x: np.stack(x), *clips)}
  collate["jaxact"] = pipeline.collate(cfg, train=True)

  def opencv(k: int):
    i = k % n
    rng = np.random.default_rng(k)
    return mmaction_reference.read_clip(os.path.join(folders, names[i]), counts[i], cfg, rng)

  def jaxact(k: int):
    return sample.random_map(records[k % n], np.random.default_rng(k))

  layouts = {"opencv": opencv, "jaxact": jaxact}
  rates = {name: [] for name in layouts}
  for round_ in range(1 + repeats):
    order = list(layouts) if round_ % 2 == 0 else list(layouts)[::-1]
    for name in order:
      c0 = time.process_time()
      pending = []
      for k in range(clips):
        pending.append(layouts[name](k))
        if len(pending) == batch or k == clips - 1:
          collate[name](pending)
          pending = []
      if round_:
        rates[name].append(clips / (time.process_time() - c0))
  return {name: np.asarray(r, np.float64) for name, r in rates.items()}


def time_device(records, cfg, batch: int, calls: int = 3) -> tuple[float, float]:
  """Milliseconds per clip of ``device_augment.augment`` on a batch of host outputs.

  ``batch`` clips go through ``TrainSample.random_map`` and
  ``pipeline.collate`` (one host batch, as the loader makes it), are put on
  the default device, and the jitted augmentation is called once to compile,
  then ``calls`` times (``block_until_ready``).

  Returns:
    ``(wall ms per clip, process CPU ms per clip)``, medians over the calls.
  """
  sample = pipeline.TrainSample(cfg, mirror=None)
  host = pipeline.collate(cfg, train=True)(
    [sample.random_map(records[k % len(records)], np.random.default_rng(k)) for k in range(batch)]
  )
  args = jax.device_put((host["aug"], host["rgb"], host["flow"]))
  run = lambda: device_augment.augment(*args, out_size=cfg.image_size, recipe=cfg.augment)
  jax.block_until_ready(run())  # compile
  wall, cpu = [], []
  for _ in range(calls):
    t0, c0 = time.perf_counter(), time.process_time()
    jax.block_until_ready(run())
    wall.append((time.perf_counter() - t0) / batch * 1e3)
    cpu.append((time.process_time() - c0) / batch * 1e3)
  return float(np.median(wall)), float(np.median(cpu))


def device_label() -> str:
  """What ran the device augmentation, e.g. ``'XLA:CPU (no accelerator here)'``."""
  d = jax.devices()[0]
  if d.platform == "cpu":
    return "XLA:CPU (no accelerator here)"
  return f"{d.platform.upper()} ({d.device_kind})"


def time_decoders(source, max_images: int = 60, rounds: int = 3) -> list[tuple]:
  """Per-image decode time of Pillow, simplejpeg and OpenCV on stored JPEG bytes.

  Takes up to ``max_images`` RGB frames and as many flow planes (x and y)
  from the first videos of ``source``. Each decoder decodes the whole list
  ``rounds`` times (``time.process_time``); the fastest round counts.

  Returns:
    Rows ``(kind, decoder, ms per image, equal to Pillow's pixels)``, kind
    ``'RGB HxW'`` or ``'flow HxW'``.
  """
  rgb, gray = [], []
  for i in range(len(source)):
    ex = source[i]
    rgb += list(ex["frames"])
    gray += [b for pair in zip(ex["flow_x"], ex["flow_y"]) for b in pair]
    if len(rgb) >= max_images and len(gray) >= max_images:
      break
  rgb, gray = rgb[:max_images], gray[:max_images]
  pil = lambda b: np.asarray(Image.open(io.BytesIO(b)))
  decoders = {
    "RGB": {
      "Pillow": pil,
      "simplejpeg": lambda b: simplejpeg.decode_jpeg(b, colorspace="RGB"),
      "cv2.imdecode": lambda b: cv2.cvtColor(
        cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
      ),
    },
    "flow": {
      "Pillow": pil,
      "simplejpeg": lambda b: simplejpeg.decode_jpeg(b, colorspace="GRAY")[..., 0],
      "cv2.imdecode": lambda b: cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_GRAYSCALE),
    },
  }
  rows = []
  for kind, data in (("RGB", rgb), ("flow", gray)):
    ref = [pil(b) for b in data]
    h, w = ref[0].shape[:2]
    for name, fn in decoders[kind].items():
      best = np.inf
      for _ in range(rounds):
        c0 = time.process_time()
        out = [fn(b) for b in data]
        best = min(best, time.process_time() - c0)
      equal = all(np.array_equal(a, b) for a, b in zip(out, ref))
      rows.append((f"{kind} {h}x{w}", name, best / len(data) * 1e3, equal))
  return rows


def train_flops_per_clip(experiment) -> float:
  """3 × 2 × forward MACs of the experiment's model (101 classes) on one clip
  (T steps, 2L flow channels, ``image_size``²), counted on the traced program."""
  model = models.create(experiment.model.name, num_classes=101, **experiment.model.overrides)
  cfg = experiment.data
  size, t = cfg.image_size, cfg.num_steps
  x = {
    "rgb": jax.ShapeDtypeStruct((1, t, size, size, 3), jnp.float32),
    "flow": jax.ShapeDtypeStruct((1, t, size, size, 2 * cfg.flow_length), jnp.float32),
  }
  rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
  variables = jax.eval_shape(lambda x: model.init(rngs, x, train=False), x)
  jaxpr = jax.make_jaxpr(lambda v, x: model.apply(v, x, train=False))(variables, x)
  return 3 * 2 * float(model_info.count_macs(jaxpr))


def spread(values, fmt: str = ".1f") -> str:
  """``'median (min–max)'`` of repeated measurements."""
  v = np.asarray(values, np.float64)
  return f"{np.median(v):{fmt}} ({v.min():{fmt}}–{v.max():{fmt}})"


def _bytes_line(info, source, folders, frames: int) -> str:
  index_bytes = _allocated(os.path.join(info.path, record_index.INDEX_FOLDER))
  rec_bytes = index_bytes + sum(
    os.path.getsize(os.path.join(info.path, f))
    for f in os.listdir(info.path)
    if ".array_record-" in f
  )
  folder_bytes = _allocated(folders)
  n = len(source)
  return (
    f"bytes per video: ArrayRecord + frame index {rec_bytes / n / 1e6:.2f} MB, "
    f"folders {folder_bytes / n / 1e6:.2f} MB allocated ({rec_bytes / folder_bytes:.2f}x), "
    f"{3 * frames - 2} files per video in folders"
  )


def run(
  workdir: str,
  *,
  videos: int,
  frames: int,
  side: int,
  clips: int,
  repeats: int,
  device_batch: int,
  decoders: bool,
  flops: bool,
  markdown: bool,
) -> dict:
  """Builds (or reuses) the data in ``workdir``, measures and prints every row.

  Returns:
    ``{paper: {'opencv', 'jaxact', 'ratio'}: float (repeats,), 'device_ms'
    (wall, cpu) or None, 'flops' float or None, 'cores' float or None}``,
    and ``'decoders'``: the rows of :func:`time_decoders` (or ``[]``).
  """
  cv2.setNumThreads(1)
  t0 = time.perf_counter()
  info, source, folders = build_both(workdir, videos, frames, side)
  print(
    f"data: {len(source)} videos × {frames} frames at {side}² ready in "
    f"{time.perf_counter() - t0:.0f} s ({workdir})"
  )
  print(_bytes_line(info, source, folders, frames))
  print(f"jax {jax.__version__}, {os.cpu_count()} CPUs, {load()}")
  records = pipeline.LazyRecords(source)
  results = {}
  for paper, experiment in paper_experiments().items():
    cfg = experiment.data
    r = time_host(records, folders, cfg, clips, repeats)
    res = dict(r, ratio=r["jaxact"] / r["opencv"], device_ms=None, flops=None, cores=None)
    print(
      f"{paper} ({cfg.sampling}, T={cfg.num_steps}, L={cfg.flow_length}, {cfg.augment}): "
      f"clips per CPU-second, median (min–max) of {repeats} rounds of {clips} clips: "
      f"MMAction2/OpenCV {spread(r['opencv'])}; jaxact host {spread(r['jaxact'])}; "
      f"jaxact/OpenCV {spread(res['ratio'], '.2f')}x (goal >= 4x) [{load()}]"
    )
    if device_batch > 0:
      res["device_ms"] = time_device(records, cfg, device_batch)
      wall, cpu = res["device_ms"]
      print(
        f"  device augmentation on {device_label()}: {wall:.1f} ms wall / {cpu:.1f} ms "
        f"process CPU per clip (batch {device_batch}, after compilation) [{load()}]"
      )
    if flops:
      f = res["flops"] = train_flops_per_clip(experiment)
      consumed = MFU * H100_BF16_FLOPS / f
      res["cores"] = consumed / float(np.median(r["jaxact"]))
      print(
        f"  cores per H100: train FLOPs per clip F = 3 × 2 × forward MACs of "
        f"{experiment.model.name} ({experiment.model.overrides.backbone}) "
        f"= {f / 1e9:.0f} GFLOP; clips/s = {MFU} × {H100_BF16_FLOPS:.3g} / F = "
        f"{consumed:.0f}; host cores = clips/s / jaxact host clips per CPU-second = "
        f"{res['cores']:.1f}"
      )
    results[paper] = res
  results["decoders"] = time_decoders(source) if decoders else []
  for kind, name, ms, equal in results["decoders"]:
    print(f"decode {kind}: {name} {ms:.3f} ms per image, equal to Pillow: {equal}")
  if markdown:
    print(markdown_tables(results, device_batch))
  return results


def markdown_tables(results: dict, device_batch: int) -> str:
  """The rows of :func:`run` as markdown (docs/benchmarks.md)."""
  lines = [
    "| paper | MMAction2/OpenCV clips per CPU-s | jaxact host clips per CPU-s | "
    "jaxact/OpenCV | device augment ms/clip (wall / CPU) | train GFLOP/clip | "
    "H100 clips/s at 25% MFU | host cores per H100 |",
    "|---|---|---|---|---|---|---|---|",
  ]
  for paper, res in results.items():
    if paper == "decoders":
      continue
    dev = "–" if res["device_ms"] is None else "{:.1f} / {:.1f}".format(*res["device_ms"])
    f = res["flops"]
    lines.append(
      f"| {paper} | {spread(res['opencv'])} | {spread(res['jaxact'])} | "
      f"**{spread(res['ratio'], '.2f')}×** | {dev} (batch {device_batch}) | "
      + (
        "– | – | –"
        if f is None
        else f"{f / 1e9:.0f} | {MFU * H100_BF16_FLOPS / f:.0f} | **{res['cores']:.1f}**"
      )
      + " |"
    )
  if results["decoders"]:
    lines += ["", "| image | decoder | ms per image | equal to Pillow |", "|---|---|---|---|"]
    lines += [f"| {k} | {n} | {ms:.3f} | {e} |" for k, n, ms, e in results["decoders"]]
  return "\n".join(lines)


def main(argv):
  del argv
  workdir = _WORKDIR.value or tempfile.mkdtemp(prefix="jaxact_bench_data_")
  try:
    run(
      workdir,
      videos=_VIDEOS.value,
      frames=_FRAMES.value,
      side=_SIDE.value,
      clips=_CLIPS.value,
      repeats=_REPEATS.value,
      device_batch=_DEVICE_BATCH.value,
      decoders=_DECODERS.value,
      flops=_FLOPS.value,
      markdown=_MARKDOWN.value,
    )
  finally:
    if not _WORKDIR.value:
      shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
  app.run(main)
