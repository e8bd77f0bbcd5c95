"""JAX's persistent compilation cache for TV-L1 runs (builds and extraction).

TV-L1's program takes 15–60 s to compile on a CPU (once per image size and
batch size), as long as a small dataset build takes. With the persistent
cache a later build or a resumed extraction loads it from disk instead.
:func:`enable_compilation_cache` is called when flow work starts (never at
import), and leaves a cache someone already chose alone.
"""

from __future__ import annotations

import os

import jax

DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "jaxact", "xla")


def enable_compilation_cache(path: str | None = DEFAULT_CACHE_DIR) -> str | None:
  """Turns on JAX's persistent compilation cache unless one is already set.

  An already-set cache wins: ``jax.config``'s ``jax_compilation_cache_dir``
  (e.g. from ``JAX_COMPILATION_CACHE_DIR`` at JAX's import), else the
  ``JAX_COMPILATION_CACHE_DIR`` environment variable (also when set after
  JAX was imported). Turn caching off with JAX's own
  ``JAX_ENABLE_COMPILATION_CACHE=false``.

  Args:
    path: the folder to use when none is set; None or '' sets nothing.

  Returns:
    The cache folder in use, or None when there is none.
  """
  current = jax.config.jax_compilation_cache_dir
  if current:
    return current
  env = os.environ.get("JAX_COMPILATION_CACHE_DIR")
  path = env or path
  if not path:
    return None
  jax.config.update("jax_compilation_cache_dir", os.path.expanduser(path))
  return jax.config.jax_compilation_cache_dir
