"""Run an experiment: validate, build the dataset if asked, train, evaluate.

``run(config, workdir, mode)`` is what ``python -m jaxact.main`` does once
flags are parsed and ``jax.distributed`` is joined; it is also the entry for
notebooks and tests (no flags, no processes). It decides whether a dataset is
built and hands the loops objects (a model, loaders, a mesh): neither
``jaxact.train`` nor ``jaxact.eval`` imports the other.
"""

import logging
import os
import re

import jax
import numpy as np

from jaxact import config as config_lib
from jaxact.data import device_augment
from jaxact.data.canvas import StoredFrameError
from jaxact.data.datasets import DatasetNotBuiltError
from jaxact.eval import cam, evaluate, figures
from jaxact.eval import table as table_lib
from jaxact.models import two_stream
from jaxact.models.convert import WeightImportError
from jaxact.runtime import checkpoint as ckpt
from jaxact.runtime import inputs
from jaxact.runtime import mesh as mesh_lib
from jaxact.runtime import state as state_lib
from jaxact.runtime.checkpoint import CheckpointError
from jaxact.train import loop
from jaxact.train.pretrained import InitFromError

log = logging.getLogger(__name__)

# The centre view of each clip among ``eval_crops`` crops (transforms.eval_crops).
_CENTRE_CROP = {1: 0, 3: 1, 10: 4}


class WorkdirError(ValueError):
  """``--workdir`` cannot hold a run (a file, or not writable)."""


# A user's mistake, reported in one line (exit status 1) instead of a traceback.
USER_ERRORS = (
  config_lib.ConfigError,
  StoredFrameError,
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
  results = evaluate.evaluate_checkpoint(
    config, workdir, model=model, loader=eval_loader, mesh=mesh
  )
  if config.eval.explain_examples > 0:
    explain(config, workdir, results, model=model, loader=eval_loader, mesh=mesh)
  return results


def explain(config, workdir: str, results: dict, *, model, loader, mesh) -> list[str]:
  """The ending of ``eval.explain_examples``: a table, the confusion matrix and Grad-CAM.

  Process 0 prints (stdout) the spatial / temporal / fused top-1 and top-5
  (``jaxact.eval.table``), the path of ``WORKDIR/confusion_matrix.png`` and
  of a Grad-CAM grid of each of the first ``eval.explain_examples`` clips of
  the evaluation split, their centre view per clip as evaluation saw them,
  drawn by ``jaxact.eval.cam`` (what ``python -m jaxact.tools.cam`` writes)
  into ``WORKDIR/cam/``. A Grad-CAM that cannot be drawn is a warning: the
  results are written.

  Returns:
    The Grad-CAM files written (process 0).
  """
  written: list[str] = []
  try:
    written = _grad_cam_of_test_clips(
      config, workdir, results, model=model, loader=loader, mesh=mesh
    )
  except Exception as e:  # the results are on disk; pictures are extras
    log.warning("No Grad-CAM pictures of the test clips (%s: %s)", type(e).__name__, e)
  if jax.process_index() == 0:
    shown = table_lib.table(
      {os.path.basename(os.path.normpath(workdir)): results},
      streams=("spatial", "temporal", "fused"),
      metrics=("top1", "top5"),
    )
    lines = [str(shown)]
    confusion = os.path.abspath(os.path.join(workdir, figures.CONFUSION_FILE))
    if os.path.exists(confusion):
      lines.append(f"confusion matrix: {confusion}")
    grids = [p for p in written if p.endswith(".png")]
    lines += [f"Grad-CAM of a test clip: {os.path.abspath(p)}" for p in grids]
    print("\n".join(lines), flush=True)
  return written


def _grad_cam_of_test_clips(config, workdir, results, *, model, loader, mesh) -> list[str]:
  if config.model.name not in two_stream.TWO_STREAM_MODELS:
    log.warning("eval.explain_examples: %s is not a two-stream network", config.model.name)
    return []
  batch = device_augment.eval_inputs(next(iter(loader)), out_size=config.data.image_size)
  batch = jax.tree.map(np.asarray, batch)  # the views, (B, V, T, S, S, C)
  abstract = state_lib.abstract_variables_for(model, batch)
  # Every process restores (a collective); process 0 draws.
  _, variables = ckpt.restore_for_inference(
    os.path.join(workdir, "checkpoints"), results["step"], abstract=abstract, mesh=mesh
  )
  if jax.process_index() != 0:
    return []
  variables = jax.tree.map(np.asarray, variables)
  crops = int(config.data.eval_crops)
  views = [c * crops + _CENTRE_CROP.get(crops, 0) for c in range(int(config.data.eval_clips))]
  chosen = np.flatnonzero(np.asarray(batch["mask"]))[: int(config.eval.explain_examples)]
  out_dir = os.path.join(workdir, "cam")
  written = []
  for i in chosen:
    windows = {k: np.asarray(batch[k][i])[views] for k in ("rgb", "flow")}
    label = int(batch["label"][i])
    name = loader.class_names[label] if label < len(loader.class_names) else str(label)
    stem = re.sub(r"[^\w.-]+", "_", f"{config.data.eval_split}_{int(batch['index'][i])}_{name}")
    written += cam.write_cam_pictures(
      out_dir, stem, model, variables, windows, class_names=list(loader.class_names)
    )
  return written
