r"""Train or evaluate a jaxact experiment.

  python -m jaxact.main --config configs/demo.py --workdir /tmp/demo
  python -m jaxact.main --config configs/ucf101_paper_a.py:split=2 --workdir DIR \
      --config.batch_size=32
  python -m jaxact.main --config configs/kinetics.py --workdir DIR --mode eval \
      --config.eval.checkpoint=best

Restarting the same command resumes from the last checkpoint. On several
processes (TPU pod, SLURM, or ``launch/local_multiprocess.py``) every process
runs the same command; see ``launch/README.md``.
"""

import logging
import os
import socket
import sys
import time

import jax
from absl import app, flags
from ml_collections import config_flags
from ml_collections.config_flags.config_flags import ConfigFileFlagParser

from jaxact import config as config_lib
from jaxact import configs, experiment
from jaxact.runtime import reporting


class _ConfigParser(ConfigFileFlagParser):
  """ml_collections' config-file parser, after ``jaxact.configs.resolve``."""

  def parse(self, path):
    return super().parse(configs.resolve(path))


_CONFIG = config_flags.DEFINE_config_file(
  "config",
  configs.DEMO,
  "Experiment config: a file (configs/kinetics.py, configs/ucf101_paper_b.py:split=2,stage=2) "
  f"or an installed one by name ({', '.join(configs.names())}; e.g. demo:smoke); "
  "default: the installed demo. Override fields with --config.key=value.",
  lock_config=True,
)
flags.FLAGS["config"].parser = _ConfigParser("config", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (checkpoints, metrics, results).")
_MODE = flags.DEFINE_enum(
  "mode",
  "train",
  list(config_lib.MODES),
  "train (then evaluate) or eval (restore eval.checkpoint and evaluate).",
)
_COORDINATOR = flags.DEFINE_string(
  "coordinator_address",
  None,
  "host:port of process 0, for multi-process runs that JAX "
  "cannot auto-detect (TPU pods and SLURM are auto-detected).",
)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "Index of this process (0-based).")
_INIT_TIMEOUT = flags.DEFINE_integer(
  "initialization_timeout", 300, "Seconds to wait for all processes to join."
)
flags.mark_flag_as_required("workdir")


def _auto_multiprocess() -> bool:
  """True on launchers that ``jax.distributed.initialize()`` understands alone."""
  env = os.environ
  if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in env:
    return True
  if int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1:
    return True
  return "," in env.get("TPU_WORKER_HOSTNAMES", "")


def _initialize_distributed() -> None:
  explicit = _COORDINATOR.value or _NUM_PROCESSES.value or _PROCESS_ID.value is not None
  if explicit:
    if not (_COORDINATOR.value and _NUM_PROCESSES.value and _PROCESS_ID.value is not None):
      raise app.UsageError("--coordinator_address, --num_processes and --process_id go together")
    kwargs = {
      "coordinator_address": _COORDINATOR.value,
      "num_processes": _NUM_PROCESSES.value,
      "process_id": _PROCESS_ID.value,
    }
  elif _auto_multiprocess():
    kwargs = {}
  else:
    return
  where = kwargs.get("coordinator_address", "the auto-detected coordinator")
  hint = (
    "Are all processes started with the same --coordinator_address and --num_processes, "
    "distinct --process_id, and is the port reachable?"
  )
  # JAX aborts (no exception) when it cannot connect: check first.
  if kwargs.get("process_id") and not _reachable(
    kwargs["coordinator_address"], _INIT_TIMEOUT.value
  ):
    raise SystemExit(
      f"jaxact: error: process 0's coordinator at {where} did not answer "
      f"within {_INIT_TIMEOUT.value}s. {hint}"
    )
  logging.getLogger("jaxact").info(
    "Joining a multi-process run at %s (waiting up to %ds for every process; a "
    "DEADLINE_EXCEEDED abort after that means one did not start or cannot reach it).",
    where,
    _INIT_TIMEOUT.value,
  )
  try:
    jax.distributed.initialize(initialization_timeout=_INIT_TIMEOUT.value, **kwargs)
  except Exception as e:
    first = str(e).splitlines()[0] if str(e) else ""
    raise SystemExit(
      f"jaxact: error: could not join the multi-process run at {where} within "
      f"{_INIT_TIMEOUT.value}s ({type(e).__name__}: {first}). {hint}"
    ) from None


def _reachable(address: str, timeout_s: float) -> bool:
  """Whether a TCP connection to ``host:port`` succeeds within ``timeout_s``."""
  host, _, port = address.rpartition(":")
  deadline = time.monotonic() + timeout_s
  while True:
    try:
      with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
        return True
    except OSError:
      if time.monotonic() > deadline:
        return False
      time.sleep(0.5)


def main(argv, **factories) -> None:
  """absl entry point; ``factories`` (``model_fn``, ``loader_fn``) as in ``experiment.run``."""
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  logging.getLogger("jaxact").setLevel(logging.INFO)
  logging.getLogger("absl").setLevel(logging.WARNING)  # Orbax is chatty at INFO
  reporting.quiet_known_noise()  # no-libtpu and read-only-checkpoint lines
  config = _CONFIG.value
  try:
    config.get("seed")  # a config file that failed to load raises here (OSError)
  except OSError as e:
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    print(f"jaxact: error: cannot load --config: {lines[-1] if lines else e}", file=sys.stderr)
    sys.exit(2)
  try:
    _initialize_distributed()
    workdir = os.path.abspath(os.path.expanduser(_WORKDIR.value))
    experiment.run(config, workdir, _MODE.value, **factories)
  except experiment.USER_ERRORS as e:
    print(f"jaxact: error: {e}", file=sys.stderr)
    sys.exit(1)
  except KeyboardInterrupt:
    print("jaxact: interrupted (nothing was saved since the last checkpoint).", file=sys.stderr)
    sys.exit(130)


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing that reports a bad ``--config.key=value`` in one line.

  ml_collections raises from deep inside flag parsing (unknown key, wrong
  type, broken config file); the user gets the message, not the traceback.
  """
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    if any(l.startswith("Traceback") for l in lines):  # keep the cause, drop the stack
      lines = [lines[0].rstrip(":"), lines[-1]]
    print(f"jaxact: error: {' '.join(lines)}\nPass --help for the flags.", file=sys.stderr)
    sys.exit(2)
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    msg = str(e).strip("'\"").replace("\\n", " ").replace("\\'", "'")
    print(f"jaxact: error: bad --config or --config.* flag: {msg}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
