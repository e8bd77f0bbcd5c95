"""Benchmark: the device augmentation vs the CPU recipes it replaced, per clip.

For each training recipe (and evaluation's 1 / 3 / 10 crops) it times, in the
same run, on the same clips:

* ``cpu``: ``jaxact.data.transforms`` (PIL / NumPy, what the Grain workers ran
  per clip before the device pipeline; the tests' reference), one clip a call;
* ``device``: ``jaxact.data.device_augment.augment`` / ``eval_views`` on a
  batch of canvases (after its compile), divided by the batch size, on JAX's
  default backend;
* ``draw``: ``augment_params.draw_params``, the host's share of the work.

It prints median (min–max) milliseconds per clip and the ratio cpu / device
(per round, then the median). The clips mix two frame sizes (UCF101's 256×341
at short side 256 and a 4:3 240×320) on one canvas, T steps of one RGB frame
and a 2L-channel flow stack each (paper A: T = 3, L = 10; paper B: T = 25).

Usage::

  python -m jaxact.tools.bench_augment [--steps 3] [--flow_length 10] [--batch 8]
"""

from __future__ import annotations

import os
import time

import jax
import numpy as np
from absl import app, flags

from jaxact.data import augment_params, canvas, config, device_augment, transforms

_STEPS = flags.DEFINE_integer("steps", 3, "T: steps per clip (paper A 3, paper B 25)")
_FLOW_LENGTH = flags.DEFINE_integer("flow_length", 10, "L: flows per step (2L channels)")
_BATCH = flags.DEFINE_integer("batch", 8, "clips per device call")
_REPEATS = flags.DEFINE_integer("repeats", 5, "timed rounds (after one warm-up round)")
_RECIPES = flags.DEFINE_list(
  "recipes", list(augment_params.RECIPES) + ["eval1", "eval3", "eval10"], "what to time"
)

SHAPES = ((256, 341), (240, 320))


def smooth_clip(h: int, w: int, t: int, c: int) -> np.ndarray:
  """uint8 ``(t, h, w, c)`` of smooth content (the values do not change the timing)."""
  yy, xx = np.mgrid[0:h, 0:w]
  base = 127 + 100 * np.sin(xx[..., None] / 17.0 + np.arange(c)) * np.cos(yy[..., None] / 23.0)
  return np.broadcast_to(np.clip(base, 0, 255).astype(np.uint8), (t, h, w, c)).copy()


def _spread(values) -> str:
  v = np.asarray(values) * 1e3
  return f"{np.median(v):8.2f} ({v.min():.2f}–{v.max():.2f})"


def _cpu_fn(recipe: str, cfg):
  if recipe.startswith("eval"):
    crops = int(recipe[4:])

    def run(rng, rgb, flow):
      r, f = transforms.resize_short(rgb, flow, cfg.resize_short)
      return transforms.eval_crops(r, f, size=cfg.image_size, num_crops=crops)

    return run
  return lambda rng, rgb, flow: transforms.TRAIN_AUGMENTS[recipe](rng, rgb, flow, cfg)


def _params(recipe: str, seed: int, hw, cfg) -> dict:
  if recipe.startswith("eval"):
    c = cfg.copy_and_resolve_references()
    c.eval_crops = int(recipe[4:])
    return augment_params.eval_params(hw, c)
  return augment_params.draw_params(np.random.default_rng(seed), recipe, hw, cfg)


def _device_fn(recipe: str, size: int):
  if recipe.startswith("eval"):
    return lambda p, r, f: device_augment.eval_views(p, r, f, out_size=size)
  return lambda p, r, f: device_augment.augment(p, r, f, out_size=size, recipe=recipe)


def main(argv):
  del argv
  t, l, b = _STEPS.value, _FLOW_LENGTH.value, _BATCH.value
  cfg = config.get_data_config()
  cfg.num_steps, cfg.flow_length = t, l
  shapes = [SHAPES[i % len(SHAPES)] for i in range(b)]
  clips = [(smooth_clip(h, w, t, 3), smooth_clip(h, w, t, 2 * l)) for h, w in shapes]
  pixels = max(h * w for h, w in shapes)
  packed = [canvas.pack(r, f, pixels) for r, f in clips]
  rgb = np.stack([p[0] for p in packed])
  flow = np.stack([p[1] for p in packed])
  print(
    f"jax {jax.__version__}, backend {jax.default_backend()} ({jax.devices()[0].device_kind}), "
    f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
  )
  frames = " and ".join(f"{h}×{w}" for h, w in SHAPES)
  print(f"T={t}, L={l}, batch {b}, output {cfg.image_size}², frames {frames}")
  print(
    f"{'recipe':10s} {'cpu ms/clip':>24s} {'device ms/clip':>24s} {'draw ms/clip':>22s} cpu/device"
  )
  for recipe in _RECIPES.value:
    cpu_fn, dev_fn = _cpu_fn(recipe, cfg), jax.jit(_device_fn(recipe, cfg.image_size))
    cpu, dev, draw, ratios = [], [], [], []
    for rep in range(_REPEATS.value + 1):
      t0 = time.perf_counter()
      params = [_params(recipe, rep * b + k, s, cfg) for k, s in enumerate(shapes)]
      t_draw = (time.perf_counter() - t0) / b
      batch = augment_params.stack_params(params)
      t0 = time.perf_counter()
      jax.block_until_ready(dev_fn(batch, rgb, flow))
      t_dev = (time.perf_counter() - t0) / b
      t0 = time.perf_counter()
      for k, (r, f) in enumerate(clips):
        cpu_fn(np.random.default_rng(rep * b + k), r, f)
      t_cpu = (time.perf_counter() - t0) / b
      if rep:  # round 0 compiles
        cpu.append(t_cpu)
        dev.append(t_dev)
        draw.append(t_draw)
        ratios.append(t_cpu / t_dev)
    print(
      f"{recipe:10s} {_spread(cpu):>24s} {_spread(dev):>24s} {_spread(draw):>22s} "
      f"{np.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})"
    )


if __name__ == "__main__":
  app.run(main)
