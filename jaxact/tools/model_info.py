r"""Print a model's trainable parameter count and MACs as one JSON line.

Usage::

  python -m jaxact.tools.model_info --model resnet101
  python -m jaxact.tools.model_info --model cotnet101 --input-channels 20 --num-classes 101

Nothing is compiled or run: parameters come from ``jax.eval_shape`` and
multiply-accumulates from the traced program (every convolution and matrix
product, including those inside ``scan``), for one 224×224 frame (``gmacs``,
what papers call "GFLOPs"). For two-stream networks the input is one time step
of RGB plus one stack of flows (``--input-channels`` flow channels).
"""

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend import core as jex_core

from jaxact import models
from jaxact.models import cot, resnet


def _sub_jaxprs(params: dict[str, Any]):
  for value in params.values():
    values = value if isinstance(value, (tuple, list)) else (value,)
    for v in values:
      if isinstance(v, jex_core.ClosedJaxpr):
        yield v.jaxpr
      elif isinstance(v, jex_core.Jaxpr):
        yield v


def count_macs(jaxpr: Any) -> int:
  """Multiply-accumulates of the convolutions and matrix products in a jaxpr.

  Args:
    jaxpr: a ``ClosedJaxpr`` or ``Jaxpr`` (e.g. from ``jax.make_jaxpr``).

  Returns:
    Sum over ``conv_general_dilated`` (output elements × kernel elements per
    output channel), ``dot_general`` (output elements × contracted size) and
    the multiplies of the CoT local aggregation (one per element and tap),
    recursing into sub-programs; ``scan`` bodies count ``length`` times.
  """
  if isinstance(jaxpr, jex_core.ClosedJaxpr):
    jaxpr = jaxpr.jaxpr
  total = 0
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == "conv_general_dilated":
      out = eqn.outvars[0].aval.shape
      rhs = eqn.invars[1].aval.shape
      rhs_spec = eqn.params["dimension_numbers"].rhs_spec
      total += math.prod(out) * math.prod(rhs) // rhs[rhs_spec[0]]
    elif name == "dot_general":
      (lhs_contract, _), _ = eqn.params["dimension_numbers"]
      lhs = eqn.invars[0].aval.shape
      total += math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[d] for d in lhs_contract)
    elif name == "mul" and cot.LOCAL_AGGREGATION_SCOPE in str(eqn.source_info.name_stack):
      # CoT local aggregation: one multiply-add per output element and tap.
      total += math.prod(eqn.outvars[0].aval.shape)
    else:
      repeat = eqn.params.get("length", 1) if name == "scan" else 1
      for sub in _sub_jaxprs(eqn.params):
        total += repeat * count_macs(sub)
  return total


def _example_input(name: str, input_channels: int | None, size: int) -> Any:
  if name in resnet.BACKBONES:
    return jnp.zeros((1, size, size, input_channels or 3), jnp.float32)
  flow_channels = input_channels or 20
  return {
    "rgb": jnp.zeros((1, 1, size, size, 3), jnp.float32),
    "flow": jnp.zeros((1, 1, size, size, flow_channels), jnp.float32),
  }


def model_info(
  name: str, *, num_classes: int = 1000, input_channels: int | None = None, image_size: int = 224
) -> dict[str, Any]:
  """Parameter count and MACs of a registered model, without compiling it.

  Args:
    name: a name of :func:`jaxact.models.names`.
    num_classes: classifier size.
    input_channels: input channels of a backbone (default 3) or of the flow
      stream of a two-stream network (default 20).
    image_size: frame height and width.

  Returns:
    ``{'model', 'num_classes', 'input_channels', 'image_size', 'params'
    (trainable), 'batch_stats' (non-trainable BN statistics), 'gmacs'}``.
  """
  model = models.create(name, num_classes=num_classes)
  x = _example_input(name, input_channels, image_size)
  rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
  variables = jax.eval_shape(lambda: model.init(rngs, x, train=False))
  count = lambda tree: sum(math.prod(v.shape) for v in jax.tree.leaves(tree))
  jaxpr = jax.make_jaxpr(lambda v, x: model.apply(v, x, train=False))(variables, x)
  channels = x.shape[-1] if not isinstance(x, dict) else x["flow"].shape[-1]
  return {
    "model": name,
    "num_classes": num_classes,
    "input_channels": channels,
    "image_size": image_size,
    "params": count(variables.get("params", {})),
    "batch_stats": count(variables.get("batch_stats", {})),
    "gmacs": round(count_macs(jaxpr) / 1e9, 4),
  }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
  parser = argparse.ArgumentParser(
    prog="python -m jaxact.tools.model_info",
    description="Print a model's trainable parameters and GMACs per frame as JSON.",
  )
  parser.add_argument("--model", required=True, help="registered model name")
  parser.add_argument("--num-classes", type=int, default=1000)
  parser.add_argument(
    "--input-channels",
    type=int,
    default=None,
    help="input channels (backbone default 3; flow stream default 20)",
  )
  parser.add_argument("--image-size", type=int, default=224)
  args = parser.parse_args(argv)
  if args.model not in models.names():
    parser.error(f"unknown model {args.model!r}; known: {', '.join(models.names())}")
  info = model_info(
    args.model,
    num_classes=args.num_classes,
    input_channels=args.input_channels,
    image_size=args.image_size,
  )
  print(json.dumps(info))
  return info


if __name__ == "__main__":
  main(sys.argv[1:])
