"""Experiment config schema (defaults) and the one start-up validation.

Every experiment file in ``configs/`` (installed as ``jaxact.configs``) starts
from :func:`get_base_config` and writes out its settings. Before anything is
built or compiled, :func:`validate` checks everything that can be checked
without reading the dataset, so that a typo, an impossible batch size or a
missing file fails in seconds with one clear message (:class:`ConfigError`),
not after an hour with a traceback; :func:`validate_dataset` then checks that
the dataset is built and has the named splits.

Top-level fields (the fixed names users and scripts rely on are marked *):

* ``seed`` *, ``batch_size`` * (global, all processes), ``num_train_steps`` *,
  ``log_every_steps`` *, ``checkpoint_every_steps`` *, ``eval.checkpoint`` *
  (``'latest'``, ``'best'`` or a step number).
* ``model``: ``name`` (``jaxact.models.names()``) and ``overrides`` (module
  fields, e.g. ``backbone``, ``fusion``, ``freeze_backbones``).
* ``data``: ``jaxact.data.config.get_data_config()``; ``build_dataset`` builds
  it on first use (the demo).
* ``optimizer`` (see ``jaxact.train.optim``), ``loss`` (weights of the
  cross-entropies of the head, the network's own fused classifier, and of
  each stream's classifier), ``compute_dtype`` (``float32`` / ``bfloat16``),
  ``grad_accum_steps``.
* ``checkpoint``: ``max_to_keep``, ``best_metric`` (a logged metric: a
  training one such as ``top1_head``, or ``val_top1_fused`` with
  ``eval.validate_at_checkpoints``; '' = none), ``best_mode``, ``async_save``.
* ``init_from``: ``path`` ('' = none), ``kind``, ``step``, ``layout``,
  ``streams`` (see ``jaxact.train.pretrained``).
* ``eval``: ``checkpoint``, ``batch_size`` (global clips, each with V views),
  ``fusion_weights`` (``head`` / ``spatial`` / ``temporal``; the ``fused``
  scores = the weighted sum of these view-averaged softmax scores: late
  fusion), ``run_after_training``, ``explain_examples`` (after evaluation,
  process 0 prints a short results table, the confusion matrix's path and
  Grad-CAM pictures of this many test clips in ``WORKDIR/cam``; 0 = none,
  the default; the demo sets 1; two-stream networks).
* ``progress_bar`` (process 0, stderr), ``tensorboard`` (event files in
  ``WORKDIR/tensorboard``; tensorboardX imports torch when it is installed,
  which costs a few seconds at start).
"""

import dataclasses
import os
from typing import Any

import ml_collections

from jaxact import models
from jaxact.data import datasets, sampling, transforms
from jaxact.data.config import DATASET_NAMES, get_data_config
from jaxact.models.convert import LAYOUTS
from jaxact.runtime.checkpoint import BEST_MODES
from jaxact.runtime.metrics import FUSION_STREAMS
from jaxact.runtime.scoring import COMPUTE_DTYPES
from jaxact.train import optim, pretrained

# What `python -m jaxact.main --mode` runs.
MODES = ("train", "eval")


class ConfigError(ValueError):
  """The config cannot run; the message names the field and the fix."""


def get_base_config() -> ml_collections.ConfigDict:
  """Defaults of every field (unlocked; experiment files override)."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.model = ml_collections.ConfigDict(
    {"name": "two_stream_lstm_tiny", "overrides": ml_collections.ConfigDict()}
  )
  c.data = get_data_config()
  c.build_dataset = False

  c.batch_size = 8
  c.num_train_steps = 100
  c.log_every_steps = 10
  c.checkpoint_every_steps = 50
  c.compute_dtype = "float32"
  c.grad_accum_steps = 1
  c.progress_bar = True
  c.tensorboard = True  # also write TensorBoard event files (WORKDIR/tensorboard)

  c.optimizer = ml_collections.ConfigDict(
    {
      "name": "sgd",
      "learning_rate": 1e-3,
      "momentum": 0.9,
      "nesterov": False,
      "b1": 0.9,
      "b2": 0.999,
      "eps": 1e-8,
      "weight_decay": 0.0,
      "schedule": "constant",
      "decay_steps": (),
      "decay_factor": 0.1,
      "warmup_steps": 0,
      "grad_clip_norm": 0.0,
      "lr_multipliers": ml_collections.ConfigDict(),
      "frozen": (),
    }
  )
  c.loss = ml_collections.ConfigDict(
    {"head_weight": 1.0, "spatial_weight": 0.0, "temporal_weight": 0.0, "label_smoothing": 0.0}
  )
  c.checkpoint = ml_collections.ConfigDict(
    {"max_to_keep": 3, "best_metric": "top1_head", "best_mode": "max", "async_save": True}
  )
  c.init_from = ml_collections.ConfigDict(
    {
      "path": "",
      "kind": "auto",
      "step": "latest",
      "layout": "torchvision",
      "streams": ("spatial", "temporal"),
    }
  )
  c.eval = ml_collections.ConfigDict(
    {
      "checkpoint": "latest",
      "batch_size": 8,
      "run_after_training": True,
      # After evaluation: print a short table, the confusion matrix's path and
      # Grad-CAM pictures of this many test clips (WORKDIR/cam); 0 = none.
      "explain_examples": 0,
      # Score the evaluation split at every checkpoint during training and log
      # val_top1_{spatial,temporal,fused}, so checkpoint.best_metric can rank
      # checkpoints by held-out accuracy (e.g. 'val_top1_fused').
      "validate_at_checkpoints": False,
      # Late fusion: one weight per stream whose scores evaluation can weigh.
      "fusion_weights": ml_collections.ConfigDict(
        {stream: 1.0 if stream == "head" else 0.0 for stream in FUSION_STREAMS}
      ),
    }
  )
  return c


# Subtrees whose keys are free (module fields, parameter-group names).
_FREE = ("model.overrides", "optimizer.lr_multipliers")


def _flat_keys(cfg: Any, prefix: str = "") -> set[str]:
  keys = set()
  for k, v in cfg.items():
    path = f"{prefix}{k}"
    if path in _FREE:
      keys.add(path)
    elif isinstance(v, ml_collections.ConfigDict):
      keys |= _flat_keys(v, path + ".")
    else:
      keys.add(path)
  return keys


def _check(cond: bool, msg: str) -> None:
  if not cond:
    raise ConfigError(msg)


def _choice(config: Any, key: str, choices: Any) -> None:
  """``config.<key>`` (dotted) must be one of ``choices``."""
  value = config
  for part in key.split("."):
    value = value[part]
  known = ", ".join(repr(c) for c in choices)
  _check(value in choices, f"config.{key}={value!r} is not known; choose one of {known}")


def validate(
  config: Any, *, device_count: int, process_count: int = 1, mode: str = "train"
) -> None:
  """Check everything static in ``config``; raise :class:`ConfigError` on the first problem.

  Reads no dataset (see :func:`validate_dataset`), so it runs before anything
  is built or compiled, even with ``build_dataset=True``.

  Args:
    config: the experiment config.
    device_count: devices over all processes (``jax.device_count()``).
    process_count: number of processes.
    mode: one of :data:`MODES`.

  Raises:
    ConfigError: unknown or missing keys, impossible sizes, unknown names,
      missing files; the message names the field and the fix.
  """
  _check(mode in MODES, f"--mode={mode!r}; choose one of {', '.join(MODES)}")
  _check_keys(config)
  _check_sizes(config, device_count, process_count)
  _check_model(config)
  _check_data(config)
  _check_training(config)
  _check_checkpoints(config)
  _check_init_from(config, mode)
  _check_eval(config)


def _check_keys(config: Any) -> None:
  have, want = _flat_keys(config), _flat_keys(get_base_config())
  unknown, missing = sorted(have - want), sorted(want - have)
  _check(
    not unknown,
    f"Unknown config key(s) {unknown}. Known keys: see jaxact/config.py "
    "(a typo? keys are case-sensitive).",
  )
  _check(
    not missing,
    f"Config is missing key(s) {missing}; start experiment files from "
    "jaxact.config.get_base_config().",
  )


def _check_sizes(config: Any, device_count: int, process_count: int) -> None:
  for key in (
    "num_train_steps",
    "log_every_steps",
    "checkpoint_every_steps",
    "batch_size",
    "grad_accum_steps",
  ):
    _check(int(config[key]) > 0, f"config.{key}={config[key]} must be a positive integer")
  _check(
    config.eval.batch_size > 0,
    f"config.eval.batch_size={config.eval.batch_size} must be a positive integer",
  )
  _check(
    config.eval.explain_examples >= 0,
    f"config.eval.explain_examples={config.eval.explain_examples} must be >= 0",
  )
  per_step = config.batch_size // config.grad_accum_steps
  _check(
    config.batch_size % config.grad_accum_steps == 0,
    f"config.batch_size={config.batch_size} is not divisible by "
    f"config.grad_accum_steps={config.grad_accum_steps}",
  )
  for name, size in (("batch_size", per_step), ("eval.batch_size", config.eval.batch_size)):
    _check(
      size % device_count == 0,
      f"config.{name} (per micro-batch: {size}) is not divisible by the {device_count} "
      f"devices; use a multiple of {device_count}, e.g. "
      f"--config.{name}={max(device_count, size // device_count * device_count)}",
    )
    _check(
      size % process_count == 0,
      f"config.{name} (per micro-batch: {size}) is not divisible by the {process_count} "
      f"processes; use a multiple of {process_count}",
    )


def _check_model(config: Any) -> None:
  known = models.names()
  _check(
    config.model.name in known,
    f"config.model.name={config.model.name!r} is not a registered model; known: {', '.join(known)}",
  )
  # Building the (unbound) module checks the override names; nothing is initialised.
  try:
    models.create(config.model.name, num_classes=2, **config.model.overrides)
  except TypeError as e:
    module = models.create(config.model.name, num_classes=2)
    fields = sorted(f.name for f in dataclasses.fields(module) if f.init and f.name != "parent")
    raise ConfigError(
      f"config.model.overrides={dict(config.model.overrides)} do not fit "
      f"{config.model.name!r} ({e}); its fields are {', '.join(fields)}"
    ) from None
  _choice(config, "compute_dtype", tuple(COMPUTE_DTYPES))


def _check_data(config: Any) -> None:
  data = config.data
  _choice(config, "data.name", tuple(DATASET_NAMES))
  _choice(config, "data.sampling", sampling.SCHEMES)
  _choice(config, "data.augment", tuple(transforms.TRAIN_AUGMENTS))
  _choice(config, "data.eval_crops", transforms.EVAL_CROPS)
  for key in (
    "num_steps",
    "flow_length",
    "resize_short",
    "image_size",
    "crop_base",
    "eval_clips",
    "canvas_pixels",
  ):
    _check(data[key] >= 1, f"config.data.{key}={data[key]} must be a positive integer")
  for key in ("num_workers", "prefetch", "read_threads"):
    _check(data[key] >= 0, f"config.data.{key}={data[key]} must be >= 0")
  for key in ("erasing_prob", "flip_prob"):
    _check(0 <= data[key] <= 1, f"config.data.{key}={data[key]} must be a probability in [0, 1]")
  for key in ("data_dir", "manual_dir"):
    value = data[key]
    _check(
      not value
      or os.path.isdir(os.path.expanduser(value))
      or (key == "data_dir" and config.build_dataset),
      f"config.data.{key}={value!r} is not a directory",
    )


def _check_training(config: Any) -> None:
  opt = config.optimizer
  _choice(config, "optimizer.name", tuple(optim.OPTIMIZERS))
  _choice(config, "optimizer.schedule", tuple(optim.SCHEDULES))
  _check(opt.learning_rate > 0, f"config.optimizer.learning_rate={opt.learning_rate} must be > 0")
  for key in ("weight_decay", "warmup_steps", "grad_clip_norm"):
    _check(opt[key] >= 0, f"config.optimizer.{key}={opt[key]} must be >= 0")
  # The loss terms are the schema's `<name>_weight` fields (jaxact.train.step reads them).
  weights = {k: v for k, v in config.loss.items() if k.endswith("_weight")}
  for key, w in weights.items():
    _check(w >= 0, f"config.loss.{key}={w} must be >= 0")
  _check(
    any(weights.values()),
    f"config.loss: every loss weight is 0 ({', '.join(sorted(weights))}), nothing would be "
    "trained; set e.g. --config.loss.head_weight=1",
  )
  smoothing = config.loss.label_smoothing
  _check(0 <= smoothing < 1, f"config.loss.label_smoothing={smoothing} must be in [0, 1)")


def _check_checkpoints(config: Any) -> None:
  ckpt = config.checkpoint
  _check(ckpt.max_to_keep > 0, f"config.checkpoint.max_to_keep={ckpt.max_to_keep} must be > 0")
  _choice(config, "checkpoint.best_mode", BEST_MODES)
  _check(
    not str(ckpt.best_metric).startswith("val_") or config.eval.validate_at_checkpoints,
    f"config.checkpoint.best_metric={ckpt.best_metric!r} is measured only "
    "with config.eval.validate_at_checkpoints=True",
  )


def _check_init_from(config: Any, mode: str) -> None:
  init = config.init_from
  _choice(config, "init_from.kind", pretrained.KINDS)
  _choice(config, "init_from.layout", LAYOUTS)
  step = str(init.step)
  _check(
    step == "latest" or step.isdigit(),
    f"config.init_from.step={step!r}; use 'latest' or a step number",
  )
  if mode == "train" and init.path:
    path = os.path.expanduser(init.path)
    _check(
      os.path.exists(path),
      f"config.init_from.path={init.path!r} does not exist (a run's workdir, or a "
      "PyTorch / safetensors weights file; '' starts from scratch)",
    )


def _check_eval(config: Any) -> None:
  weights = dict(config.eval.fusion_weights)  # keys: FUSION_STREAMS (checked with the schema)
  _check(
    all(w >= 0 for w in weights.values()),
    f"config.eval.fusion_weights={weights}: weights must be >= 0",
  )
  _check(
    any(weights.values()),
    f"config.eval.fusion_weights={weights}: every weight is 0, so nothing would be scored; "
    "set e.g. --config.eval.fusion_weights.head=1",
  )
  which = str(config.eval.checkpoint)
  _check(
    which in ("latest", "best") or which.isdigit(),
    f"config.eval.checkpoint={which!r}; use 'latest', 'best' or a step number",
  )
  _check(
    which != "best" or bool(config.checkpoint.best_metric),
    "config.eval.checkpoint='best' needs config.checkpoint.best_metric",
  )


def validate_dataset(config: Any, *, mode: str = "train") -> None:
  """Check that ``config.data``'s dataset is built and has the splits ``mode`` reads.

  Call it after :func:`validate` and, with ``config.build_dataset``, after the
  build (``jaxact.train.inputs.ensure_dataset``).

  Args:
    config: the experiment config.
    mode: ``'train'`` needs ``data.train_split`` and ``data.eval_split``;
      ``'eval'`` needs ``data.eval_split``.

  Raises:
    jaxact.data.datasets.DatasetNotBuiltError: the dataset is not built; the
      message gives the build command.
    ConfigError: a named split is not in the dataset.
  """
  info = datasets.load_info(
    config.data.name, config.data.data_dir or None, config=config.data.builder_config
  )
  for key in ("train_split", "eval_split") if mode == "train" else ("eval_split",):
    _check(
      config.data[key] in info.split_sizes,
      f"config.data.{key}={config.data[key]!r} is not a split of "
      f"{info.name}/{info.config}; it has {', '.join(sorted(info.split_sizes))}",
    )
