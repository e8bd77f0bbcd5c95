"""The launcher's log is quiet: known library noise dropped, everything else kept."""

import logging
import subprocess
import sys

import numpy as np
import pytest

from jaxact.data import build
from jaxact.runtime import checkpoint as ckpt
from jaxact.runtime import reporting

NO_LIBTPU = (
  "Unable to initialize backend 'tpu': INTERNAL: Failed to open libtpu.so: libtpu.so: "
  "cannot open shared object file: No such file or directory"
)


def _remove_filters():
  for name in reporting.KNOWN_NOISE:
    logger = logging.getLogger(name)
    for f in [f for f in logger.filters if isinstance(f, reporting.DropMessages)]:
      logger.removeFilter(f)


@pytest.fixture
def quiet():
  reporting.quiet_known_noise()
  reporting.quiet_known_noise()  # idempotent
  yield
  _remove_filters()


def test_known_noise_is_dropped_and_other_messages_kept(quiet, caplog):
  assert sum(isinstance(f, reporting.DropMessages) for f in logging.getLogger("absl").filters) == 1
  caplog.set_level(logging.INFO)
  jax_log, absl_log = logging.getLogger("jax._src.xla_bridge"), logging.getLogger("absl")
  jax_log.info(NO_LIBTPU)
  jax_log.info("Unable to initialize backend 'tpu': TPU is already in use by process 42")
  absl_log.warning("CheckpointManagerOptions.read_only=True, setting save_interval_steps=0.")
  absl_log.warning("Given directory is read only=%s", "/tmp/run/checkpoints")
  absl_log.warning("Something else about %s", "/tmp/run/checkpoints")
  assert [r.getMessage() for r in caplog.records] == [
    "Unable to initialize backend 'tpu': TPU is already in use by process 42",
    "Something else about /tmp/run/checkpoints",
  ]


def _read_only_manager_messages(tmp_path, caplog):
  caplog.clear()
  manager = ckpt.create_manager(
    str(tmp_path / "checkpoints"), read_only=True, async_save=False, max_to_keep=1
  )
  manager.close()
  return [r.getMessage() for r in caplog.records if "read only" in r.getMessage().replace("_", " ")]


def test_orbax_read_only_warnings_are_the_filtered_ones(tmp_path, caplog):
  caplog.set_level(logging.WARNING)
  (tmp_path / "checkpoints").mkdir()
  loud = _read_only_manager_messages(tmp_path, caplog)
  assert len(loud) == 2, loud  # Orbax still says it (else the patterns are stale)
  reporting.quiet_known_noise()
  try:
    assert _read_only_manager_messages(tmp_path, caplog) == []
  finally:
    _remove_filters()


def test_no_libtpu_line_in_a_fresh_process():
  code = (
    "import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stderr)\n"
    "from jaxact.runtime import reporting\n"
    "if sys.argv[1] == 'quiet': reporting.quiet_known_noise()\n"
    "import jax; jax.devices()\n"
  )

  def run(mode):
    return subprocess.run(
      [sys.executable, "-c", code, mode], capture_output=True, text=True, check=True
    ).stderr

  if "Failed to open libtpu.so" not in run("loud"):
    pytest.skip("this machine has libtpu (or a JAX that does not log its absence)")
  assert "Unable to initialize backend 'tpu'" not in run("quiet")


def _still(frames):
  return np.full((len(frames) - 1,) + frames.shape[1:3] + (2,), 128, np.uint8)


def test_build_prints_no_unknown_size_line(tmp_path, capfd):
  info = build.ensure_built(
    "synthetic_motion", tmp_path, flow_fn=_still, clips=9, size=16, frames=3, short_side=16
  )
  out = capfd.readouterr().out
  assert "Downloading and preparing" not in out and "Unknown size" not in out
  assert "Subsequent calls will reuse this data" not in out
  assert f"Building jaxact_synthetic_motion/{info.config} in {tmp_path}" in out
  assert "9 classes" in out  # the builder's summary still ends the build
