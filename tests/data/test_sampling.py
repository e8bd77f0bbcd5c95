"""Frame/flow index sampling: paper A / TSN segments, paper B uniform."""

import numpy as np
import pytest

from jaxact.data import sampling


def test_segments_train_draws_one_position_per_segment():
  # 101 frames, L=10 → 100 flows, S = 91 positions, T = 7 segments of 13.
  rng = np.random.default_rng(0)
  seen = [set() for _ in range(7)]
  for _ in range(300):
    pos = sampling.step_positions(101, scheme="segments", num_steps=7, flow_length=10, rng=rng)
    for t, p in enumerate(pos):
      assert 13 * t <= p < 13 * (t + 1)
      seen[t].add(int(p))
  # Uniform within each segment: every position gets drawn.
  assert all(len(s) == 13 for s in seen)


def test_segments_eval_is_centre_and_multi_clip_spreads():
  pos = sampling.step_positions(101, scheme="segments", num_steps=7, flow_length=10)
  np.testing.assert_array_equal(pos, 13 * np.arange(7) + 6)
  clips = [
    sampling.step_positions(
      101, scheme="segments", num_steps=7, flow_length=10, clip=j, num_clips=4
    )
    for j in range(4)
  ]
  # Clip j sits (j + 0.5) / 4 of the way through each segment of 13.
  np.testing.assert_array_equal(clips[0], 13 * np.arange(7) + 1)
  np.testing.assert_array_equal(clips[3], 13 * np.arange(7) + 11)
  assert len({tuple(c) for c in clips}) == 4


def test_uniform_is_equally_spaced_paper_b():
  rng = np.random.default_rng(1)
  # 251 frames, L=10: S = 241 positions, 25 steps, interval 9.64.
  for _ in range(50):
    pos = sampling.step_positions(251, scheme="uniform", num_steps=25, flow_length=10, rng=rng)
    gaps = np.diff(pos)
    assert gaps.min() >= 9 and gaps.max() <= 10
    assert pos[0] <= 9 and pos[-1] <= 240
  ev = sampling.step_positions(251, scheme="uniform", num_steps=25, flow_length=10)
  np.testing.assert_array_equal(ev, np.floor(9.64 * (np.arange(25) + 0.5)))


def test_flow_stack_is_aligned_with_the_rgb_frame():
  rgb, flow = sampling.sample_clip(40, scheme="segments", num_steps=3, flow_length=10)
  np.testing.assert_array_equal(flow, rgb[:, None] + np.arange(10))
  assert flow.max() <= 38  # 40 frames → flows 0…38


def test_short_video_rule_clamps_and_repeats():
  # 6 frames → 5 flows < L = 10: one position (0); flows 0…4 then 4 repeated.
  rgb, flow = sampling.sample_clip(
    6, scheme="segments", num_steps=3, flow_length=10, rng=np.random.default_rng(0)
  )
  np.testing.assert_array_equal(rgb, [0, 0, 0])
  np.testing.assert_array_equal(flow[0], [0, 1, 2, 3, 4, 4, 4, 4, 4, 4])
  # 14 frames, L = 10: S = 4 positions for T = 8 steps: each repeated twice.
  pos = sampling.step_positions(14, scheme="uniform", num_steps=8, flow_length=10)
  np.testing.assert_array_equal(pos, [0, 0, 1, 1, 2, 2, 3, 3])
  with pytest.raises(ValueError, match="2 frames"):
    sampling.sample_clip(1, scheme="segments", num_steps=3, flow_length=1)
  with pytest.raises(ValueError, match="unknown sampling scheme"):
    sampling.sample_clip(10, scheme="dense", num_steps=3, flow_length=1)
