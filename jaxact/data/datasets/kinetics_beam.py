"""Kinetics-400 split generation as an Apache Beam pipeline (optional extra).

TFDS runs a builder's Beam ``PTransform`` when a Beam runner is given in the
``DownloadConfig``. Each worker decodes a video, computes its TV-L1 flow and
encodes the example (``base.VideoEncoder``). Missing files are found by the
driver before the pipeline runs; videos that fail to decode are counted with a
Beam metric and reported by writing one small JSON record each to a shared
folder next to the dataset, which the driver collects into
``info.metadata['skipped']`` once the pipeline has finished.
"""

from __future__ import annotations

import json
import os
import uuid

from etils import epath


def _beam():
  try:
    import apache_beam as beam  # noqa: PLC0415 (optional heavy dependency)
  except ImportError as e:
    raise ImportError(
      "building with a Beam runner needs apache-beam: pip install 'jaxact[beam]'"
    ) from e
  return beam


class _EncodeOrReport:
  """Beam ``DoFn`` body: encodes a video or reports it as skipped."""

  def __init__(self, encoder, report_dir: str, split: str):
    self.encoder, self.report_dir, self.split = encoder, report_dir, split

  def __call__(self, item):
    beam = _beam()
    key, path, label = item
    example, reason = self.encoder(key, path, label)
    if example is None:
      beam.metrics.Metrics.counter("jaxact", f"skipped_{self.split}").inc()
      record = {"split": self.split, "path": path, "reason": reason}
      (epath.Path(self.report_dir) / f"{uuid.uuid4().hex}.json").write_text(json.dumps(record))
      return []
    beam.metrics.Metrics.counter("jaxact", f"clips_{self.split}").inc()
    return [(key, example)]


def report_dir(builder) -> str:
  """A per-build folder for skip reports, on the data dir's file system."""
  path = (
    epath.Path(builder._data_dir_root)
    / ".jaxact_skip_reports"
    / (  # pylint: disable=protected-access
      f"{builder.name}-{builder.builder_config.name}-{os.getpid()}"
    )
  )
  path.mkdir(parents=True, exist_ok=True)
  return os.fspath(path)


def build_split(builder, split: str, items):
  """The Beam ``PTransform`` generating ``(key, example)`` for ``split``.

  Args:
    builder: the ``JaxactKinetics400`` builder (driver side only).
    split: TFDS split name.
    items: ``[(key, path, label)]``.
  """
  beam = _beam()
  present = []
  for key, path, label in items:
    if os.path.exists(path):
      present.append((key, path, label))
    else:
      builder.skip(split, path, "missing")
  if not hasattr(builder, "_beam_report_dir"):
    builder._beam_report_dir = report_dir(builder)  # pylint: disable=protected-access
  fn = _EncodeOrReport(builder.encoder(), builder._beam_report_dir, split)  # pylint: disable=protected-access
  return f"Create{split}" >> beam.Create(present) | f"Encode{split}" >> beam.FlatMap(fn)


def collect_reports(builder) -> None:
  """Moves the workers' skip reports into the builder's skipped list."""
  folder = getattr(builder, "_beam_report_dir", None)
  if not folder:
    return
  path = epath.Path(folder)
  records = [json.loads(p.read_text()) for p in sorted(path.glob("*.json"))]
  for r in sorted(records, key=lambda r: (r["split"], r["path"])):
    builder.skip(r["split"], r["path"], r["reason"])
  for p in path.glob("*.json"):
    p.unlink()
  path.rmdir()
  del builder._beam_report_dir  # pylint: disable=protected-access
