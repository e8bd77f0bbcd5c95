"""Grain input pipelines: source → shard → shuffle → sample → decode → batch.

The host only reads, decodes and draws random numbers: each example is its
sampled frames decoded onto fixed-size canvases (:mod:`jaxact.data.canvas`)
plus its augmentation parameters (:mod:`jaxact.data.augment_params`, drawn
from the example's RNG); the jitted train / eval step augments the batch on
the device (:func:`jaxact.data.device_augment.train_inputs` /
``eval_inputs``) before normalising it. ``jaxact.data.transforms`` (the
CPU recipes) stays as the tests' reference.

``create_loader`` is the contract of docs/interfaces.md:

* training: each epoch is a seeded permutation of the whole split (Grain's
  index shuffle, reseeded each epoch), repeated forever; global batch ``b``
  holds permuted positions ``[bG, (b+1)G)`` and process ``p`` reads its
  contiguous slice of ``B = G / P`` of them, so within an epoch every example
  goes to exactly one process. Each example gets its own RNG (seed, global
  position) for sampling and augmentation, so the global batches depend only
  on ``seed`` and ``G`` — not on the number of processes, workers or threads
  (2 processes × 2 devices train exactly like 1 × 4); partial batches are
  dropped.
* evaluation: one pass; process p takes examples ``p, p+P, p+2P, …``; every
  process yields the same number of batches (``ceil(ceil(N/P)/B)``), padded
  with ``mask=False`` / ``index=-1`` examples, so each example counts exactly
  once across processes.

Mirror pairs (``DatasetInfo.mirror``, declared by the dataset's builder): a
training clip whose drawn parameters flip it (``aug['flip']``) gets the
mirror label (``transforms.mirror_label``, on the host); evaluation batches
of such a dataset whose views include flipped ones (10-crop) carry
``view_perm`` int32 ``(B, V, K)``, per view the class permutation that maps
its scores back to the unflipped clip (identity for unflipped views, the
mirror for flipped ones), which ``jaxact.runtime.scoring`` applies before
averaging the views. A dataset without the declaration (or built before it
existed) has no ``view_perm`` and its flips keep labels.

Only the sampled frames are JPEG-decoded, by the batch function
(``canvas.Collate``), straight into the batch's canvases. ``get_state``/``set_state`` save and
restore the Grain iterator position exactly (JSON bytes).
"""

from __future__ import annotations

import json
import logging
import math
import os

import grain
import numpy as np
from tensorflow_datasets.proto import tf_example_pb2

from jaxact.data import (
  allocator,
  augment_params,
  canvas,
  datasets,
  record_index,
  sampling,
  transforms,
)


class LazyRecords:
  """Random access to stored examples that reads only the sampled images.

  With the shard indexes every jaxact build writes
  (:mod:`jaxact.data.record_index`), an example's images are read one byte
  range each, when a clip asks for them. Without a valid index (a dataset
  built before indexes existed, or a changed shard) each read returns the
  whole record, parsed with protobuf's C implementation, materialising only
  the frames a clip samples (TFDS's own decoding would turn all of them into
  Python ``bytes``); the first such read in a process keeps multi-megabyte
  buffers on the heap (:mod:`jaxact.data.allocator`: less CPU per record,
  measured there). Sources without raw records fall back to TFDS's decoding.

  Args:
    source: a TFDS ``ArrayRecordDataSource`` of a jaxact video dataset.
    use_index: read through the shard indexes when they are valid (False:
      always whole records; benchmarks compare the two).
  """

  def __init__(self, source, use_index: bool = True):
    self._source = source
    self._raw = getattr(source, "data_source", None)
    self._indexed = None
    if self._raw is not None and use_index:
      self._indexed = record_index.IndexedSource.open(source)
      if self._indexed is None:
        where = os.fspath(source.dataset_info.data_dir)
        if "://" in where:
          logging.warning(
            "%s is not a local path: clips read whole videos "
            "(byte-range reads need a local or FUSE-mounted "
            "file system)",
            where,
          )
        else:
          logging.warning(
            "%s has no (valid) frame index: clips read whole "
            "videos. Index it once with: python -m "
            "jaxact.data.record_index %s",
            where,
            where,
          )

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> dict:
    if self._indexed is not None:  # byte-range reads of sampled images
      return self._indexed[index]
    allocator.keep_large_buffers_on_heap()  # once per (worker) process
    if self._raw is None:
      return self._source[index]
    feats = tf_example_pb2.Example.FromString(self._raw[index]).features.feature
    out = {k: feats[k].bytes_list.value for k in record_index.KEYS}
    out["num_frames"] = int(feats["num_frames"].int64_list.value[0])
    out["label"] = int(feats["label"].int64_list.value[0])
    out["where"] = f"{self._source.dataset_info.data_dir}, example {int(index)}"
    return out


class TrainSample(grain.transforms.RandomMap):
  """Example + RNG → ``{'clip', 'label', 'aug'}``: sampled, not yet decoded.

  ``clip`` is a ``canvas.PendingClip`` (the sampled frames; the batch's
  ``canvas.Collate`` decodes it into the batch: ``rgb`` uint8 ``(T, P, 3)``,
  ``flow`` ``(T, 2L, P)`` per example, P = ``cfg.canvas_pixels``), ``aug``
  the recipe's parameters (``augment_params.draw_params``, fitted to the
  decoded size). The RNG is consumed as the CPU recipe would (sampling, then
  the recipe's draws), so a seed gives the same clip, crop, rotation and flip
  as ``transforms.augment``. ``mirror``: the dataset's flip permutation
  (``DatasetInfo.mirror``) or None; a flipped clip's label is
  ``mirror[label]``.
  """

  def __init__(self, cfg, mirror: np.ndarray | None = None):
    self.scheme, self.num_steps = cfg.sampling, cfg.num_steps
    self.flow_length = cfg.flow_length
    self.augment = cfg.augment
    self.pixels = int(cfg.canvas_pixels)
    self.mirror = None if mirror is None else np.asarray(mirror, np.int32)
    self.cfg = _plain(cfg)

  def random_map(self, example, rng: np.random.Generator):
    rgb_idx, flow_idx = sampling.sample_clip(
      int(example["num_frames"]),
      scheme=self.scheme,
      num_steps=self.num_steps,
      flow_length=self.flow_length,
      rng=rng,
    )
    frame_hw = canvas.frame_size(example)
    size = canvas.decoded_size(frame_hw, self.pixels)
    params = augment_params.draw_params(rng, self.augment, frame_hw, self.cfg, self.num_steps)
    label = transforms.mirror_label(int(example["label"]), bool(params["flip"]), self.mirror)
    return {
      "clip": canvas.PendingClip(example, rgb_idx, flow_idx, size),
      "label": np.int32(label),
      "aug": canvas.fit_params(params, frame_hw, size),
    }


class EvalSample(grain.transforms.Map):
  """Local position → ``{'clips', 'aug', 'label', 'mask', 'index'}``.

  ``clips`` are ``C = cfg.eval_clips`` ``canvas.PendingClip`` (None for a
  padding example), decoded into the batch by ``canvas.Collate``: ``rgb``
  uint8 ``(C, T, P, 3)``, ``flow`` ``(C, T, 2L, P)`` per example. ``aug``
  holds the views' parameters (``augment_params.eval_params``, leading axis
  C; ``eval_crops`` views each); the eval step makes the ``V = C ×
  eval_crops`` views on the device (``device_augment.eval_inputs``),
  clip-major.

  Position k of process p is example ``p + k P``; positions past the split
  are padding (``mask=False``, ``index=-1``). With a flip permutation
  ``mirror`` (``DatasetInfo.mirror``) and flipped views (10-crop), every
  example also has ``view_perm`` int32 ``(V, K)``
  (``transforms.view_permutations``).
  """

  def __init__(
    self,
    source,
    cfg,
    process_index: int,
    process_count: int,
    mirror: np.ndarray | None = None,
  ):
    self.source = source
    self.n = len(source)
    self.p, self.pc = process_index, process_count
    self.cfg = _plain(cfg)
    c = self.cfg
    self.view_perm = None
    flips = np.tile(transforms.eval_view_flips(c.eval_crops), c.eval_clips)
    if mirror is not None and flips.any():
      self.view_perm = transforms.view_permutations(flips, mirror)

  def map(self, k):
    out = self._clips(k)
    if self.view_perm is not None:
      out["view_perm"] = self.view_perm
    return out

  def _params(self, frame_hw, decoded_hw) -> dict:
    p = canvas.fit_params(augment_params.eval_params(frame_hw, self.cfg), frame_hw, decoded_hw)
    return {k: np.stack([v] * self.cfg.eval_clips) for k, v in p.items()}

  def _clips(self, k):
    c = self.cfg
    idx = self.p + int(k) * self.pc
    if idx >= self.n:
      return {
        "clips": None,
        "aug": self._params((1, 1), (1, 1)),
        "label": np.int32(0),
        "mask": np.bool_(False),
        "index": np.int64(-1),
      }
    example = self.source[idx]
    frame_hw = canvas.frame_size(example)
    size = canvas.decoded_size(frame_hw, int(c.canvas_pixels))
    clips = []
    for clip in range(c.eval_clips):
      rgb_idx, flow_idx = sampling.sample_clip(
        int(example["num_frames"]),
        scheme=c.sampling,
        num_steps=c.num_steps,
        flow_length=c.flow_length,
        clip=clip,
        num_clips=c.eval_clips,
      )
      clips.append(canvas.PendingClip(example, rgb_idx, flow_idx, size))
    return {
      "clips": tuple(clips),
      "aug": self._params(frame_hw, size),
      "label": np.int32(example["label"]),
      "mask": np.bool_(True),
      "index": np.int64(idx),
    }


def collate(data_cfg, *, train: bool) -> canvas.Collate:
  """The batch function of ``data_cfg``'s training or evaluation examples
  (:class:`TrainSample` / :class:`EvalSample` → one batch of canvases)."""
  return canvas.Collate(
    data_cfg.canvas_pixels,
    data_cfg.num_steps,
    data_cfg.flow_length,
    None if train else data_cfg.eval_clips,
  )


class _ProcessSlice(grain.MapDataset):
  """Process ``p``'s part of every global batch of a position-indexed dataset.

  Local position ``k`` → global position ``(k // B)·G + p·B + k mod B``: each
  global batch of ``G`` consecutive positions is cut into ``P`` contiguous
  slices of ``B = G / P`` and process ``p`` reads slice ``p``.
  """

  def __init__(
    self,
    parent: grain.MapDataset,
    *,
    global_batch_size: int,
    process_index: int,
    process_count: int,
  ):
    super().__init__(parent)
    self._global = global_batch_size
    self._local = global_batch_size // process_count
    self._offset = process_index * self._local

  def __len__(self) -> int:
    return len(self._parent) // self._global * self._local

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    k = int(index)
    return self._parent[(k // self._local) * self._global + self._offset + k % self._local]

  def __str__(self) -> str:
    return (
      f"ProcessSlice(global_batch={self._global}, local_batch={self._local}, offset={self._offset})"
    )


class _Cfg:
  """A picklable, attribute-access snapshot of the data config."""

  def __init__(self, d: dict):
    self.__dict__.update(d)


def _plain(cfg) -> _Cfg:
  d = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(vars(cfg))
  return _Cfg(d)


class GrainLoader:
  """Iterator of host batches with exact, serialisable position.

  Training loaders are one endless iterator (``iter(loader) is loader``).
  Evaluation loaders make one pass per ``iter(loader)``; ``len(loader)`` is
  the number of batches of a pass (the same on every process).

  Attributes:
    num_examples: examples in the split (all processes).
    num_classes, class_names: from the dataset's metadata.
  """

  def __init__(
    self,
    dataset: grain.IterDataset,
    *,
    train: bool,
    num_examples: int,
    class_names,
    num_batches: int | None,
  ):
    self._dataset = dataset
    self._train = train
    self._it = None
    self.num_examples = num_examples
    self.class_names = tuple(class_names)
    self.num_classes = len(self.class_names)
    self.num_batches = num_batches

  def _iterator(self):
    if self._it is None:
      self._it = iter(self._dataset)
    return self._it

  def __iter__(self):
    if self._train:
      return self
    self._it = iter(self._dataset)
    return self._it

  def __next__(self) -> dict:
    return next(self._iterator())

  def __len__(self) -> int:
    if self.num_batches is None:
      raise TypeError("a training loader is endless")
    return self.num_batches

  def get_state(self) -> bytes:
    """The iterator position, as bytes (store next to the checkpoint)."""
    return json.dumps(self._iterator().get_state(), sort_keys=True).encode()

  def set_state(self, state: bytes) -> None:
    """Restores a position saved by :meth:`get_state`."""
    self._iterator().set_state(json.loads(bytes(state).decode()))

  def close(self) -> None:
    it, self._it = self._it, None
    if it is not None and hasattr(it, "close"):
      it.close()


def _check(process_index: int, process_count: int) -> None:
  """Argument sanity a config cannot express (the config itself is checked
  by ``jaxact.config.validate``)."""
  if process_count < 1 or not 0 <= process_index < process_count:
    raise ValueError(f"bad process_index={process_index} / process_count={process_count}")


def create_loader(
  data_cfg,
  *,
  split: str,
  train: bool,
  global_batch_size: int,
  seed: int = 0,
  process_index: int = 0,
  process_count: int = 1,
) -> GrainLoader:
  """The host input pipeline of one process.

  Args:
    data_cfg: the ``config.data`` subtree (``jaxact.data.config``), checked
      by ``jaxact.config.validate`` (sampling scheme, augmentation, view
      counts, sizes, and ``global_batch_size`` divisible by
      ``process_count``): not checked again here.
    split: TFDS split name (e.g. ``data_cfg.train_split``).
    train: training (shuffle, augment, repeat, drop remainder) or
      evaluation (one pass, multi-view, pad + mask).
    global_batch_size: batch over all processes.
    seed: shuffling / sampling / augmentation seed.
    process_index, process_count: this process's shard.

  Returns:
    A :class:`GrainLoader` yielding numpy batches of ``global_batch_size //
    process_count`` examples (canvases of P = ``canvas_pixels`` pixels, to
    be augmented on the device): training ``rgb (B,T,P,3)``,
    ``flow (B,T,2L,P)``, ``label (B,)``, ``aug`` (parameters, leading B);
    evaluation ``rgb (B,C,T,P,3)``, ``flow (B,C,T,2L,P)``, ``aug`` (leading
    ``(B, C)``), ``label``, ``mask``, ``index`` and, for a dataset with
    mirror pairs and flipped views, ``view_perm (B,V,K)``.
  """
  _check(process_index, process_count)
  batch = global_batch_size // process_count
  name, config = data_cfg.name, data_cfg.builder_config
  data_dir = data_cfg.data_dir or None
  info = datasets.load_info(name, data_dir, config)
  mirror = info.mirror
  source = LazyRecords(datasets.data_source(name, split, data_dir, config))
  n = len(source)
  if train:
    if n < global_batch_size:
      raise ValueError(
        f"split {split!r} has {n} examples, fewer than one global batch of {global_batch_size}"
      )
    ds = grain.MapDataset.source(source).shuffle(seed=seed).repeat(None)
    # RNG from the global position (before slicing): independent of P.
    ds = ds.random_map(TrainSample(data_cfg, mirror), seed=seed + 1)
    ds = _ProcessSlice(
      ds,
      global_batch_size=global_batch_size,
      process_index=process_index,
      process_count=process_count,
    )
    ds = ds.batch(batch, drop_remainder=True, batch_fn=collate(data_cfg, train=True))
    num_batches = None
  else:
    per_process = math.ceil(n / process_count)
    num_batches = math.ceil(per_process / batch)
    ds = grain.MapDataset.range(num_batches * batch)
    ds = ds.map(EvalSample(source, data_cfg, process_index, process_count, mirror))
    ds = ds.batch(batch, drop_remainder=False, batch_fn=collate(data_cfg, train=False))
  it_ds = ds.to_iter_dataset(
    grain.ReadOptions(
      num_threads=max(1, data_cfg.read_threads),
      prefetch_buffer_size=max(1, data_cfg.prefetch, data_cfg.read_threads),
    )
  )
  if data_cfg.num_workers > 0:
    it_ds = it_ds.mp_prefetch(
      grain.MultiprocessingOptions(
        num_workers=data_cfg.num_workers, per_worker_buffer_size=max(1, data_cfg.prefetch)
      )
    )
  return GrainLoader(
    it_ds, train=train, num_examples=n, class_names=info.class_names, num_batches=num_batches
  )
