"""Mirror pairs: a horizontal flip maps the label through the dataset's pairs.

``synthetic_motion`` declares right/left and rotate_cw/rotate_ccw; a flipped
training clip gets the mirror label, an unflipped one keeps it, a class in no
pair keeps it; evaluation batches say how to map flipped views' scores back
(``view_perm``; the scoring side is tested in tests/runtime/test_scoring.py).
Without a declaration (another dataset, or one built before it existed)
nothing changes.
"""

import json
import logging
import os
import shutil

import numpy as np
import pytest
from device_views import eval_views, train_views

from jaxact.data import build, config, datasets, pipeline, transforms
from jaxact.data.datasets import synthetic_motion

CLASSES = synthetic_motion.CLASSES
MIRROR = datasets.mirror_permutation(CLASSES, synthetic_motion.MIRROR_PAIRS)
FLIPPING = ("paper_a", "paper_b", "baseline")


def test_synthetic_motion_mirror_permutation():
  assert [CLASSES[i] for i in MIRROR] == [
    "left",
    "right",
    "up",
    "down",
    "rotate_ccw",
    "rotate_cw",
    "zoom_in",
    "zoom_out",
    "static",
  ]
  np.testing.assert_array_equal(MIRROR[MIRROR], np.arange(len(CLASSES)))  # an involution


@pytest.mark.parametrize(
  "pairs, message",
  [
    ([("right", "sideways")], "unknown class"),
    ([("up", "up")], "at most one pair"),
    ([("right", "left"), ("left", "up")], "at most one pair"),
  ],
)
def test_mirror_permutation_rejects_inconsistent_pairs(pairs, message):
  with pytest.raises(ValueError, match=message):
    datasets.mirror_permutation(CLASSES, pairs)


@pytest.mark.parametrize("name", CLASSES)
def test_declared_pairs_are_the_horizontal_mirrors_of_the_motions(name):
  # x → -x turns a frame's motion (dx, dy, angle, scale) into (-dx, dy, -angle,
  # scale): the mirror class must generate exactly that (up/down, zoom and
  # static are their own mirror images).
  mirror_name = CLASSES[MIRROR[CLASSES.index(name)]]
  for t in (1, 7):
    dx, dy, angle, scale = synthetic_motion._affine(name, t, 1.7)
    got = synthetic_motion._affine(mirror_name, t, 1.7)
    assert got == pytest.approx((-dx, dy, -angle, scale))


def _clip(seed=0):
  rng = np.random.default_rng(seed)
  return (
    rng.integers(0, 256, (2, 48, 64, 3), dtype=np.uint8),
    rng.integers(0, 256, (2, 48, 64, 4), dtype=np.uint8),
  )


def _cfg(recipe, flip_prob):
  c = config.get_data_config()
  c.resize_short, c.image_size, c.crop_base = 48, 40, 44
  c.augment, c.flip_prob = recipe, flip_prob
  return c


@pytest.mark.parametrize("recipe", FLIPPING)
def test_a_flipped_clip_gets_the_mirror_label(recipe):
  rgb, flow = _clip()
  rng = np.random.default_rng
  for label in range(len(CLASSES)):
    r0, f0, kept = transforms.augment(recipe, rng(1), rgb, flow, label, _cfg(recipe, 0.0), MIRROR)
    r1, f1, flipped = transforms.augment(
      recipe, rng(1), rgb, flow, label, _cfg(recipe, 1.0), MIRROR
    )
    # The flip is the recipe's last draw: the same clip, mirrored.
    ref_r, ref_f = transforms.hflip(r0, f0)
    np.testing.assert_array_equal(r1, ref_r)
    np.testing.assert_array_equal(f1, ref_f)
    assert kept == label
    assert flipped == MIRROR[label]
  up, static, right = (CLASSES.index(n) for n in ("up", "static", "right"))
  for own in (up, static):  # in no pair: a flip keeps the label
    assert transforms.augment(recipe, rng(2), rgb, flow, own, _cfg(recipe, 1.0), MIRROR)[2] == own
  assert transforms.augment(recipe, rng(2), rgb, flow, right, _cfg(recipe, 1.0), MIRROR)[2] == 1


@pytest.mark.parametrize("recipe", FLIPPING)
def test_the_label_follows_each_random_flip(recipe):
  rgb, flow = _clip(3)
  cw = CLASSES.index("rotate_cw")
  flips = []
  for seed in range(10):
    rng = np.random.default_rng
    r0, f0, _ = transforms.augment(recipe, rng(seed), rgb, flow, cw, _cfg(recipe, 0.0), MIRROR)
    r, _, label = transforms.augment(recipe, rng(seed), rgb, flow, cw, _cfg(recipe, 0.5), MIRROR)
    flipped = not np.array_equal(r, r0)
    if flipped:
      np.testing.assert_array_equal(r, transforms.hflip(r0, f0)[0])
    assert label == (CLASSES.index("rotate_ccw") if flipped else cw)
    flips.append(flipped)
  assert any(flips) and not all(flips)


@pytest.mark.parametrize("recipe", FLIPPING)
def test_without_a_declaration_flips_keep_labels(recipe):
  rgb, flow = _clip(4)
  cfg = _cfg(recipe, 1.0)
  for label in range(len(CLASSES)):
    r, f, got = transforms.augment(recipe, np.random.default_rng(5), rgb, flow, label, cfg, None)
    assert got == label
    # The declaration never changes the pixels: the same draws either way.
    r2, f2, _ = transforms.augment(recipe, np.random.default_rng(5), rgb, flow, label, cfg, MIRROR)
    np.testing.assert_array_equal(r, r2)
    np.testing.assert_array_equal(f, f2)
    # TRAIN_AUGMENTS (label-free callers) gives the same clip.
    r3, f3 = transforms.TRAIN_AUGMENTS[recipe](np.random.default_rng(5), rgb, flow, cfg)
    np.testing.assert_array_equal(r, r3)
    np.testing.assert_array_equal(f, f3)


def test_baseline_draws_are_unchanged():
  # The baseline as written before mirror pairs: resize, random crop, flip draw.
  rgb, flow = _clip(6)
  cfg = _cfg("baseline", 0.5)
  for seed in range(6):
    rng = np.random.default_rng(seed)
    r, f = transforms.resize_short(rgb, flow, cfg.resize_short)
    r, f = transforms.random_crop(rng, r, f, cfg.image_size)
    if rng.random() < cfg.flip_prob:
      r, f = transforms.hflip(r, f)
    got_r, got_f = transforms.baseline_train(np.random.default_rng(seed), rgb, flow, cfg)
    np.testing.assert_array_equal(got_r, r)
    np.testing.assert_array_equal(got_f, f)


def test_eval_view_flips_and_permutations():
  np.testing.assert_array_equal(transforms.eval_view_flips(10), [False] * 5 + [True] * 5)
  assert not transforms.eval_view_flips(1).any() and not transforms.eval_view_flips(3).any()
  perm = transforms.view_permutations(transforms.eval_view_flips(10), MIRROR)
  assert perm.shape == (10, 9) and perm.dtype == np.int32
  np.testing.assert_array_equal(perm[:5], np.tile(np.arange(9), (5, 1)))
  np.testing.assert_array_equal(perm[5:], np.tile(MIRROR, (5, 1)))


# --- a built dataset, through load_info and the Grain pipeline ---------------


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory, fake_flow):
  data_dir = tmp_path_factory.mktemp("synthetic")
  info = build.ensure_built(
    "synthetic_motion", data_dir, flow_fn=fake_flow, clips=18, size=32, frames=5, short_side=32
  )
  return data_dir, info


@pytest.fixture(scope="module")
def undeclared(synthetic, tmp_path_factory):
  """The same dataset as if built before mirror pairs existed (no metadata)."""
  data_dir, info = synthetic
  old = tmp_path_factory.mktemp("old") / "data"
  shutil.copytree(data_dir, old)
  path = os.path.join(datasets.prepared_dir("synthetic_motion", old, info.config), "metadata.json")
  with open(path, encoding="utf-8") as f:
    meta = json.load(f)
  del meta["mirror_pairs"]
  with open(path, "w", encoding="utf-8") as f:
    json.dump(meta, f)
  return old, info


def _data_cfg(data_dir, info, *, flip_prob=0.5, eval_clips=1, eval_crops=1):
  c = config.get_data_config()
  c.name, c.builder_config, c.data_dir = "synthetic_motion", info.config, str(data_dir)
  c.train_split, c.eval_split = "train", "test"
  c.sampling, c.num_steps, c.flow_length = "uniform", 2, 2
  c.resize_short, c.image_size = 32, 28
  c.augment, c.flip_prob = "baseline", flip_prob
  c.eval_clips, c.eval_crops = eval_clips, eval_crops
  c.num_workers, c.read_threads, c.prefetch = 0, 1, 1
  return c


def test_load_info_exposes_the_declared_pairs(synthetic, undeclared, caplog):
  _, info = synthetic
  assert info.mirror_pairs == synthetic_motion.MIRROR_PAIRS
  np.testing.assert_array_equal(info.mirror, MIRROR)
  caplog.set_level(logging.WARNING)
  caplog.clear()
  datasets._warned_stale.clear()
  old = datasets.load_info("synthetic_motion", undeclared[0], info.config)
  assert old.mirror_pairs == () and old.mirror is None
  # Built before the pairs were stored: one warning that says to rebuild.
  datasets.load_info("synthetic_motion", undeclared[0], info.config)
  warnings = [r.getMessage() for r in caplog.records if "mirror pairs" in r.getMessage()]
  assert len(warnings) == 1 and "build it again" in warnings[0], warnings
  caplog.clear()
  datasets.load_info("synthetic_motion", synthetic[0], info.config)
  assert not [r for r in caplog.records if "mirror pairs" in r.getMessage()]


def _train_batches(cfg, n=4):
  loader = pipeline.create_loader(cfg, split="train", train=True, global_batch_size=7, seed=3)
  try:
    return [next(loader) for _ in range(n)]
  finally:
    loader.close()


def test_training_loader_maps_flipped_labels(synthetic, undeclared):
  data_dir, info = synthetic
  plain = _train_batches(_data_cfg(data_dir, info, flip_prob=0.0))
  flipped = _train_batches(_data_cfg(data_dir, info, flip_prob=1.0))
  cfg = _data_cfg(data_dir, info)
  for a, b in zip(plain, flipped):
    assert b["aug"]["flip"].all() and not a["aug"]["flip"].any()
    va, vb = train_views(a, cfg), train_views(b, cfg)
    np.testing.assert_array_equal(vb["rgb"], va["rgb"][:, :, :, ::-1])  # the same clips, mirrored
    np.testing.assert_array_equal(b["label"], MIRROR[a["label"]])
  labels = np.concatenate([a["label"] for a in plain])
  assert set(labels) & {0, 1, 4, 5} and set(labels) - {0, 1, 4, 5}  # pairs and own mirrors
  # Built before the declaration: flips keep labels, as they always did.
  old = _train_batches(_data_cfg(undeclared[0], info, flip_prob=1.0))
  for a, b in zip(flipped, old):
    np.testing.assert_array_equal(b["rgb"], a["rgb"])
    np.testing.assert_array_equal(b["aug"]["affine"], a["aug"]["affine"])
    np.testing.assert_array_equal(b["label"], MIRROR[a["label"]])


def _eval_batch(cfg):
  loader = pipeline.create_loader(cfg, split="test", train=False, global_batch_size=4)
  try:
    return next(iter(loader))
  finally:
    loader.close()


def test_eval_batches_carry_the_view_permutations(synthetic, undeclared):
  data_dir, info = synthetic
  cfg = _data_cfg(data_dir, info, eval_clips=2, eval_crops=10)
  b = eval_views(_eval_batch(cfg), cfg)
  assert b["rgb"].shape[:2] == (4, 20)
  assert b["view_perm"].shape == (4, 20, 9) and b["view_perm"].dtype == np.int32
  per_clip = transforms.view_permutations(transforms.eval_view_flips(10), MIRROR)
  for row in b["view_perm"]:
    np.testing.assert_array_equal(row, np.concatenate([per_clip, per_clip]))
  # Views 5-9 of each clip are the mirrored ones.
  np.testing.assert_array_equal(b["rgb"][:, 5:10], b["rgb"][:, 0:5, :, :, ::-1])
  # No flipped view, or no declaration: the batch is as it always was.
  assert "view_perm" not in _eval_batch(_data_cfg(data_dir, info, eval_crops=1))
  assert "view_perm" not in _eval_batch(_data_cfg(undeclared[0], info, eval_crops=10))
