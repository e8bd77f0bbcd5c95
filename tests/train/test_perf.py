"""MFU inputs: XLA FLOPs of a known program, device peaks, bf16 model creation."""

import types

import jax
import jax.numpy as jnp
import pytest

from jaxact.config import get_base_config
from jaxact.runtime import inputs
from jaxact.train import perf


def test_executable_flops_of_a_matmul():
  x = jnp.ones((64, 32))
  y = jnp.ones((32, 16))
  compiled = jax.jit(jnp.matmul).lower(x, y).compile()
  flops = perf.executable_flops(compiled)
  if flops is None:
    pytest.skip("this backend gives no cost analysis")
  assert flops == pytest.approx(2 * 64 * 32 * 16, rel=0.05)  # multiply + add per MAC


def test_device_peaks_and_mfu():
  kind = lambda k: types.SimpleNamespace(device_kind=k)
  assert perf.device_peak_flops(kind("NVIDIA H100 80GB HBM3")) == 989e12
  assert perf.device_peak_flops(kind("TPU v5 lite")) == 197e12
  assert perf.device_peak_flops(kind("cpu")) is None
  assert perf.mfu(5e11, 1.0, 1e12) == pytest.approx(0.5)
  assert perf.mfu(5e11, 1.0, None) is None


def test_bfloat16_compute_reaches_the_model():
  config = get_base_config()
  config.compute_dtype = "bfloat16"
  model = inputs.build_model(config, num_classes=5)
  assert model.dtype == jnp.bfloat16 and model.num_classes == 5
