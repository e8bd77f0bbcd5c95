"""What the user sees during training: progress bar, metrics.jsonl, TensorBoard.

Only process 0 writes; other processes get a writer that does nothing.
:func:`quiet_known_noise` (installed by ``jaxact.main``) drops the library log
lines that say nothing to a jaxact user.
"""

import json
import logging
import math
import os
import re
import sys
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from tqdm import tqdm


class MetricsWriter:
  """Appends one JSON object per logged step to ``WORKDIR/metrics.jsonl`` and
  mirrors scalars to TensorBoard (``WORKDIR/tensorboard``).

  Args:
    workdir: the run directory.
    enabled: False on processes other than 0.
    tensorboard: also write TensorBoard event files.
  """

  def __init__(self, workdir: str, *, enabled: bool = True, tensorboard: bool = True):
    self.enabled = enabled
    self._tb = None
    self._file = None
    if not enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    # Kept open for the writer's life; closed by close().
    self._file = open(os.path.join(workdir, "metrics.jsonl"), "a", encoding="utf-8")  # noqa: SIM115
    if tensorboard:
      # tensorboardX imports torch when it is installed: only when asked for.
      from tensorboardX import SummaryWriter  # noqa: PLC0415 (optional heavy dependency)

      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, scalars: Mapping[str, float], prefix: str = "train") -> None:
    """Record ``scalars`` for ``step`` (non-finite values are written as null)."""
    if not self.enabled:
      return
    clean = {k: (float(v) if math.isfinite(float(v)) else None) for k, v in scalars.items()}
    self._file.write(json.dumps({"step": int(step), **clean}) + "\n")
    self._file.flush()
    if self._tb is not None:
      for k, v in clean.items():
        if v is not None:
          self._tb.add_scalar(f"{prefix}/{k}", v, int(step))

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
      self._file = None
    if self._tb is not None:
      self._tb.close()
      self._tb = None


def truncate_metrics(workdir: str, last_step: int) -> None:
  """Drop lines of ``metrics.jsonl`` after ``last_step`` (steps re-run on resume)."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return
  kept = []
  with open(path, encoding="utf-8") as f:
    for line in f:
      try:
        if json.loads(line).get("step", 0) <= last_step:
          kept.append(line if line.endswith("\n") else line + "\n")
      except json.JSONDecodeError:
        continue  # a line cut by kill -9
  with open(path, "w", encoding="utf-8") as f:
    f.writelines(kept)


class Progress:
  """A tqdm bar with ETA on process 0 (plain log lines when not a terminal)."""

  def __init__(self, total: int, initial: int, *, enabled: bool = True, desc: str = "train"):
    self._bar = None
    if enabled:
      self._bar = tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="step",
        dynamic_ncols=True,
        file=sys.stderr,
        mininterval=1.0 if sys.stderr.isatty() else 30.0,
      )

  def update(self, n: int = 1, **postfix: Any) -> None:
    if self._bar is not None:
      if postfix:
        self._bar.set_postfix({k: _fmt(v) for k, v in postfix.items()}, refresh=False)
      self._bar.update(n)

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()


def _fmt(v: Any) -> str:
  return f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v)


class StepTimer:
  """Wall time per step between log points (host side, after blocking)."""

  def __init__(self):
    self._t = time.perf_counter()

  def lap(self) -> float:
    now = time.perf_counter()
    dt, self._t = now - self._t, now
    return dt


# Library log lines that are expected and harmless in a jaxact run, matched
# exactly (logger name → message patterns); anything else still shows:
# * JAX looks for a TPU runtime on every machine; without libtpu installed it
#   logs that it could not load it (a TPU runtime that fails otherwise, e.g.
#   a chip in use, still shows);
# * Orbax warns whenever a checkpoint directory is opened read-only, which is
#   what evaluation asks for (``jaxact.eval.evaluate``).
KNOWN_NOISE = {
  "jax._src.xla_bridge": (
    r"^Unable to initialize backend 'tpu': .*Failed to open libtpu\.so: libtpu\.so: "
    r"cannot open shared object file",
  ),
  "absl": (
    r"^CheckpointManagerOptions\.read_only=True, setting save_interval_steps=0\.$",
    r"^Given directory is read only=",
  ),
}


class DropMessages(logging.Filter):
  """Drops the records of one logger whose message matches a pattern."""

  def __init__(self, patterns):
    super().__init__()
    self.patterns = tuple(re.compile(p) for p in patterns)

  def filter(self, record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return not any(p.search(message) for p in self.patterns)


def quiet_known_noise() -> None:
  """Installs the :data:`KNOWN_NOISE` filters (once per process)."""
  for name, patterns in KNOWN_NOISE.items():
    logger = logging.getLogger(name)
    if not any(isinstance(f, DropMessages) for f in logger.filters):
      logger.addFilter(DropMessages(patterns))
