"""Analytic FLOPs and model FLOPs utilisation (MFU)."""

from typing import Any

import jax

# Dense bf16 peak FLOP/s per device (vendor data sheets, without sparsity).
PEAK_FLOPS = {
  "H100": 989e12,
  "H200": 989e12,
  "A100": 312e12,
  "TPU v4": 275e12,
  "TPU v5 lite": 197e12,
  "TPU v5e": 197e12,
  "TPU v5p": 459e12,
  "TPU v5": 459e12,
}


def device_peak_flops(device: Any = None) -> float | None:
  """Peak FLOP/s of ``device`` (default: the first device), or None if unknown (CPU)."""
  device = device or jax.devices()[0]
  kind = getattr(device, "device_kind", "")
  for name in sorted(PEAK_FLOPS, key=len, reverse=True):
    if name.lower() in kind.lower():
      return PEAK_FLOPS[name]
  return None


def executable_flops(compiled: Any) -> float | None:
  """FLOPs per device of one call of a compiled executable (XLA cost analysis).

  The executable of a sharded ``jit`` is the per-device program, so this is
  the work of one device. Returns None where the backend gives no estimate.
  """
  try:
    cost = compiled.cost_analysis()
  except Exception:
    return None
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  if not cost or "flops" not in cost:
    return None
  return float(cost["flops"])


def mfu(flops_per_device: float | None, step_time_s: float, peak: float | None) -> float | None:
  """Fraction of a device's peak reached: ``flops / time / peak``.

  Returns None when the FLOPs or the peak are unknown (e.g. on CPU).
  """
  if not flops_per_device or not peak or step_time_s <= 0:
    return None
  return flops_per_device / step_time_s / peak
