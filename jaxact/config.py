"""Experiment config schema, defaults and start-up validation.

Every experiment file in ``configs/`` starts from :func:`get_base_config` and
overrides fields; :func:`validate` runs before anything heavy so that a typo,
an impossible batch size or a missing file fails in a second with one clear
message (:class:`ConfigError`), not after an hour with a traceback.

Top-level fields (the fixed names users and scripts rely on are marked *):

* ``seed`` *, ``batch_size`` * (global, all processes), ``num_train_steps`` *,
  ``log_every_steps`` *, ``checkpoint_every_steps`` *, ``eval.checkpoint`` *
  (``'latest'``, ``'best'`` or a step number).
* ``model``: ``name`` (``jaxact.models.names()``) and ``overrides`` (module
  fields, e.g. ``backbone``, ``fusion``, ``freeze_backbones``).
* ``data``: ``jaxact.data.config.get_data_config()``; ``build_dataset`` builds
  it on first use (the demo).
* ``optimizer`` (see ``jaxact.train.optim``), ``loss`` (weights of the fused
  and per-stream cross-entropies), ``compute_dtype`` (``float32`` /
  ``bfloat16``), ``grad_accum_steps``.
* ``checkpoint``: ``max_to_keep``, ``best_metric`` (a logged metric: a
  training one such as ``top1_fused``, or ``val_top1_fused`` with
  ``eval.validate_at_checkpoints``; '' = none), ``best_mode``, ``async_save``.
* ``init_from``: ``path`` ('' = none), ``kind``, ``step``, ``layout``,
  ``streams`` (see ``jaxact.train.pretrained``).
* ``eval``: ``checkpoint``, ``batch_size`` (global clips, each with V views),
  ``fusion_weights`` (``head`` / ``spatial`` / ``temporal``; ``fused`` scores =
  the weighted sum of the streams' view-averaged softmax scores, ``head`` being
  the network's own fused classifier), ``run_after_training``.
* ``progress_bar`` (process 0, stderr), ``tensorboard`` (event files in
  ``WORKDIR/tensorboard``; tensorboardX imports torch when it is installed,
  which costs a few seconds at start).
"""

import os
from typing import Any

import ml_collections

FUSION_STREAMS = ("head", "spatial", "temporal")


class ConfigError(ValueError):
  """The config cannot run; the message names the field and the fix."""


def get_base_config() -> ml_collections.ConfigDict:
  """Defaults of every field (unlocked; experiment files override)."""
  from jaxact.data.config import get_data_config

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
      # Score the evaluation split at every checkpoint during training and log
      # val_top1_{spatial,temporal,fused}, so checkpoint.best_metric can rank
      # checkpoints by held-out accuracy (e.g. 'val_top1_fused').
      "validate_at_checkpoints": False,
      "fusion_weights": ml_collections.ConfigDict({"head": 1.0, "spatial": 0.0, "temporal": 0.0}),
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


def validate(
  config: Any,
  *,
  device_count: int,
  process_count: int = 1,
  mode: str = "train",
  check_dataset: bool = False,
) -> None:
  """Check ``config`` before running; raise :class:`ConfigError` on the first problem.

  Args:
    config: the experiment config.
    device_count: devices over all processes (``jax.device_count()``).
    process_count: number of processes.
    mode: ``'train'`` or ``'eval'``.
    check_dataset: also check that the dataset is built (or will be) and has
      ``data.eval_split`` (and, to train, ``data.train_split``).

  Raises:
    ConfigError: unknown or missing keys, impossible sizes, unknown names,
      missing files. ``jaxact.data.datasets.DatasetNotBuiltError`` when the
      dataset is not built (its message gives the build command).
  """
  base = get_base_config()
  have, want = _flat_keys(config), _flat_keys(base)
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
  _check(mode in ("train", "eval"), f"--mode={mode!r}; choose 'train' or 'eval'")

  for key in (
    "num_train_steps",
    "log_every_steps",
    "checkpoint_every_steps",
    "batch_size",
    "grad_accum_steps",
  ):
    _check(int(config[key]) > 0, f"config.{key}={config[key]} must be a positive integer")
  _check(config.eval.batch_size > 0, f"config.eval.batch_size={config.eval.batch_size} must be > 0")
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
      f"config.{name}={size} is not divisible by the {process_count} processes",
    )

  from jaxact import models

  _check(
    config.model.name in models.names(),
    f"config.model.name={config.model.name!r} is not a registered model; known: "
    f"{', '.join(models.names())}",
  )
  _check(
    config.compute_dtype in ("float32", "bfloat16"),
    f"config.compute_dtype={config.compute_dtype!r}; choose 'float32' or 'bfloat16'",
  )
  opt = config.optimizer
  _check(
    opt.name in ("sgd", "adam", "adamw"),
    f"config.optimizer.name={opt.name!r}; choose 'sgd', 'adam' or 'adamw'",
  )
  _check(
    opt.schedule in ("constant", "step", "cosine"),
    f"config.optimizer.schedule={opt.schedule!r}; choose 'constant', 'step' or 'cosine'",
  )
  _check(opt.learning_rate > 0, f"config.optimizer.learning_rate={opt.learning_rate} must be > 0")
  _check(
    any(config.loss[f"{k}_weight"] for k in ("head", "spatial", "temporal")),
    "config.loss: every loss weight is 0, nothing would be trained",
  )
  weights = dict(config.eval.fusion_weights)
  _check(
    set(weights) <= set(FUSION_STREAMS) and any(weights.values()),
    f"config.eval.fusion_weights={weights}: keys must be among {FUSION_STREAMS} "
    "with at least one non-zero weight",
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
  _check(
    not str(config.checkpoint.best_metric).startswith("val_")
    or config.eval.validate_at_checkpoints,
    f"config.checkpoint.best_metric={config.checkpoint.best_metric!r} is measured only "
    "with config.eval.validate_at_checkpoints=True",
  )
  _check(
    config.checkpoint.best_mode in ("max", "min"),
    f"config.checkpoint.best_mode={config.checkpoint.best_mode!r}; choose 'max' or 'min'",
  )
  _check(
    config.checkpoint.max_to_keep > 0,
    f"config.checkpoint.max_to_keep={config.checkpoint.max_to_keep} must be > 0",
  )

  if mode == "train" and config.init_from.path:
    path = os.path.expanduser(config.init_from.path)
    _check(os.path.exists(path), f"config.init_from.path={config.init_from.path!r} does not exist")
    _check(
      config.init_from.kind in ("auto", "orbax", "torch"),
      f"config.init_from.kind={config.init_from.kind!r}; choose 'auto', 'orbax' or 'torch'",
    )
  for key in ("data_dir", "manual_dir"):
    value = config.data[key]
    _check(
      not value
      or os.path.isdir(os.path.expanduser(value))
      or (key == "data_dir" and config.build_dataset),
      f"config.data.{key}={value!r} is not a directory",
    )
  if check_dataset and not config.build_dataset:
    from jaxact.data import datasets

    info = datasets.load_info(
      config.data.name, config.data.data_dir or None, config=config.data.builder_config
    )
    for key in ("train_split", "eval_split") if mode == "train" else ("eval_split",):
      _check(
        config.data[key] in info.split_sizes,
        f"config.data.{key}={config.data[key]!r} is not a split of "
        f"{info.name}/{info.config}; it has {', '.join(sorted(info.split_sizes))}",
      )


def parse_config_arg(arg: str | None, **defaults: Any) -> dict[str, Any]:
  """Parse the ``:arg`` of ``--config path.py:arg`` (``smoke``, ``split=2,stage=1``).

  A bare word ``w`` sets ``w=True``; values are converted to the type of the
  default. Unknown names raise :class:`ConfigError` listing the known ones.
  """
  out = dict(defaults)
  for item in filter(None, (arg or "").split(",")):
    key, sep, value = item.partition("=")
    key = key.strip()
    if key not in defaults:
      raise ConfigError(f"Unknown config argument {key!r}; known: {sorted(defaults)}")
    kind = type(defaults[key])
    if not sep:
      out[key] = True
    elif kind is bool:
      out[key] = value.strip().lower() in ("1", "true", "yes")
    else:
      try:
        out[key] = kind(value.strip())
      except ValueError:
        raise ConfigError(f"Config argument {key}={value!r} is not a {kind.__name__}") from None
  return out


# Paper presets shared by the configs/ files (which document and vary them).


def official_split(c, split: int) -> None:
  """Train and evaluate on official split ``split`` of UCF101 / HMDB51.

  The builder config ``all`` stores every video once for the three splits;
  ``train{split}`` / ``test{split}`` are unions of its stored partitions
  (``jaxact.data.datasets.official_splits``).
  """
  if split not in (1, 2, 3):
    raise ConfigError(f"split={split}: the official splits are 1, 2 and 3")
  c.data.builder_config = "all"
  c.data.train_split = f"train{split}"
  c.data.eval_split = f"test{split}"


def paper_a_config(dataset: str, split: int = 0, smoke: bool = False):
  """Paper A's settings for ``dataset`` (``kinetics400``; ``ucf101`` / ``hmdb51``
  with ``split`` 1, 2 or 3: builder config ``all``, ``train{split}`` /
  ``test{split}``)."""
  c = get_base_config()
  if dataset != "kinetics400":
    official_split(c, split)
  c.model.name = "two_stream_lstm"
  c.model.overrides.backbone = "cotnet101"
  c.model.overrides.fusion = "concat"
  c.model.overrides.fc1_dropout = 0.5
  c.model.overrides.fc2_dropout = 0.5

  c.data.name = dataset
  if dataset == "kinetics400":
    # The CVDF test annotations carry no labels: evaluate on the validation set.
    c.data.eval_split = "validation"
  c.data.sampling = "segments"
  c.data.num_steps = 3
  c.data.flow_length = 10
  c.data.resize_short = 256
  c.data.image_size = 224
  c.data.augment = "paper_a"
  c.data.eval_clips = 1
  c.data.eval_crops = 3
  c.data.num_workers = 8

  c.batch_size = 64
  c.num_train_steps = 500
  c.log_every_steps = 10
  c.checkpoint_every_steps = 100
  c.compute_dtype = "bfloat16"
  c.optimizer.name = "sgd"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.momentum = 0.9
  c.optimizer.schedule = "step"
  c.optimizer.decay_steps = (450,)
  c.optimizer.decay_factor = 0.1
  c.loss.head_weight = 1.0
  c.checkpoint.best_metric = "top1_head"
  c.init_from.kind = "torch"
  c.init_from.layout = "cotnet"
  c.eval.batch_size = 32
  c.eval.fusion_weights.head = 1.0
  if smoke:
    smoke_overrides(c)
  return c


def paper_b_config(dataset: str, split: int, stage: int, smoke: bool = False):
  """Paper B's settings for ``dataset`` split ``split`` and training ``stage``.

  Data: builder config ``all`` (every video stored once), ``train{split}`` /
  ``test{split}``.

  Stage 1 fine-tunes each ResNet-101 stream alone (loss on each stream's own
  classifier; SGD 0.9, weight decay 1e-4, spatial lr 5e-6, temporal lr 1000×
  larger). Stage 2 starts from stage 1's run (``init_from.path``), freezes
  both backbones (weights and BatchNorm statistics) and trains the sum-fused
  conv5 → ConvLSTM head with Adam 5e-5 on 25 equally spaced frames.
  """
  if stage not in (1, 2):
    raise ConfigError(f"stage={stage}: paper B has stages 1 and 2")
  c = get_base_config()
  official_split(c, split)
  c.model.name = "two_stream_convlstm"
  c.model.overrides.backbone = "resnet101"
  c.model.overrides.fusion = "sum"
  c.model.overrides.fusion_layer = "conv5"
  c.model.overrides.convlstm_features = 300
  c.model.overrides.convlstm_layers = 1
  c.model.overrides.convlstm_kernel = 3

  c.data.name = dataset
  c.data.sampling = "uniform"
  c.data.flow_length = 10
  c.data.resize_short = 256
  c.data.image_size = 224
  c.data.augment = "paper_b"
  c.data.eval_clips = 1
  c.data.eval_crops = 1
  c.data.num_workers = 8
  c.compute_dtype = "bfloat16"
  c.log_every_steps = 20
  c.checkpoint_every_steps = 500
  c.optimizer.weight_decay = 1e-4

  if stage == 1:
    c.data.num_steps = 5
    c.batch_size = 32
    c.num_train_steps = 6000
    c.optimizer.name = "sgd"
    c.optimizer.momentum = 0.9
    c.optimizer.learning_rate = 5e-6
    c.optimizer.lr_multipliers.temporal = 1000.0  # 5e-3 ("5×10^3" in the paper: a typo)
    # "÷10 when the accuracy saturates": at fixed steps here (no plateau detection).
    c.optimizer.schedule = "step"
    c.optimizer.decay_steps = (3000, 5000)
    c.loss.head_weight = 0.0
    c.loss.spatial_weight = 1.0
    c.loss.temporal_weight = 1.0
    c.checkpoint.best_metric = "top1_temporal"
    c.init_from.kind = "torch"
    c.init_from.layout = "torchvision"
    c.eval.fusion_weights.head = 0.0
    c.eval.fusion_weights.spatial = 1.0
    c.eval.fusion_weights.temporal = 1.5
  else:
    c.data.num_steps = 25
    c.batch_size = 16
    c.num_train_steps = 12000
    c.model.overrides.freeze_backbones = True
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 5e-5
    c.optimizer.weight_decay = 0.0
    c.optimizer.frozen = ("spatial", "temporal")
    c.loss.head_weight = 1.0
    c.checkpoint.best_metric = "top1_head"
    c.init_from.kind = "orbax"
    c.eval.fusion_weights.head = 1.0
  c.eval.batch_size = 16
  if smoke:
    smoke_overrides(c)
    c.data.num_steps = 3
  return c


def smoke_overrides(c) -> None:
  """Shrink a paper config to seconds (tiny model, small frames, 2 steps)."""
  if not c.model.name.endswith("_tiny"):
    c.model.name += "_tiny"
  c.model.overrides = ml_collections.ConfigDict(
    {k: v for k, v in c.model.overrides.items() if k in ("fusion", "freeze_backbones")}
  )
  c.data.resize_short = 64
  c.data.image_size = 56
  c.data.num_workers = 0
  c.batch_size = 4
  c.num_train_steps = 2
  c.log_every_steps = 1
  c.checkpoint_every_steps = 1
  c.compute_dtype = "float32"
  c.eval.batch_size = 4
  c.progress_bar = False
  c.init_from.path = ""


def validate_dataset(config: Any, *, mode: str = "train") -> None:
  """The dataset is built and has the configured splits (interim; see the config branch)."""
  validate(config, device_count=1, mode=mode, check_dataset=True)
