"""Grain loaders: batch format, determinism, exact resume, process sharding.

The dataset is the ``folder_download`` fixture (12 videos of 6 flat frames):
video k's frame i has grey level 10 + 20 k + 4 i, so a batch tells which
videos (and frames) it holds. Batches are canvases plus augmentation
parameters; what the network would see comes from the device augmentation
(``tests/device_views.py``, as the jitted steps run it). Determinism and
resume compare the host batches whole (pixels and parameters), which fix the
device's output.
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from device_views import eval_views, train_views

from jaxact.data import build, config, datasets, pipeline


@pytest.fixture(scope="module")
def data_cfg(folder_download, tmp_path_factory, fake_flow):
  data_dir = tmp_path_factory.mktemp("tfds")
  info = build.ensure_built(
    "video_folder", data_dir, folder_download, flow_fn=fake_flow, short_side=24
  )
  c = config.get_data_config()
  c.name, c.builder_config, c.data_dir = "video_folder", info.config, str(data_dir)
  c.train_split = c.eval_split = "train"
  c.num_steps, c.flow_length = 2, 2
  c.resize_short, c.image_size = 24, 24
  c.augment = "none"
  c.canvas_pixels = 24 * 40  # the 24×32 frames and some unused pixels
  c.num_workers, c.read_threads, c.prefetch = 0, 2, 2
  return c


def _video_ids(rgb):
  """Video k of each example, from the grey level of its first frame."""
  level = rgb[:, 0].reshape(len(rgb), -1).mean(1) if len(rgb) else np.zeros(0)
  return np.floor((level - 10 + 4) / 20).astype(int)


def _take(loader, n):
  return [next(loader) for _ in range(n)]


def _same(a, b):
  """Equal lists of batches: the same keys (``aug`` included), equal arrays."""
  if jax.tree.structure(a) != jax.tree.structure(b):
    return False
  return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_train_batch_format_and_metadata(data_cfg):
  loader = pipeline.create_loader(data_cfg, split="train", train=True, global_batch_size=4, seed=0)
  host = next(iter(loader))
  assert set(host) == {"rgb", "flow", "label", "aug"}
  assert host["rgb"].shape == (4, 2, 24 * 40, 3) and host["rgb"].dtype == np.uint8
  assert host["flow"].shape == (4, 2, 4, 24 * 40) and host["flow"].dtype == np.uint8
  np.testing.assert_array_equal(host["aug"]["src_hw"], [[24, 32]] * 4)
  assert host["aug"]["affine"].shape == (4, 2, 3)
  b = train_views(host, data_cfg)
  assert set(b) == {"rgb", "flow", "label"}
  assert b["rgb"].shape == (4, 2, 24, 24, 3) and b["rgb"].dtype == np.uint8
  assert b["flow"].shape == (4, 2, 24, 24, 4) and b["flow"].dtype == np.uint8
  assert b["label"].dtype == np.int32
  np.testing.assert_array_equal(b["label"], _video_ids(b["rgb"]) % 3)
  # Flow stack of the step at frame i: flows i, i+1 → x = 100 + i, 101 + i.
  frame = (b["rgb"][:, :, 0, 0, 0].astype(int) - 10 - 20 * _video_ids(b["rgb"])[:, None] + 2) // 4
  np.testing.assert_allclose(b["flow"][:, :, 0, 0, 0], 100 + frame, atol=1)
  np.testing.assert_allclose(b["flow"][:, :, 0, 0, 2], 101 + frame, atol=1)
  assert loader.num_examples == 12 and loader.num_classes == 3
  assert loader.class_names == ("alpha", "beta", "gamma")
  # The config is checked by jaxact.config.validate; create_loader checks
  # only what a config cannot express: which process this is.
  with pytest.raises(ValueError, match="bad process_index=2 / process_count=2"):
    pipeline.create_loader(
      data_cfg,
      split="train",
      train=True,
      global_batch_size=4,
      seed=0,
      process_index=2,
      process_count=2,
    )
  with pytest.raises(KeyError, match="no split 'test'; it has train"):
    pipeline.create_loader(data_cfg, split="test", train=False, global_batch_size=4, seed=0)


def test_same_seed_same_batches_and_epochs_reshuffle(data_cfg):
  make = lambda seed: pipeline.create_loader(
    data_cfg, split="train", train=True, global_batch_size=4, seed=seed
  )
  a, b, c = _take(make(7), 6), _take(make(7), 6), _take(make(8), 6)
  assert _same(a, b) and not _same(a, c)
  ids = [_video_ids(train_views(x, data_cfg)["rgb"]) for x in a]
  epoch1, epoch2 = np.concatenate(ids[:3]), np.concatenate(ids[3:])
  assert sorted(epoch1) == sorted(epoch2) == list(range(12))
  assert not np.array_equal(epoch1, epoch2)


def test_two_process_shards_partition_the_data(data_cfg):
  seen = []
  for p in range(2):
    loader = pipeline.create_loader(
      data_cfg,
      split="train",
      train=True,
      global_batch_size=4,
      seed=3,
      process_index=p,
      process_count=2,
    )
    batches = [train_views(x, data_cfg) for x in _take(loader, 3)]
    seen.append(np.concatenate([_video_ids(x["rgb"]) for x in batches]))
  assert len(seen[0]) == len(seen[1]) == 6
  assert set(seen[0]).isdisjoint(seen[1])
  assert sorted(np.concatenate(seen)) == list(range(12))


def test_global_batches_do_not_depend_on_the_process_count(data_cfg):
  """Process p's batch is slice p of the 1-process global batch, pixels and
  augmentation included: 2 processes × 2 devices train like 1 × 4."""
  make = lambda p, count: pipeline.create_loader(
    data_cfg,
    split="train",
    train=True,
    global_batch_size=4,
    seed=5,
    process_index=p,
    process_count=count,
  )
  whole = _take(make(0, 1), 4)
  parts = [_take(make(p, 2), 4) for p in range(2)]
  for step, batch in enumerate(whole):
    joined = jax.tree.map(lambda a, b: np.concatenate([a, b]), parts[0][step], parts[1][step])
    assert _same([joined], [batch])


@pytest.mark.parametrize("process_count,global_batch", [(2, 10), (5, 5), (1, 12)])
def test_eval_counts_every_example_once(data_cfg, process_count, global_batch):
  cfg = data_cfg.copy_and_resolve_references()
  cfg.eval_clips, cfg.eval_crops = 2, 3
  src = datasets.data_source("video_folder", "train", cfg.data_dir, cfg.builder_config)
  # TFDS stores examples in a key-hash order: index → video k.
  video_of = np.array([int(src[i]["video_id"].decode()[-2:]) for i in range(len(src))])
  indices, lengths = [], []
  for p in range(process_count):
    loader = pipeline.create_loader(
      cfg,
      split="train",
      train=False,
      global_batch_size=global_batch,
      seed=0,
      process_index=p,
      process_count=process_count,
    )
    batches = list(loader)
    lengths.append(len(batches))
    assert len(batches) == len(loader)
    for host in batches:
      per = global_batch // process_count
      assert host["rgb"].shape == (per, 2, 2, 24 * 40, 3)  # 2 clips (canvases)
      assert host["aug"]["affine"].shape == (per, 2, 3, 2, 3)  # 3 crops each
      b = eval_views(host, cfg)
      assert b["rgb"].shape == (per, 6, 2, 24, 24, 3)
      assert b["flow"].shape == (per, 6, 2, 24, 24, 4)
      assert (b["index"][~b["mask"]] == -1).all()
      real = b["mask"]
      np.testing.assert_array_equal(_video_ids(b["rgb"][real, 0]), video_of[b["index"][real]])
      np.testing.assert_array_equal(b["label"][real], video_of[b["index"][real]] % 3)
      indices.extend(b["index"][real].tolist())
  assert len(set(lengths)) == 1  # all processes step together
  assert sorted(indices) == list(range(12))


_RESUME = """
import json, sys
import numpy as np
from absl import flags
from jaxact.data import config, pipeline

def main():
  flags.FLAGS.mark_as_parsed()
  args = json.loads(sys.argv[1])
  cfg = config.get_data_config()
  cfg.update(args["cfg"])
  loader = pipeline.create_loader(cfg, split="train", train=True,
                                  global_batch_size=4, seed=5)
  loader.set_state(open(args["state"], "rb").read())
  out = {}
  for i in range(3):
    b = next(loader)
    out.update({f"{k}{i}": v for k, v in b.items() if k != "aug"})
    out.update({f"aug.{k}{i}": v for k, v in b["aug"].items()})
  np.savez(args["out"], **out)
  loader.close()

if __name__ == "__main__":
  main()
"""


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_in_new_process_gives_identical_batches(data_cfg, tmp_path, workers):
  cfg = data_cfg.copy_and_resolve_references()
  cfg.augment = "paper_a"  # random augmentation must resume exactly too
  cfg.image_size = 20
  reference = _take(
    pipeline.create_loader(cfg, split="train", train=True, global_batch_size=4, seed=5), 5
  )
  cfg.num_workers = workers
  loader = pipeline.create_loader(cfg, split="train", train=True, global_batch_size=4, seed=5)
  first = _take(loader, 2)  # mid-epoch (3 batches per epoch)
  state = loader.get_state()
  expected = _take(loader, 3)
  loader.close()
  # Worker processes do not change the batches.
  assert _same(reference, first + expected)
  (tmp_path / "state").write_bytes(state)
  script = tmp_path / "resume.py"
  script.write_text(textwrap.dedent(_RESUME))
  args = {"cfg": cfg.to_dict(), "state": str(tmp_path / "state"), "out": str(tmp_path / "out.npz")}
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  subprocess.run(
    [sys.executable, str(script), json.dumps(args)],
    check=True,
    cwd=os.getcwd(),
    env=env,
    timeout=300,
  )
  got = np.load(tmp_path / "out.npz")
  for i, b in enumerate(expected):
    flat = {k: v for k, v in b.items() if k != "aug"}
    flat.update({f"aug.{k}": v for k, v in b["aug"].items()})
    for k, v in flat.items():
      np.testing.assert_array_equal(got[f"{k}{i}"], v)


def test_read_threads_do_not_change_the_batches(data_cfg):
  cfg = data_cfg.copy_and_resolve_references()
  cfg.augment = "paper_b"
  cfg.crop_base, cfg.image_size = 20, 16
  ref = _take(
    pipeline.create_loader(cfg, split="train", train=True, global_batch_size=4, seed=2), 4
  )
  cfg.read_threads = 1
  got = _take(
    pipeline.create_loader(cfg, split="train", train=True, global_batch_size=4, seed=2), 4
  )
  assert _same(ref, got)


def test_lazy_records_match_tfds_decoding(data_cfg):
  src = datasets.data_source("video_folder", "train", data_cfg.data_dir, data_cfg.builder_config)
  lazy = pipeline.LazyRecords(src)
  assert len(lazy) == len(src) == 12
  for i in (0, 7, 11):
    ref, got = src[i], lazy[i]
    assert got["num_frames"] == ref["num_frames"] == 6
    assert got["label"] == ref["label"]
    for k in ("frames", "flow_x", "flow_y"):
      assert list(got[k]) == list(ref[k])
