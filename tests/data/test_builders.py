"""TFDS builders from tiny official-layout fixtures: labels, splits, counts."""

import io
import itertools
import os

import jax
import numpy as np
import pytest
from PIL import Image

from jaxact.data import build, datasets
from jaxact.data.datasets import hmdb51, kinetics400, ucf101


def _records(name, split, data_dir, config=""):
  src = datasets.data_source(name, split, data_dir, config)
  return [src[i] for i in range(len(src))]


def _decode(b):
  return np.asarray(Image.open(io.BytesIO(b)))


def test_ucf101_parsing_is_exact(ucf_download):
  lists = ucf_download / "ucfTrainTestlist"
  assert open(lists / "classInd.txt", "rb").read().count(b"\r\n") == 3
  names = ucf101.parse_class_ind(str(lists / "classInd.txt"))
  assert names == ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]
  test = ucf101.parse_split_list(str(lists / "testlist01.txt"), names)
  # Label from the folder, matched across the HandStand/Handstand spelling.
  assert [label for _, label in test] == [0, 1, 2]
  assert test[1][0] == "HandStandPushups/v_HandStandPushups_g01_c01.avi"
  assert not any("\r" in rel for rel, _ in test)


def test_ucf101_build(ucf_download, tmp_path, fake_flow):
  for split_no in (1, 2):
    info = build.ensure_built(
      "ucf101", tmp_path, ucf_download, config=f"split{split_no}", flow_fn=fake_flow
    )
    assert info.class_names == ("ApplyEyeMakeup", "HandstandPushups", "YoYo")
    assert info.split_sizes == {"train": 6, "test": 3}
    assert info.skipped == ()
    test = _records("ucf101", "test", tmp_path, f"split{split_no}")
    by_id = {r["video_id"].decode(): r for r in test}
    hs = f"HandStandPushups/v_HandStandPushups_g0{split_no}_c01.avi"
    assert by_id[hs]["label"] == 1
    assert sorted(r["label"] for r in test) == [0, 1, 2]
    rec = by_id[hs]
    assert rec["num_frames"] == 4 and len(rec["frames"]) == 4
    assert len(rec["flow_x"]) == len(rec["flow_y"]) == 3
    # Stored at the default short side 256 (fixture is 32×24).
    assert _decode(rec["frames"][0]).shape == (256, 341, 3)
    # Flow i is stored at position i (x = 100 + i, y = 50 + i).
    assert abs(int(_decode(rec["flow_x"][2]).mean()) - 102) <= 1
    assert abs(int(_decode(rec["flow_y"][1]).mean()) - 51) <= 1
  train1 = {r["video_id"].decode() for r in _records("ucf101", "train", tmp_path, "split1")}
  assert all("_g01_" not in v for v in train1)


def test_hmdb51_build(hmdb_download, tmp_path, fake_flow):
  info = build.ensure_built(
    "hmdb51", tmp_path, hmdb_download, config="split1", flow_fn=fake_flow, short_side=24
  )
  assert info.class_names == ("brush_hair", "cartwheel")
  # Per class: usage 1,1,2,0 → 2 train, 1 test, 1 unused.
  assert info.split_sizes == {"train": 4, "test": 2}
  test = _records("hmdb51", "test", tmp_path, info.config)
  assert sorted(r["video_id"].decode() for r in test) == [
    "brush_hair/brush_hair_video_2.avi",
    "cartwheel/cartwheel_video_2.avi",
  ]
  assert [r["label"] for r in sorted(test, key=lambda r: r["video_id"])] == [0, 1]
  assert _decode(test[0]["frames"][0]).shape == (24, 32, 3)
  lines = hmdb51.parse_split_file(
    str(hmdb_download / "testTrainMulti_7030_splits" / "cartwheel_test_split2.txt")
  )
  assert [u for _, u in lines] == ["train", "test", None, "train"]


def test_kinetics_skips_missing_and_corrupt(kinetics_download, tmp_path, capsys, fake_flow):
  info = build.ensure_built(
    "kinetics400", tmp_path, kinetics_download, flow_fn=fake_flow, short_side=24
  )
  out = capsys.readouterr().out
  assert info.class_names == ("abseiling", "air drumming")
  assert info.split_sizes == {"train": 3, "validation": 2}
  reasons = {s["path"].split("/")[-1]: s["reason"] for s in info.skipped}
  assert set(reasons) == {"missing0001_000002_000012.mp4", "corrupt0001_000003_000013.mp4"}
  assert reasons["missing0001_000002_000012.mp4"] == "missing"
  assert all(s["split"] == "train" for s in info.skipped)
  assert "skipped: 2 video(s)" in out and "missing0001" in out
  # Read back without rebuilding (a fresh load_info).
  again = datasets.load_info("jaxact_kinetics400", tmp_path, info.config)
  assert again.skipped == info.skipped
  train = _records("kinetics400", "train", tmp_path, info.config)
  assert sorted(r["label"] for r in train) == [0, 0, 1]
  assert kinetics400.clip_name("x", "5.0", 15) == "x_000005_000015.mp4"


def test_video_folder_without_and_with_lists(folder_download, tmp_path, fake_flow):
  info = build.ensure_built(
    "video_folder", tmp_path, folder_download, flow_fn=fake_flow, short_side=24
  )
  assert info.class_names == ("alpha", "beta", "gamma")
  assert info.split_sizes == {"train": 12}
  rec = {
    r["video_id"].decode(): r for r in _records("video_folder", "train", tmp_path, info.config)
  }
  assert rec["beta/vid04"]["label"] == 1
  assert rec["beta/vid04"]["num_frames"] == 6
  assert abs(int(_decode(rec["beta/vid04"]["frames"][1]).mean()) - 94) <= 2

  lists = tmp_path / "with_lists"
  import shutil

  shutil.copytree(folder_download, lists)
  (lists / "train.txt").write_text("alpha/vid00\nbeta/vid01\nmissing/x\n")
  with pytest.raises(ValueError, match="not under a class folder"):
    build.ensure_built("video_folder", tmp_path / "d2", lists, flow_fn=fake_flow, short_side=24)
  (lists / "train.txt").write_text("alpha/vid00 0\nbeta/vid01\ngamma/nothere\n")
  (lists / "test.txt").write_text("gamma/vid02\n")
  info = build.ensure_built(
    "video_folder", tmp_path / "d3", lists, flow_fn=fake_flow, short_side=24
  )
  assert info.split_sizes == {"train": 2, "test": 1}
  assert [s["reason"] for s in info.skipped] == ["missing"]


def test_synthetic_motion_labels_and_metadata(tmp_path, fake_flow):
  info = build.ensure_built(
    "synthetic_motion", tmp_path, flow_fn=fake_flow, clips=18, size=32, frames=5, short_side=32
  )
  assert info.num_classes == 9
  assert info.split_sizes == {"train": 14, "test": 4}
  train = _records("synthetic_motion", "train", tmp_path, info.config)
  assert np.bincount([r["label"] for r in train], minlength=9).min() >= 1
  assert _decode(train[0]["frames"][0]).shape == (32, 32, 3)
  # Shards are stored uncompressed (JPEG payload: zstd costs read CPU, saves ~3%).
  from array_record.python import array_record_module as ar

  shards = list((tmp_path / "jaxact_synthetic_motion").glob("*/*/*.array_record-*"))
  assert len(shards) == 2
  for shard in shards:
    assert "uncompressed" in ar.ArrayRecordReader(str(shard)).writer_options_string()


def test_rewrite_uncompressed_keeps_every_record(tmp_path):
  from array_record.python import array_record_module as ar

  from jaxact.data.datasets import base

  path = str(tmp_path / "x-train.array_record-00000-of-00001")
  records = [bytes([i]) * (1000 * i + 1) for i in range(5)]
  writer = ar.ArrayRecordWriter(path, "group_size:1")
  for r in records:
    writer.write(r)
  writer.close()
  assert base.rewrite_uncompressed(tmp_path) == 1
  reader = ar.ArrayRecordReader(path)
  assert "uncompressed" in reader.writer_options_string()
  assert [reader.read([i])[0] for i in range(reader.num_records())] == records
  assert base.rewrite_uncompressed(tmp_path) == 0  # already uncompressed
  assert sorted(p.name for p in tmp_path.iterdir()) == [os.path.basename(path)]


def test_not_built_error_names_the_command(tmp_path):
  with pytest.raises(
    datasets.DatasetNotBuiltError, match="python -m jaxact.data.build ucf101 --manual_dir"
  ):
    datasets.load_info("ucf101", tmp_path)
  with pytest.raises(KeyError, match="unknown dataset"):
    datasets.load_info("ucf102", tmp_path)


def test_cli_reports_errors_in_one_line(tmp_path, capsys):
  rc = build.main(["hmdb51", "--manual_dir", str(tmp_path / "nope"), "--data_dir", str(tmp_path)])
  err = capsys.readouterr().err
  assert rc == 1 and err.startswith("error:") and "manual_dir" in err
  rc = build.main(["synthetic_motion", "--set", "colour=3", "--data_dir", str(tmp_path)])
  assert rc == 1 and "unknown build option" in capsys.readouterr().err


def test_tfds_build_command_with_default_jax_tvl1(tmp_path):
  """TFDS's own ``build`` command (the one ``tfds build`` runs) builds ours,
  with the default flow: jaxact's TV-L1."""
  import subprocess
  import sys

  from jaxact.data import video

  yy, xx = np.mgrid[0:24, 0:32]
  base_img = (127 + 60 * np.sin(xx / 3.0) * np.cos(yy / 4.0)).astype(np.uint8)
  for cls in ("left", "right"):
    step = -1 if cls == "left" else 1
    frames = np.stack([np.roll(base_img, step * i, axis=1) for i in range(4)])
    video.write_video(
      _mkdir(tmp_path / "videos" / cls) / "a.mp4", np.repeat(frames[..., None], 3, -1)
    )
  cmd = [
    sys.executable,
    "-m",
    "jaxact.data.tfds_cli",
    "build",
    "jaxact_video_folder",
    "--imports",
    "jaxact.data.datasets.registered",
    "--manual_dir",
    str(tmp_path / "videos"),
    "--data_dir",
    str(tmp_path / "data"),  # ArrayRecord by default
    "--config",
    '{"name": "tiny", "short_side": 24, "flow_preset": "fast", "flow_batch": 4}',
  ]
  subprocess.run(cmd, check=True, capture_output=True, timeout=600)
  info = datasets.load_info("video_folder", tmp_path / "data", "tiny")
  assert info.class_names == ("left", "right") and info.split_sizes == {"train": 2}
  for r in _records("video_folder", "train", tmp_path / "data", "tiny"):
    dx = (_decode(r["flow_x"][1])[6:-6, 6:-6].astype(float) - 128) * 40 / 255
    # Content moves 1 px/frame left or right: TV-L1 sees the sign.
    assert np.sign(np.median(dx)) == (-1 if r["label"] == 0 else 1)


def _mkdir(path):
  path.mkdir(parents=True, exist_ok=True)
  return path


def test_kinetics_with_beam_direct_runner(kinetics_download, tmp_path, fake_flow):
  beam = pytest.importorskip(
    "apache_beam",
    reason="apache-beam not installed (pip install "
    "'jaxact[beam]'): the Beam build path of Kinetics-400 is not tested",
  )
  import tensorflow_datasets as tfds

  builder = build.make_builder(
    "kinetics400", tmp_path, kinetics_download, flow_fn=fake_flow, short_side=24
  )
  builder.download_and_prepare(
    download_config=tfds.download.DownloadConfig(
      manual_dir=str(kinetics_download), beam_runner=beam.runners.DirectRunner()
    )
  )
  assert builder._use_beam  # pylint: disable=protected-access  (Beam path taken)
  info = datasets.load_info("kinetics400", tmp_path, builder.builder_config.name)
  assert info.split_sizes == {"train": 3, "validation": 2}
  reasons = sorted((s["path"].split("/")[-1], s["reason"] == "missing") for s in info.skipped)
  assert reasons == [
    ("corrupt0001_000003_000013.mp4", False),
    ("missing0001_000002_000012.mp4", True),
  ]
  train = _records("kinetics400", "train", tmp_path, info.config)
  assert sorted(r["label"] for r in train) == [0, 0, 1]
  # Beam-written shards get the frame index too; reads through it agree.
  from jaxact.data import pipeline

  src = datasets.data_source("kinetics400", "train", tmp_path, info.config)
  lazy = pipeline.LazyRecords(src)
  assert lazy._indexed is not None  # pylint: disable=protected-access
  for i, ref in enumerate(train):
    assert list(lazy[i]["flow_x"]) == list(ref["flow_x"])
  assert not (tmp_path / ".jaxact_skip_reports").exists() or not any(
    (tmp_path / ".jaxact_skip_reports").iterdir()
  )


def _motion_vs_appearance(data_dir, config, size):
  """Nearest-centroid test accuracy from (motion features, appearance
  features) of a built synthetic_motion dataset."""
  yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2
  basis = np.stack(
    [
      np.stack(b, -1).ravel()
      for b in ((np.ones_like(xx), 0 * xx), (0 * xx, np.ones_like(xx)), (-yy, xx), (xx, yy))
    ]
  )

  def features(r):
    fx = np.stack([_decode(b) for b in r["flow_x"]]).astype(float) - 128
    fy = np.stack([_decode(b) for b in r["flow_y"]]).astype(float) - 128
    motion = basis @ np.stack([fx.mean(0), fy.mean(0)], -1).ravel()
    frame = _decode(r["frames"][0]).reshape(-1, 3).astype(float)
    return motion / np.linalg.norm(basis, axis=1) ** 2, np.concatenate(
      [frame.mean(0), frame.std(0)]
    )

  def accuracy(split_feats, which):
    (xtr, ytr), (xte, yte) = [
      (np.stack([f[which] for f in fs]), np.array(ls)) for fs, ls in split_feats
    ]
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-9
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    cent = np.stack([xtr[ytr == k].mean(0) for k in range(9)])
    pred = np.argmin(((xte[:, None] - cent[None]) ** 2).sum(-1), 1)
    return (pred == yte).mean()

  data = []
  for split in ("train", "test"):
    recs = _records("synthetic_motion", split, data_dir, config)
    data.append(([features(r) for r in recs], [r["label"] for r in recs]))
  return accuracy(data, 0), accuracy(data, 1)


def test_synthetic_motion_needs_motion_not_appearance(tmp_path):
  """Nearest-centroid classifiers: on flow (projected on translation,
  rotation and zoom fields) far above chance; on the first frame's colour
  statistics, at chance."""
  cv2 = pytest.importorskip("cv2", reason="OpenCV (test extra) gives the flow")

  def farneback(frames):
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    flows = [
      cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 2, 9, 3, 5, 1.1, 0)
      for a, b in itertools.pairwise(gray)
    ]
    return np.clip(np.rint(np.stack(flows) * 255 / 40 + 127.5), 0, 255).astype(np.uint8)

  info = build.ensure_built(
    "synthetic_motion", tmp_path, flow_fn=farneback, clips=270, size=32, frames=4, short_side=32
  )
  motion, appearance = _motion_vs_appearance(tmp_path, info.config, 32)
  assert motion > 0.8  # motion: nearly solved
  assert appearance < 0.3  # appearance: chance is 1/9


@pytest.mark.slow
def test_synthetic_motion_default_build(tmp_path):
  """The demo's dataset as shipped: default config, jaxact TV-L1 ('fast')."""
  import time

  t0 = time.time()
  info = build.ensure_built("synthetic_motion", tmp_path)
  print(f"default synthetic_motion build: {time.time() - t0:.0f} s")
  assert info.split_sizes == {"train": 288, "test": 72}
  motion, appearance = _motion_vs_appearance(tmp_path, info.config, 64)
  assert motion > 0.8 and appearance < 0.3, (motion, appearance)


def test_builders_default_to_array_record_and_tfrecord_is_refused(tmp_path, fake_flow):
  import json

  from jaxact.data.datasets.synthetic_motion import JaxactSyntheticMotion

  assert JaxactSyntheticMotion(data_dir=tmp_path).info.file_format.value == ("array_record")
  info = build.ensure_built(
    "synthetic_motion", tmp_path, flow_fn=fake_flow, clips=9, size=16, frames=3, short_side=16
  )
  # What a tfrecord build (it needs TensorFlow to write) records.
  path = os.path.join(info.path, "dataset_info.json")
  with open(path) as f:
    meta = json.load(f)
  assert meta["fileFormat"] == "array_record"
  meta["fileFormat"] = "tfrecord"
  with open(path, "w") as f:
    json.dump(meta, f)
  with pytest.raises(ValueError, match="built as tfrecord.*--file_format"):
    datasets.data_source("synthetic_motion", "train", tmp_path, info.config)


def _moving_square(t, offset=0, h=32, w=40):
  """A textured square moving right by 2 px per frame on a textured ground."""
  yy, xx = np.mgrid[0:h, 0:w]
  ground = 90 + 40 * np.sin(xx / 3.0) * np.cos(yy / 4.0)
  out = np.empty((t, h, w, 3), np.uint8)
  for i in range(t):
    img = ground.copy()
    x0 = 6 + offset + 2 * i
    img[8:22, x0 : x0 + 12] = 200 + 40 * np.sin((xx[8:22, x0 : x0 + 12] - x0) / 2.0)
    out[i] = np.repeat(np.clip(img, 0, 255)[..., None], 3, -1)
  return out


def test_flow_batch_is_chosen_by_device_kind(tmp_path, monkeypatch):
  """The default flow batch is ``jaxact.flow.auto_batch_size`` (1 on CPU);
  explicit values are honoured, and every batch gives the same flow."""
  from jaxact.data import video
  from jaxact.data.datasets import base
  from jaxact.flow import batching

  manual = tmp_path / "videos"
  for cls, n, offset in (("a", 4, 0), ("b", 3, 2)):
    video.write_video(_mkdir(manual / cls) / "v.mp4", _moving_square(n, offset))
  used = []

  class Spy(batching.FlowBatcher):
    def __init__(self, batch_size=None, **kwargs):
      super().__init__(batch_size, **kwargs)
      used.append(self.batch_size)

  monkeypatch.setattr(base, "FlowBatcher", Spy)

  def flows(name, **overrides):
    info = build.ensure_built(
      "video_folder", tmp_path / name, manual, short_side=32, flow_preset="fast", **overrides
    )
    recs = _records("video_folder", "train", tmp_path / name, info.config)
    return {r["video_id"].decode(): (list(r["flow_x"]), list(r["flow_y"])) for r in recs}

  auto = flows("auto")
  assert used == [batching.auto_batch_size()]
  if jax.default_backend() == "cpu":
    assert used == [1]
  assert flows("one", flow_batch=1) == auto  # the same bytes
  batched = flows("four", flow_batch=4)  # padded batches mixing the videos
  assert used[1:] == [1, 4]
  # An accelerator's choice comes from the same place.
  monkeypatch.setattr(batching, "auto_batch_size", lambda platform=None: 4)
  assert flows("accel") == batched
  assert used[3:] == [4]
  for vid, (fx, fy) in auto.items():
    for mine, theirs in zip(fx + fy, batched[vid][0] + batched[vid][1]):
      assert np.abs(_decode(mine).astype(int) - _decode(theirs)).max() <= 1
