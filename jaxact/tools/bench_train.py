r"""Benchmark the training step and checkpoint saving against same-run references.

  python -m jaxact.tools.bench_train [--model two_stream_convlstm_tiny] [--batch 8] \
      [--size 56] [--steps 3] [--flow_length 5] [--repeats 5]

Prints:

* step time of jaxact's train step (state born sharded on the mesh, batch
  assembled with ``make_array_from_process_local_data``, state donated)
  against a plain single-device ``jax.jit`` of the same loss and update: the
  ratio shows what the data-parallel machinery costs (≈1 means nothing);
* the time the training loop is blocked by an Orbax async save against a
  synchronous save of the same state: the ratio is the saving that async
  checkpoints buy.
"""

import argparse
import tempfile
import time

import jax
import numpy as np

from jaxact import config as config_lib
from jaxact import models
from jaxact.runtime import checkpoint as ckpt
from jaxact.runtime import mesh as mesh_lib
from jaxact.runtime import state as state_lib
from jaxact.train import optim
from jaxact.train import step as step_lib


def _times(fn, repeats: int) -> np.ndarray:
  """Seconds of ``repeats`` timed calls of ``fn`` after one warm-up (compile) call."""
  fn()
  out = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    out.append(time.perf_counter() - t)
  return np.asarray(out)


def _fmt(times: np.ndarray) -> str:
  """``median ms (min–max)``."""
  return f"{np.median(times) * 1e3:.1f} ms ({times.min() * 1e3:.1f}–{times.max() * 1e3:.1f})"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--model", default="two_stream_convlstm_tiny")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--size", type=int, default=56)
  parser.add_argument("--steps", type=int, default=3, help="time steps T per clip")
  parser.add_argument("--flow_length", type=int, default=5)
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args()

  config = config_lib.get_base_config()
  config.model.name = args.model
  model = models.create(args.model, num_classes=10)
  rng = np.random.default_rng(0)
  b, t, s, l2 = args.batch, args.steps, args.size, 2 * args.flow_length
  batch = {
    "rgb": rng.integers(0, 256, (b, t, s, s, 3), dtype=np.uint8),
    "flow": rng.integers(0, 256, (b, t, s, s, l2), dtype=np.uint8),
    "label": rng.integers(0, 10, b).astype(np.int32),
  }
  spec = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in batch.items() if k != "label"}
  names = list(
    jax.eval_shape(lambda k: state_lib.init_variables(model, spec, k), jax.random.key(0))["params"]
  )
  tx, schedule = optim.create_optimizer(config.optimizer, 100, names)
  step_fn = step_lib.make_train_step(model, config, schedule, tx)

  mesh = mesh_lib.create_mesh()
  state, shardings = state_lib.create_train_state(model, tx, spec, mesh, jax.random.key(0))
  sharded = jax.jit(step_fn, donate_argnums=0, out_shardings=(shardings, mesh_lib.replicated(mesh)))
  holder = {"state": state}

  def run_sharded():
    holder["state"], m = sharded(holder["state"], mesh_lib.global_batch(mesh, batch))
    jax.block_until_ready(m)

  plain = jax.jit(step_fn)
  ref_state = jax.device_put(jax.device_get(state), jax.devices()[0])
  ref_batch = jax.device_put(batch, jax.devices()[0])

  def run_plain():
    _, m = plain(ref_state, ref_batch)
    jax.block_until_ready(m)

  t_sharded = _times(run_sharded, args.repeats)
  t_plain = _times(run_plain, args.repeats)
  print(
    f"devices: {jax.device_count()} x {jax.devices()[0].device_kind}; model {args.model}, "
    f"batch {b} x T={t} x {s}px, 2L={l2}"
  )
  print(
    f"train step (median of {args.repeats}, min–max): jaxact mesh+donation {_fmt(t_sharded)}, "
    f"plain jit (1 device) {_fmt(t_plain)}, ratio of medians plain/jaxact = "
    f"{np.median(t_plain) / np.median(t_sharded):.2f}"
  )

  def save_times(async_save: bool) -> np.ndarray:
    with tempfile.TemporaryDirectory() as d:
      manager = ckpt.create_manager(d, async_save=async_save, best_metric=None)
      times = []
      for i in range(args.repeats):
        st = holder["state"].replace(step=holder["state"].step + i + 1)
        t0 = time.perf_counter()
        ckpt.save(manager, st, loader_state=b"{}", config_json={})
        times.append(time.perf_counter() - t0)
        manager.wait_until_finished()
      manager.close()
      return np.asarray(times)

  t_async, t_sync = save_times(True), save_times(False)
  n_bytes = sum(x.nbytes for x in jax.tree.leaves(holder["state"]))
  print(
    f"checkpoint ({n_bytes / 2**20:.1f} MiB): loop blocked {_fmt(t_async)} async vs "
    f"{_fmt(t_sync)} sync, ratio of medians sync/async = "
    f"{np.median(t_sync) / np.median(t_async):.2f}"
  )


if __name__ == "__main__":
  main()
