"""``synthetic_motion``: a generated dataset only the temporal stream can solve.

Each clip shows a random texture (smooth noise in random colours plus random
discs) that moves with one of nine motion patterns — translation right, left,
up or down, rotation clockwise or counter-clockwise, zoom in or out, or no
motion. Appearance is drawn independently of the class, so a single frame
carries no information about the label: a spatial-only network stays at
chance, while the flow separates the classes (``tests/data/test_builders.py``:
a nearest-centroid classifier on the mean flow scores above 0.8, one on
colour statistics below 0.3, chance being 1/9). Speeds, texture, colours and
positions are random per clip.

A horizontal flip turns "right" into "left" and "rotate_cw" into
"rotate_ccw" (x → -x reverses the sense of a rotation): the builder declares
these ``MIRROR_PAIRS`` (``info.metadata['mirror_pairs']``), so a flipped
training clip gets the mirror label. Up, down, zoom in/out and static are
their own mirror images (a flip leaves vertical and radial motion as they are).

It is the embedded default behind ``configs/demo.py``; the default config
(360 clips of 16 frames at 64×64, 80% train) is built, TV-L1 included, by
``python -m jaxact.data.build synthetic_motion``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image, ImageDraw

from jaxact.data.datasets import base

CLASSES = (
  "right",
  "left",
  "up",
  "down",
  "rotate_cw",
  "rotate_ccw",
  "zoom_in",
  "zoom_out",
  "static",
)

# Classes a horizontal flip swaps; the others map to themselves.
MIRROR_PAIRS = (("right", "left"), ("rotate_cw", "rotate_ccw"))


@dataclasses.dataclass(eq=False)
class SyntheticConfig(base.VideoConfig):
  """Attributes: size (frame side), frames per clip, clips, train fraction,
  seed."""

  size: int = 64
  frames: int = 16
  clips: int = 360
  train_fraction: float = 0.8
  seed: int = 0


def _texture(rng: np.random.Generator, side: int) -> Image.Image:
  """A random RGB texture ``side``×``side``: coloured smooth noise + discs."""
  coarse = rng.random((side // 8 + 2, side // 8 + 2, 3))
  img = Image.fromarray((coarse * 255).astype(np.uint8)).resize((side, side), Image.BICUBIC)
  fine = rng.integers(0, 48, (side, side, 3))
  arr = np.clip(np.asarray(img, np.int32) + fine - 24, 0, 255).astype(np.uint8)
  img = Image.fromarray(arr)
  draw = ImageDraw.Draw(img)
  for _ in range(int(rng.integers(6, 14))):
    cx, cy = rng.uniform(0, side, 2)
    r = rng.uniform(side * 0.03, side * 0.12)
    colour = tuple(int(v) for v in rng.integers(0, 256, 3))
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
  return img


def _affine(label: str, t: float, speed: float) -> tuple[float, float, float]:
  """(dx, dy, angle_deg, scale) of frame t relative to frame 0."""
  dx = dy = angle = 0.0
  scale = 1.0
  if label == "right":
    dx = speed * t
  elif label == "left":
    dx = -speed * t
  elif label == "up":
    dy = -speed * t
  elif label == "down":
    dy = speed * t
  elif label == "rotate_cw":
    angle = speed * t  # degrees per frame; y-down image: positive = clockwise
  elif label == "rotate_ccw":
    angle = -speed * t
  elif label == "zoom_in":
    scale = (1.0 + 0.02 * speed) ** t
  elif label == "zoom_out":
    scale = (1.0 + 0.02 * speed) ** -t
  return dx, dy, angle, scale


def render_clip(label: int, rng: np.random.Generator, *, size: int, frames: int) -> np.ndarray:
  """Renders one clip of class ``CLASSES[label]``.

  Args:
    label: class index.
    rng: source of all randomness (texture, speed, centre).
    size: frame side in pixels.
    frames: number of frames T.

  Returns:
    uint8 ``(T, size, size, 3)``.
  """
  name = CLASSES[label]
  side = size * 3
  tex = _texture(rng, side)
  speed = float(rng.uniform(1.0, 2.5))
  # Centre of the view in texture coordinates (random position per clip).
  cx0 = side / 2 + rng.uniform(-size * 0.25, size * 0.25)
  cy0 = side / 2 + rng.uniform(-size * 0.25, size * 0.25)
  out = np.empty((frames, size, size, 3), np.uint8)
  for t in range(frames):
    dx, dy, angle, scale = _affine(name, t, speed)
    a = np.deg2rad(angle)
    # Output pixel p (relative to the view centre) shows texture point
    # c0 - d + R(-a) p / s: content moves by +d, rotates by +a, grows by s.
    cos, sin = np.cos(a) / scale, np.sin(a) / scale
    ox, oy = size / 2, size / 2
    m = (cos, sin, cx0 - dx - cos * ox - sin * oy, -sin, cos, cy0 - dy + sin * ox - cos * oy)
    frame = tex.transform((size, size), Image.AFFINE, m, Image.BILINEAR)
    out[t] = np.asarray(frame)
  return out


class JaxactSyntheticMotion(base.VideoBuilder):
  """Generated motion-pattern clips (random appearance, class = motion)."""

  VERSION = tfds.core.Version("1.0.0")
  MIRROR_PAIRS = MIRROR_PAIRS
  BUILDER_CONFIGS = [
    SyntheticConfig(name="default", short_side=64, flow_preset="fast", flow_batch=0)
  ]

  def class_names(self) -> list[str]:
    return list(CLASSES)

  def split_generators(self):
    cfg = self.builder_config
    num_train = round(cfg.clips * cfg.train_fraction)
    splits = {"train": self._generate_examples(self._items(0, num_train), "train")}
    if num_train < cfg.clips:  # TFDS cannot write an empty split
      splits["test"] = self._generate_examples(self._items(num_train, cfg.clips), "test")
    return splits

  def _items(self, start: int, stop: int):
    cfg = self.builder_config
    for i in range(start, stop):
      rng = np.random.default_rng([cfg.seed, i])
      label = i % len(CLASSES)
      clip = render_clip(label, rng, size=cfg.size, frames=cfg.frames)
      yield f"clip_{i:06d}", clip, label
