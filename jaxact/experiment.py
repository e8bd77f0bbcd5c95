"""Run an experiment: validate, build the dataset if asked, train, evaluate.

``run(config, workdir, mode)`` is what ``python -m jaxact.main`` does once
flags are parsed and ``jax.distributed`` is joined; it is also the entry for
notebooks and tests (no flags, no processes). It decides whether a dataset is
built and hands the loops objects (a model, loaders, a mesh): neither
``jaxact.train`` nor ``jaxact.eval`` imports the other.
"""

import os

import jax

from jaxact import config as config_lib
from jaxact.data.datasets import DatasetNotBuiltError
from jaxact.eval import evaluate
from jaxact.models.convert import WeightImportError
from jaxact.runtime import inputs
from jaxact.runtime import mesh as mesh_lib
from jaxact.runtime.checkpoint import CheckpointError
from jaxact.train import loop
from jaxact.train.pretrained import InitFromError


class WorkdirError(ValueError):
  """``--workdir`` cannot hold a run (a file, or not writable)."""


# A user's mistake, reported in one line (exit status 1) instead of a traceback.
USER_ERRORS = (
  config_lib.ConfigError,
  DatasetNotBuiltError,
  loop.NonFiniteLossError,
  InitFromError,
  WeightImportError,
  CheckpointError,
  WorkdirError,
  FileNotFoundError,
)


def check_workdir(workdir: str, mode: str) -> None:
  """Create ``workdir`` for training; it must be a writable directory.

  Raises:
    WorkdirError: it is a file, or cannot be created or written.
    FileNotFoundError: ``--mode eval`` of a directory that does not exist.
  """
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise WorkdirError(f"--workdir={workdir} is a file, not a directory; choose another path")
  if mode == "eval" and not os.path.isdir(workdir):
    raise FileNotFoundError(
      f"No checkpoint in {workdir}: it does not exist. Train first (--mode train) or point "
      "--workdir at a trained run."
    )
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise WorkdirError(f"cannot create --workdir={workdir}: {e.strerror}") from None
  if not os.access(workdir, os.W_OK | os.X_OK):
    raise WorkdirError(f"--workdir={workdir} is not writable by this user; choose another path")


def run(config, workdir: str, mode: str, *, model_fn=None, loader_fn=None) -> dict | None:
  """Validate ``config``, then train and/or evaluate.

  Args:
    config: the experiment config.
    workdir: the run directory.
    mode: ``'train'`` (then evaluate, unless ``eval.run_after_training`` is
      off) or ``'eval'``.
    model_fn: ``(config, num_classes) -> flax Module``; default
      ``jaxact.runtime.inputs.build_model`` (the registry model).
    loader_fn: ``(config, *, train) -> Loader``; default: the config's
      dataset through the Grain pipeline, built first when
      ``config.build_dataset`` is set.

  Returns:
    The evaluation results, or None (no evaluation, or training stopped by
    a signal after saving).
  """
  config_lib.validate(
    config, device_count=jax.device_count(), process_count=jax.process_count(), mode=mode
  )
  check_workdir(workdir, mode)
  if loader_fn is None:
    if config.build_dataset:
      inputs.ensure_dataset(config)
    config_lib.validate_dataset(config, mode=mode)
    loader_fn = inputs.open_loader
  model_fn = model_fn or inputs.build_model
  mesh = mesh_lib.create_mesh()
  model = None
  if mode == "train":
    train_loader = loader_fn(config, train=True)
    model = model_fn(config, train_loader.num_classes)
    validation_loader = (
      loader_fn(config, train=False) if config.eval.validate_at_checkpoints else None
    )
    finished = loop.train(
      config,
      workdir,
      model=model,
      loader=train_loader,
      mesh=mesh,
      validation_loader=validation_loader,
    )
    if not (finished and config.eval.run_after_training):
      return None
  eval_loader = loader_fn(config, train=False)
  model = model or model_fn(config, eval_loader.num_classes)
  return evaluate.evaluate_checkpoint(config, workdir, model=model, loader=eval_loader, mesh=mesh)
