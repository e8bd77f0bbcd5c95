"""Batching frame pairs across videos so the accelerator stays busy.

:class:`FlowBatcher` takes whole videos (``(T, H, W, 3)`` uint8 frames),
queues their ``T - 1`` consecutive pairs by image size, runs
:func:`jaxact.flow.tvl1` on fixed-size batches (one compiled program per
size; the last batch is padded) and hands back each video with its uint8 flow
``(T - 1, H, W, 2)`` as soon as all its pairs are done. One batch is kept in
flight, so decoding and writing on the host overlap the device work.

How many pairs per call suits a device is decided in one place,
:func:`auto_batch_size` (the builders and the extraction CLI use it when no
batch size is given): 1 on a CPU, where a batch iterates until its slowest
pair meets epsilon, the short last batch is padded with pairs that cost as
much as real ones and two cores gain nothing from wider loops; 128 on a GPU
or TPU, where wide batches keep the device busy.

Example::

  batcher = FlowBatcher(batch_size=auto_batch_size())
  for key, frames in videos:
    for key, frames, flow in batcher.submit(key, frames):
      save(key, frames, flow)
  for key, frames, flow in batcher.finish():
    save(key, frames, flow)
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Hashable, Iterator
from typing import Any

import jax
import numpy as np

from jaxact.flow.dual_tvl1 import make_params, tvl1
from jaxact.flow.quantize import DEFAULT_BOUND, quantize


@dataclasses.dataclass
class _Video:
  key: Hashable
  frames: np.ndarray  # (T, H, W, 3) uint8
  flow: np.ndarray  # (T - 1, H, W, 2) uint8, filled as batches finish
  remaining: int


Finished = tuple[Hashable, np.ndarray, np.ndarray]

# Frame pairs per TV-L1 call by device kind (see :func:`auto_batch_size`).
CPU_BATCH = 1
ACCELERATOR_BATCH = 128


def auto_batch_size(platform: str | None = None) -> int:
  """Frame pairs per TV-L1 call for a device kind: the one place that decides.

  On a CPU a batch runs until its slowest pair converges and a short batch
  is padded with full-cost pairs, while wider loops gain little on a few
  cores, so single pairs are fastest (``docs/benchmarks.md``); a GPU or TPU
  needs wide batches to be busy.

  Args:
    platform: ``'cpu'``, ``'gpu'``, ``'tpu'``, …; None: JAX's default backend.

  Returns:
    ``CPU_BATCH`` (1) on a CPU, else ``ACCELERATOR_BATCH`` (128).
  """
  if platform is None:
    platform = jax.default_backend()
  return CPU_BATCH if platform == "cpu" else ACCELERATOR_BATCH


def resolve_batch_size(batch_size: int | str | None, platform: str | None = None) -> int:
  """A configured batch size: None or ``'auto'`` → :func:`auto_batch_size`;
  an integer >= 1 is honoured as given.

  Raises:
    ValueError: anything else (0 and negatives included: callers that give 0
      a meaning handle it before calling).
  """
  if batch_size is None or (isinstance(batch_size, str) and batch_size.lower() == "auto"):
    return auto_batch_size(platform)
  if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
    raise ValueError(f"flow batch size must be an integer >= 1 or 'auto', got {batch_size!r}")
  if batch_size < 1:
    raise ValueError(f"flow batch size must be >= 1 or 'auto', got {batch_size}")
  return int(batch_size)


class FlowBatcher:
  """Computes quantised TV-L1 flow for many videos, batching across them.

  Args:
    batch_size: frame pairs per device call (fixed, so one compilation per
      image size); None or ``'auto'``: :func:`auto_batch_size`.
    bound: quantisation bound in pixels (see :func:`jaxact.flow.quantize`).
    **params: TV-L1 parameters (OpenCV names, see :func:`jaxact.flow.tvl1`).
  """

  def __init__(
    self, batch_size: int | str | None = None, bound: float = DEFAULT_BOUND, **params: Any
  ):
    batch_size = resolve_batch_size(batch_size)
    make_params(**params)  # fail early on bad parameters
    self.batch_size = batch_size
    self.bound = bound
    self.params = params
    self._queues: dict[tuple[int, int], collections.deque] = {}
    self._inflight: tuple[list[tuple[_Video, int]], jax.Array] | None = None
    self.pairs_done = 0

  def submit(self, key: Hashable, frames: np.ndarray) -> list[Finished]:
    """Queues a video; returns the videos finished meanwhile.

    Args:
      key: any identifier, returned with the result.
      frames: ``(T, H, W, 3)`` uint8 RGB (or ``(T, H, W)`` gray), T >= 2.
    """
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4) or frames.shape[0] < 2:
      raise ValueError(f"{key}: need (T, H, W[, 3]) frames with T >= 2, got shape {frames.shape}")
    t, h, w = frames.shape[:3]
    video = _Video(key, frames, np.empty((t - 1, h, w, 2), np.uint8), t - 1)
    q = self._queues.setdefault((h, w), collections.deque())
    q.extend((video, i) for i in range(t - 1))
    done = []
    while len(q) >= self.batch_size:
      done += self._dispatch([q.popleft() for _ in range(self.batch_size)])
    return done

  def finish(self) -> list[Finished]:
    """Runs the partial batches left and returns every remaining video."""
    done = []
    for q in self._queues.values():
      while q:
        n = min(len(q), self.batch_size)
        done += self._dispatch([q.popleft() for _ in range(n)])
    done += self._collect()
    self._queues.clear()
    return done

  def _dispatch(self, items: list[tuple[_Video, int]]) -> list[Finished]:
    idx = items + [items[-1]] * (self.batch_size - len(items))  # pad
    prev = np.stack([v.frames[i] for v, i in idx])
    nxt = np.stack([v.frames[i + 1] for v, i in idx])
    flow = quantize(tvl1(prev, nxt, **self.params), self.bound)  # async
    done = self._collect()
    self._inflight = (items, flow)
    return done

  def _collect(self) -> list[Finished]:
    if self._inflight is None:
      return []
    items, flow = self._inflight
    self._inflight = None
    flow = np.asarray(flow)
    done = []
    for j, (video, i) in enumerate(items):
      video.flow[i] = flow[j]
      video.remaining -= 1
      if video.remaining == 0:
        done.append((video.key, video.frames, video.flow))
    self.pairs_done += len(items)
    return done


def video_flow(
  frames: np.ndarray,
  *,
  batch_size: int | str | None = None,
  bound: float = DEFAULT_BOUND,
  **params: Any,
) -> np.ndarray:
  """Quantised TV-L1 flow between consecutive frames of one video.

  A video with fewer pairs than ``batch_size`` runs in one call padded to
  the next power of two, so videos of many lengths share few compiled
  programs; longer ones run in calls of ``batch_size`` pairs.

  Args:
    frames: ``(T, H, W, 3)`` uint8 RGB (or ``(T, H, W)`` gray), T >= 2.
    batch_size: frame pairs per device call (at most); None or ``'auto'``:
      :func:`auto_batch_size`.
    bound: quantisation bound (px).
    **params: TV-L1 parameters.

  Returns:
    uint8 ``(T - 1, H, W, 2)``: n frames give n - 1 flows, none dropped.
  """
  pairs = max(len(frames) - 1, 1)
  batch_size = min(resolve_batch_size(batch_size), 1 << (pairs - 1).bit_length())
  batcher = FlowBatcher(batch_size=batch_size, bound=bound, **params)
  out = batcher.submit(0, frames) + batcher.finish()
  return out[0][2]


def iter_flows(
  videos: Iterator[tuple[Hashable, np.ndarray]],
  *,
  batch_size: int | str | None = None,
  bound: float = DEFAULT_BOUND,
  **params: Any,
) -> Iterator[Finished]:
  """Streams ``(key, frames, flow)`` for ``(key, frames)`` inputs.

  Results come in completion order (batches mix videos).
  """
  batcher = FlowBatcher(batch_size=batch_size, bound=bound, **params)
  for key, frames in videos:
    yield from batcher.submit(key, frames)
  yield from batcher.finish()
