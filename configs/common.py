"""What the experiment configs share: their argument, the smoke shrink, the official splits."""

from typing import Any

import ml_collections

from jaxact import keyvalue
from jaxact.config import ConfigError


def parse_arg(arg: str | None, **defaults: Any) -> dict[str, Any]:
  """Parse the ``ARG`` of ``--config NAME.py:ARG`` (``smoke``, ``split=2,stage=1``).

  A bare word ``w`` sets ``w=True``; values take the type of their default.

  Raises:
    jaxact.keyvalue.KeyValueError: an unknown name (the known ones are listed)
      or a value of the wrong type.
  """
  return keyvalue.parse(arg, defaults)


def official_split(c: ml_collections.ConfigDict, split: int) -> None:
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


def smoke(c: ml_collections.ConfigDict) -> None:
  """Shrink a paper config to seconds (tiny model, small frames, 2 steps), for tests."""
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
