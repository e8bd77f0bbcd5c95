"""UCF101 / HMDB51 ``all`` config: every video stored once, official splits
``train1`` ... ``test3`` read as unions of role partitions."""

import doctest
import shutil

import numpy as np
import pytest
from device_views import train_views

from jaxact import config as config_lib
from jaxact.configs import ucf101_paper_a as config_file
from jaxact.data import build, datasets, pipeline
from jaxact.data.datasets import base, hmdb51, official_splits, ucf101

SMALL = {"short_side": 24}  # builder-config override: config 'all-short_side24'


def _ids_labels(name, split, data_dir, config):
  src = datasets.data_source(name, split, data_dir, config)
  out = [(src[i]["video_id"].decode(), int(src[i]["label"])) for i in range(len(src))]
  assert len(set(out)) == len(out), f"{split}: a video is stored twice"
  return set(out)


def test_partition_logic_doctests_and_ucf_layout():
  assert doctest.testmod(official_splits).failed == 0
  # Real UCF101: groups 1-7 / 8-14 / 15-21 test in split 1 / 2 / 3, 22-25 train.
  parts = sorted(
    {
      official_splits.partition_name(r)
      for r in (
        ("test", "train", "train"),
        ("train", "test", "train"),
        ("train", "train", "test"),
        ("train", "train", "train"),
      )
    }
  )
  assert parts == ["p_ett", "p_tet", "p_tte", "p_ttt"]
  assert official_splits.official_splits(parts) == {
    "train1": "p_tet+p_tte+p_ttt",
    "test1": "p_ett",
    "train2": "p_ett+p_tte+p_ttt",
    "test2": "p_tet",
    "train3": "p_ett+p_tet+p_ttt",
    "test3": "p_tte",
  }
  with pytest.raises(ValueError, match="not a partition name"):
    official_splits.partition_roles("train1")
  with pytest.raises(ValueError, match="unknown role"):
    official_splits.partition_name(("train", "val", None))


@pytest.fixture(scope="module")
def ucf_all(ucf_download, tmp_path_factory, fake_flow):
  """The UCF fixture plus group 4 (train in every split, like UCF's 22-25),
  built as ``all`` and as ``split1``-``split3``."""
  root = tmp_path_factory.mktemp("ucf_all") / "download"
  shutil.copytree(ucf_download, root)
  lists = root / "ucfTrainTestlist"
  for ci, cls in enumerate(["ApplyEyeMakeup", "YoYo"]):
    src = root / "UCF-101" / cls / f"v_{cls}_g01_c01.avi"
    shutil.copy(src, src.with_name(f"v_{cls}_g04_c01.avi"))
    for n in (1, 2, 3):
      with open(lists / f"trainlist0{n}.txt", "ab") as f:
        f.write(f"{cls}/v_{cls}_g04_c01.avi {2 * ci + 1}\r\n".encode())
  data_dir = tmp_path_factory.mktemp("ucf_all_tfds")
  infos = {
    c: build.ensure_built("ucf101", data_dir, root, config=c, flow_fn=fake_flow, **SMALL)
    for c in ("all", "split1", "split2", "split3")
  }
  return root, data_dir, infos


def test_ucf101_all_stores_each_video_once(ucf_all):
  root, data_dir, infos = ucf_all
  info = infos["all"]
  assert info.config == "all-short_side24" and info.skipped == ()
  parts = ["p_ett", "p_tet", "p_tte", "p_ttt"]
  assert {k: v for k, v in info.split_sizes.items() if k.startswith("p_")} == {
    "p_ett": 3,
    "p_tet": 3,
    "p_tte": 3,
    "p_ttt": 2,
  }
  stored = [v for p in parts for v in _ids_labels("ucf101", p, data_dir, info.config)]
  listed = {
    (rel, label)
    for n in (1, 2, 3)
    for kind in ("train", "test")
    for rel, label in ucf101.parse_split_list(
      str(root / "ucfTrainTestlist" / f"{kind}list0{n}.txt"), list(info.class_names)
    )
  }
  assert len(stored) == len({v for v, _ in stored}) == 11
  assert set(stored) == listed
  for n in (1, 2, 3):
    for kind in ("train", "test"):
      want = _ids_labels("ucf101", kind, data_dir, f"split{n}-short_side24")
      assert _ids_labels("ucf101", f"{kind}{n}", data_dir, info.config) == want
      assert info.split_sizes[f"{kind}{n}"] == len(want)
  assert info.split_sizes["train1"] == 8 and info.split_sizes["test1"] == 3


def test_ucf101_all_metadata_summary_and_errors(ucf_all, tmp_path):
  _, data_dir, infos = ucf_all
  import tensorflow_datasets as tfds

  meta = tfds.builder_from_directory(infos["all"].path).info.metadata
  assert meta["official_splits"]["train1"] == "p_tet+p_tte+p_ttt"
  assert meta["official_split_sizes"] == {
    "train1": 8,
    "test1": 3,
    "train2": 8,
    "test2": 3,
    "train3": 8,
    "test3": 3,
  }
  assert "official_splits" not in tfds.builder_from_directory(infos["split1"].path).info.metadata
  summary = base.build_summary(tfds.builder_from_directory(infos["all"].path).info)
  assert "official splits" in summary
  assert "train1: 8 clips = p_tet+p_tte+p_ttt" in summary
  with pytest.raises(KeyError, match=r"no split 'train4'.*p_ett.*test1.*train1"):
    datasets.data_source("ucf101", "train4", data_dir, infos["all"].config)
  # 'all' is the default config: a missing build names the plain command.
  with pytest.raises(
    datasets.DatasetNotBuiltError, match="jaxact.data.build ucf101 --manual_dir .* --config all$"
  ):
    datasets.load_info("ucf101", tmp_path / "empty")


def test_hmdb51_all_drops_unused_and_counts_after_skips(hmdb_download, tmp_path, fake_flow):
  root = tmp_path / "download"
  shutil.copytree(hmdb_download, root)
  videos, splits = root / "hmdb51_org" / "cartwheel", root / "testTrainMulti_7030_splits"
  shutil.copy(videos / "cartwheel_video_0.avi", videos / "cartwheel_unused.avi")
  (videos / "cartwheel_corrupt.avi").write_bytes(b"RIFF\x00\x00\x00\x00AVI " + bytes(300))
  extra = {
    "cartwheel_unused.avi": "000",
    "cartwheel_missing.avi": "111",
    "cartwheel_corrupt.avi": "120",
  }
  for n in (1, 2, 3):
    with open(splits / f"cartwheel_test_split{n}.txt", "ab") as f:
      for video, codes in extra.items():
        f.write(f"{video} {codes[n - 1]} \r\n".encode())
  infos = {
    c: build.ensure_built("hmdb51", tmp_path / "tfds", root, config=c, flow_fn=fake_flow, **SMALL)
    for c in ("all", "split1", "split2", "split3")
  }
  info = infos["all"]
  # Fixture roles per class: v0 tte, v1 teu, v2 eut, v3 utt. The all-missing
  # p_ttt is not created; the corrupt p_teu video is skipped.
  assert {k: v for k, v in info.split_sizes.items() if k.startswith("p_")} == {
    "p_eut": 2,
    "p_teu": 2,
    "p_tte": 2,
    "p_utt": 2,
  }
  assert sorted(
    (s["split"], s["path"].rsplit("/", 1)[1], s["reason"] == "missing") for s in info.skipped
  ) == [("p_teu", "cartwheel_corrupt.avi", False), ("p_ttt", "cartwheel_missing.avi", True)]
  stored = set()
  for p in ("p_eut", "p_teu", "p_tte", "p_utt"):
    ids = _ids_labels("hmdb51", p, tmp_path / "tfds", info.config)
    assert not stored & ids
    stored |= ids
  assert len(stored) == 8
  assert not any("unused" in v for v, _ in stored)
  for n in (1, 2, 3):
    for kind in ("train", "test"):
      want = _ids_labels("hmdb51", kind, tmp_path / "tfds", f"split{n}-short_side24")
      got = _ids_labels("hmdb51", f"{kind}{n}", tmp_path / "tfds", info.config)
      assert got == want and info.split_sizes[f"{kind}{n}"] == len(want)
  assert [info.split_sizes[f"{k}{n}"] for n in (1, 2, 3) for k in ("train", "test")] == [4, 2] * 3
  assert hmdb51.official_roles(hmdb51.split_files(str(splits)))[-1] == (
    "cartwheel/cartwheel_corrupt.avi",
    1,
    ("train", "test", None),
  )


def test_partition_of_only_broken_videos_fails_clearly(hmdb_download, tmp_path, fake_flow):
  root = tmp_path / "download"
  shutil.copytree(hmdb_download, root)
  (root / "hmdb51_org" / "cartwheel" / "bad.avi").write_bytes(b"xx" * 100)
  for n in (1, 2, 3):  # bad.avi alone in p_ttt
    with open(root / "testTrainMulti_7030_splits" / f"cartwheel_test_split{n}.txt", "ab") as f:
      f.write(b"bad.avi 1\r\n")
  with pytest.raises(ValueError, match="partition p_ttt: every video was skipped.*bad.avi"):
    build.ensure_built("hmdb51", tmp_path / "tfds", root, flow_fn=fake_flow, **SMALL)


def test_loader_reads_official_split(ucf_all):
  """A paper config (builder_config 'all', train2 / test2) loads batches."""
  _, data_dir, infos = ucf_all
  c = config_file.get_config("split=2,smoke")
  assert (c.data.builder_config, c.data.train_split, c.data.eval_split) == (
    "all",
    "train2",
    "test2",
  )
  c.data.data_dir, c.data.builder_config = str(data_dir), infos["all"].config
  c.data.num_steps, c.data.flow_length, c.data.eval_crops = 2, 2, 1
  config_lib.validate(c, device_count=4)
  config_lib.validate_dataset(c)
  train = pipeline.create_loader(
    c.data, split=c.data.train_split, train=True, global_batch_size=4, seed=0
  )
  assert train.num_examples == 8 and train.class_names == infos["all"].class_names
  b = train_views(next(iter(train)), c.data)
  assert b["rgb"].shape == (4, 2, 56, 56, 3) and b["flow"].shape == (4, 2, 56, 56, 4)
  test = pipeline.create_loader(c.data, split=c.data.eval_split, train=False, global_batch_size=4)
  (e,) = list(test)
  assert e["mask"].sum() == 3 == test.num_examples
  assert sorted(e["label"][e["mask"]]) == [0, 1, 2]
  c.data.eval_split = "test4"
  with pytest.raises(config_lib.ConfigError, match="test4.*test2"):
    config_lib.validate_dataset(c, mode="eval")
  assert np.all(b["label"] < 3)
