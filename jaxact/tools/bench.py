"""Benchmark of the model zoo: forward and train-step time, clips/s, FLOP/s, MFU.

    python -m jaxact.tools.bench --model two_stream_convlstm --batch 8 --frames 25 \
        --size 224 --dtype bfloat16
    python -m jaxact.tools.bench --model resnet101 --batch 4 --size 224 --repeats 5 --torch

For each model it times, after compilation and one warm-up call, the jitted
forward pass (eval mode) and the jitted train step (forward, backward,
SGD-momentum update, BatchNorm statistics) ``--repeats`` times, and prints one
JSON line per measurement: the median time per call with its spread
(``seconds_min``, ``seconds_max`` over the repeats), clips/s at the median,
the XLA-counted FLOPs of one call, the achieved FLOP/s and, when the device's
peak is known (``jaxact.train.perf``), the MFU. Every line also carries the
1-minute load average when it was measured and ``XLA_FLAGS``, so figures from
a shared machine can be judged.

For two-stream models it also times the device augmentation of the same
batch (``--augment``; ``auto``: paper A's recipe for ``two_stream_lstm``,
paper B's for ``two_stream_convlstm``): ``jaxact.data.device_augment.augment``
on canvases of 256×341 frames (UCF101 at short side 256) with parameters
drawn as the pipeline draws them, output ``--size``², interleaved with the
train step; its line gives ``share_of_train_step`` (ratio of the medians;
the issue's goal on an accelerator is under 5%).

``--torch`` also runs ``transformers``' pure-PyTorch ResNet-101 (random
weights, no download, float32) on the same number of frames in the same
process. Its calls are *interleaved* with jaxact's ResNet-101 calls (jaxact,
torch, jaxact, torch, …), so both see the same machine load, and its line
gives ``ratio_torch_over_jaxact``: the ratio of the two medians (above 1:
jaxact is faster). On a loaded machine PyTorch's spin-waiting OpenMP threads
slow it far more than jaxact, and can slow jaxact's next call too: measure
idle, or also with ``OMP_WAIT_POLICY=PASSIVE`` (docs/benchmarks.md, "Why the
ratio moves with the load").
"""

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxact import models
from jaxact.data import augment_params, canvas, config, device_augment
from jaxact.train import perf

# The model whose time the PyTorch reference is compared with.
TORCH_REFERENCE_MODEL = "resnet101"
WHATS = ("forward", "train_step")


def _call_seconds(fn: Callable[[], object]) -> float:
  """Wall time of one ``fn()``; a JAX result is blocked on (a PyTorch CPU call
  returns when it is done)."""
  start = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - start


def time_interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
  """Times every function ``repeats`` times, in turn, after one warm-up call each.

  Round-robin order (a, b, a, b, …) gives each function the same share of a
  varying machine load, so ratios of their medians stay meaningful on a
  shared machine.

  Returns:
    ``{name: [seconds per call, ...]}`` with ``repeats`` entries each.
  """
  for fn in fns.values():
    jax.block_until_ready(fn())  # compilation (jax) or allocator warm-up (torch)
  times = {name: [] for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      times[name].append(_call_seconds(fn))
  return times


def summarize(times: list[float]) -> dict:
  """``seconds`` (median), ``seconds_min``, ``seconds_max`` and ``repeats``."""
  return {
    "seconds": round(float(np.median(times)), 5),
    "seconds_min": round(float(np.min(times)), 5),
    "seconds_max": round(float(np.max(times)), 5),
    "repeats": len(times),
  }


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


def prepare_model(
  model_name: str,
  *,
  batch: int,
  frames: int,
  size: int,
  flow_length: int,
  dtype,
  num_classes: int,
) -> dict[str, tuple[Callable[[], object], float | None]]:
  """Compiles forward and train step of ``model_name``.

  Returns:
    ``{'forward' | 'train_step': (call, XLA-counted FLOPs of one call)}``;
    ``call()`` runs the compiled executable once (the train step updates its
    donated state in place, so repeated calls keep training).
  """
  model = models.create(model_name, num_classes=num_classes, dtype=dtype)
  x = make_inputs(model_name, batch, frames, size, flow_length, dtype)
  labels = jnp.zeros((batch,), jnp.int32)
  variables = jax.jit(model.init)(jax.random.key(0), x)
  params, batch_stats = variables["params"], variables.get("batch_stats", {})
  tx = optax.sgd(1e-3, momentum=0.9)
  opt_state = tx.init(params)

  def forward_fn(p, s, x):
    return model.apply({"params": p, "batch_stats": s}, x)[0]

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

  rng = jax.random.key(1)
  # Time the compiled executables themselves: one compilation per function.
  forward = jax.jit(forward_fn).lower(params, batch_stats, x).compile()
  train = (
    jax.jit(train_step, donate_argnums=(0, 1, 2))
    .lower(params, batch_stats, opt_state, x, rng)
    .compile()
  )
  # The forward pass reads the initial variables; the train step owns a copy.
  state = jax.tree.map(jnp.copy, [params, batch_stats, opt_state])

  def one_step():
    state[0], state[1], state[2], loss = train(state[0], state[1], state[2], x, rng)
    return loss

  return {
    "forward": (lambda: forward(params, batch_stats, x), perf.executable_flops(forward)),
    "train_step": (one_step, perf.executable_flops(train)),
  }


def prepare_torch_resnet101(batch: int, size: int, num_classes: int) -> dict[str, Any]:
  """``transformers`` ResNet-101 (pure PyTorch, random weights, float32).

  Returns:
    ``{'forward': call, 'train_step': call, 'threads': PyTorch's CPU threads}``.
  """
  import torch  # noqa: PLC0415 (optional heavy dependency)
  from transformers import (  # noqa: PLC0415 (optional heavy dependency)
    ResNetConfig,
    ResNetForImageClassification,
  )

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

  return {"forward": forward, "train_step": train_step, "threads": torch.get_num_threads()}


# --augment auto: the papers' recipes by model family.
AUTO_RECIPES = {"two_stream_lstm": "paper_a", "two_stream_convlstm": "paper_b"}
AUGMENT_FRAME = (256, 341)  # UCF101's 320×240 stored at short side 256


def augment_recipe(model_name: str, choice: str) -> str | None:
  """The recipe ``--augment choice`` times for ``model_name`` (None: none)."""
  if not model_name.startswith("two_stream") or choice == "none":
    return None
  if choice != "auto":
    return choice
  family = model_name.removesuffix("_tiny")
  return AUTO_RECIPES.get(family)


def prepare_augment(
  recipe: str, *, batch: int, frames: int, size: int, flow_length: int
) -> Callable[[], object]:
  """A compiled ``device_augment.augment`` call on a batch of canvases.

  Frames are :data:`AUGMENT_FRAME` (smooth random content), the parameters
  drawn by ``augment_params.draw_params`` with the default data config scaled
  to ``size`` (``resize_short`` and ``crop_base`` = ``size × 256 / 224``).
  """
  h, w = AUGMENT_FRAME
  cfg = config.get_data_config()
  cfg.num_steps, cfg.flow_length, cfg.image_size = frames, flow_length, size
  cfg.resize_short = cfg.crop_base = round(size * 256 / 224)
  rng = np.random.default_rng(0)
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
  phase = rng.uniform(0, 6.3, (frames, 1, 1, 3 + 2 * flow_length))
  wave = np.sin(xx[None, ..., None] / 17.0 + phase) * np.cos(yy[None, ..., None] / 23.0)
  clip = np.clip(127.5 + 100 * wave, 0, 255).astype(np.uint8)
  rgb, flow = canvas.pack(clip[..., :3], clip[..., 3:], h * w)
  params = augment_params.stack_params(
    [augment_params.draw_params(rng, recipe, (h, w), cfg) for _ in range(batch)]
  )
  args = jax.device_put((params, np.stack([rgb] * batch), np.stack([flow] * batch)))
  fn = jax.jit(lambda p, r, f: device_augment.augment(p, r, f, out_size=size, recipe=recipe))
  compiled = fn.lower(*args).compile()
  return lambda: compiled(*args)


def _conditions() -> dict:
  """What the machine was doing: 1-minute load average and ``XLA_FLAGS``."""
  return {"load_1min": round(os.getloadavg()[0], 2), "xla_flags": os.environ.get("XLA_FLAGS", "")}


def _record(
  model: str, what: str, times: list[float], clips: int, flops: float | None, peak: float | None
) -> dict:
  rec = {"model": model, "what": what, **summarize(times)}
  seconds = rec["seconds"]
  rec["clips_per_s"] = round(clips / seconds, 3)
  if flops:
    rec["flops_per_call"] = flops
    rec["tflops_per_s"] = round(flops / seconds / 1e12, 4)
  utilisation = perf.mfu(flops, seconds, peak)
  if utilisation is not None:
    rec["mfu"] = round(utilisation, 4)
  return rec


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
  torch_calls: dict | None = None,
  augment: str | None = None,
) -> list[dict]:
  """Times forward and train step of ``model_name``; returns result records.

  With ``augment`` (a recipe) the device augmentation of the same batch is
  timed interleaved with the train step; its record (``what`` =
  ``device_augment``) follows, with ``share_of_train_step``.

  With ``torch_calls`` (from :func:`prepare_torch_resnet101`) the PyTorch
  calls are timed interleaved with jaxact's and their records follow, each
  with ``ratio_torch_over_jaxact`` (ratio of the medians).
  """
  calls = prepare_model(
    model_name,
    batch=batch,
    frames=frames,
    size=size,
    flow_length=flow_length,
    dtype=dtype,
    num_classes=num_classes,
  )
  peak = perf.device_peak_flops()
  common = {
    "batch": batch,
    "frames": frames if model_name.startswith("two_stream") else 1,
    "size": size,
    "dtype": jnp.dtype(dtype).name,
    "device": jax.devices()[0].device_kind,
    "num_devices": 1,
  }
  records, torch_records = [], []
  for what in WHATS:
    fn, flops = calls[what]
    fns = {"jaxact": fn}
    if torch_calls is not None:
      fns["torch"] = torch_calls[what]
    if augment and what == "train_step":
      fns["augment"] = prepare_augment(
        augment, batch=batch, frames=frames, size=size, flow_length=flow_length
      )
    times = time_interleaved(fns, repeats)
    conditions = _conditions()
    rec = _record(model_name, what, times["jaxact"], batch, flops, peak)
    records.append({**rec, **common, **conditions})
    if "augment" in fns:
      aug = _record(model_name, "device_augment", times["augment"], batch, None, None)
      aug["recipe"] = augment
      aug["share_of_train_step"] = round(aug["seconds"] / rec["seconds"], 4)
      records.append({**aug, **common, **conditions})
    if torch_calls is not None:
      ref = {"model": "torch_transformers_resnet101", "what": what, **summarize(times["torch"])}
      ref["clips_per_s"] = round(batch / ref["seconds"], 3)
      ref["ratio_torch_over_jaxact"] = round(ref["seconds"] / rec["seconds"], 3)
      torch_records.append(
        {
          **ref,
          "batch": batch,
          "size": size,
          "dtype": "float32",
          "threads": torch_calls["threads"],
          **conditions,
        }
      )
  return records + torch_records


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
  parser.add_argument(
    "--repeats", type=int, default=5, help="timed calls per measurement (median and min-max)"
  )
  parser.add_argument(
    "--torch",
    action="store_true",
    help=f"also time transformers' PyTorch ResNet-101, interleaved with {TORCH_REFERENCE_MODEL}",
  )
  parser.add_argument(
    "--augment",
    default="auto",
    choices=["auto", "none", *augment_params.RECIPES],
    help="time the device augmentation of two-stream batches beside the train step "
    "(auto: paper_a for two_stream_lstm, paper_b for two_stream_convlstm)",
  )
  args = parser.parse_args(argv)
  if args.repeats < 1:
    parser.error("--repeats must be at least 1")
  names = args.model or ["resnet101", "two_stream_lstm", "two_stream_convlstm"]
  if args.torch and TORCH_REFERENCE_MODEL not in names:
    names = [*names, TORCH_REFERENCE_MODEL]
  torch_calls = (
    prepare_torch_resnet101(args.batch, args.size, args.num_classes) if args.torch else None
  )
  for name in names:
    records = bench_model(
      name,
      batch=args.batch,
      frames=args.frames,
      size=args.size,
      flow_length=args.flow_length,
      dtype=jnp.dtype(args.dtype),
      num_classes=args.num_classes,
      repeats=args.repeats,
      torch_calls=torch_calls if name == TORCH_REFERENCE_MODEL else None,
      augment=augment_recipe(name, args.augment),
    )
    for rec in records:
      print(json.dumps(rec), flush=True)


if __name__ == "__main__":
  main()
