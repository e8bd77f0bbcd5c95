"""Test helper: random Flax variables without compiling the model's init.

``model.init`` compiles one random-number program per parameter, which takes
tens of seconds on a busy 2-core CI machine; the tests only need shapes
(``jax.eval_shape``) filled with reproducible numbers.
"""

from typing import Any

import jax
import numpy as np


def random_variables(model: Any, *args: Any, seed: int = 0, **kwargs: Any) -> dict:
  """Variables shaped like ``model.init(key, *args, **kwargs)``, random values.

  Kernels and biases ~ N(0, 1/fan_in) and N(0, 0.1²); BN/GN scales 1 + N(0, 0.2²),
  running means N(0, 0.1²), running variances U(0.5, 1.5).
  """
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), *args, **kwargs))
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = jax.tree_util.keystr(path)
    shape, dtype = leaf.shape, leaf.dtype
    if name.endswith("['kernel']"):
      fan_in = int(np.prod(shape[:-1]))
      value = rng.normal(0, 1 / np.sqrt(fan_in), shape)
    elif name.endswith("['scale']"):
      value = 1 + 0.2 * rng.normal(size=shape)
    elif name.endswith("['var']"):
      value = rng.uniform(0.5, 1.5, shape)
    else:  # bias, mean
      value = 0.1 * rng.normal(size=shape)
    return np.asarray(value, dtype)

  return jax.tree_util.tree_map_with_path(fill, shapes)
