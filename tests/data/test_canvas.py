"""Host side of the device pipeline: JPEG decoding onto canvases.

References: Pillow's decoder (what jaxact decoded with before; the same
libjpeg-turbo pixels are expected), the sampled clip decoded by Pillow (full
frames, interleaved flow), and the device augmentation of full-size frames.
"""

import io

import numpy as np
import pytest
from PIL import Image

from jaxact.data import augment_params, canvas, config, device_augment, jpeg, sampling


def _smooth(h, w, c, seed):
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
  out = np.empty((h, w, c), np.float32)
  for j in range(c):
    fx, fy, ph = rng.uniform(0.5, 2.0), rng.uniform(0.5, 2.0), rng.uniform(0, 6.3)
    out[..., j] = np.sin(2 * np.pi * fx * xx / w + ph) * np.cos(2 * np.pi * fy * yy / h + ph)
  return out


def _example(h, w, n=8, seed=0):
  """A stored example of n smooth frames and n - 1 flows (jaxact's JPEG settings)."""
  frames, fx, fy = [], [], []
  for i in range(n):
    rgb = np.rint(127.5 + 110 * _smooth(h, w, 3, seed + i)).astype(np.uint8)
    frames.append(jpeg.encode_rgb(rgb))
    if i < n - 1:
      f = np.rint(128 + 40 * _smooth(h, w, 2, seed + 50 + i)).astype(np.uint8)
      fx.append(jpeg.encode_flow(f[..., 0]))
      fy.append(jpeg.encode_flow(f[..., 1]))
  return {"frames": frames, "flow_x": fx, "flow_y": fy, "num_frames": n, "label": 0}


def _pillow(data):
  with Image.open(io.BytesIO(data)) as im:
    return np.asarray(im)


@pytest.mark.parametrize("subsampling", [0, 2])
def test_decode_equals_pillow(subsampling):
  """Bit-identical to Pillow: jaxact's 4:4:4 RGB, 4:2:0 (other tools' frames), grey."""
  rgb = np.random.default_rng(1).integers(0, 256, (37, 53, 3), dtype=np.uint8)
  buf = io.BytesIO()
  Image.fromarray(rgb).save(buf, format="JPEG", quality=85, subsampling=subsampling)
  for data in (buf.getvalue(), jpeg.encode_flow(rgb[..., 1])):
    got = jpeg.decode(data)
    np.testing.assert_array_equal(got, _pillow(data))
    assert jpeg.header(data)[:2] == (37, 53)


def test_decode_into_packs_rows_into_the_buffer():
  data = jpeg.encode_flow(np.arange(12 * 20, dtype=np.uint8).reshape(12, 20))
  out = np.full(400, 7, np.uint8)
  jpeg.decode_into(data, out, gray=True, size=(12, 20))
  np.testing.assert_array_equal(out[:240].reshape(12, 20), _pillow(data))
  assert (out[240:] == 7).all()  # nothing written past the frame
  with pytest.raises(ValueError, match="decoded to 12x20, expected 10x20"):
    jpeg.decode_into(data, out, gray=True, size=(10, 20))
  with pytest.raises(ValueError):
    jpeg.decode_into(data[: len(data) // 2], out, gray=True, size=(12, 20))
  with pytest.raises(ValueError):
    jpeg.header(b"not a jpeg")


def _pillow_clip(ex, rgb_idx, flow_idx):
  """The sampled clip decoded by Pillow: rgb ``(T, H, W, 3)``, flow ``(T, H, W, 2L)``."""
  rgb = np.stack([_pillow(ex["frames"][int(i)]) for i in rgb_idx])
  planes = [
    [_pillow(ex[key][int(i)]) for i in stack for key in ("flow_x", "flow_y")] for stack in flow_idx
  ]
  return rgb, np.stack([np.stack(p, -1) for p in planes])


@pytest.mark.parametrize("scheme,flow_length", [("segments", 2), ("uniform", 3)])
def test_canvas_clip_is_the_packed_decoded_clip(scheme, flow_length):
  """Canvas decoding = Pillow's decoding of the clip, packed (uniform stacks
  overlap: repeated flows are decoded once and copied)."""
  ex = _example(24, 40)
  rgb_idx, flow_idx = sampling.sample_clip(
    8, scheme=scheme, num_steps=4, flow_length=flow_length, rng=np.random.default_rng(0)
  )
  if scheme == "uniform":
    assert len(np.unique(flow_idx)) < flow_idx.size
  pixels = 24 * 40 + 100
  rgb, flow, size = canvas.decode_clip(ex, rgb_idx, flow_idx, pixels)
  assert (
    size == (24, 40) and rgb.shape == (4, pixels, 3) and flow.shape == (4, 2 * flow_length, pixels)
  )
  want_rgb, want_flow = canvas.pack(*_pillow_clip(ex, rgb_idx, flow_idx), pixels)
  np.testing.assert_array_equal(rgb, want_rgb)
  np.testing.assert_array_equal(flow, want_flow)
  # A flow plane of another size than the frames is an error, not garbage.
  bad = dict(ex, flow_x=[jpeg.encode_flow(np.zeros((20, 40), np.uint8))] * 7)
  with pytest.raises(ValueError, match="expected 24x40"):
    canvas.decode_clip(bad, rgb_idx, flow_idx, pixels)


def test_frames_larger_than_the_canvas_decode_smaller_with_the_same_view(caplog):
  """A frame over ``pixels`` is decoded at M/8 in the DCT domain; the fitted
  parameters give the view of the full-size frame (same crop, rotation, flip,
  flow vectors), within resampling tolerance."""
  h, w = 64, 96
  ex = _example(h, w)
  cfg = config.get_data_config()
  cfg.num_steps, cfg.flow_length = 2, 2
  cfg.resize_short, cfg.image_size = 56, 48
  cfg.rotation_degrees, cfg.erasing_prob = 10.0, 0.0
  rgb_idx, flow_idx = sampling.sample_clip(
    8, scheme="segments", num_steps=2, flow_length=2, rng=np.random.default_rng(0)
  )
  canvas._warned.clear()
  full = canvas.decode_clip(ex, rgb_idx, flow_idx, h * w)
  small = canvas.decode_clip(ex, rgb_idx, flow_idx, 56 * 84)
  assert full[2] == (h, w) and small[2] == (56, 84)  # M = 7
  # Said once per frame size: how to keep the full resolution.
  canvas.decode_clip(ex, rgb_idx, flow_idx, 56 * 84)
  said = [r.getMessage() for r in caplog.records if "canvas_pixels" in r.getMessage()]
  assert len(said) == 1 and "set canvas_pixels >= 6144" in said[0], said
  outs = []
  for seed in range(4):
    p = augment_params.draw_params(np.random.default_rng(seed), "paper_a", (h, w), cfg)
    outs.append((p, canvas.fit_params(p, (h, w), small[2])))
  np.testing.assert_array_equal(outs[0][1]["src_hw"], [56, 84])
  np.testing.assert_array_equal(outs[0][1]["flow_matrix"], outs[0][0]["flow_matrix"])
  for k, decoded in ((0, full), (1, small)):
    batch = augment_params.stack_params([o[k] for o in outs])
    rgb = np.stack([decoded[0]] * 4)
    flow = np.stack([decoded[1]] * 4)
    r, f = device_augment.augment(batch, rgb, flow, out_size=48, recipe="paper_a")
    outs_k = (np.asarray(r).astype(int), np.asarray(f).astype(int))
    if k == 0:
      ref = outs_k
  for a, b in zip(ref, outs_k):
    d = np.abs(a - b)
    # Measured: RGB mean 0.46, p99 2; flow mean 0.20, p99 1 (uint8 units).
    assert d.mean() < 0.8 and np.percentile(d, 99) <= 3, (d.mean(), np.percentile(d, 99))
  # A view of another crop would differ by far more.
  assert np.abs(ref[0] - ref[0][::-1]).mean() > 10


def test_pack_rejects_frames_that_do_not_fit():
  with pytest.raises(ValueError, match="do not fit a canvas of 100 pixels"):
    canvas.pack(np.zeros((1, 10, 11, 3), np.uint8), np.zeros((1, 10, 11, 2), np.uint8), 100)


def test_collate_decodes_each_clip_into_the_batch():
  """The batch function = each clip's canvases stacked (training), and an
  evaluation batch may hold padding examples only (a process's last batch)."""
  examples = [_example(24, 40, seed=s) for s in (0, 10)]
  pixels = 24 * 40 + 50
  draws = [
    sampling.sample_clip(
      8, scheme="uniform", num_steps=3, flow_length=2, rng=np.random.default_rng(s)
    )
    for s in range(2)
  ]
  train = canvas.Collate(pixels, 3, 2)(
    [
      {
        "clip": canvas.PendingClip(ex, r, f, (24, 40)),
        "label": np.int32(k),
        "aug": {"a": np.ones(2)},
      }
      for k, (ex, (r, f)) in enumerate(zip(examples, draws))
    ]
  )
  assert train["rgb"].shape == (2, 3, pixels, 3) and train["flow"].shape == (2, 3, 4, pixels)
  np.testing.assert_array_equal(train["label"], [0, 1])
  assert train["aug"]["a"].shape == (2, 2)
  for k, (ex, (r, f)) in enumerate(zip(examples, draws)):
    want_rgb, want_flow, _ = canvas.decode_clip(ex, r, f, pixels)
    np.testing.assert_array_equal(train["rgb"][k], want_rgb)
    np.testing.assert_array_equal(train["flow"][k], want_flow)
  padding = {"clips": None, "label": np.int32(0), "mask": np.bool_(False)}
  evaluation = canvas.Collate(pixels, 3, 2, num_clips=2)([padding, padding])
  assert evaluation["rgb"].shape == (2, 2, 3, pixels, 3) and not evaluation["rgb"].any()
  assert evaluation["flow"].shape == (2, 2, 3, 4, pixels) and not evaluation["mask"].any()
