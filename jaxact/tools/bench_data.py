"""Benchmark: jaxact's TFDS/ArrayRecord clips vs MMAction2-style frame folders.

Builds, in a temporary folder, the same videos twice — as a jaxact TFDS
dataset (per-frame JPEG bytes in ArrayRecord) and as MMAction2 "rawframes"
folders (``img_00001.jpg``, ``flow_x_00001.jpg``, ``flow_y_00001.jpg``, one
file per RGB frame and per flow component, with the *same* JPEG bytes) — then
reads the same training samples from both, in one process on one core, with
each paper's sampling and augmentation at 224:

* paper A: ``segments`` sampling, T=3 steps, L=10 flows, data variation;
* paper B: ``uniform`` sampling, T=25 steps, L=10 flows, crop/jitter/colour.

It prints clips/s per CPU core for the folders and for two jaxact readers —
``jaxact`` (what ``create_loader`` reads: byte-range reads of the sampled
images through the shard index) and ``whole records`` (the same dataset
read one whole video record per clip, as without the index) — with their
ratio to the folders, for reading + decoding the sampled frames alone (what
the storage layout changes) and with the paper's augmentation (the whole
per-example cost); and bytes per video (ArrayRecord files + index vs the
folders' allocated size). The layouts are timed in turn, one warm-up round
then ``--repeats`` rounds; each rate and ratio is printed as the median with
its spread (min–max over the rounds; a ratio is taken within each round).

With ``--cold`` (root only) the OS page cache is dropped before every timed
round, so both layouts read from disk, as for a dataset larger than RAM
(Kinetics-400); wall-clock clips/s are compared then. Use as many videos as
clips there, so no video is read twice.

Usage::

  python -m jaxact.tools.bench_data [--videos 16] [--frames 150] [--side 256]
  python -m jaxact.tools.bench_data --cold --videos 24 --clips 24
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import numpy as np
from absl import app, flags
from PIL import Image

from jaxact.data import build, config, datasets, pipeline, record_index, sampling, transforms

_VIDEOS = flags.DEFINE_integer("videos", 16, "videos in the benchmark set")
_FRAMES = flags.DEFINE_integer("frames", 150, "frames per video")
_SIDE = flags.DEFINE_integer("side", 256, "frame side (stored short side)")
_CLIPS = flags.DEFINE_integer("clips", 48, "clips timed per layout and paper")
_COLD = flags.DEFINE_bool(
  "cold",
  False,
  "drop the OS page cache before each "
  "timed round (needs root; the data then comes from "
  "disk, as for a dataset larger than RAM) and "
  "compare wall-clock clips/s",
)
_REPEATS = flags.DEFINE_integer(
  "repeats", 3, "timed rounds per layout (after one warm-up round); median and min–max printed"
)
_AUGMENT = flags.DEFINE_bool("augment", True, "also time read+decode+augment")
_WORKDIR = flags.DEFINE_string(
  "workdir", "", "keep the data here (default: a temporary folder, removed afterwards)"
)


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
  """The TFDS dataset and the MMAction2-style folders, same JPEG bytes."""
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
    ex = source[i]
    d = os.path.join(folders, f"video_{i:05d}")
    os.makedirs(d, exist_ok=True)
    for j, b in enumerate(ex["frames"]):
      _write(os.path.join(d, f"img_{j + 1:05d}.jpg"), b)
    for j, (bx, by) in enumerate(zip(ex["flow_x"], ex["flow_y"])):
      _write(os.path.join(d, f"flow_x_{j + 1:05d}.jpg"), bx)
      _write(os.path.join(d, f"flow_y_{j + 1:05d}.jpg"), by)
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


def read_folder_clip(folder: str, num_frames: int, cfg, rng, augment: bool = True):
  """MMAction2-style: one file open + JPEG decode per distinct sampled image
  (repeated indices reuse the decoded image, as MMAction2's RawFrameDecode
  does)."""
  rgb_idx, flow_idx = sampling.sample_clip(
    num_frames, scheme=cfg.sampling, num_steps=cfg.num_steps, flow_length=cfg.flow_length, rng=rng
  )
  cache = {}

  def load(name):
    if name not in cache:
      cache[name] = np.asarray(Image.open(os.path.join(folder, name)))
    return cache[name]

  rgb = np.stack([load(f"img_{i + 1:05d}.jpg") for i in rgb_idx])
  t, l = flow_idx.shape
  flow = np.empty(rgb.shape[:3] + (2 * l,), np.uint8)
  for a in range(t):
    for b in range(l):
      flow[a, ..., 2 * b] = load(f"flow_x_{flow_idx[a, b] + 1:05d}.jpg")
      flow[a, ..., 2 * b + 1] = load(f"flow_y_{flow_idx[a, b] + 1:05d}.jpg")
  if not augment:
    return rgb, flow
  return transforms.TRAIN_AUGMENTS[cfg.augment](rng, rgb, flow, cfg)


def read_tfds_clip(source, index: int, cfg, rng, augment: bool = True):
  """jaxact (``source`` is what ``create_loader`` reads): one byte-range read
  and JPEG decode per sampled image."""
  example = source[index]
  rgb_idx, flow_idx = sampling.sample_clip(
    int(example["num_frames"]),
    scheme=cfg.sampling,
    num_steps=cfg.num_steps,
    flow_length=cfg.flow_length,
    rng=rng,
  )
  rgb, flow = pipeline.decode_clip(example, rgb_idx, flow_idx)
  if not augment:
    return rgb, flow
  return transforms.TRAIN_AUGMENTS[cfg.augment](rng, rgb, flow, cfg)


def paper_configs():
  a = config.get_data_config()
  a.sampling, a.num_steps, a.flow_length, a.augment = "segments", 3, 10, "paper_a"
  b = config.get_data_config()
  b.sampling, b.num_steps, b.flow_length, b.augment = "uniform", 25, 10, "paper_b"
  return {"paper A (T=3, L=10)": a, "paper B (T=25, L=10)": b}


def drop_page_cache() -> None:
  """Writes back and drops the OS page cache (Linux, root)."""
  os.sync()
  try:
    with open("/proc/sys/vm/drop_caches", "w") as f:
      f.write("3\n")
  except OSError as e:
    raise SystemExit(f"--cold needs root on Linux to drop the page cache: {e}") from e


def time_layouts(
  sources: dict, folders: str, cfg, clips: int, augment: bool, cold: bool = False, repeats: int = 3
) -> dict:
  """Clips/s of each jaxact source and of the folders, the same samples.

  The layouts are timed in turn, ``1 + repeats`` rounds; round 0 warms up
  (page cache, allocator, imports) and is dropped.

  Returns:
    ``{layout: float array (repeats, 2)}``: per timed round, clips per
    CPU-second and wall clips/s, for each key of ``sources`` and
    ``'folders'``.
  """
  n = len(next(iter(sources.values())))
  names = sorted(os.listdir(folders))
  counts = [
    len([f for f in os.listdir(os.path.join(folders, d)) if f.startswith("img_")]) for d in names
  ]
  order = [i % n for i in range(clips)]

  def read(layout, k, i):
    rng = np.random.default_rng(k)
    if layout == "folders":
      return read_folder_clip(os.path.join(folders, names[i]), counts[i], cfg, rng, augment)
    return read_tfds_clip(sources[layout], i, cfg, rng, augment)

  layouts = list(sources) + ["folders"]
  rates = {layout: [] for layout in layouts}
  for round_ in range(1 + repeats):
    for layout in layouts:
      if cold:
        drop_page_cache()
      t0, c0 = time.perf_counter(), time.process_time()
      for k, i in enumerate(order):
        read(layout, k, i)
      # Per core: clips per second of this process's CPU time (user +
      # system), robust to other jobs sharing the cores; wall rate beside it.
      if round_:
        rates[layout].append(
          (clips / (time.process_time() - c0), clips / (time.perf_counter() - t0))
        )
  return {layout: np.asarray(r, np.float64) for layout, r in rates.items()}


def spread(values) -> str:
  """``'median (min–max)'`` of repeated measurements."""
  v = np.asarray(values, np.float64)
  return f"{np.median(v):.2f} ({v.min():.2f}–{v.max():.2f})"


def main(argv):
  del argv
  workdir = _WORKDIR.value or tempfile.mkdtemp(prefix="jaxact_bench_data_")
  try:
    t0 = time.perf_counter()
    info, source, folders = build_both(workdir, _VIDEOS.value, _FRAMES.value, _SIDE.value)
    print(
      f"built {len(source)} videos × {_FRAMES.value} frames at "
      f"{_SIDE.value}² in {time.perf_counter() - t0:.0f} s ({workdir})"
    )
    index_bytes = _allocated(os.path.join(info.path, record_index.INDEX_FOLDER))
    rec_bytes = index_bytes + sum(
      os.path.getsize(os.path.join(info.path, f))
      for f in os.listdir(info.path)
      if ".array_record-" in f
    )
    folder_bytes = _allocated(folders)
    n = len(source)
    print(
      f"bytes per video: ArrayRecord + frame index {rec_bytes / n / 1e6:.2f}"
      f" MB (index {index_bytes / n / 1e3:.1f} kB), "
      f"folders {folder_bytes / n / 1e6:.2f} MB allocated "
      f"({rec_bytes / folder_bytes:.2f}x), "
      f"{3 * _FRAMES.value - 2} files per video in folders"
    )
    sources = {  # what create_loader reads, and the same without the index
      "jaxact": pipeline.LazyRecords(source),
      "whole records": pipeline.LazyRecords(source, use_index=False),
    }
    for name, cfg in paper_configs().items():
      for augment in (False, True) if _AUGMENT.value else (False,):
        res = time_layouts(
          sources, folders, cfg, _CLIPS.value, augment, cold=_COLD.value, repeats=_REPEATS.value
        )
        what = "read+decode+augment" if augment else "read+decode"
        k = 1 if _COLD.value else 0  # cold: waiting on the disk → wall clock
        unit = "wall clips/s" if _COLD.value else "clips per CPU-second"
        ref = res["folders"][:, k]
        cols = ", ".join(
          f"{layout} {spread(r[:, k])} (× folders: {spread(r[:, k] / ref)})"
          for layout, r in res.items()
          if layout != "folders"
        )
        print(
          f"{name}, {what}{', cold cache' if _COLD.value else ''}: "
          f"{unit}, median (min–max) of {_REPEATS.value} rounds: "
          f"MMAction2 folders {spread(ref)}; {cols}"
        )
  finally:
    if not _WORKDIR.value:
      shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
  app.run(main)
