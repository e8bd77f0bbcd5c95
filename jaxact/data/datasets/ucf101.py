"""UCF101 from the official download (``jaxact_ucf101``; TFDS's own is ``ucf101``).

Layout expected in ``manual_dir`` (the two official archives, extracted)::

  UCF-101/<Class>/v_<Class>_gXX_cYY.avi      13,320 videos, 101 classes
  ucfTrainTestlist/classInd.txt               "<1-based id> <Class>"
  ucfTrainTestlist/trainlist0{1,2,3}.txt      "<Class>/v_..._cYY.avi <id>"
  ucfTrainTestlist/testlist0{1,2,3}.txt       "<Class>/v_..._cYY.avi"

Lines end in CRLF. Test lists carry no label: it comes from the folder. The
lists spell ``HandStandPushups`` where the folders/files say
``HandstandPushups`` (or the other way round depending on the copy): paths and
class names are matched case-insensitively.

Configs:

* ``all`` (the default): every video stored once, its TV-L1 flow computed
  once, for the three official splits. The TFDS splits are partitions of the
  videos by their role (t train, e test) in splits 1, 2, 3: ``p_ett``,
  ``p_tet``, ``p_tte``, ``p_ttt``. The official splits ``train1`` ...
  ``test3`` are unions of them (``train1`` = ``p_tet+p_tte+p_ttt``, ``test1`` =
  ``p_ett``; 9,537 / 3,783 for split 1), kept in
  ``info.metadata['official_splits']`` and read by name through
  ``jaxact.data.datasets.data_source`` (see ``official_splits.py``)::

    python -m jaxact.data.build ucf101 --manual_dir /data/UCF101

* ``split1``–``split3``: one official split each, as plain TFDS splits
  ``train`` and ``test`` (every config stores all its videos again).
"""

from __future__ import annotations

import os

import tensorflow_datasets as tfds

from jaxact.data.datasets import base, official_splits

LIST_DIR = "ucfTrainTestlist"
VIDEO_DIR = "UCF-101"


def read_lines(path: str) -> list[str]:
  """Non-empty lines of a text file, CR/LF and surrounding spaces stripped."""
  with open(path, encoding="utf-8-sig", newline="") as f:
    return [ln.strip() for ln in f.read().splitlines() if ln.strip()]


def parse_class_ind(path: str) -> list[str]:
  """``classInd.txt`` → class names in label order (ids are 1-based)."""
  pairs = []
  for ln in read_lines(path):
    idx, name = ln.split(maxsplit=1)
    pairs.append((int(idx), name.strip()))
  pairs.sort()
  ids = [i for i, _ in pairs]
  if ids != list(range(1, len(ids) + 1)):
    raise ValueError(f"{path}: class ids are not 1..{len(ids)}")
  return [n for _, n in pairs]


def parse_split_list(path: str, class_names: list[str]) -> list[tuple[str, int]]:
  """A train or test list → ``[(relative path, label)]``.

  Train lines hold ``"<path> <1-based id>"``; test lines only the path, the
  label being the folder's class (matched case-insensitively).
  """
  by_lower = {n.lower(): i for i, n in enumerate(class_names)}
  out = []
  for ln in read_lines(path):
    parts = ln.split()
    rel = parts[0].replace("\\", "/")
    folder = rel.split("/")[0].lower()
    if folder not in by_lower:
      raise ValueError(f"{path}: class folder {rel.split('/')[0]!r} is not in classInd.txt")
    label = by_lower[folder]
    if len(parts) > 1 and int(parts[1]) - 1 != label:
      raise ValueError(
        f"{path}: {rel} has label {parts[1]} but its folder is "
        f"class {label + 1} ({class_names[label]})"
      )
    out.append((rel, label))
  return out


class CaseInsensitiveIndex:
  """Finds files under a root whatever the case of the listed path."""

  def __init__(self, root: str):
    self.root = root
    self._index = None

  def resolve(self, rel: str) -> str:
    path = os.path.join(self.root, rel)
    if os.path.exists(path):
      return path
    if self._index is None:
      self._index = {}
      for d, _, files in os.walk(self.root):
        for f in files:
          full = os.path.join(d, f)
          key = os.path.relpath(full, self.root).replace(os.sep, "/").lower()
          self._index[key] = full
    return self._index.get(rel.lower(), path)


def find_dir(root: str, name: str) -> str:
  """``root/name`` or ``root/*/name`` (archives sometimes add a level)."""
  cand = [os.path.join(root, name)]
  cand += [
    os.path.join(root, d, name)
    for d in sorted(os.listdir(root))
    if os.path.isdir(os.path.join(root, d))
  ]
  for c in cand:
    if os.path.isdir(c):
      return c
  raise FileNotFoundError(
    f"{root}: no {name}/ folder (expected the official layout, see jaxact/data/datasets/ucf101.py)"
  )


def official_roles(
  lists: str, class_names: list[str]
) -> list[tuple[str, int, tuple[str | None, ...]]]:
  """Every video of the three official splits with its role in each.

  Args:
    lists: the ``ucfTrainTestlist`` folder.
    class_names: from ``classInd.txt``.

  Returns:
    ``[(relative path, label, roles)]`` in first-listed order; ``roles[i]``
    is ``'train'``, ``'test'`` or None (not in split i + 1's lists). Paths
    are matched case-insensitively across lists (the first spelling is kept).
  """
  videos: dict[str, tuple[str, int, list]] = {}
  for n in (1, 2, 3):
    for role, fname in (("train", f"trainlist0{n}.txt"), ("test", f"testlist0{n}.txt")):
      for rel, label in parse_split_list(os.path.join(lists, fname), class_names):
        _, _, roles = videos.setdefault(rel.lower(), (rel, label, [None] * 3))
        if roles[n - 1] is not None:
          raise ValueError(f"{rel} is listed twice in split {n} ({roles[n - 1]} and {role})")
        roles[n - 1] = role
  return [(rel, label, tuple(roles)) for rel, label, roles in videos.values()]


class JaxactUcf101(base.VideoBuilder):
  """UCF101, official splits 1–3 (stored once: ``all``), RGB JPEG + TV-L1 flow."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = base.official_split_configs()
  MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__

  def class_names(self) -> list[str]:
    return parse_class_ind(os.path.join(find_dir(self.manual_path, LIST_DIR), "classInd.txt"))

  def split_generators(self):
    root = self.manual_path
    lists = find_dir(root, LIST_DIR)
    names = parse_class_ind(os.path.join(lists, "classInd.txt"))
    videos = CaseInsensitiveIndex(find_dir(root, VIDEO_DIR))
    n = self.builder_config.split
    if n is None:  # all three official splits
      return official_splits.partition_generators(
        self,
        [
          (rel, videos.resolve(rel), label, roles)
          for rel, label, roles in official_roles(lists, names)
        ],
      )
    out = {}
    for split, fname in (("train", f"trainlist0{n}.txt"), ("test", f"testlist0{n}.txt")):
      items = [
        (rel, videos.resolve(rel), label)
        for rel, label in parse_split_list(os.path.join(lists, fname), names)
      ]
      out[split] = self._generate_examples(items, split)
    return out

  def after_generation(self) -> None:
    official_splits.record_sizes(self.info)
