"""Benchmark of the model zoo: forward and train-step time, clips/s, FLOP/s, MFU.

    python -m jaxact.tools.bench --model two_stream_convlstm --batch 8 --frames 25 \
        --size 224 --dtype bfloat16
    python -m jaxact.tools.bench --model resnet101 --batch 4 --size 224 --torch

For each model it times, after compilation, the jitted forward pass (eval
mode) and the jitted train step (forward, backward, SGD-momentum update,
BatchNorm statistics), and prints one JSON line per measurement with the
time per call, clips/s, the XLA-counted FLOPs of one call, the achieved
FLOP/s and, when the device's peak is known (``jaxact.train.perf``), the MFU.

``--torch`` also runs ``transformers``' pure-PyTorch ResNet-101 (random
weights, no download) on the same number of frames in the same run and prints
the ratio ``torch time / jaxact time`` for the ResNet-101 backbone, so a
reader can tell whether a number is fast for the machine it came from.
"""

import argparse
import json
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxact.models as models
from jaxact.train import perf


def _time_calls(fn: Callable[[], object], repeats: int) -> float:
  """Median wall time of ``fn()`` over ``repeats`` calls, after one warm-up.

  A JAX result is blocked on; a PyTorch (CPU) call returns when it is done.
  """
  jax.block_until_ready(fn())  # compile + warm-up
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def make_inputs(
  model_name: str, batch: int, frames: int, size: int, flow_length: int, dtype
) -> object:
  """Random normalised inputs: a dict for two-stream models, NHWC otherwise."""
  key_rgb, key_flow = jax.random.split(jax.random.key(0))
  if model_name.startswith("two_stream"):
    return {
      "rgb": jax.random.normal(key_rgb, (batch, frames, size, size, 3), dtype),
      "flow": jax.random.normal(key_flow, (batch, frames, size, size, 2 * flow_length), dtype),
    }
  return jax.random.normal(key_rgb, (batch, size, size, 3), dtype)


def bench_model(
  model_name: str,
  *,
  batch: int,
  frames: int,
  size: int,
  flow_length: int,
  dtype,
  num_classes: int,
  repeats: int,
) -> list[dict]:
  """Time forward and train step of ``model_name``; returns result records."""
  model = models.create(model_name, num_classes=num_classes, dtype=dtype)
  x = make_inputs(model_name, batch, frames, size, flow_length, dtype)
  labels = jnp.zeros((batch,), jnp.int32)
  variables = jax.jit(model.init)(jax.random.key(0), x)
  params, batch_stats = variables["params"], variables.get("batch_stats", {})
  tx = optax.sgd(1e-3, momentum=0.9)
  opt_state = tx.init(params)

  forward = jax.jit(lambda p, s, x: model.apply({"params": p, "batch_stats": s}, x)[0])

  def train_step(p, s, o, x, rng):
    def loss_fn(p):
      (logits, _), updates = model.apply(
        {"params": p, "batch_stats": s},
        x,
        train=True,
        mutable=["batch_stats"],
        rngs={"dropout": rng},
      )
      return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), updates

    (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(p)
    deltas, o = tx.update(grads, o, p)
    return optax.apply_updates(p, deltas), updates["batch_stats"], o, loss

  train = jax.jit(train_step, donate_argnums=(0, 1, 2))
  rng = jax.random.key(1)
  peak = perf.device_peak_flops()
  clips = batch
  records = []

  # Time the compiled executables themselves: one compilation per function.
  forward = forward.lower(params, batch_stats, x).compile()
  fwd_flops = perf.executable_flops(forward)
  fwd_time = _time_calls(lambda: forward(params, batch_stats, x), repeats)
  records.append(_record(model_name, "forward", fwd_time, clips, fwd_flops, peak))

  train = train.lower(params, batch_stats, opt_state, x, rng).compile()
  train_flops = perf.executable_flops(train)
  state = [params, batch_stats, opt_state]

  def one_step():
    state[0], state[1], state[2], loss = train(state[0], state[1], state[2], x, rng)
    return loss

  train_time = _time_calls(one_step, repeats)
  records.append(_record(model_name, "train_step", train_time, clips, train_flops, peak))
  for r in records:
    r.update(
      batch=batch,
      frames=frames if model_name.startswith("two_stream") else 1,
      size=size,
      dtype=jnp.dtype(dtype).name,
      device=jax.devices()[0].device_kind,
      num_devices=1,
    )
  return records


def _record(
  model: str, what: str, seconds: float, clips: int, flops: float | None, peak: float | None
) -> dict:
  rec = {
    "model": model,
    "what": what,
    "seconds": round(seconds, 5),
    "clips_per_s": round(clips / seconds, 3),
  }
  if flops:
    rec["flops_per_call"] = flops
    rec["tflops_per_s"] = round(flops / seconds / 1e12, 4)
  utilisation = perf.mfu(flops, seconds, peak)
  if utilisation is not None:
    rec["mfu"] = round(utilisation, 4)
  return rec


def bench_torch_resnet101(batch: int, size: int, repeats: int, num_classes: int) -> list[dict]:
  """``transformers`` ResNet-101 (pure PyTorch, random weights) on the same frames."""
  import torch  # pylint: disable=import-outside-toplevel
  from transformers import ResNetConfig, ResNetForImageClassification  # pylint: disable=import-outside-toplevel

  config = ResNetConfig(
    depths=[3, 4, 23, 3],
    layer_type="bottleneck",
    hidden_sizes=[256, 512, 1024, 2048],
    embedding_size=64,
    num_labels=num_classes,
  )
  model = ResNetForImageClassification(config)
  x = torch.randn(batch, 3, size, size)
  labels = torch.zeros(batch, dtype=torch.long)
  opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

  def forward():
    model.eval()
    with torch.no_grad():
      model(pixel_values=x)

  def train_step():
    model.train()
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(pixel_values=x).logits, labels)
    loss.backward()
    opt.step()

  return [
    {
      "model": "torch_transformers_resnet101",
      "what": what,
      "seconds": round(t, 5),
      "clips_per_s": round(batch / t, 3),
      "batch": batch,
      "size": size,
      "threads": torch.get_num_threads(),
    }
    for what, t in (
      ("forward", _time_calls(forward, repeats)),
      ("train_step", _time_calls(train_step, repeats)),
    )
  ]


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument(
    "--model",
    action="append",
    help="model name (repeatable); default: resnet101 and both papers' networks",
  )
  parser.add_argument("--batch", type=int, default=4, help="clips per call")
  parser.add_argument("--frames", type=int, default=4, help="time steps T of two-stream inputs")
  parser.add_argument("--size", type=int, default=224)
  parser.add_argument("--flow-length", type=int, default=10, help="stacked flows L (2L channels)")
  parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  parser.add_argument("--num-classes", type=int, default=101)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument(
    "--torch",
    action="store_true",
    help="also time transformers' PyTorch ResNet-101 and print the ratio",
  )
  args = parser.parse_args(argv)
  names = args.model or ["resnet101", "two_stream_lstm", "two_stream_convlstm"]
  dtype = jnp.dtype(args.dtype)
  results = []
  for name in names:
    for rec in bench_model(
      name,
      batch=args.batch,
      frames=args.frames,
      size=args.size,
      flow_length=args.flow_length,
      dtype=dtype,
      num_classes=args.num_classes,
      repeats=args.repeats,
    ):
      print(json.dumps(rec), flush=True)
      results.append(rec)
  if args.torch:
    for rec in bench_torch_resnet101(args.batch, args.size, args.repeats, args.num_classes):
      ours = next(
        (r for r in results if r["model"] == "resnet101" and r["what"] == rec["what"]), None
      )
      if ours is not None:
        rec["ratio_torch_over_jaxact"] = round(rec["seconds"] / ours["seconds"], 3)
      print(json.dumps(rec), flush=True)


if __name__ == "__main__":
  main()
