"""Your own videos: one sub-folder per class (``jaxact_video_folder``).

Layout expected in ``manual_dir``::

  <class_a>/clip1.mp4            video files (``jaxact.data.video.VIDEO_EXTS``)
  <class_a>/clip2/000001.jpg ... or folders of frames (.jpg .jpeg .png)
  <class_b>/...
  train.txt, test.txt, val.txt   optional split lists

Class names are the sub-folder names, sorted. Without split lists every
video goes to the ``train`` split; with them, each list ``<split>.txt`` (one
path relative to ``manual_dir`` per line, e.g. ``class_a/clip1.mp4``; anything
after the path is ignored) makes a TFDS split of that name. Listed files that
are missing or cannot be decoded are skipped and reported.
"""

from __future__ import annotations

import os

import tensorflow_datasets as tfds

from jaxact.data import video
from jaxact.data.datasets import base
from jaxact.data.datasets.ucf101 import read_lines

SPLIT_FILES = ("train", "val", "validation", "test")


def list_videos(root: str, class_names: list[str]) -> list[tuple[str, int]]:
  """All ``(relative path, label)`` under the class folders, sorted."""
  out = []
  for label, cls in enumerate(class_names):
    d = os.path.join(root, cls)
    for f in sorted(os.listdir(d)):
      full = os.path.join(d, f)
      if f.lower().endswith(video.VIDEO_EXTS) or video.is_frame_folder(full):
        out.append((f"{cls}/{f}", label))
  return out


class JaxactVideoFolder(base.VideoBuilder):
  """A user's folder of videos, one sub-folder per class."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [base.VideoConfig(name="default")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__

  def class_names(self) -> list[str]:
    root = self.manual_path
    names = sorted(
      d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")
    )
    if not names:
      raise FileNotFoundError(f"{root}: no class sub-folders")
    return names

  def split_generators(self):
    root = self.manual_path
    names = self.info.features["label"].names
    label_of = {n: i for i, n in enumerate(names)}
    lists = {
      s: os.path.join(root, f"{s}.txt")
      for s in SPLIT_FILES
      if os.path.isfile(os.path.join(root, f"{s}.txt"))
    }
    if not lists:
      splits = {"train": list_videos(root, names)}
    else:
      splits = {}
      for split, path in lists.items():
        entries = []
        for ln in read_lines(path):
          rel = ln.split()[0].replace("\\", "/").strip("/")
          cls = rel.split("/")[0]
          if cls not in label_of:
            raise ValueError(f"{path}: {rel!r} is not under a class folder ({', '.join(names)})")
          entries.append((rel, label_of[cls]))
        splits[split] = entries
    return {
      split: self._generate_examples(
        [(rel, os.path.join(root, rel), label) for rel, label in entries], split
      )
      for split, entries in splits.items()
    }
