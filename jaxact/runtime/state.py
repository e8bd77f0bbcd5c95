"""The train state, created already sharded on the mesh."""

import functools
from collections.abc import Callable, Mapping
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from jaxact.data import device_augment
from jaxact.runtime import mesh as mesh_lib


@flax.struct.dataclass
class TrainState:
  """Everything a training step reads and writes.

  Attributes:
    step: int32 scalar, optimizer steps taken.
    params: the model's ``params`` collection.
    batch_stats: the model's ``batch_stats`` collection (``{}`` if none).
    opt_state: the optax state.
  """

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any


def dummy_inputs(input_spec: Mapping[str, jax.ShapeDtypeStruct]) -> dict[str, jax.Array]:
  """Zeros of one example per input (``rgb``, ``flow``), float32, for ``init``."""
  return {k: jnp.zeros((1,) + tuple(v.shape[1:]), jnp.float32) for k, v in input_spec.items()}


def init_variables(
  model: nn.Module, input_spec: Mapping[str, jax.ShapeDtypeStruct], rng: jax.Array
) -> dict[str, Any]:
  """``model.init`` on dummy inputs; returns ``{'params', 'batch_stats'}``."""
  params_rng, dropout_rng = jax.random.split(rng)
  variables = model.init(
    {"params": params_rng, "dropout": dropout_rng}, dummy_inputs(input_spec), train=False
  )
  return {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}


def abstract_variables_for(
  model: nn.Module, eval_batch: Mapping[str, Any], image_size: int = 0
) -> dict[str, Any]:
  """Shapes of ``{'params', 'batch_stats'}`` for the inputs of an evaluation batch.

  ``eval_batch`` is the pipeline's (canvases and ``aug``: the views are
  ``image_size``², made by ``device_augment.eval_inputs``) or views ``rgb`` /
  ``flow`` ``(B, V, T, H, W, C)``; nothing is computed (``jax.eval_shape``).
  This is the restore target of a parameters-only restore (evaluation, the
  demo's Grad-CAM).
  """
  views = jax.eval_shape(
    functools.partial(device_augment.eval_inputs, out_size=image_size),
    {k: v for k, v in eval_batch.items() if k in ("rgb", "flow", "aug")},
  )
  spec = {
    k: jax.ShapeDtypeStruct((1,) + v.shape[2:], v.dtype)
    for k, v in views.items()
    if k in ("rgb", "flow")
  }
  return jax.eval_shape(lambda key: init_variables(model, spec, key), jax.random.key(0))


def create_train_state(
  model: nn.Module,
  tx: optax.GradientTransformation,
  input_spec: Mapping[str, jax.ShapeDtypeStruct],
  mesh: Mesh,
  rng: jax.Array,
  variables_fn: Callable[[dict], dict] | None = None,
) -> tuple[TrainState, Any]:
  """Initialise the state directly with its final (replicated) sharding.

  Args:
    model: the network.
    tx: the optimizer.
    input_spec: shapes of one batch, e.g. ``{'rgb': (B, T, H, W, 3), ...}``
      (only the per-example shape is used).
    mesh: the data-parallel mesh.
    rng: PRNG key for initialisation.
    variables_fn: optional jittable ``variables -> variables`` applied before
      the optimizer state is made (used to merge pretrained weights).

  Returns:
    ``(state, shardings)`` where ``shardings`` mirrors ``state``.
  """

  def init_fn(key):
    variables = init_variables(model, input_spec, key)
    if variables_fn is not None:
      variables = variables_fn(variables)
    params = variables["params"]
    return TrainState(
      step=jnp.zeros((), jnp.int32),
      params=params,
      batch_stats=variables["batch_stats"],
      opt_state=tx.init(params),
    )

  abstract = jax.eval_shape(init_fn, rng)
  shardings = mesh_lib.tree_shardings(mesh, abstract)
  state = jax.jit(init_fn, out_shardings=shardings)(rng)
  return state, shardings


def abstract_state(
  model: nn.Module,
  tx: optax.GradientTransformation,
  input_spec: Mapping[str, jax.ShapeDtypeStruct],
  mesh: Mesh,
) -> TrainState:
  """Shapes, dtypes and shardings of the state, without allocating it (restore target)."""

  def init_fn(key):
    variables = init_variables(model, input_spec, key)
    return TrainState(
      step=jnp.zeros((), jnp.int32),
      params=variables["params"],
      batch_stats=variables["batch_stats"],
      opt_state=tx.init(variables["params"]),
    )

  abstract = jax.eval_shape(init_fn, jax.random.key(0))
  return with_shardings(abstract, mesh_lib.tree_shardings(mesh, abstract))


def with_shardings(abstract: Any, shardings: Any) -> Any:
  """Attach ``shardings`` to a tree of ``ShapeDtypeStruct``s."""
  return jax.tree.map(
    lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings
  )


def param_count(params: Any) -> int:
  """Number of scalars in ``params``."""
  return int(sum(x.size for x in jax.tree.leaves(params)))
