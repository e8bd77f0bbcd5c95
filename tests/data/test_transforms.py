"""Augmentation ops; geometry checked against OpenCV TV-L1 of transformed frames.

For each op T: ``T(flow(f0, f1))`` must match ``flow(T(f0), T(f1))`` (OpenCV
DualTVL1, the independent reference) up to TV-L1 error, and clearly better
than the naive version that moves pixels but forgets to transform vectors.
Both paths are checked: the CPU reference (``transforms``) and the device
augmentation the steps run (``device_augment``; measured mean errors in px:
flip 0.04, resize 0.07, rotation 0.06, paper A's whole geometry 0.07, against
3.3 / 0.96 / 0.86 / 4.3 with the vectors left untransformed).
"""

import math

import numpy as np
import pytest
from PIL import Image, ImageFilter

from jaxact.data import augment_params, canvas, config, device_augment, transforms

cv2 = pytest.importorskip("cv2", reason="OpenCV (test extra) is the TV-L1 reference")


def _texture(side, seed=0):
  rng = np.random.default_rng(seed)
  noise = Image.fromarray(rng.integers(0, 256, (side, side), np.uint8))
  blurred = np.asarray(noise.filter(ImageFilter.GaussianBlur(2.0)), np.float32)
  blurred = (blurred - blurred.min()) / (np.ptp(blurred) + 1e-6) * 255
  return blurred


def _warp(img, dx, dy):
  """Samples img at (x - dx, y - dy): content moves by (dx, dy)."""
  h, w = img.shape
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
  return cv2.remap(img, xx - dx, yy - dy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


@pytest.fixture(scope="module")
def pair():
  """Two 96×96 grey frames with a smooth, spatially varying motion."""
  side = 96
  f0 = _texture(side)
  yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
  dx = 2.0 + 1.5 * np.sin(np.pi * yy / side)
  dy = 1.0 * np.cos(np.pi * xx / side)
  f1 = _warp(f0, dx, dy)
  to_rgb = lambda g: np.repeat(np.clip(np.rint(g), 0, 255).astype(np.uint8)[..., None], 3, -1)
  return to_rgb(f0), to_rgb(f1)


def _tvl1(a, b):
  tv = cv2.optflow.DualTVL1OpticalFlow_create()
  return tv.calc(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY), None)


def _check(op, pair, naive, region):
  f0, f1 = pair
  q = transforms.flow_to_uint8(_tvl1(f0, f1))
  r0, tq = op(f0[None], q[None])
  r1, _ = op(f1[None], q[None])
  ref = _tvl1(r0[0], r1[0])
  got = transforms.flow_to_float(tq[0])
  err = np.abs(got - ref)[region].mean()
  _, nq = naive(f0[None], q[None])
  naive_err = np.abs(transforms.flow_to_float(nq[0]) - ref)[region].mean()
  assert err < 0.3, err
  assert err < naive_err / 3, (err, naive_err)


def _pixels_only(op):
  """The op applied per channel as if flow were an image (vectors untouched)."""

  def run(rgb, flow):
    moved = [
      op(np.repeat(flow[..., c : c + 1], 3, -1), flow)[0][..., 0] for c in range(flow.shape[-1])
    ]
    return None, np.stack(moved, -1)

  return run


INNER = (slice(12, -12), slice(12, -12))


def test_hflip_negates_x(pair):
  _check(transforms.hflip, pair, _pixels_only(transforms.hflip), INNER)
  _, flipped = transforms.hflip(pair[0][None], np.full((1, 4, 4, 2), 30, np.uint8))
  assert (flipped[..., 0] == 225).all() and (flipped[..., 1] == 30).all()


def test_crop_keeps_vectors(pair):
  op = lambda r, f: transforms.crop(r, f, 10, 20, 64, 60)
  f0, f1 = pair
  q = transforms.flow_to_uint8(_tvl1(f0, f1))
  r0, tq = op(f0[None], q[None])
  r1, _ = op(f1[None], q[None])
  ref = _tvl1(r0[0], r1[0])
  err = np.abs(transforms.flow_to_float(tq[0]) - ref)[INNER].mean()
  assert tq.shape == (1, 64, 60, 2) and err < 0.3


@pytest.mark.parametrize("size", [(144, 144), (72, 120)])
def test_resize_scales_displacements(pair, size):
  op = lambda r, f: transforms.resize(r, f, size)
  _check(op, pair, _pixels_only(op), INNER)


def test_rotation_rotates_vectors(pair):
  op = lambda r, f: transforms.rotate(r, f, 25.0)
  yy, xx = np.mgrid[0:96, 0:96]
  disc = (yy - 47.5) ** 2 + (xx - 47.5) ** 2 < 28**2
  _check(op, pair, _pixels_only(op), disc)


def test_scale_lut_matches_float_formula():
  v = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(2, -1)
  out = transforms.scale_flow(v, 0.5, 2.0)
  f = transforms.flow_to_float(v)
  np.testing.assert_array_equal(out[..., 0], transforms.flow_to_uint8(f[..., 0] * 0.5))
  np.testing.assert_array_equal(out[..., 1], transforms.flow_to_uint8(f[..., 1] * 2.0))
  # Quantisation per docs/reference.md: ±20 px → 0…255, 0 px → 128 (rounded).
  np.testing.assert_array_equal(
    transforms.flow_to_uint8(np.array([-20.0, 0.0, 20.0, 33.0])), [0, 128, 255, 255]
  )


def _coords(t=2, h=40, w=56, l=3):
  """RGB and flow whose channel 0 holds the x coordinate (+ row in ch 1)."""
  yy, xx = np.mgrid[0:h, 0:w]
  rgb = np.zeros((t, h, w, 3), np.uint8)
  rgb[..., 0], rgb[..., 1] = xx, yy
  flow = np.zeros((t, h, w, 2 * l), np.uint8)
  flow[..., 0], flow[..., 1] = xx + 100, yy + 100
  return rgb, flow


def test_random_crop_and_erasing_share_geometry():
  rng = np.random.default_rng(0)
  rgb, flow = _coords()
  for _ in range(5):
    r, f = transforms.random_crop(rng, rgb, flow, 32)
    assert r.shape == (2, 32, 32, 3) and f.shape == (2, 32, 32, 6)
    np.testing.assert_array_equal(r[..., 0].astype(int) + 100, f[..., 0])
    np.testing.assert_array_equal(r[..., 1].astype(int) + 100, f[..., 1])
  r, f = transforms.random_erasing(rng, rgb, flow, prob=1.0, area=(0.1, 0.2), aspect=(0.5, 2.0))
  erased = (f == 128).all(-1)
  assert 0.08 * 40 * 56 <= erased[0].sum() <= 0.22 * 40 * 56
  np.testing.assert_array_equal(erased[0], erased[1])  # same on all frames
  assert not np.array_equal(r[erased], rgb[erased])  # RGB filled with noise
  np.testing.assert_array_equal(r[~erased], rgb[~erased])


def test_color_jitter_same_for_all_frames():
  rng = np.random.default_rng(3)
  frame = np.random.default_rng(0).integers(0, 256, (1, 8, 8, 3), np.uint8)
  clip = np.repeat(frame, 4, 0)
  out = transforms.color_jitter(rng, clip, 0.4)
  assert out.dtype == np.uint8 and not np.array_equal(out, clip)
  assert all(np.array_equal(out[0], o) for o in out)
  np.testing.assert_array_equal(transforms.color_jitter(rng, clip, 0.0), clip)


@pytest.mark.parametrize("augment", ["paper_a", "paper_b", "baseline", "none"])
def test_train_augment_shapes(augment):
  cfg = config.get_data_config()
  cfg.resize_short, cfg.image_size, cfg.crop_base = 48, 40, 44
  rgb, flow = _coords(t=3, h=48, w=64, l=2)
  r, f = transforms.TRAIN_AUGMENTS[augment](np.random.default_rng(0), rgb, flow, cfg)
  assert r.shape == (3, 40, 40, 3) and f.shape == (3, 40, 40, 4)
  assert r.dtype == f.dtype == np.uint8


def test_eval_crops_ten_and_three():
  rgb, flow = _coords(t=1, h=40, w=56, l=1)
  r, f = transforms.eval_crops(rgb, flow, size=32, num_crops=10)
  assert r.shape == (10, 1, 32, 32, 3) and f.shape == (10, 1, 32, 32, 2)
  assert r[0, 0, 0, 0, 0] == 0 and r[1, 0, 0, 0, 0] == 24  # corners
  np.testing.assert_array_equal(r[5:], r[:5, :, :, ::-1])
  np.testing.assert_array_equal(f[5:, ..., 0], 255 - f[:5, :, :, ::-1, 0])
  r3, _ = transforms.eval_crops(rgb, flow, size=32, num_crops=3)
  assert [int(v[0, 0, 0, 0]) for v in r3] == [0, 12, 24]
  assert math.isclose(float(r3[1, 0, 0, 0, 1]), 4)
  with pytest.raises(ValueError, match="1, 3 or 10"):
    transforms.eval_crops(rgb, flow, size=32, num_crops=5)


def test_rotate_crop_matches_pil_rotate_then_crop(pair):
  rgb = pair[0][None]
  flow = np.full((1, 96, 96, 2), 128, np.uint8)
  got, _ = transforms.rotate_crop(rgb, flow, 17.0, 10, 6, 64, 72)
  ref = np.asarray(Image.fromarray(rgb[0]).rotate(17.0, Image.BILINEAR))
  ref = ref[10:74, 6:78]
  diff = np.abs(got[0].astype(int) - ref.astype(int))[8:-8, 8:-8]
  assert diff.mean() < 3, diff.mean()


def test_color_jitter_equals_sequential_ops():
  clip = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), np.uint8)
  got = transforms.color_jitter(np.random.default_rng(5), clip, 0.4)
  rng = np.random.default_rng(5)
  x = clip.astype(np.float64)
  w = np.array([0.299, 0.587, 0.114])
  for op in rng.permutation(3):
    f = rng.uniform(0.6, 1.4)
    if op == 0:
      x = x * f
    elif op == 1:
      pivot = (x[:, ::4, ::4] @ w).mean()  # documented: every 4th pixel
      x = (x - pivot) * f + pivot
    else:
      x = (x - (x @ w)[..., None]) * f + (x @ w)[..., None]
  ref = np.clip(np.rint(x), 0, 255)
  assert np.abs(got.astype(int) - ref).max() <= 1


# --- the device path: the same geometry check on jaxact.data.device_augment ---


def _device(params, rgb, flow):
  """One example through ``device_augment.augment`` (T = 1, L = 1)."""
  h, w = rgb.shape[1:3]
  r, f = canvas.pack(rgb, flow, h * w)
  size = int(params.pop("size"))
  out = device_augment.augment(
    augment_params.stack_params([params]), r[None], f[None], out_size=size, recipe="baseline"
  )
  return np.asarray(out[0][0]), np.asarray(out[1][0])


def _device_case(name):
  """Parameters of one device geometry (a ``size`` key = the output side)."""
  cfg = config.get_data_config()
  cfg.rotation_degrees, cfg.erasing_prob, cfg.flip_prob = 20.0, 0.0, 1.0
  rng = np.random.default_rng(4)
  if name == "flip":
    cfg.resize_short = cfg.image_size = 96
    p = augment_params.draw_params(rng, "baseline", (96, 96), cfg)
  elif name == "resize":
    cfg.resize_short = cfg.image_size = 144
    p = augment_params.draw_params(rng, "none", (96, 96), cfg)
  elif name == "rotation":
    m = augment_params._rotation(25.0, 48.0, 48.0)
    p = augment_params._pack(m, augment_params._Frame((96, 96)), flip=False)
    cfg.image_size = 96
  else:  # paper A's whole geometry: resize, rotation, crop and flip in one resample
    cfg.resize_short, cfg.image_size = 120, 104
    p = augment_params.draw_params(rng, "paper_a", (96, 96), cfg)
    assert bool(p["flip"])
  p["size"] = cfg.image_size
  return p


@pytest.mark.parametrize("name", ["flip", "resize", "rotation", "paper_a"])
def test_device_geometry_agrees_with_opencv_tvl1(pair, name):
  """``device(flow(f0, f1))`` matches ``flow(device(f0), device(f1))``, and
  beats by 3× the same resampling with the vectors left untransformed."""
  f0, f1 = pair
  q = transforms.flow_to_uint8(_tvl1(f0, f1))[None]
  params = _device_case(name)
  r0, tq = _device(dict(params), f0[None], q)
  r1, _ = _device(dict(params), f1[None], q)
  naive = dict(params, flow_matrix=np.eye(2, dtype=np.float32))
  _, nq = _device(naive, f0[None], q)
  ref = _tvl1(r0[0], r1[0])
  s = ref.shape[0]
  yy, xx = np.mgrid[0:s, 0:s]
  region = (yy - (s - 1) / 2) ** 2 + (xx - (s - 1) / 2) ** 2 < (0.3 * s) ** 2
  err = np.abs(transforms.flow_to_float(tq[0]) - ref)[region].mean()
  naive_err = np.abs(transforms.flow_to_float(nq[0]) - ref)[region].mean()
  assert err < 0.3, err
  assert err < naive_err / 3, (err, naive_err)
