"""The device mesh and the host-batch → global-array step of data parallelism.

Every process holds a slice of the global batch (its Grain loader's output);
:func:`global_batch` stitches the slices into one ``jax.Array`` sharded over
the ``data`` axis of a mesh that spans all devices of all processes.
"""

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from jax._src import distributed
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


def create_mesh() -> Mesh:
  """A 1-D mesh ``('data',)`` over every device of every process."""
  return jax.make_mesh(
    (jax.device_count(),), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,)
  )


def replicated(mesh: Mesh) -> NamedSharding:
  """Sharding that keeps a full copy on every device (parameters)."""
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Sharding that splits the leading (batch) axis over ``data``."""
  return NamedSharding(mesh, P(DATA_AXIS))


def global_batch(mesh: Mesh, host_batch: Mapping[str, np.ndarray]) -> dict[str, jax.Array]:
  """Assemble per-process numpy batches into global arrays.

  Args:
    mesh: the data-parallel mesh.
    host_batch: numpy arrays whose leading axis is the per-process batch
      ``B / process_count`` (e.g. ``rgb`` uint8 ``(B/P, T, P, 3)``), or
      dicts of them (the augmentation parameters ``aug``).

  Returns:
    The same keys as ``jax.Array``s of leading size ``B``, sharded on ``data``.
    Non-array entries (strings, ...) are dropped.
  """
  sharding = batch_sharded(mesh)
  out = {}
  for key, value in host_batch.items():
    if isinstance(value, Mapping):
      out[key] = global_batch(mesh, value)
      continue
    value = np.asarray(value)
    if value.dtype.kind not in "biuf":
      continue
    global_shape = (value.shape[0] * jax.process_count(),) + value.shape[1:]
    out[key] = jax.make_array_from_process_local_data(sharding, value, global_shape)
  return out


def tree_shardings(mesh: Mesh, tree: Any) -> Any:
  """Replicated sharding for every leaf of ``tree`` (parameters, optimizer)."""
  return jax.tree.map(lambda _: replicated(mesh), tree)


_barriers = 0


def barrier(name: str, timeout_s: int = 1800) -> None:
  """Wait until every process reaches ``name`` (no-op with one process).

  Uses the coordination service, not a device collective: call it after a
  long compile so that no process enters the first collective much earlier
  than the others (CPU/gloo collectives give up after ~30 s of waiting).
  """
  if jax.process_count() == 1:
    return
  global _barriers
  _barriers += 1
  name = f"{name}_{_barriers}"  # barrier ids must not repeat within a run
  client = distributed.global_state.client
  if client is None:  # initialised by other means (e.g. a TPU runtime)
    multihost_utils.sync_global_devices(name)
    return
  client.wait_at_barrier(name, timeout_in_ms=timeout_s * 1000)
