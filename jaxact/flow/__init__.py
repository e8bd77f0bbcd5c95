"""TV-L1 optical flow in JAX, uint8 quantisation and batch extraction.

- :func:`tvl1`: batched, jit-compiled TV-L1 following OpenCV's DualTVL1.
- :func:`quantize` / :func:`dequantize` / :func:`flip_flow_stack`: the uint8
  storage format (bound 20 px, 128 = no motion) and flow-stack flips.
- :class:`FlowBatcher` / :func:`video_flow`: uint8 flow for whole videos,
  batching frame pairs across videos (the one batcher: the dataset builders
  and ``python -m jaxact.tools.extract_flow`` use it);
  :func:`auto_batch_size`: its batch size by device kind (1 on CPU, 128 on
  an accelerator).
- :func:`enable_compilation_cache`: JAX's persistent compilation cache for
  flow runs, unless one is already set.

Nothing here decodes or writes media (that is ``jaxact.data``).
"""

from jaxact.flow.batching import (
  FlowBatcher,
  auto_batch_size,
  iter_flows,
  resolve_batch_size,
  video_flow,
)
from jaxact.flow.cache import enable_compilation_cache
from jaxact.flow.dual_tvl1 import TVL1Params, pyramid_shapes, tvl1
from jaxact.flow.quantize import dequantize, flip_flow_stack, quantize

__all__ = [
  "FlowBatcher",
  "TVL1Params",
  "auto_batch_size",
  "dequantize",
  "enable_compilation_cache",
  "flip_flow_stack",
  "iter_flows",
  "pyramid_shapes",
  "quantize",
  "resolve_batch_size",
  "tvl1",
  "video_flow",
]
