"""Device augmentation vs the CPU recipes of ``jaxact.data.transforms``.

The CPU transforms are the reference: for the same parameters (drawn from the
same seed) the device output must equal theirs within interpolation
tolerance. Differences come from (in uint8 units):

* PIL resamples twice in paper A (resize, rounded; then rotate, truncated:
  PIL's affine bilinear truncates, a -0.5 bias), the device once (rounded);
* PIL's resize filters with a widened triangle when it shrinks (paper B's crop
  → 224), the device samples bilinearly;
* CPU flow is requantised after each step (resize LUT, rotation), device flow
  once.

So the tests use smooth clips (a few sinusoid periods per frame), where those
differences stay about one unit, and bound the mean and 99th percentile of
``|device - cpu|`` per stream. The paper A erased rectangle is compared
separately (its RGB noise is drawn on the device: same distribution, other
values).
"""

import functools
import math

import jax
import numpy as np
import pytest

from jaxact.data import augment_params, canvas, config, device_augment, transforms

T, L = 2, 2  # time steps, stacked flows (2L = 4 channels)
SIZE = 48
PIXELS = 64 * 72  # canvas size
SHAPES = ((48, 64), (64, 40))  # landscape, portrait: one canvas, one compile
SEEDS = range(6)

# (rgb mean, rgb p99, flow mean, flow p99) bounds in uint8 units; see the docstring.
TOLERANCE = {
  "baseline": (0.4, 1, 0.5, 1),
  "none": (0.4, 1, 0.5, 1),
  "paper_b": (0.6, 2, 0.5, 2),
  "paper_a": (0.8, 2, 0.75, 2),
}


def _smooth(t, h, w, c, seed):
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
  out = np.empty((t, h, w, c), np.float32)
  for i in range(t):
    for j in range(c):
      fx, fy, ph = rng.uniform(0.5, 2.0), rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi)
      out[i, ..., j] = np.sin(2 * np.pi * fx * xx / w + ph) * np.cos(2 * np.pi * fy * yy / h + ph)
  return out


def _clip(hw, seed):
  h, w = hw
  rgb = np.rint(127.5 + 110 * _smooth(T, h, w, 3, seed)).astype(np.uint8)
  flow = np.rint(128 + 40 * _smooth(T, h, w, 2 * L, seed + 100)).astype(np.uint8)
  return rgb, flow


def _on_canvas(clips, fill=255, pixels=PIXELS):
  """Packs clips into one canvas batch; the unused pixels are garbage on purpose."""
  rgbs, flows = [], []
  for r, f in clips:
    rc, fc = canvas.pack(r, f, pixels)
    n = r.shape[1] * r.shape[2]
    rc[:, n:], fc[:, :, n:] = fill, fill
    rgbs.append(rc)
    flows.append(fc)
  return np.stack(rgbs), np.stack(flows)


@pytest.fixture(scope="module")
def cfg():
  c = config.get_data_config()
  c.num_steps, c.flow_length = T, L
  c.resize_short, c.image_size, c.crop_base = 56, SIZE, 52
  c.rotation_degrees = 20.0
  c.erasing_prob = 0.5
  return c


@pytest.fixture(scope="module")
def clips():
  return [_clip(hw, i) for i, hw in enumerate(SHAPES)]


def _cases(clips):
  """(seed, clip index) for every seed and both aspect ratios."""
  return [(s, k) for s in SEEDS for k in range(len(clips))]


@pytest.fixture(scope="module")
def results(cfg, clips):
  """Per recipe: CPU outputs, device outputs and params for every case.

  One device call per recipe holds every seed and both aspect ratios.
  """
  out = {}
  for recipe in augment_params.RECIPES:
    cpu, params = [], []
    for seed, k in _cases(clips):
      rgb, flow = clips[k]
      rng_cpu, rng_dev = np.random.default_rng(seed), np.random.default_rng(seed)
      cpu.append(transforms.TRAIN_AUGMENTS[recipe](rng_cpu, rgb, flow, cfg))
      params.append(augment_params.draw_params(rng_dev, recipe, rgb.shape[1:3], cfg))
      # Same draws in the same order: both generators end in the same state.
      assert rng_cpu.bit_generator.state == rng_dev.bit_generator.state, (recipe, seed)
    batch = augment_params.stack_params(params)
    rgb, flow = _on_canvas([clips[k] for _, k in _cases(clips)])
    dev = device_augment.augment(batch, rgb, flow, out_size=SIZE, recipe=recipe)
    out[recipe] = (cpu, [np.asarray(d) for d in dev], params)
  return out


def _erase_mask(p):
  t0, l0, t1, l1 = (int(v) for v in p["erase"])
  m = np.zeros((SIZE, SIZE), bool)
  m[t0:t1, l0:l1] = True
  return m


def _stats(a, b, mask=None):
  d = np.abs(a.astype(np.int32) - b.astype(np.int32))
  if mask is not None:
    d = d[:, ~mask]
  return d.mean(), np.percentile(d, 99)


@pytest.mark.parametrize("recipe", augment_params.RECIPES)
def test_recipe_matches_cpu(results, recipe):
  cpu, (rgb, flow), params = results[recipe]
  rgb_mean, rgb_p99, flow_mean, flow_p99 = TOLERANCE[recipe]
  for i, ((r_cpu, f_cpu), p) in enumerate(zip(cpu, params, strict=True)):
    assert rgb[i].shape == r_cpu.shape and flow[i].shape == f_cpu.shape
    assert rgb[i].dtype == np.uint8 and flow[i].dtype == np.uint8
    mean, p99 = _stats(rgb[i], r_cpu, _erase_mask(p))
    assert mean <= rgb_mean and p99 <= rgb_p99, (recipe, i, "rgb", mean, p99)
    mean, p99 = _stats(flow[i], f_cpu)
    assert mean <= flow_mean and p99 <= flow_p99, (recipe, i, "flow", mean, p99)


def test_cases_cover_every_branch(results):
  """The seeds exercise flip on and off, erasing, rotation and colour jitter."""
  for recipe in ("paper_a", "paper_b", "baseline"):
    flips = {bool(p["flip"]) for p in results[recipe][2]}
    assert flips == {True, False}, recipe
  a = results["paper_a"][2]
  assert any(_erase_mask(p).any() for p in a) and not all(_erase_mask(p).any() for p in a)
  assert all(abs(p["affine"][0, 1]) > 1e-3 for p in a)  # rotated
  b = results["paper_b"][2]
  assert all(bool(p["jitter"]) for p in b)
  assert len({tuple(p["jitter_order"]) for p in b}) > 1


def test_paper_a_erased_rectangle(results):
  """Flow in the rectangle is exactly the CPU's (128, x 127 once flipped);
  RGB there is uniform noise."""
  cpu, (rgb, flow), params = results["paper_a"]
  erased = 0
  for i, ((_, f_cpu), p) in enumerate(zip(cpu, params, strict=True)):
    m = _erase_mask(p)
    if not m.any():
      continue
    erased += 1
    np.testing.assert_array_equal(flow[i][:, m], f_cpu[:, m])
    noise = rgb[i][:, m].astype(np.float32)
    if noise.size >= 300:
      assert 90 < noise.mean() < 165 and noise.std() > 50, (i, noise.mean(), noise.std())
  assert erased > 0


def test_paper_b_colour_jitter_changes_rgb_only(results, clips):
  """Without the colour stage the device RGB would miss the CPU's by far more;
  flow does not depend on it."""
  cpu, (rgb, flow), params = results["paper_b"]
  p = augment_params.stack_params([dict(q, jitter=np.bool_(False)) for q in params])
  c_rgb, c_flow = _on_canvas([clips[k] for _, k in _cases(clips)])
  plain, plain_flow = device_augment.augment(p, c_rgb, c_flow, out_size=SIZE, recipe="paper_b")
  plain = np.asarray(plain)
  np.testing.assert_array_equal(np.asarray(plain_flow), flow)
  worse = [_stats(plain[i], r)[0] for i, (r, _) in enumerate(cpu)]
  good = [_stats(rgb[i], r)[0] for i, (r, _) in enumerate(cpu)]
  assert np.median(worse) > 5 * max(np.median(good), 0.5)


def _flat_flow(hw, fx, fy):
  h, w = hw
  f = np.empty((T, h, w, 2 * L), np.float32)
  f[..., 0::2], f[..., 1::2] = fx, fy
  return transforms.flow_to_uint8(f)


def test_flip_negates_flow_x(cfg):
  """A flipped clip's flow x is negated (255 - v), y kept, image mirrored."""
  rgb, flow = _clip((48, 64), 7)
  c = cfg.copy_and_resolve_references()
  c.flip_prob = 1.0
  c.resize_short = 48  # no resize: only the crop and the flip
  p = augment_params.draw_params(np.random.default_rng(0), "baseline", (48, 64), c)
  assert bool(p["flip"])
  # The same crop unflipped: the flip is the last factor of the affine (its own inverse).
  m = np.vstack([p["affine"].astype(np.float64), [0.0, 0.0, 1.0]]) @ augment_params._hflip(SIZE)
  p_plain = dict(p, affine=m[:2].astype(np.float32), flow_matrix=np.eye(2, dtype=np.float32))
  p_plain["flip"] = np.bool_(False)
  batch = augment_params.stack_params([p, p_plain])
  r, f = device_augment.augment(
    batch, *_on_canvas([(rgb, flow)] * 2), out_size=SIZE, recipe="baseline"
  )
  r, f = np.asarray(r), np.asarray(f)
  np.testing.assert_array_equal(r[0], r[1][:, :, ::-1])
  np.testing.assert_array_equal(f[0][..., 0::2], 255 - f[1][:, :, ::-1, 0::2])
  np.testing.assert_array_equal(f[0][..., 1::2], f[1][:, :, ::-1, 1::2])
  # And the unflipped one is the plain crop of the input.
  top, left = int(p_plain["affine"][1, 2]), int(p_plain["affine"][0, 2])
  np.testing.assert_array_equal(f[1], flow[:, top : top + SIZE, left : left + SIZE])


@pytest.mark.parametrize("degrees", [30.0, -12.5])
def test_rotation_rotates_flow_vectors(degrees):
  """Uniform flow through a rotation: vectors rotate as in ``rotate_crop``."""
  hw = (48, 64)
  rgb, _ = _clip(hw, 3)
  fx, fy = 6.0, -2.0
  flow = _flat_flow(hw, fx, fy)
  top, left = 0, 8
  r_cpu, f_cpu = transforms.rotate_crop(rgb, flow, degrees, top, left, SIZE, SIZE)
  frame = augment_params._Frame(hw)
  m = augment_params._rotation(degrees, hw[1] / 2, hw[0] / 2) @ augment_params._translate(left, top)
  p = augment_params._pack(m, frame, flip=False)
  r, f = device_augment.augment(
    augment_params.stack_params([p]), *_on_canvas([(rgb, flow)]), out_size=SIZE, recipe="baseline"
  )
  r, f = np.asarray(r[0]), np.asarray(f[0])
  a = math.radians(degrees)
  want = transforms.flow_to_uint8(
    np.array([fx * math.cos(a) + fy * math.sin(a), -fx * math.sin(a) + fy * math.cos(a)])
  )
  inside = f_cpu[0, ..., 0] != 128  # out-of-frame corners are filled with 128
  assert inside.mean() > 0.5
  for j in range(L):
    assert np.abs(f[:, inside, 2 * j].astype(int) - want[0]).max() <= 1
    assert np.abs(f[:, inside, 2 * j + 1].astype(int) - want[1]).max() <= 1
  assert np.abs(f.astype(int) - f_cpu).max() <= 1
  mean, p99 = _stats(r, r_cpu)
  assert mean <= 0.8 and p99 <= 2
  # A version that moved pixels but kept the vectors would be far off.
  assert np.abs(want.astype(int) - flow[0, 0, 0, :2].astype(int)).max() > 5


def test_mixed_aspect_batch_equals_each_alone(clips, cfg):
  """Two aspect ratios on one canvas: each example as if augmented alone
  (on a tight canvas), whatever the unused canvas pixels hold."""
  params = [
    augment_params.draw_params(np.random.default_rng(5), "paper_a", r.shape[1:3], cfg)
    for r, _ in clips
  ]
  rgb, flow = _on_canvas(clips, fill=255)
  mixed = device_augment.augment(
    augment_params.stack_params(params), rgb, flow, out_size=SIZE, recipe="paper_a"
  )
  for k, (r, f) in enumerate(clips):
    tight = _on_canvas([(r, f)], pixels=r.shape[1] * r.shape[2])
    alone = device_augment.augment(
      augment_params.stack_params([params[k]]), *tight, out_size=SIZE, recipe="paper_a"
    )
    np.testing.assert_array_equal(np.asarray(mixed[0][k]), np.asarray(alone[0][0]))
    np.testing.assert_array_equal(np.asarray(mixed[1][k]), np.asarray(alone[1][0]))


@pytest.mark.parametrize("num_crops", transforms.EVAL_CROPS)
def test_eval_views_match_cpu(clips, cfg, num_crops):
  c = cfg.copy_and_resolve_references()
  c.eval_crops = num_crops
  params = [augment_params.eval_params(r.shape[1:3], c) for r, _ in clips]
  rgb, flow = _on_canvas(clips)
  views = device_augment.eval_views(augment_params.stack_params(params), rgb, flow, out_size=SIZE)
  for k, (r, f) in enumerate(clips):
    r1, f1 = transforms.resize_short(r, f, c.resize_short)
    r_cpu, f_cpu = transforms.eval_crops(r1, f1, size=SIZE, num_crops=num_crops)
    dev_r, dev_f = np.asarray(views[0][k]), np.asarray(views[1][k])
    assert dev_r.shape == r_cpu.shape == (num_crops, T, SIZE, SIZE, 3)
    assert dev_f.shape == f_cpu.shape
    for v in range(num_crops):
      mean, p99 = _stats(dev_r[v], r_cpu[v])
      assert mean <= 0.4 and p99 <= 1, (k, v, "rgb", mean, p99)
      mean, p99 = _stats(dev_f[v], f_cpu[v])
      assert mean <= 0.5 and p99 <= 1, (k, v, "flow", mean, p99)


def test_one_compile_per_batch_shape(clips, cfg):
  """New parameter values and another mix of aspect ratios reuse the compile."""
  rgb, flow = _on_canvas(clips + clips[:1])  # B = 3: a shape no other test uses
  before = device_augment.augment._cache_size()
  for seed in range(3):
    params = [
      augment_params.draw_params(np.random.default_rng(seed + k), "paper_b", r.shape[1:3], cfg)
      for k, (r, _) in enumerate(clips + clips[:1])
    ]
    out = device_augment.augment(
      augment_params.stack_params(params), rgb, flow, out_size=SIZE, recipe="paper_b"
    )
    jax.block_until_ready(out)
    rgb, flow = rgb[::-1].copy(), flow[::-1].copy()
  assert device_augment.augment._cache_size() == before + 1


def test_unknown_recipe_is_rejected(cfg):
  with pytest.raises(ValueError, match="unknown recipe"):
    augment_params.draw_params(np.random.default_rng(0), "paper_c", (48, 64), cfg)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_sharded_batch_augments_on_each_device_without_collectives(clips, cfg, mode):
  """With the batch sharded on its leading axis (as the steps get it), each
  device augments its own examples: no collective in the compiled program,
  the output keeps the batch sharding and equals the unsharded result."""
  mesh = jax.sharding.Mesh(np.array(jax.devices()[:4]), ("data",))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  pairs = [clips[k % 2] for k in range(4)]
  rgb, flow = _on_canvas(pairs)
  if mode == "train":
    params = augment_params.stack_params(
      [
        augment_params.draw_params(np.random.default_rng(k), "paper_a", r.shape[1:3], cfg)
        for k, (r, _) in enumerate(pairs)
      ]
    )
    fn = functools.partial(device_augment.train_inputs, out_size=SIZE, recipe="paper_a")
  else:  # one clip per video: a clip axis of 1
    params = augment_params.stack_params(
      [augment_params.eval_params(r.shape[1:3], cfg) for r, _ in pairs]
    )
    rgb, flow, params = jax.tree.map(lambda x: x[:, None], (rgb, flow, params))
    fn = functools.partial(device_augment.eval_inputs, out_size=SIZE)
  batch = {"rgb": rgb, "flow": flow, "label": np.arange(4, dtype=np.int32), "aug": params}
  jitted = jax.jit(fn)
  hlo = jitted.lower(jax.device_put(batch, sharding)).compile().as_text()
  for op in ("all-gather", "all-reduce", "all-to-all", "collective-permute", "reduce-scatter"):
    assert op not in hlo, op
  out = jitted(jax.device_put(batch, sharding))
  assert out["rgb"].sharding.is_equivalent_to(sharding, out["rgb"].ndim)
  want = fn(batch)
  np.testing.assert_array_equal(np.asarray(out["rgb"]), np.asarray(want["rgb"]))
  np.testing.assert_array_equal(np.asarray(out["flow"]), np.asarray(want["flow"]))
