"""Official train/test splits stored once: videos partitioned by their roles.

UCF101 and HMDB51 come with three official splits over the same videos. The
builders' ``all`` config stores (and computes the flow of) every video once:
its TFDS splits are *partitions* of the videos by their role in splits 1, 2,
3 — ``t`` train, ``e`` test (evaluation), ``u`` unused — named ``p_`` + the
three letters. A video unused in every split is not stored.

An official split is the union of the partitions with its role at its
position, written as a TFDS split-arithmetic string::

  UCF101 (every video is train or test in each split): p_ett, p_tet, p_tte,
  p_ttt;  train1 = "p_tet+p_tte+p_ttt", test1 = "p_ett", ...

The builder keeps ``info.metadata['official_splits']`` (name → string) and
``info.metadata['official_split_sizes']`` (name → stored videos);
``jaxact.data.datasets.data_source`` resolves ``'train1'`` ... ``'test3'``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence

PREFIX = "p_"
ROLES = ("train", "test")
_LETTERS = {"train": "t", "test": "e", None: "u"}
_ROLE_OF = {v: k for k, v in _LETTERS.items()}

# ``(video_id, path, label, roles)``: roles[i] is 'train', 'test' or None for
# official split i + 1.
Video = tuple[str, str, int, Sequence[str | None]]


def partition_name(roles: Sequence[str | None]) -> str | None:
  """Name of the partition of the videos with ``roles`` in splits 1, 2, ...

  Args:
    roles: per official split (in order), ``'train'``, ``'test'`` or None
      (unused, HMDB51's code 0).

  Returns:
    ``'p_'`` + one letter per split (t = train, e = test, u = unused), or
    None when the video is unused in every split (it is not stored).

  >>> partition_name(("test", "train", "train"))
  'p_ett'
  >>> partition_name((None, "train", "test"))
  'p_ute'
  >>> partition_name((None, None, None)) is None
  True
  """
  for r in roles:
    if r not in _LETTERS:
      raise ValueError(
        f"unknown role {r!r} in {tuple(roles)}; roles are 'train', 'test' or None (unused)"
      )
  if all(r is None for r in roles):
    return None
  return PREFIX + "".join(_LETTERS[r] for r in roles)


def partition_roles(name: str) -> tuple[str | None, ...]:
  """Inverse of :func:`partition_name`.

  >>> partition_roles("p_ute")
  (None, 'train', 'test')
  """
  letters = name[len(PREFIX) :] if name.startswith(PREFIX) else ""
  if not letters or any(c not in _ROLE_OF for c in letters):
    raise ValueError(
      f"{name!r} is not a partition name ('p_' + letters among t, e, u; e.g. 'p_ett')"
    )
  return tuple(_ROLE_OF[c] for c in letters)


def official_splits(partitions: Iterable[str]) -> dict[str, str]:
  """Official split name → TFDS split string (``'+'``-union of partitions).

  Args:
    partitions: names of the stored (non-empty) partitions, all with the
      same number of splits.

  Returns:
    ``{'train1': ..., 'test1': ..., 'train2': ...}`` in split order, each
    value the sorted partitions with that role joined by ``'+'``. A split
    and role that no partition has is left out.

  >>> official_splits(["p_ttt", "p_ett", "p_tte", "p_tet"])["train1"]
  'p_tet+p_tte+p_ttt'
  >>> official_splits(["p_ett", "p_tet", "p_tte", "p_ttt"])["test3"]
  'p_tte'
  """
  roles = {p: partition_roles(p) for p in sorted(set(partitions))}
  lengths = {len(r) for r in roles.values()}
  if len(lengths) > 1:
    raise ValueError(f"partitions of different split counts: {sorted(roles)}")
  out = {}
  for i in range(lengths.pop() if lengths else 0):
    for role in ROLES:
      members = [p for p, r in roles.items() if r[i] == role]
      if members:
        out[f"{role}{i + 1}"] = "+".join(members)
  return out


def official_split_sizes(
  splits: Mapping[str, str], partition_sizes: Mapping[str, int]
) -> dict[str, int]:
  """Examples in each official split: the sum over its partitions.

  >>> official_split_sizes({"train1": "p_tt+p_te", "test1": "p_et"},
  ...                      {"p_tt": 5, "p_te": 2, "p_et": 3})
  {'train1': 7, 'test1': 3}
  """
  return {
    name: sum(int(partition_sizes[p]) for p in spec.split("+")) for name, spec in splits.items()
  }


def group_by_partition(videos: Iterable[Video]) -> dict[str, list[tuple[str, str, int]]]:
  """``{partition: [(video_id, path, label)]}``, partitions sorted by name.

  Videos keep their input order within a partition; videos unused in every
  split are dropped, so no partition is empty.

  >>> group_by_partition([("a", "a.avi", 0, ("train", "test")),
  ...                     ("b", "b.avi", 1, (None, None)),
  ...                     ("c", "c.avi", 1, ("train", "test"))])
  {'p_te': [('a', 'a.avi', 0), ('c', 'c.avi', 1)]}
  """
  groups: dict[str, list] = {}
  for video_id, path, label, roles in videos:
    name = partition_name(roles)
    if name is not None:
      groups.setdefault(name, []).append((video_id, path, label))
  return {name: groups[name] for name in sorted(groups)}


def partition_generators(builder, videos: Iterable[Video]) -> dict[str, Iterator]:
  """The ``all`` config's ``split_generators``: one TFDS split per partition.

  Missing files are recorded as skipped here (so a partition whose every
  file is missing is not created); the official split strings go to
  ``builder.info.metadata['official_splits']``.

  Args:
    builder: a ``jaxact.data.datasets.base.VideoBuilder``.
    videos: ``(video_id, path, label, roles)`` for every listed video.

  Returns:
    ``{partition: generator of (key, example)}``.
  """
  present = []
  for video_id, path, label, roles in videos:
    name = partition_name(roles)
    if name is None:
      continue
    if not os.path.exists(path):
      builder.skip(name, path, "missing")
      continue
    present.append((video_id, path, label, roles))
  groups = group_by_partition(present)
  if not groups:
    raise FileNotFoundError(
      f"{builder.name}: none of the listed videos was found under {builder.manual_path}"
    )
  builder.info.metadata["official_splits"] = official_splits(groups)
  return {
    name: _non_empty(builder, name, builder._generate_examples(items, name))  # pylint: disable=protected-access
    for name, items in groups.items()
  }


def _non_empty(builder, name: str, examples: Iterator) -> Iterator:
  """Passes ``examples`` through; a clear error if there was none (TFDS
  cannot store an empty split)."""
  count = 0
  for example in examples:
    count += 1
    yield example
  if not count:
    skipped = [
      f"{s['path']}: {s['reason']}"
      for s in builder.info.metadata.get("skipped", [])
      if s["split"] == name
    ]
    raise ValueError(
      f"partition {name}: every video was skipped, nothing to store ({'; '.join(skipped[:5])})"
    )


def record_sizes(info) -> None:
  """After the build: ``info.metadata['official_split_sizes']`` from the
  stored partitions (so skipped videos are not counted). No-op for configs
  without official splits."""
  splits = info.metadata.get("official_splits")
  if splits:
    sizes = {name: s.num_examples for name, s in info.splits.items()}
    info.metadata["official_split_sizes"] = official_split_sizes(splits, sizes)
