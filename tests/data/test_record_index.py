"""Byte-range frame reads (jaxact.data.record_index) against TFDS's reader."""

import json
import logging
import os
import pickle
import shutil

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from array_record.python import array_record_module as ar
from tensorflow_datasets.proto import tf_example_pb2

from jaxact.data import build, pipeline, record_index

KEYS = record_index.KEYS


def noisy_flow(frames: np.ndarray) -> np.ndarray:
  """Incompressible flow images, so records span many 64 KiB blocks."""
  t, h, w, _ = frames.shape
  rng = np.random.default_rng(int(frames.sum()) % 1000)
  return rng.integers(0, 256, (t - 1, h, w, 2), dtype=np.uint8)


def _build(data_dir, seed=0):
  info = build.ensure_built(
    "synthetic_motion",
    data_dir,
    flow_fn=noisy_flow,
    clips=6,
    frames=7,
    size=48,
    short_side=48,
    train_fraction=1.0,
    seed=seed,
  )
  return info, tfds.builder_from_directory(info.path)


@pytest.fixture(scope="module", name="built")
def built_fixture(tmp_path_factory):
  return _build(tmp_path_factory.mktemp("indexed") / "tfds")


def _shard(info):
  (name,) = [f for f in os.listdir(info.path) if ".array_record-" in f]
  return os.path.join(info.path, name)


def _same_as_tfds(records, reference, positions):
  for i, j in enumerate(positions):
    got, ref = records[i], reference[j]
    assert got["label"] == ref["label"]
    assert got["num_frames"] == ref["num_frames"]
    for k in KEYS:
      assert len(got[k]) == len(ref[k])
      assert list(got[k]) == list(ref[k]), (j, k)


def test_build_writes_an_index_and_reads_match_tfds(built):
  info, builder = built
  shard = _shard(info)
  assert os.path.isfile(os.path.join(record_index.index_dir(shard), "header.json"))
  src = builder.as_data_source("train")
  lazy = pipeline.LazyRecords(src)
  assert isinstance(lazy._indexed, record_index.IndexedSource)  # pylint: disable=protected-access
  _same_as_tfds(lazy, src, range(len(src)))
  # The case the block arithmetic exists for is covered: some images
  # straddle a Riegeli block header.
  folder = record_index.index_dir(shard)
  recs = np.load(os.path.join(folder, "records.npy"))
  imgs = np.load(os.path.join(folder, "images.npy")).astype(np.int64)
  row_start = np.repeat(recs["start"], recs["end"] - recs["frames"])
  first = (row_start + imgs[:, 0]) // (record_index.BLOCK_SIZE - record_index.BLOCK_HEADER_SIZE)
  last = (row_start + imgs[:, 0] + imgs[:, 1] - 1) // (
    record_index.BLOCK_SIZE - record_index.BLOCK_HEADER_SIZE
  )
  assert (last > first).sum() >= 3


def test_split_slices_map_to_the_right_records(built):
  _, builder = built
  src = builder.as_data_source("train[:2]+train[3:]")
  lazy = pipeline.LazyRecords(src)
  assert lazy._indexed is not None  # pylint: disable=protected-access
  assert len(lazy) == 5
  _same_as_tfds(lazy, builder.as_data_source("train"), [0, 1, 3, 4, 5])
  with pytest.raises(IndexError):
    lazy[5]  # pylint: disable=pointless-statement
  assert list(lazy[0]["frames"])[-1] == lazy[0]["frames"][-1]


def test_image_spans_match_protobuf():
  rng = np.random.default_rng(0)
  ex = tf_example_pb2.Example()
  values = {}
  for k, sizes in zip(KEYS, [(0, 1, 127, 128), (16383, 16384, 3), (200000,)]):
    values[k] = [rng.bytes(n) for n in sizes]
    ex.features.feature[k].bytes_list.value.extend(values[k])
  ex.features.feature["label"].int64_list.value.append(300)
  ex.features.feature["video_id"].bytes_list.value.append(b"v")
  rec = ex.SerializeToString()
  spans = record_index.image_spans(rec)
  for k in KEYS:
    assert [rec[o : o + n] for o, n in spans[k]] == values[k]


def _reads_whole_records_with_warning(src, caplog, message):
  with caplog.at_level(logging.WARNING):
    lazy = pipeline.LazyRecords(src)
  assert lazy._indexed is None  # pylint: disable=protected-access
  assert message in caplog.text
  _same_as_tfds(lazy, src, range(len(src)))


def test_changed_shard_falls_back_to_whole_records(built, tmp_path, caplog):
  info, _ = built
  other, other_builder = _build(tmp_path / "tfds", seed=1)
  stale_from = record_index.index_dir(_shard(info))
  target = record_index.index_dir(_shard(other))
  shutil.rmtree(target)
  shutil.copytree(stale_from, target)  # an index of different bytes
  src = other_builder.as_data_source("train")
  _reads_whole_records_with_warning(src, caplog, "does not match its shard")
  # Re-indexing (the command the warning names) restores byte-range reads.
  record_index.main(["prog", other.path])
  lazy = pipeline.LazyRecords(src)
  assert lazy._indexed is not None  # pylint: disable=protected-access
  _same_as_tfds(lazy, src, range(len(src)))


def test_missing_index_warns_and_reads_whole_records(built, tmp_path, caplog):
  info, _ = built
  copy = tmp_path / "copy"
  shutil.copytree(info.path, copy)
  shutil.rmtree(record_index.index_dir(str(copy / os.path.basename(_shard(info)))))
  builder = tfds.builder_from_directory(str(copy))
  src = builder.as_data_source("train")
  _reads_whole_records_with_warning(src, caplog, "python -m jaxact.data.record_index")


def test_wrong_offsets_raise_a_clear_error(built, tmp_path):
  info, _ = built
  copy = tmp_path / "copy"
  shutil.copytree(info.path, copy)
  shard = str(copy / os.path.basename(_shard(info)))
  images = os.path.join(record_index.index_dir(shard), "images.npy")
  arr = np.load(images)
  arr[:, 0] += 1  # every image one byte off
  np.save(images, arr)
  src = tfds.builder_from_directory(str(copy)).as_data_source("train")
  lazy = pipeline.LazyRecords(src)
  with pytest.raises(record_index.StaleIndexError, match="re-index"):
    lazy[0]["frames"][0]  # pylint: disable=expression-not-assigned


def test_compressed_shards_are_not_indexed(built, tmp_path):
  info, _ = built
  src_shard = _shard(info)
  reader = ar.ArrayRecordReader(src_shard)
  path = str(tmp_path / "zstd.array_record-00000-of-00001")
  writer = ar.ArrayRecordWriter(path, "group_size:1")  # zstd by default
  for i in range(reader.num_records()):
    writer.write(reader.read([i])[0])
  writer.close()
  reader.close()
  assert record_index.write_index(path) is False
  assert not os.path.exists(record_index.index_dir(path))


def test_shard_index_pickles_for_worker_processes(built):
  info, _ = built
  shard = record_index.ShardIndex.open(_shard(info))
  ref = shard.example(2)["flow_y"][3]
  clone = pickle.loads(pickle.dumps(shard))
  assert clone.example(2)["flow_y"][3] == ref
  assert clone.example(2)["flow_y"][-1] == shard.example(2)["flow_y"][5]


def test_parallel_indexing_equals_serial(built, tmp_path):
  info, _ = built
  shard = _shard(info)
  folder = tmp_path / "ds"
  folder.mkdir()
  for k in range(4):  # four copies of the shard: the parallel path
    shutil.copy(shard, folder / f"x-train.array_record-0000{k}-of-00004")
  assert record_index.index_dataset(folder, workers=2) == 4
  serial = np.load(os.path.join(record_index.index_dir(shard), "images.npy"))
  for k in range(4):
    got = np.load(
      os.path.join(
        record_index.index_dir(str(folder / f"x-train.array_record-0000{k}-of-00004")), "images.npy"
      )
    )
    np.testing.assert_array_equal(got, serial)


def test_loader_batches_equal_with_and_without_the_index(built, tmp_path):
  """create_loader end to end: the index changes how bytes are read, never
  which (train with augmentation, and multi-view evaluation)."""
  from jaxact.data import config

  info, _ = built
  from jaxact.data import datasets

  indexed = os.path.dirname(os.path.dirname(os.path.dirname(info.path)))
  plain = tmp_path / "tfds"
  shutil.copytree(indexed, plain)
  (index,) = plain.glob("*/*/*/" + record_index.INDEX_FOLDER)
  shutil.rmtree(index)
  for data_dir, uses_index in ((indexed, True), (plain, False)):
    lazy = pipeline.LazyRecords(
      datasets.data_source("synthetic_motion", "train", data_dir, info.config)
    )
    assert (lazy._indexed is not None) == uses_index  # pylint: disable=protected-access
  batches = {}
  for name, data_dir in (("indexed", indexed), ("plain", plain)):
    c = config.get_data_config()
    c.name, c.builder_config, c.data_dir = ("synthetic_motion", info.config, str(data_dir))
    c.train_split = c.eval_split = "train"
    c.num_steps, c.flow_length, c.image_size, c.resize_short = 2, 3, 32, 40
    c.crop_base, c.eval_clips, c.eval_crops = 40, 2, 3
    c.num_workers = 0  # worker processes: covered in test_pipeline.py
    train = pipeline.create_loader(c, split="train", train=True, global_batch_size=2, seed=3)
    evaluation = pipeline.create_loader(c, split="train", train=False, global_batch_size=4)
    batches[name] = [next(train) for _ in range(3)] + list(evaluation)
  assert len(batches["indexed"]) == len(batches["plain"]) == 5
  for a, b in zip(batches["indexed"], batches["plain"]):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      np.testing.assert_array_equal(x, y)


def test_open_shards_are_bounded_and_evicted_ones_still_read(built, tmp_path, monkeypatch):
  import gc

  info, _ = built
  shard = _shard(info)
  paths = []
  for k in range(4):
    paths.append(str(tmp_path / f"x-train.array_record-0000{k}-of-00004"))
    shutil.copy(shard, paths[-1])
  record_index.index_dataset(tmp_path, workers=1)
  monkeypatch.setattr(record_index, "MAX_OPEN_SHARDS", 2)
  ref = record_index.ShardIndex(shard).example(1)["frames"]
  lists = [record_index.ShardIndex(p).example(1)["frames"] for p in paths]

  def open_shard_fds():
    targets = [os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")]
    return sum(t in paths for t in targets)

  assert len(record_index._OPEN) <= 2  # pylint: disable=protected-access
  # Evicted shards stay readable while a list uses them...
  assert [list(x) for x in lists] == [list(ref)] * 4
  del lists
  gc.collect()
  # ...and are closed once nothing does: only the cached two stay open.
  assert open_shard_fds() <= 2


def test_a_damaged_stored_frame_is_one_clear_error(built, tmp_path):
  """Storage damage inside a JPEG (its markers intact) that the byte-range
  reads do not notice (the index fingerprints the shard's size, head and
  tail: damage in a large shard's middle goes unseen; here the fingerprint is
  updated to the damaged bytes) stops the loader with a StoredFrameError
  naming the shard, not a decoder traceback; ``jaxact.main`` prints it as one
  line (experiment.USER_ERRORS). Whole-record reads see such damage earlier,
  as ArrayRecord's chunk checksum error."""
  from jaxact import experiment
  from jaxact.data import canvas, config

  info, _ = built
  copy = tmp_path / "tfds"
  shutil.copytree(os.path.dirname(os.path.dirname(os.path.dirname(info.path))), copy)
  (shard,) = copy.glob("*/*/*/*.array_record-*")
  lazy = pipeline.LazyRecords(
    tfds.builder_from_directory(str(shard.parent)).as_data_source("train")
  )
  data = bytearray(shard.read_bytes())
  for key in ("flow_x", "frames"):  # every flow x plane; frame 0's header too
    for image in lazy[0][key]:
      at = data.find(image)
      assert at > 0
      data[at + 2 : at + 40] = b"\x00" * 38  # SOI and EOI kept
  shard.write_bytes(bytes(data))
  header = os.path.join(record_index.index_dir(str(shard)), "header.json")
  with open(header) as f:
    fields = json.load(f)
  fields.update(record_index._fingerprint(str(shard)))  # pylint: disable=protected-access
  with open(header, "w") as f:
    json.dump(fields, f)
  c = config.get_data_config()
  c.name, c.builder_config, c.data_dir = "synthetic_motion", info.config, str(copy)
  c.train_split = c.eval_split = "train"
  c.num_steps, c.flow_length, c.image_size, c.resize_short = 2, 3, 32, 40
  c.num_workers = 0
  for train in (True, False):
    loader = pipeline.create_loader(c, split="train", train=train, global_batch_size=6, seed=0)
    with pytest.raises(canvas.StoredFrameError, match="cannot be decoded .*build it again") as e:
      for _ in range(4):
        next(iter(loader))
    assert f"{shard} @ logical offset" in str(e.value) and "\n" not in str(e.value)
    loader.close()
  assert canvas.StoredFrameError in experiment.USER_ERRORS
  # Only the header of frame 0 damaged is the same one error, raised when sampling.
  example = lazy[0]
  with pytest.raises(canvas.StoredFrameError):
    canvas.frame_size({"frames": [bytes(example["frames"][0][:2]) + b"\x00" * 40]})
