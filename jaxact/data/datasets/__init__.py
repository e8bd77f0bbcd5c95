"""jaxact's TFDS video builders and what the rest of jaxact reads from them.

Builders (registered with TFDS under prefixed names, so they cannot clash with
TFDS's own ``ucf101``): ``jaxact_ucf101``, ``jaxact_hmdb51``,
``jaxact_kinetics400``, ``jaxact_video_folder``, ``jaxact_synthetic_motion``.
Importing this package does not import (register) them; :func:`builder_class`
does, lazily.

* :func:`load_info` reads class names, split sizes, skipped files and mirror
  pairs from a built dataset's metadata without rebuilding (and without the
  builder code);
* :func:`data_source` opens a split for random access; for UCF101 / HMDB51's
  ``all`` config it also takes the official split names ``train1`` ...
  ``test3``, unions of the stored partitions (``official_splits.py``);
* :class:`DatasetNotBuiltError` says which command builds a missing dataset.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import shlex

import numpy as np
import tensorflow_datasets as tfds

from jaxact.data.config import DATASET_NAMES
from jaxact.data.datasets import official_splits

_MODULES = {
  "ucf101": ("ucf101", "JaxactUcf101"),
  "hmdb51": ("hmdb51", "JaxactHmdb51"),
  "kinetics400": ("kinetics400", "JaxactKinetics400"),
  "video_folder": ("video_folder", "JaxactVideoFolder"),
  "synthetic_motion": ("synthetic_motion", "JaxactSyntheticMotion"),
}


class DatasetNotBuiltError(FileNotFoundError):
  """The dataset has not been built in ``data_dir``; the message says how."""

  def __init__(self, name: str, data_dir: str, config: str = ""):
    self.name, self.data_dir, self.config = name, data_dir, config
    cmd = f"python -m jaxact.data.build {name}"
    if name != "synthetic_motion":
      cmd += " --manual_dir /path/to/download"
    if data_dir:
      cmd += f" --data_dir {shlex.quote(data_dir)}"
    if config:
      cmd += f" --config {config}"
    where = data_dir or "the TFDS default data_dir"
    super().__init__(
      f"dataset {name!r}{'/' + config if config else ''} is not built in "
      f"{where}; build it with: {cmd}"
    )


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What a built dataset's metadata says.

  Attributes:
    name: short name (e.g. ``'ucf101'``).
    config: builder config name.
    path: folder of the prepared dataset.
    class_names: names in label order.
    split_sizes: ``{split: num_examples}``: the stored TFDS splits and, for
      a config with official splits (UCF101 / HMDB51 ``all``), ``train1``
      ... ``test3`` too.
    skipped: ``[{'split', 'path', 'reason'}]`` videos left out of the build.
    mirror_pairs: ``((a, b), ...)`` class names that a horizontal flip turns
      into each other (the builder's ``mirror_pairs()``, stored in
      ``info.metadata['mirror_pairs']``); empty for a dataset that declares
      none or was built before the declaration existed.
  """

  name: str
  config: str
  path: str
  class_names: tuple[str, ...]
  split_sizes: dict
  skipped: tuple
  mirror_pairs: tuple[tuple[str, str], ...] = ()

  def __post_init__(self):
    mirror_permutation(self.class_names, self.mirror_pairs)  # raises if inconsistent

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  @property
  def mirror(self) -> np.ndarray | None:
    """The label permutation of a horizontal flip (:func:`mirror_permutation`),
    or None when the dataset declares no mirror pairs (flips keep labels)."""
    if not self.mirror_pairs:
      return None
    return mirror_permutation(self.class_names, self.mirror_pairs)


def mirror_permutation(class_names, pairs) -> np.ndarray:
  """int32 ``(K,)``: ``perm[k]`` is the label of class k seen in a mirror.

  Args:
    class_names: the K names in label order.
    pairs: ``(a, b)`` name pairs; a class in no pair maps to itself.

  Raises:
    ValueError: an unknown name, a class paired with itself or in two pairs.
  """
  index = {name: i for i, name in enumerate(class_names)}
  perm = np.arange(len(index), dtype=np.int32)
  seen = set()
  for pair in pairs:
    a, b = pair
    unknown = [n for n in (a, b) if n not in index]
    if unknown:
      raise ValueError(f"mirror pair {tuple(pair)}: unknown class(es) {unknown}")
    if a == b or a in seen or b in seen:
      raise ValueError(f"mirror pair {tuple(pair)}: a class is in at most one pair, with another")
    seen.update((a, b))
    perm[index[a]], perm[index[b]] = index[b], index[a]
  return perm


def short_name(name: str) -> str:
  """Accepts ``'ucf101'`` or ``'jaxact_ucf101'``; returns the short name."""
  short = name[len("jaxact_") :] if name.startswith("jaxact_") else name
  if short not in DATASET_NAMES:
    raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASET_NAMES))}")
  return short


def builder_class(name: str):
  """The TFDS builder class of a short or registered name (imports it)."""
  module, cls = _MODULES[short_name(name)]
  return getattr(importlib.import_module(f"jaxact.data.datasets.{module}"), cls)


def default_config_name(name: str) -> str:
  return builder_class(name).BUILDER_CONFIGS[0].name


def _data_dir(data_dir: str | os.PathLike | None) -> str:
  if data_dir:
    return os.path.expanduser(os.fspath(data_dir))
  return os.fspath(tfds.core.constants.DATA_DIR)


def prepared_dir(name: str, data_dir: str | os.PathLike | None, config: str = "") -> str | None:
  """Folder of the newest prepared version, or None if not built."""
  root = os.path.join(
    _data_dir(data_dir), DATASET_NAMES[short_name(name)], config or default_config_name(name)
  )
  if not os.path.isdir(root):
    return None
  versions = [
    v for v in os.listdir(root) if os.path.isfile(os.path.join(root, v, "dataset_info.json"))
  ]
  if not versions:
    return None
  versions.sort(key=lambda v: tuple(int(x) for x in v.split(".")))
  return os.path.join(root, versions[-1])


def _open_built(name: str, data_dir, config: str):
  """``(short name, config, path, builder)`` of a built dataset.

  Raises:
    DatasetNotBuiltError: with the build command, if it is not built.
  """
  short = short_name(name)
  config = config or default_config_name(short)
  path = prepared_dir(short, data_dir, config)
  if path is None:
    raise DatasetNotBuiltError(short, os.fspath(data_dir or ""), config)
  return short, config, path, tfds.builder_from_directory(path)


def _official_splits(builder) -> dict[str, str]:
  """``{'train1': 'p_tet+p_tte+p_ttt', ...}``; empty without official splits."""
  return dict((builder.info.metadata or {}).get("official_splits", {}))


def load_info(
  name: str, data_dir: str | os.PathLike | None = None, config: str = ""
) -> DatasetInfo:
  """Class names, split sizes, skipped files and mirror pairs of a built dataset.

  Args:
    name: short (``'ucf101'``) or registered (``'jaxact_ucf101'``) name.
    data_dir: TFDS data dir ('' / None: TFDS default).
    config: builder config ('' : the builder's default).

  Raises:
    DatasetNotBuiltError: with the build command, if it is not built.
  """
  short, config, path, builder = _open_built(name, data_dir, config)
  info = builder.info
  _warn_if_built_before_mirror_pairs(short, config, path, info.metadata or {})
  sizes = {k: v.num_examples for k, v in info.splits.items()}
  sizes.update(official_splits.official_split_sizes(_official_splits(builder), sizes))
  return DatasetInfo(
    name=short,
    config=config,
    path=path,
    class_names=tuple(info.features["label"].names),
    split_sizes=sizes,
    skipped=tuple(dict(s) for s in (info.metadata or {}).get("skipped", [])),
    mirror_pairs=tuple((str(a), str(b)) for a, b in (info.metadata or {}).get("mirror_pairs", [])),
  )


_warned_stale: set[str] = set()


def _warn_if_built_before_mirror_pairs(short: str, config: str, path: str, metadata) -> None:
  """One warning per dataset whose builder now declares mirror pairs but whose
  build predates their storage (its flips keep labels until rebuilt)."""
  if "mirror_pairs" in metadata or not builder_class(short).MIRROR_PAIRS or path in _warned_stale:
    return
  _warned_stale.add(path)
  logging.getLogger(__name__).warning(
    "%s/%s at %s was built before jaxact stored mirror pairs: horizontal flips keep their "
    "labels (e.g. a flipped 'right' clip stays 'right'). Delete that folder and build it "
    "again to map them.",
    short,
    config,
    path,
  )


def data_source(name: str, split: str, data_dir=None, config: str = ""):
  """Random-access source (``ArrayRecordDataSource``) of a built split.

  Args:
    name: short or registered dataset name.
    split: a stored TFDS split (``'train'``, ``'p_ett'``) or, for a config
      with official splits, ``'train1'`` ... ``'test3'`` (the union of its
      partitions).
    data_dir: TFDS data dir ('' / None: TFDS default).
    config: builder config ('' : the builder's default).

  Raises:
    DatasetNotBuiltError: with the build command, if it is not built.
    KeyError: an unknown split (the message lists the known ones).
    ValueError: a dataset built in another file format than ArrayRecord.
  """
  short, config, path, builder = _open_built(name, data_dir, config)
  file_format = getattr(builder.info.file_format, "value", builder.info.file_format)
  if file_format not in (None, "array_record"):
    raise ValueError(
      f"{path} was built as {file_format}, which has no random access; "
      f"jaxact reads ArrayRecord: rebuild it without --file_format (the "
      f"builders' default) or with --file_format array_record"
    )
  official = _official_splits(builder)
  if split in official:
    return builder.as_data_source(split=official[split])
  if split not in builder.info.splits:
    known = sorted(set(builder.info.splits) | set(official))
    raise KeyError(f"dataset {short!r}/{config} has no split {split!r}; it has {', '.join(known)}")
  return builder.as_data_source(split=split)
