"""Which frames and flows a clip takes: paper A, paper B, TSN.

A video stores ``n`` RGB frames and ``F = n - 1`` flows (flow i: frame i → i+1).
A *step* at position ``i`` takes RGB frame ``i`` and the flow stack
``i, i+1, …, i+L-1`` (channels x1, y1, x2, y2, …). Valid positions are
``0 … S-1`` with ``S = max(F - L + 1, 1)``, so a full stack fits.

Schemes (``num_steps`` = T):

* ``'segments'`` — paper A and TSN: positions ``[0, S)`` are cut into T equal
  segments; training draws one position uniformly inside each segment
  (independently), evaluation takes the segment centre (clip j of N:
  the point ``(j + 0.5) / N`` of the way through each segment).
* ``'uniform'`` — paper B: T positions at equal intervals ``S / T`` with one
  shared offset: random in ``[0, S/T)`` for training, centred for evaluation
  (clip j of N: offset ``(j + 0.5) / N`` of an interval).

Short videos (the documented rule): positions are computed on the continuous
range ``[0, S)`` and floored, so when ``S < T`` neighbouring steps repeat a
position (the clip holds every available position, in order, some twice);
flow indices past the last flow are clamped to ``F - 1`` (the last flow is
repeated) when the video has fewer than ``L`` flows. A video with a single
frame has no flow and is rejected at build time.
"""

from __future__ import annotations

import numpy as np

SCHEMES = ("segments", "uniform")


def num_positions(num_frames: int, flow_length: int) -> int:
  """S: how many step positions have a full flow stack (at least 1)."""
  return max(num_frames - 1 - flow_length + 1, 1)


def step_positions(
  num_frames: int,
  *,
  scheme: str,
  num_steps: int,
  flow_length: int,
  rng: np.random.Generator | None = None,
  clip: int = 0,
  num_clips: int = 1,
) -> np.ndarray:
  """Start positions of the T steps of one clip.

  Args:
    num_frames: n, stored RGB frames of the video (>= 2).
    scheme: ``'segments'`` or ``'uniform'``.
    num_steps: T.
    flow_length: L.
    rng: random when given (training); deterministic when None.
    clip: which of ``num_clips`` evaluation clips (ignored with ``rng``).
    num_clips: evaluation clips per video.

  Returns:
    int64 ``(T,)`` non-decreasing positions in ``[0, S)``.
  """
  if scheme not in SCHEMES:
    raise ValueError(f"unknown sampling scheme {scheme!r}; use one of {SCHEMES}")
  if num_frames < 2:
    raise ValueError(f"a clip needs >= 2 frames (1 flow), got {num_frames}")
  s = num_positions(num_frames, flow_length)
  seg = s / num_steps
  starts = np.arange(num_steps) * seg
  if rng is None:
    frac = np.full(num_steps, (clip + 0.5) / num_clips)
  elif scheme == "segments":
    frac = rng.random(num_steps)
  else:
    frac = np.full(num_steps, rng.random())
  pos = np.floor(starts + frac * seg).astype(np.int64)
  return np.clip(pos, 0, s - 1)


def flow_indices(positions: np.ndarray, num_frames: int, flow_length: int) -> np.ndarray:
  """Flow indices ``(T, L)`` of the stacks starting at ``positions``.

  Indices past the last flow (``num_frames - 2``) are clamped to it.
  """
  offsets = np.arange(flow_length)
  return np.minimum(positions[:, None] + offsets[None, :], num_frames - 2)


def sample_clip(
  num_frames: int,
  *,
  scheme: str,
  num_steps: int,
  flow_length: int,
  rng: np.random.Generator | None = None,
  clip: int = 0,
  num_clips: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
  """RGB and flow indices of one clip.

  Returns:
    ``(rgb (T,), flow (T, L))`` int64 indices: RGB frame ``rgb[t]`` is paired
    with flows ``flow[t]``.
  """
  pos = step_positions(
    num_frames,
    scheme=scheme,
    num_steps=num_steps,
    flow_length=flow_length,
    rng=rng,
    clip=clip,
    num_clips=num_clips,
  )
  return pos, flow_indices(pos, num_frames, flow_length)
