"""Suite-wide pytest configuration: markers, CPU device count, absl flags.

Tests marked ``slow`` run only with ``--runslow``; tests marked ``gpu`` run only
when JAX sees a GPU or TPU. Both are skipped with a visible reason otherwise.
"""

import os

# Four virtual CPU devices, so data-parallel code paths run on a laptop or CI.
# The test models are tiny, so XLA's compile time dominates: LLVM's expensive
# passes are skipped (about 3x faster compiles, same numerics). Must be set
# before JAX initialises its backend; conftest import is early enough.
os.environ.setdefault(
  "XLA_FLAGS",
  "--xla_force_host_platform_device_count=4 --xla_backend_optimization_level=0 "
  "--xla_llvm_disable_expensive_passes=true",
)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Compiled programs are cached on disk across tests, test subprocesses and runs.
os.environ.setdefault(
  "JAX_COMPILATION_CACHE_DIR",
  os.path.join(os.path.expanduser("~"), ".cache", "jaxact", "xla-tests"),
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import pytest


def pytest_addoption(parser):
  parser.addoption(
    "--runslow", action="store_true", default=False, help="also run tests marked slow"
  )


def pytest_configure(config):
  # Grain's multi-worker loading reads absl flags; outside absl.app.run they
  # must be marked as parsed or every worker raises UnparsedFlagAccessError.
  from absl import flags

  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def _has_accelerator() -> bool:
  import jax

  return any(d.platform in ("gpu", "tpu") for d in jax.devices())


def pytest_collection_modifyitems(config, items):
  run_slow = config.getoption("--runslow")
  skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
  gpu_items = [i for i in items if "gpu" in i.keywords]
  skip_gpu = None
  if gpu_items and not _has_accelerator():
    skip_gpu = pytest.mark.skip(reason="gpu: no GPU/TPU visible to JAX")
  for item in items:
    if "slow" in item.keywords and not run_slow:
      item.add_marker(skip_slow)
    if skip_gpu is not None and "gpu" in item.keywords:
      item.add_marker(skip_gpu)
