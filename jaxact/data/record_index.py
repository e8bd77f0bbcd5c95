"""Reads single frames out of jaxact's ArrayRecord shards by byte range.

One record holds a whole video (every RGB frame and flow component as JPEG
bytes: 6.9–8.3 MB for 150 frames at 256² in ``tools/bench_data``'s data), and
ArrayRecord returns records whole: paper A's clip (3 RGB frames + 30 flows,
i.e. 60 flow images) would read and copy the whole video to use 4.0–4.5% of
its bytes (same data, evaluation sampling). This module adds, next to each shard, an index of
where every stored image lies in the shard file, so a clip costs one
``pread`` per sampled image — as cheap as opening one file per frame in the
MMAction2 folder layout, without the 450 files per video.

Layout facts relied on (jaxact writes its shards ``uncompressed``,
``group_size:1``, not transposed — ``base.rewrite_uncompressed``): the shard is
a Riegeli file, i.e. 64 KiB blocks each starting with a 24-byte block header;
with those headers removed ("logical" positions), an uncompressed record's
bytes are contiguous. Nothing is assumed blindly: the index is built by
locating every record ArrayRecord's own reader returns and checking it byte
for byte; a shard that does not match is left unindexed and read whole.

Per shard ``S`` the index is the folder ``jaxact-index/S/`` beside it:

* ``header.json`` — format version, shard size and CRC32s of the shard's
  first and last 64 KiB (a changed shard invalidates its index), counts;
* ``records.npy`` — per record: logical start and length, label, frame
  count, and the first row in ``images.npy`` of each image list;
* ``images.npy`` — uint32 ``(N, 2)``: (offset in the record, length) of every
  image, memory-mapped (shared by Grain worker processes through the page
  cache).

Building: automatic at the end of every jaxact build (``index_dataset``);
``python -m jaxact.data.record_index DATASET_DIR`` indexes a dataset built
before this existed. Reading: :class:`IndexedSource`, used by
``jaxact.data.pipeline.LazyRecords`` whenever every shard it reads has a
valid index; each process keeps at most ``MAX_OPEN_SHARDS`` shards open
(least recently used evicted), so datasets of thousands of shards stay
within file-descriptor limits.
"""

from __future__ import annotations

import bisect
import collections
import concurrent.futures
import contextlib
import json
import logging
import multiprocessing
import os
import sys
import threading
import zlib

import numpy as np
from array_record.python import array_record_module as ar
from tensorflow_datasets.core import splits as splits_lib
from tensorflow_datasets.proto import tf_example_pb2

from jaxact.data import allocator

BLOCK_SIZE = 1 << 16
BLOCK_HEADER_SIZE = 24
_PAYLOAD = BLOCK_SIZE - BLOCK_HEADER_SIZE
KEYS = ("frames", "flow_x", "flow_y")
INDEX_FOLDER = "jaxact-index"
FORMAT_VERSION = 1
_CRC_SPAN = 1 << 16
_SEARCH_WINDOW = 4096  # a record starts within this many bytes of the last

RECORD_DTYPE = np.dtype(
  [
    ("start", "<i8"),
    ("length", "<i8"),
    ("label", "<i8"),
    ("num_frames", "<i8"),
    ("frames", "<i8"),
    ("flow_x", "<i8"),
    ("flow_y", "<i8"),
    ("end", "<i8"),
  ]
)


class StaleIndexError(RuntimeError):
  """An index does not describe its shard (the message says what to do)."""


# --- positions --------------------------------------------------------------
def physical_offset(logical: int) -> int:
  """Byte offset in the shard file of a logical (block-header-free) offset."""
  return (logical // _PAYLOAD) * BLOCK_SIZE + BLOCK_HEADER_SIZE + logical % _PAYLOAD


def _logical_size(file_size: int) -> int:
  blocks = -(-file_size // BLOCK_SIZE)
  return max(0, file_size - blocks * BLOCK_HEADER_SIZE)


def read_logical(fd: int, start: int, length: int) -> bytes:
  """``length`` logical bytes from logical offset ``start`` (one ``pread``)."""
  if length <= 0:
    return b""
  first = physical_offset(start)
  last = physical_offset(start + length - 1)
  raw = os.pread(fd, last - first + 1, first)
  if len(raw) != last - first + 1:
    raise StaleIndexError(f"short read at offset {first}: the shard is shorter than its index says")
  if len(raw) == length:  # no block header inside
    return raw
  pieces, pos, remaining = [], start, length
  while remaining:
    take = min(remaining, _PAYLOAD - pos % _PAYLOAD)
    at = physical_offset(pos) - first
    pieces.append(raw[at : at + take])
    pos += take
    remaining -= take
  return b"".join(pieces)


# --- tf.Example wire format -------------------------------------------------
def _varint(buf, pos: int) -> tuple[int, int]:
  result = shift = 0
  while True:
    b = buf[pos]
    pos += 1
    result |= (b & 0x7F) << shift
    if b < 0x80:
      return result, pos
    shift += 7


def _fields(buf, start: int, end: int):
  """``(field number, value start, value end)`` of length-delimited fields."""
  pos = start
  while pos < end:
    tag, pos = _varint(buf, pos)
    wire = tag & 7
    if wire == 2:
      n, pos = _varint(buf, pos)
      yield tag >> 3, pos, pos + n
      pos += n
    elif wire == 0:
      _, pos = _varint(buf, pos)
    elif wire == 1:
      pos += 8
    elif wire == 5:
      pos += 4
    else:
      raise ValueError(f"unsupported protobuf wire type {wire}")
  if pos != end:
    raise ValueError("truncated protobuf message")


def image_spans(record: bytes) -> dict[str, list[tuple[int, int]]]:
  """``{key: [(offset, length)]}`` of each image list in a serialised example.

  Args:
    record: a ``tf.train.Example`` as stored by the jaxact builders.

  Returns:
    For each of :data:`KEYS`, the byte span of every value of its
    ``bytes_list``, relative to the record's start, in order.
  """
  buf = memoryview(record)
  out = {}
  for num, s, e in _fields(buf, 0, len(buf)):  # Example
    if num != 1:
      continue
    for num2, s2, e2 in _fields(buf, s, e):  # Features: map entries
      if num2 != 1:
        continue
      key, feature = None, None
      for num3, s3, e3 in _fields(buf, s2, e2):
        if num3 == 1:
          key = bytes(buf[s3:e3]).decode()
        elif num3 == 2:
          feature = (s3, e3)
      if key in KEYS and feature is not None:
        spans = []
        for num4, s4, e4 in _fields(buf, *feature):  # Feature.bytes_list
          if num4 == 1:
            spans.extend((s5, e5 - s5) for num5, s5, e5 in _fields(buf, s4, e4) if num5 == 1)
        out[key] = spans
  missing = [k for k in KEYS if k not in out]
  if missing:
    raise ValueError(f"record has no {missing} features")
  return out


# --- building ---------------------------------------------------------------
def _fingerprint(path: str) -> dict:
  size = os.path.getsize(path)
  with open(path, "rb") as f:
    head = f.read(_CRC_SPAN)
    f.seek(max(0, size - _CRC_SPAN))
    tail = f.read(_CRC_SPAN)
  return {"shard_size": size, "head_crc32": zlib.crc32(head), "tail_crc32": zlib.crc32(tail)}


def index_dir(shard: str) -> str:
  """``<dataset folder>/jaxact-index/<shard file name>/``."""
  shard = os.fspath(shard)
  return os.path.join(os.path.dirname(shard), INDEX_FOLDER, os.path.basename(shard))


def write_index(shard: str) -> bool:
  """Indexes one shard (see the module docstring for the files written).

  Returns:
    True if written; False if the shard's records are not stored contiguously
    (compressed or transposed shards), which are then read whole.
  """
  allocator.keep_large_buffers_on_heap()  # whole records are read here
  shard = os.fspath(shard)
  reader = ar.ArrayRecordReader(shard, "readahead_buffer_size:0")
  try:
    options = reader.writer_options_string()
    if "uncompressed" not in options or "transpose:true" in options:
      return False
    records = np.zeros(reader.num_records(), RECORD_DTYPE)
    images: list[tuple[int, int]] = []
    fd = os.open(shard, os.O_RDONLY)
    try:
      pos, size = 0, _logical_size(os.fstat(fd).st_size)
      for i in range(reader.num_records()):
        rec = reader.read([i])[0]
        # The next record starts a chunk header or so after the last one.
        window = read_logical(fd, pos, min(_SEARCH_WINDOW + 64, size - pos))
        at = window.find(rec[:64])
        start = pos + at
        if at < 0 or read_logical(fd, start, len(rec)) != rec:
          logging.warning(
            "%s: record %d is not stored contiguously; shard left unindexed (read whole)", shard, i
          )
          return False
        feats = tf_example_pb2.Example.FromString(rec).features.feature
        row = records[i]
        row["start"], row["length"] = start, len(rec)
        row["label"] = feats["label"].int64_list.value[0]
        row["num_frames"] = feats["num_frames"].int64_list.value[0]
        spans = image_spans(rec)
        for key in KEYS:  # contiguous rows, in KEYS order
          row[key] = len(images)
          images.extend(spans[key])
        row["end"] = len(images)
        pos = start + len(rec)
    finally:
      os.close(fd)
  finally:
    reader.close()
  out = index_dir(shard)
  tmp = out + ".tmp"
  os.makedirs(tmp, exist_ok=True)  # parents included
  np.save(os.path.join(tmp, "records.npy"), records)
  np.save(os.path.join(tmp, "images.npy"), np.asarray(images, np.uint32).reshape(-1, 2))
  header = {
    "version": FORMAT_VERSION,
    "num_records": len(records),
    "num_images": len(images),
    **_fingerprint(shard),
  }
  with open(os.path.join(tmp, "header.json"), "w") as f:
    json.dump(header, f)
  if os.path.isdir(out):
    _remove(out)
  os.replace(tmp, out)
  return True


def _remove(folder: str) -> None:
  for name in os.listdir(folder):
    os.remove(os.path.join(folder, name))
  os.rmdir(folder)


def index_dataset(data_dir, workers: int | None = None) -> int:
  """Indexes every ArrayRecord shard in a prepared dataset folder.

  Args:
    data_dir: the folder holding the shards and ``dataset_info.json``.
    workers: processes indexing shards in parallel (default: one per CPU,
      used from 4 shards on; each shard is read once).

  Returns:
    The number of shards indexed.
  """
  directory = os.fspath(data_dir)
  if not os.path.isdir(directory):
    return 0
  shards = [
    os.path.join(directory, name)
    for name in sorted(os.listdir(directory))
    if ".array_record-" in name and os.path.isfile(os.path.join(directory, name))
  ]
  workers = min(len(shards), workers or os.cpu_count() or 1)
  if workers < 2 or len(shards) < 4:
    return sum(write_index(s) for s in shards)
  # spawn: the caller may hold JAX threads (TV-L1), which fork would copy.
  with concurrent.futures.ProcessPoolExecutor(
    workers, mp_context=multiprocessing.get_context("spawn")
  ) as pool:
    return sum(pool.map(write_index, shards))


# --- reading ----------------------------------------------------------------
# Open shards per process, least recently used first. Each holds a file
# descriptor and two memory maps (each an fd of its own); evicting one drops
# the cache's reference, and it closes once no ImageList still uses it.
MAX_OPEN_SHARDS = 64
_OPEN: collections.OrderedDict = collections.OrderedDict()
_OPEN_LOCK = threading.Lock()


class _OpenShard:
  """A shard's fd and memory-mapped index arrays (closed when collected)."""

  def __init__(self, shard: str):
    folder = index_dir(shard)
    self.records = np.load(os.path.join(folder, "records.npy"), mmap_mode="r")
    self.images = np.load(os.path.join(folder, "images.npy"), mmap_mode="r")
    self.fd = os.open(shard, os.O_RDONLY)

  def __del__(self):
    fd, self.fd = getattr(self, "fd", None), None
    if fd is not None:
      with contextlib.suppress(OSError):
        os.close(fd)


def _open_shard(shard: str) -> _OpenShard:
  """This process's open handle of ``shard`` (LRU of ``MAX_OPEN_SHARDS``)."""
  key = (os.getpid(), shard)
  with _OPEN_LOCK:
    handle = _OPEN.get(key)
    if handle is not None:
      _OPEN.move_to_end(key)
      return handle
    handle = _OPEN[key] = _OpenShard(shard)
    while len(_OPEN) > MAX_OPEN_SHARDS:
      _OPEN.popitem(last=False)
    return handle


class ShardIndex:
  """Byte-range reader of one indexed shard (picklable; opens lazily, and
  keeps at most ``MAX_OPEN_SHARDS`` shards open per process)."""

  def __init__(self, shard: str):
    self.shard = os.fspath(shard)

  @classmethod
  def open(cls, shard: str) -> ShardIndex | None:
    """The shard's index, or None if absent or stale (then logs why)."""
    folder = index_dir(shard)
    try:
      with open(os.path.join(folder, "header.json")) as f:
        header = json.load(f)
    except FileNotFoundError:
      return None
    if header.get("version") != FORMAT_VERSION:
      logging.warning(
        "%s: index format %s, expected %s; reading whole records",
        folder,
        header.get("version"),
        FORMAT_VERSION,
      )
      return None
    current = _fingerprint(shard)
    if any(header.get(k) != v for k, v in current.items()):
      logging.warning(
        "%s does not match its shard (changed since it was "
        "indexed); reading whole records. Re-index with: "
        "python -m jaxact.data.record_index %s",
        folder,
        os.path.dirname(shard),
      )
      return None
    return cls(shard)

  def example(self, position: int) -> dict:
    """Record ``position`` as ``{'label', 'num_frames', 'frames', 'flow_x',
    'flow_y'}``; the image lists read their bytes when indexed."""
    handle = _open_shard(self.shard)
    row = handle.records[position]
    bounds = [int(row[k]) for k in KEYS] + [int(row["end"])]
    # One conversion per record: Python ints for the per-image reads.
    spans = handle.images[bounds[0] : bounds[-1]].tolist()
    start = int(row["start"])
    out = {"label": int(row["label"]), "num_frames": int(row["num_frames"])}
    for j, key in enumerate(KEYS):
      out[key] = ImageList(
        self.shard, handle, start, spans[bounds[j] - bounds[0] : bounds[j + 1] - bounds[0]]
      )
    return out


class ImageList:
  """Lazy ``Sequence[bytes]`` of one image list of one record.

  Args:
    shard: the shard's path (for messages).
    handle: its open handle (kept open while this list lives).
    record_start: logical offset of the record in the shard.
    spans: ``[(offset in the record, length)]`` of each image.
  """

  def __init__(self, shard: str, handle: _OpenShard, record_start: int, spans: list[list[int]]):
    self._shard, self._handle = shard, handle
    self._start, self._spans = record_start, spans

  def __len__(self) -> int:
    return len(self._spans)

  @property
  def where(self) -> str:
    """The record's place, for messages: ``SHARD @ logical offset N``."""
    return f"{self._shard} @ logical offset {self._start}"

  def __getitem__(self, i: int) -> bytes:
    offset, length = self._spans[int(i)]  # IndexError past the end
    start = self._start + offset
    data = read_logical(self._handle.fd, start, length)
    if data[:2] != b"\xff\xd8" or data[-2:] != b"\xff\xd9":
      raise StaleIndexError(
        f"{self._shard}: image at logical offset {start} is not a JPEG: "
        f"the index does not match the shard; delete "
        f"{index_dir(self._shard)} (reads fall back to whole records) or "
        f"re-index with python -m jaxact.data.record_index "
        f"{os.path.dirname(self._shard)}"
      )
    return data

  def __iter__(self):
    return (self[i] for i in range(len(self)))


class IndexedSource:
  """Random access to a TFDS split's examples through the shard indexes.

  Args:
    file_instructions: TFDS ``FileInstruction`` s of the split (shard,
      skip, take), in order.
    shards: ``{filename: ShardIndex}`` for every shard they name.
  """

  def __init__(self, file_instructions, shards: dict):
    self._parts = [(shards[fi.filename], fi.skip, fi.take) for fi in file_instructions]
    self._ends = list(np.cumsum([take for _, _, take in self._parts]))

  @classmethod
  def open(cls, source) -> IndexedSource | None:
    """For a TFDS ``ArrayRecordDataSource``; None unless all shards indexed."""
    info, split = getattr(source, "dataset_info", None), getattr(source, "split", None)
    if info is None or split is None:
      return None
    instructions = splits_lib.SplitDict(split_infos=list(info.splits.values()))[
      split
    ].file_instructions
    shards = {}
    for fi in instructions:
      if fi.filename not in shards:
        shard = ShardIndex.open(fi.filename)
        if shard is None:
          return None
        shards[fi.filename] = shard
    return cls(instructions, shards)

  def __len__(self) -> int:
    return int(self._ends[-1]) if self._ends else 0

  def __getitem__(self, index: int) -> dict:
    index = int(index)
    if not 0 <= index < len(self):
      raise IndexError(f"example {index} of {len(self)}")
    part = bisect.bisect_right(self._ends, index)
    shard, skip, take = self._parts[part]
    before = int(self._ends[part]) - take
    return shard.example(skip + index - before)


def main(argv: list[str]) -> None:
  """``python -m jaxact.data.record_index DATASET_DIR [...]``."""
  if len(argv) < 2:
    raise SystemExit(
      "usage: python -m jaxact.data.record_index "
      "PREPARED_DATASET_DIR [...]  (the folder with "
      "dataset_info.json)"
    )
  for d in argv[1:]:
    if not os.path.isfile(os.path.join(d, "dataset_info.json")):
      raise SystemExit(f"{d}: not a prepared TFDS dataset folder (no dataset_info.json)")
    print(f"{d}: indexed {index_dataset(d)} shard(s)")


if __name__ == "__main__":
  main(sys.argv)
