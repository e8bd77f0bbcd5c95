"""python -m jaxact.tools.bench_data and its MMAction2-style OpenCV reference."""

import math
import os

import numpy as np
import pytest

pytest.importorskip("cv2")

from jaxact.data import sampling
from jaxact.tools import bench_data
from jaxact.tools import mmaction_reference as ref


def _quantize(v: float) -> int:
  return int(np.clip(np.rint((v + 20) * 255 / 40), 0, 255))


def _dequantize(q) -> np.ndarray:
  return np.asarray(q, np.float64) * 40 / 255 - 20


@pytest.mark.parametrize("paper", ["paper A", "paper B"])
def test_reference_shapes_and_dtypes(paper):
  cfg = bench_data.paper_configs()[paper]
  t, l = cfg.num_steps, cfg.flow_length
  rng = np.random.default_rng(0)
  rgb = rng.integers(0, 256, (t, 240, 320, 3), dtype=np.uint8)
  flow = rng.integers(0, 256, (t, 2 * l, 240, 320), dtype=np.uint8)
  out_rgb, out_flow = ref.RECIPES[cfg.augment](rng, rgb, flow, cfg)
  assert out_rgb.shape == (t, 224, 224, 3) and out_rgb.dtype == np.uint8
  assert out_flow.shape == (t, 224, 224, 2 * l) and out_flow.dtype == np.uint8


def test_flip_mirrors_and_inverts_flow_x():
  rng = np.random.default_rng(1)
  rgb = rng.integers(0, 256, (2, 8, 10, 3), dtype=np.uint8)
  flow = rng.integers(0, 256, (2, 4, 8, 10), dtype=np.uint8)
  out_rgb, out_flow = ref.flip(rgb, flow)
  np.testing.assert_array_equal(out_rgb, rgb[:, :, ::-1])
  np.testing.assert_array_equal(out_flow[:, 0::2], 255 - flow[:, 0::2, :, ::-1])
  np.testing.assert_array_equal(out_flow[:, 1::2], flow[:, 1::2, :, ::-1])


@pytest.mark.parametrize("degrees", [10.0, -15.0, 30.0])
def test_rotation_rotates_uniform_flow_vectors(degrees):
  fx, fy = 5.0, -2.0  # pixels
  flow = np.empty((1, 2, 64, 64), np.uint8)
  flow[:, 0], flow[:, 1] = _quantize(fx), _quantize(fy)
  _, out = ref.rotate(np.zeros((1, 64, 64, 3), np.uint8), flow, degrees)
  # Counter-clockwise as seen, y down: (x, y) → (x cos + y sin, −x sin + y cos).
  a = math.radians(degrees)
  want = (fx * math.cos(a) + fy * math.sin(a), -fx * math.sin(a) + fy * math.cos(a))
  got = _dequantize(out[0, :, 20:44, 20:44])  # inside the rotated frame
  for c in range(2):
    assert np.abs(got[c] - want[c]).max() <= 40 / 255 + 1e-6  # one quantisation unit
  assert (out[0, :, 0, 0] == 128).all()  # a corner rotated in from outside: no motion


def test_reference_reads_the_sampled_images(tmp_path):
  """load_clip decodes img/flow files by 1-based name into the right slots."""
  cv2 = pytest.importorskip("cv2")
  folder = tmp_path / "video"
  folder.mkdir()
  for i in range(1, 6):
    cv2.imwrite(str(folder / f"img_{i:05d}.png"), np.full((4, 6, 3), i, np.uint8))
  for i in range(1, 5):
    cv2.imwrite(str(folder / f"flow_x_{i:05d}.png"), np.full((4, 6), 10 * i, np.uint8))
    cv2.imwrite(str(folder / f"flow_y_{i:05d}.png"), np.full((4, 6), 10 * i + 1, np.uint8))
  for name in os.listdir(folder):  # lossless content under the .jpg names it reads
    os.rename(folder / name, folder / name.replace(".png", ".jpg"))
  rgb_idx, flow_idx = sampling.sample_clip(5, scheme="segments", num_steps=2, flow_length=2)
  rgb, flow = ref.load_clip(str(folder), rgb_idx, flow_idx)
  assert rgb.shape == (2, 4, 6, 3) and flow.shape == (2, 4, 4, 6)
  np.testing.assert_array_equal(rgb[:, 0, 0, 0], rgb_idx + 1)
  np.testing.assert_array_equal(flow[:, 0::2, 0, 0], 10 * (flow_idx + 1))
  np.testing.assert_array_equal(flow[:, 1::2, 0, 0], 10 * (flow_idx + 1) + 1)


def test_tiny_run_prints_every_row(tmp_path, capsys):
  results = bench_data.run(
    str(tmp_path),
    videos=2,
    frames=14,
    side=64,
    clips=1,
    repeats=1,
    device_batch=1,
    decoders=True,
    flops=False,
    markdown=True,
  )
  out = capsys.readouterr().out
  for paper in ("paper A", "paper B"):
    res = results[paper]
    assert res["opencv"].shape == res["jaxact"].shape == res["ratio"].shape == (1,)
    assert (res["opencv"] > 0).all() and (res["jaxact"] > 0).all()
    assert res["device_ms"] is not None
    assert f"| {paper} |" in out
  assert "jaxact/OpenCV" in out and "device augmentation on" in out
  decoders = {(k.split()[0], n): e for k, n, _, e in results["decoders"]}
  assert set(decoders) == {
    (kind, name) for kind in ("RGB", "flow") for name in ("Pillow", "simplejpeg", "cv2.imdecode")
  }
  assert decoders[("RGB", "simplejpeg")] and decoders[("flow", "simplejpeg")]
