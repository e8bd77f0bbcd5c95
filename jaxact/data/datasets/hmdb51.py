"""HMDB51 from the official download (``jaxact_hmdb51``).

Layout expected in ``manual_dir`` (``hmdb51_org.rar`` with its per-class
archives extracted, and ``test_train_splits.rar``)::

  <class>/<video>.avi                                        6,766 videos
  testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt   "<video>.avi <0|1|2>"

(the class folders may also sit one level down, e.g. ``hmdb51_org/<class>``).
In the split files 1 = train, 2 = test, 0 = not used. Class names are the
split files' class parts, sorted.

Configs:

* ``all`` (the default): every video used by some split stored once (TV-L1
  computed once) for the three official splits. The TFDS splits are
  partitions of the videos by their role (t train, e test, u unused) in
  splits 1, 2, 3, e.g. ``p_teu`` (up to 26 of them); videos unused in all
  three are not stored. The official splits ``train1`` ... ``test3`` are
  unions of partitions (``info.metadata['official_splits']``), read by name
  through ``jaxact.data.datasets.data_source`` (see ``official_splits.py``)::

    python -m jaxact.data.build hmdb51 --manual_dir /data/hmdb51

* ``split1``–``split3``: one official split each, as plain TFDS splits
  ``train`` and ``test``.
"""

from __future__ import annotations

import os
import re

import tensorflow_datasets as tfds

from jaxact.data.datasets import base, official_splits
from jaxact.data.datasets.ucf101 import find_dir, read_lines

SPLIT_DIR = "testTrainMulti_7030_splits"
_SPLIT_FILE = re.compile(r"^(?P<cls>.+)_test_split(?P<n>[123])\.txt$")
_USAGE = {"1": "train", "2": "test", "0": None}


def split_files(split_dir: str) -> dict[str, dict[int, str]]:
  """``{class: {split number: path}}`` of the per-class split files."""
  out: dict[str, dict[int, str]] = {}
  for f in sorted(os.listdir(split_dir)):
    m = _SPLIT_FILE.match(f)
    if m:
      out.setdefault(m["cls"], {})[int(m["n"])] = os.path.join(split_dir, f)
  if not out:
    raise FileNotFoundError(f"{split_dir}: no <class>_test_split<n>.txt files")
  return out


def parse_split_file(path: str) -> list[tuple[str, str | None]]:
  """Lines ``"<video> <0|1|2>"`` → ``[(video, 'train' | 'test' | None)]``."""
  out = []
  for ln in read_lines(path):
    parts = ln.split()
    if len(parts) != 2 or parts[1] not in _USAGE:
      raise ValueError(f"{path}: malformed line {ln!r}")
    out.append((parts[0], _USAGE[parts[1]]))
  return out


def _video_root(root: str, some_class: str) -> str:
  for cand in [root] + [os.path.join(root, d) for d in sorted(os.listdir(root))]:
    if os.path.isdir(os.path.join(cand, some_class)):
      return cand
  raise FileNotFoundError(
    f"{root}: no class folder {some_class!r} (expected "
    f"<class>/<video>.avi, see "
    f"jaxact/data/datasets/hmdb51.py)"
  )


def official_roles(
  files: dict[str, dict[int, str]],
) -> list[tuple[str, int, tuple[str | None, ...]]]:
  """Every video of the split files with its role in splits 1, 2, 3.

  Args:
    files: :func:`split_files`.

  Returns:
    ``[('<class>/<video>', label, roles)]`` (classes sorted, videos in file
    order); ``roles[i]`` is ``'train'``, ``'test'`` or None (code 0, or not
    listed in split i + 1).
  """
  out = []
  for label, cls in enumerate(sorted(files)):
    roles: dict[str, list] = {}
    for n in (1, 2, 3):
      if n not in files[cls]:
        raise FileNotFoundError(f"{cls}: no split file for split {n}")
      for video, usage in parse_split_file(files[cls][n]):
        roles.setdefault(video, [None] * 3)[n - 1] = usage
    out += [(f"{cls}/{video}", label, tuple(r)) for video, r in roles.items()]
  return out


class JaxactHmdb51(base.VideoBuilder):
  """HMDB51, official splits 1–3 (stored once: ``all``), RGB JPEG + TV-L1 flow."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = base.official_split_configs()
  MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__

  def class_names(self) -> list[str]:
    return sorted(split_files(find_dir(self.manual_path, SPLIT_DIR)))

  def split_generators(self):
    root = self.manual_path
    files = split_files(find_dir(root, SPLIT_DIR))
    names = sorted(files)
    videos = _video_root(root, names[0])
    n = self.builder_config.split
    if n is None:  # all three official splits
      return official_splits.partition_generators(
        self,
        [
          (rel, os.path.join(videos, rel), label, roles)
          for rel, label, roles in official_roles(files)
        ],
      )
    items = {"train": [], "test": []}
    for label, cls in enumerate(names):
      if n not in files[cls]:
        raise FileNotFoundError(f"{cls}: no split file for split {n}")
      for video, usage in parse_split_file(files[cls][n]):
        if usage is not None:
          rel = f"{cls}/{video}"
          items[usage].append((rel, os.path.join(videos, rel), label))
    return {split: self._generate_examples(v, split) for split, v in items.items()}

  def after_generation(self) -> None:
    official_splits.record_sizes(self.info)
