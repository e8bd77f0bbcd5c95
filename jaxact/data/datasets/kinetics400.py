"""Kinetics-400 in the CVDF layout (``jaxact_kinetics400``).

Layout expected in ``manual_dir`` (or its ``k400/`` sub-folder)::

  {train,val}/<youtube_id>_<start:06d>_<end:06d>.mp4
  annotations/{train,val}.csv   header: label,youtube_id,time_start,time_end,split[,is_cc]

Classes: the sorted distinct labels of ``train.csv`` (400 lower-case phrases).
TFDS splits ``train`` and ``validation`` (the test CSV has no labels). Every
copy of Kinetics misses some videos and holds broken ones: those are skipped,
counted and listed in ``info.metadata['skipped']`` and the build summary.

Scaling out: with ``apache-beam`` installed (``pip install jaxact[beam]``),
passing a Beam runner builds each split as a Beam pipeline (decode + TV-L1 per
video in parallel workers)::

  tfds.download.DownloadConfig(manual_dir=..., beam_runner=DirectRunner())

In that mode missing files are found up front, and broken ones are counted by
the workers and collected from the pipeline into the metadata.
"""

from __future__ import annotations

import csv
import os

import tensorflow_datasets as tfds

from jaxact.data.datasets import base, kinetics_beam

SPLITS = {"train": "train", "validation": "val"}


def clip_name(youtube_id: str, start: float, end: float) -> str:
  """CVDF file name ``<id>_<start:06d>_<end:06d>.mp4``."""
  return f"{youtube_id}_{int(float(start)):06d}_{int(float(end)):06d}.mp4"


def read_annotations(path: str) -> list[dict]:
  """Rows of a CVDF annotation CSV (label may be absent for test)."""
  with open(path, newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  for r in rows:
    if "youtube_id" not in r or "time_start" not in r:
      raise ValueError(f"{path}: expected header label,youtube_id,time_start,time_end,split")
  return rows


def _root(manual: str) -> str:
  k400 = os.path.join(manual, "k400")
  return k400 if os.path.isdir(os.path.join(k400, "annotations")) else manual


class JaxactKinetics400(base.VideoBuilder):
  """Kinetics-400 (CVDF copy), RGB JPEG + TV-L1 flow; skips are recorded."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [base.VideoConfig(name="default")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = __doc__

  def _annotations(self, csv_name: str) -> list[dict]:
    path = os.path.join(_root(self.manual_path), "annotations", f"{csv_name}.csv")
    if not os.path.isfile(path):
      raise FileNotFoundError(f"missing annotation file {path}")
    return read_annotations(path)

  def class_names(self) -> list[str]:
    return sorted({r["label"].strip() for r in self._annotations("train")})

  def _items(self, split: str) -> list[tuple[str, str, int]]:
    root = _root(self.manual_path)
    csv_name = SPLITS[split]
    label_of = {n: i for i, n in enumerate(self.info.features["label"].names)}
    items = []
    for r in self._annotations(csv_name):
      label = r.get("label", "").strip()
      if label not in label_of:
        raise ValueError(
          f"annotations/{csv_name}.csv: unknown label {label!r} for {r['youtube_id']}"
        )
      name = clip_name(r["youtube_id"], r["time_start"], r["time_end"])
      items.append((f"{csv_name}/{name}", os.path.join(root, csv_name, name), label_of[label]))
    return items

  def split_generators(self):
    if self._use_beam:
      return {split: kinetics_beam.build_split(self, split, self._items(split)) for split in SPLITS}
    return {split: self._generate_examples(self._items(split), split) for split in SPLITS}

  def after_generation(self) -> None:
    if self._use_beam:
      kinetics_beam.collect_reports(self)
