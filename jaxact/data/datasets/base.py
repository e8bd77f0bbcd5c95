"""What every jaxact video builder shares: features, encoding, flow, skips.

Each example stores, per video:

* ``label`` — ``ClassLabel`` (names in the dataset's metadata);
* ``video_id`` — the path relative to the download, or a generated id;
* ``num_frames`` — T, the stored RGB frames;
* ``frames`` — T JPEG byte strings (RGB, short side ``short_side``; JPEG
  settings of ``jaxact.data.jpeg``);
* ``flow_x``, ``flow_y`` — T-1 grayscale JPEG byte strings: the TV-L1 flow
  from frame i to i+1, quantised to uint8 (bound 20 px, 128 ≈ no motion), so
  frame i is paired with flow i.

Frames are stored as encoded bytes in ``Tensor(shape=(), dtype=object)``
features, which TFDS hands back undecoded without TensorFlow; the pipeline
decodes only the frames a clip samples.

Missing and undecodable videos are skipped, never silently: the build keeps
``(split, path, reason)`` for each, stores them in ``info.metadata['skipped']``
and prints a summary.

A builder whose classes come in mirror pairs (a horizontal flip turns one into
the other, e.g. "moving right" / "moving left") declares them in
``mirror_pairs()``; they are stored in ``info.metadata['mirror_pairs']``
(``jaxact.data.datasets.load_info``) and flips map labels through them
(``jaxact.data.transforms``).
"""

from __future__ import annotations

import abc
import dataclasses
import os
from collections.abc import Callable, Iterator

import numpy as np
import tensorflow_datasets as tfds
from array_record.python import array_record_module

from jaxact.data import jpeg, record_index, video
from jaxact.flow.batching import FlowBatcher, resolve_batch_size, video_flow
from jaxact.flow.cache import enable_compilation_cache

# ``flow_fn(frames uint8 (T, H, W, 3)) -> uint8 (T-1, H, W, 2)``.
FlowFn = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(eq=False)
class VideoConfig(tfds.core.BuilderConfig):
  """Build parameters shared by the video builders.

  Attributes:
    short_side: stored frames are resized so their short side has this size.
    jpeg_quality: JPEG quality of the stored RGB frames and flow components
      (default: ``jaxact.data.jpeg``'s, the same for both).
    max_frames: keep at most this many frames per video (0: all).
    split: the official split stored (UCF101, HMDB51): 1, 2 or 3, or None
      for all three, every video stored once (config ``all``); unused by the
      other datasets.
    flow_preset: TV-L1 parameters, a key of ``FLOW_PRESETS``.
    flow_batch: frame pairs per TV-L1 call, batched across videos (one
      compilation per frame size; a short last batch is padded). None or
      ``'auto'`` (the default): by device kind,
      ``jaxact.flow.auto_batch_size`` — 1 on a CPU, 128 on a GPU/TPU; an
      integer >= 1 is used as given; 0 = one call per video, all its pairs
      (fixed-length generated clips).
  """

  short_side: int = 256
  jpeg_quality: int = jpeg.RGB_QUALITY
  max_frames: int = 0
  split: int | None = None
  flow_preset: str = "opencv"
  flow_batch: int | str | None = None


def official_split_configs() -> list[VideoConfig]:
  """Configs of a dataset with three official splits (UCF101, HMDB51).

  ``all`` (the default; ``split=None``) stores every video once, its TFDS
  splits being role partitions (``official_splits``); ``split1``–``split3``
  store one official split each as plain ``train`` / ``test``.
  """
  return [VideoConfig(name="all", split=None)] + [
    VideoConfig(name=f"split{i}", split=i) for i in (1, 2, 3)
  ]


# TV-L1 parameter sets: 'opencv' = OpenCV DualTVL1's defaults (the papers'
# flow); 'fast' = a coarse solve for small generated clips (synthetic_motion):
# much cheaper, displacements underestimated but motion patterns intact.
FLOW_PRESETS = {
  "opencv": {},
  "fast": {
    "nscales": 2,
    "warps": 1,
    "inner_iterations": 10,
    "outer_iterations": 1,
    "median_filtering": 1,
  },
}


def encode_example(
  frames: np.ndarray, flow: np.ndarray, *, label: int | str, video_id: str, quality: int
) -> dict:
  """Builds one TFDS example from decoded frames and their quantised flow.

  Args:
    frames: uint8 ``(T, H, W, 3)``.
    flow: uint8 ``(T-1, H, W, 2)``, flow i→i+1.
    label: class index or name.
    video_id: identifier stored with the example.
    quality: JPEG quality of the RGB frames and the flow components.

  Returns:
    The feature dict of :func:`video_features`.
  """
  if len(frames) < video.MIN_FRAMES:
    raise ValueError(f"{video_id}: {len(frames)} frame(s); flow needs >= {video.MIN_FRAMES}")
  if flow.shape != (len(frames) - 1,) + frames.shape[1:3] + (2,):
    raise ValueError(
      f"{video_id}: flow shape {flow.shape} does not match "
      f"frames {frames.shape} (expected T-1 flows)"
    )
  return {
    "label": label,
    "video_id": video_id,
    "num_frames": len(frames),
    "frames": [jpeg.encode_rgb(f, quality) for f in frames],
    "flow_x": [jpeg.encode_flow(f[..., 0], quality) for f in flow],
    "flow_y": [jpeg.encode_flow(f[..., 1], quality) for f in flow],
  }


def video_features(class_names: list[str] | None) -> tfds.features.FeaturesDict:
  """The feature spec shared by all jaxact video datasets.

  ``class_names=None`` leaves the label names to be set once the manual dir
  is known (``tfds build`` passes it only at preparation time).
  """
  encoded = tfds.features.Sequence(tfds.features.Tensor(shape=(), dtype=np.object_))
  return tfds.features.FeaturesDict(
    {
      "label": tfds.features.ClassLabel(names=class_names),
      "video_id": tfds.features.Text(),
      "num_frames": np.int32,
      "frames": encoded,
      "flow_x": encoded,
      "flow_y": encoded,
    }
  )


class VideoBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the jaxact builders: flow injection, decoding, skip accounting.

  Args (besides TFDS's): ``flow_fn`` replaces the default batched TV-L1
  (tests inject OpenCV's or a cheap one); ``manual_dir`` points to the
  official download. ``file_format`` defaults to ``array_record``.
  """

  def __init__(
    self, *, flow_fn: FlowFn | None = None, manual_dir: str | os.PathLike | None = None, **kwargs
  ):
    self._flow_fn = flow_fn
    self._manual_dir_arg = os.fspath(manual_dir) if manual_dir else None
    self._skipped: list[dict] = []
    self._use_beam = False
    # Random access (tfds.data_source, the frame index) needs ArrayRecord;
    # TFDS's own default, also that of ``tfds build``, is tfrecord.
    if kwargs.get("file_format") is None:
      kwargs["file_format"] = "array_record"
    super().__init__(**kwargs)

  # --- subclass hooks -------------------------------------------------------
  @abc.abstractmethod
  def class_names(self) -> list[str]:
    """Class names in label order (may read ``self.manual_path``)."""

  def _info(self) -> tfds.core.DatasetInfo:
    try:
      names = self.class_names()
    except FileNotFoundError:  # manual dir known only at preparation
      names = None
    return tfds.core.DatasetInfo(
      builder=self,
      description=self.__doc__,
      features=video_features(names),
      metadata=tfds.core.MetadataDict(),
    )

  # --- helpers for subclasses ------------------------------------------------
  @property
  def manual_path(self) -> str:
    """The official download folder (``--manual_dir``)."""
    path = self._manual_dir_arg
    if path is None:
      try:
        path = os.fspath(self._dl_manager_manual_dir)
      except AttributeError:
        path = None
    if not path or not os.path.isdir(path):
      raise FileNotFoundError(
        f"{self.name}: manual_dir {path!r} is not a folder; pass "
        f"--manual_dir pointing at the official download"
      )
    return path

  def _split_generators(self, dl_manager):
    try:
      self._dl_manager_manual_dir = dl_manager.manual_dir
    except Exception:  # pylint: disable=broad-except  (unset manual dir)
      self._dl_manager_manual_dir = None
    label = self.info.features["label"]
    if label.num_classes is None:
      label.names = self.class_names()
    return self.split_generators()

  @abc.abstractmethod
  def split_generators(self) -> dict[str, Iterator]:
    """``{split: self.generate(...)}`` for each split."""

  # Class-name pairs a horizontal flip swaps (none: flips keep labels).
  MIRROR_PAIRS: tuple[tuple[str, str], ...] = ()

  def mirror_pairs(self) -> tuple[tuple[str, str], ...]:
    """The mirror pairs stored with the build (default ``MIRROR_PAIRS``)."""
    return tuple(self.MIRROR_PAIRS)

  def after_generation(self) -> None:
    """Hook run once all splits are written (e.g. collect Beam reports)."""

  def encoder(self) -> VideoEncoder:
    """The picklable per-video work (decode → TV-L1 → JPEG) of this build."""
    cfg = self.builder_config
    if self._flow_fn is None and cfg.flow_preset not in FLOW_PRESETS:
      raise KeyError(f"unknown flow_preset {cfg.flow_preset!r}; known: {sorted(FLOW_PRESETS)}")
    return VideoEncoder(
      short_side=cfg.short_side,
      max_frames=cfg.max_frames,
      quality=cfg.jpeg_quality,
      flow_batch=cfg.flow_batch,
      flow_preset=cfg.flow_preset,
      flow_fn=self._flow_fn,
    )

  def skip(self, split: str, path: str, reason: str) -> None:
    """Records a skipped video (kept in metadata and printed)."""
    self._skipped.append({"split": split, "path": path, "reason": reason})
    self.info.metadata["skipped"] = list(self._skipped)

  def _generate_examples(self, items, split: str):
    """Yields ``(key, example)`` from ``(key, path_or_frames, label)`` items.

    ``path_or_frames`` is a video file or frame folder (decoded with
    ``jaxact.data.video.read_frames_or_skip``) or a uint8 ``(T, H, W, 3)``
    array (generated data). With the default TV-L1 and ``flow_batch > 0``,
    frame pairs are batched across videos (``jaxact.flow.FlowBatcher``;
    decoding overlaps the flow) and compiled programs are kept in JAX's
    persistent compilation cache (``jaxact.flow.enable_compilation_cache``).
    """
    self.info.metadata.setdefault("skipped", [])
    encoder = self.encoder()
    cfg = self.builder_config
    batcher = None
    if self._flow_fn is None:
      enable_compilation_cache()
      if cfg.flow_batch != 0:
        batch = resolve_batch_size(cfg.flow_batch)
        batcher = FlowBatcher(batch_size=batch, **FLOW_PRESETS[cfg.flow_preset])
    for key, source, label in items:
      frames, reason = encoder.decode(source)
      if frames is None:
        self.skip(split, os.fspath(source), reason)
        continue
      if batcher is None:
        yield key, encoder.encode(key, frames, encoder.flow(frames), label)
        continue
      for (k, lab), fr, flow in batcher.submit((key, label), frames):
        yield k, encoder.encode(k, fr, flow, lab)
    if batcher is not None:
      for (k, lab), fr, flow in batcher.finish():
        yield k, encoder.encode(k, fr, flow, lab)

  def _download_and_prepare(self, dl_manager, download_config=None):  # pylint: disable=arguments-differ
    self._skipped = []
    self._use_beam = bool(
      download_config is not None and (download_config.beam_runner or download_config.beam_options)
    )
    super()._download_and_prepare(dl_manager, download_config=download_config)
    # self.data_dir is TFDS's temporary build directory here.
    rewrite_uncompressed(self.data_dir)
    record_index.index_dataset(self.data_dir)  # byte-range reads of frames
    self.after_generation()
    self.info.metadata["skipped"] = list(self._skipped)
    self.info.metadata["config"] = dataclasses.asdict(
      self.builder_config, dict_factory=_jsonable_dict
    )
    self.info.metadata["mirror_pairs"] = [list(p) for p in self.mirror_pairs()]
    print(build_summary(self.info))


def rewrite_uncompressed(data_dir) -> int:
  """Rewrites the ArrayRecord shards in ``data_dir`` without compression.

  TFDS writes ArrayRecord with zstd. The payload here is JPEG, which zstd
  barely shrinks, while a compressed record must be decompressed whole to
  read the few frames a clip samples (and cannot be read by byte range,
  ``jaxact.data.record_index``). Records, order and counts are unchanged.
  Only local directories are rewritten (others are left as TFDS wrote them:
  correct, just slower to read).

  Returns:
    The number of shards rewritten.
  """
  ar = array_record_module
  directory = os.fspath(data_dir)
  if not os.path.isdir(directory):
    return 0
  count = 0
  for name in sorted(os.listdir(directory)):
    path = os.path.join(directory, name)
    if ".array_record-" not in name or name.endswith(".uncompressed") or not os.path.isfile(path):
      continue
    reader = ar.ArrayRecordReader(path)
    if "uncompressed" in reader.writer_options_string():
      reader.close()
      continue
    tmp = path + ".uncompressed"
    writer = ar.ArrayRecordWriter(tmp, "group_size:1,uncompressed")
    for i in range(reader.num_records()):  # one record at a time: bounded memory
      writer.write(reader.read([i])[0])
    writer.close()
    reader.close()
    os.replace(tmp, path)
    count += 1
  return count


@dataclasses.dataclass
class VideoEncoder:
  """Decodes one video, computes its flow and encodes the example.

  Picklable (Beam ships it to workers). Calling it returns ``(example,
  None)`` or ``(None, reason)`` for a video that must be skipped.
  """

  short_side: int
  max_frames: int
  quality: int
  flow_batch: int | str | None
  flow_preset: str
  flow_fn: FlowFn | None = None

  def flow(self, frames: np.ndarray) -> np.ndarray:
    """uint8 ``(T-1, H, W, 2)`` flow of one video (``flow_fn`` or TV-L1).

    TV-L1 runs through ``jaxact.flow.video_flow`` (the one batcher):
    ``flow_batch`` pairs per call (auto: by this process's device kind), or
    all the video's pairs in one call when ``flow_batch`` is 0.
    """
    if self.flow_fn is not None:
      return self.flow_fn(frames)
    enable_compilation_cache()  # also in Beam workers
    if self.flow_batch == 0:
      batch = len(frames) - 1
    else:
      batch = resolve_batch_size(self.flow_batch)
    return video_flow(frames, batch_size=batch, **FLOW_PRESETS[self.flow_preset])

  def decode(self, source):
    """Path (video file or frame folder) or frames → ``(frames, None)`` or
    ``(None, skip reason)``."""
    if not isinstance(source, np.ndarray):
      return video.read_frames_or_skip(
        source, short_side=self.short_side, max_frames=self.max_frames or None
      )
    try:
      return video.require_flow_pair("frames", source), None
    except video.VideoDecodeError as e:
      return None, e.reason

  def encode(self, key: str, frames: np.ndarray, flow: np.ndarray, label):
    return encode_example(frames, flow, label=label, video_id=key, quality=self.quality)

  def __call__(self, key: str, source, label):
    """One video, start to end: ``(example, None)`` or ``(None, reason)``."""
    frames, reason = self.decode(source)
    if frames is None:
      return None, reason
    return self.encode(key, frames, self.flow(frames), label), None


def _jsonable_dict(items) -> dict:
  return {k: v for k, v in items if isinstance(v, (int, float, str, bool, type(None)))}


def build_summary(info: tfds.core.DatasetInfo) -> str:
  """One-screen summary: classes, clips per split, official splits (unions
  of stored partitions, UCF101 / HMDB51 ``all``), skipped files."""
  lines = [f"{info.full_name}: {info.features['label'].num_classes} classes"]
  for name, split in sorted(info.splits.items()):
    lines.append(f"  {name}: {split.num_examples} clips")
  official = dict(info.metadata.get("official_splits", {}))
  sizes = dict(info.metadata.get("official_split_sizes", {}))
  if official:
    lines.append("  official splits (read them by these names):")
  for name, spec in official.items():
    lines.append(f"    {name}: {sizes.get(name, '?')} clips = {spec}")
  skipped = list(info.metadata.get("skipped", []))
  lines.append(f"  skipped: {len(skipped)} video(s)")
  for s in skipped[:20]:
    lines.append(f"    [{s['split']}] {s['path']}: {s['reason']}")
  if len(skipped) > 20:
    lines.append(f"    ... {len(skipped) - 20} more in info.metadata['skipped']")
  return "\n".join(lines)
