"""FlowBatcher: pairs of many videos share batches; results as one video alone."""

import jax
import numpy as np
import pytest
from moving_square import moving_square

from jaxact.flow import batching

PARAMS = {
  "nscales": 2,
  "warps": 2,
  "inner_iterations": 10,
  "outer_iterations": 1,
  "median_filtering": 1,
}


def test_batcher_mixes_videos_and_sizes():
  # Pairs of different videos share batches; sizes are batched apart.
  vids = {"a": moving_square(3), "b": moving_square(4, offset=2), "c": moving_square(3, h=24, w=32)}
  got = {k: f for k, _, f in batching.iter_flows(vids.items(), batch_size=4, **PARAMS)}
  assert sorted(got) == ["a", "b", "c"]
  for k, frames in vids.items():
    assert got[k].shape == (len(frames) - 1,) + frames.shape[1:3] + (2,)
    # Same flow as the video computed on its own (padded batch of its pairs).
    ref = batching.video_flow(frames, batch_size=4, **PARAMS)
    np.testing.assert_array_equal(got[k], ref)


def test_batch_size_by_device_kind():
  # One place decides: single pairs on a CPU, wide batches on accelerators.
  assert batching.auto_batch_size("cpu") == 1
  assert batching.auto_batch_size("gpu") == batching.auto_batch_size("tpu") == 128
  assert batching.auto_batch_size() == batching.auto_batch_size(jax.default_backend())
  assert batching.resolve_batch_size(None, "cpu") == 1
  assert batching.resolve_batch_size("auto", "gpu") == 128
  assert batching.resolve_batch_size("AUTO", "cpu") == 1
  assert batching.resolve_batch_size(5, "cpu") == batching.resolve_batch_size(5, "gpu") == 5
  for bad in (0, -1, 2.5, True, "4", "big"):
    with pytest.raises(ValueError, match="batch size"):
      batching.resolve_batch_size(bad)
  assert batching.FlowBatcher(**PARAMS).batch_size == batching.auto_batch_size()
  with pytest.raises(ValueError):
    batching.FlowBatcher(batch_size=0)


def test_single_pairs_give_the_batched_flow():
  # The CPU batch (1) and a padded batch of 4 give the same uint8 flow.
  vids = {"a": moving_square(4), "b": moving_square(3, offset=2)}
  one = {k: f for k, _, f in batching.iter_flows(vids.items(), batch_size=1, **PARAMS)}
  four = {k: f for k, _, f in batching.iter_flows(vids.items(), batch_size=4, **PARAMS)}
  for k in vids:
    np.testing.assert_array_equal(one[k], four[k])
