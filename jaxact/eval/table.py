"""The results table of evaluated runs (``python -m jaxact.tools.report``, the demo's ending).

Plain Python and NumPy: no JAX, so the report starts in a second.
"""

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

STREAMS = ("spatial", "temporal", "fused", "head")
METRICS = (("top1", "top-1"), ("top5", "top-5"), ("mean_class", "mean-class"))
MEAN_COLUMN = "mean"


@dataclasses.dataclass
class Table:
  """Runs side by side.

  Attributes:
    columns: one name per run, then ``'mean'`` when there are several runs.
    rows: ``(label, values)``, one value per column: ``step``, ``split``,
      ``examples``, ``views`` (no mean), then ``'<stream> <metric>'``
      accuracies as fractions; None where a run has no such value.
  """

  columns: list[str]
  rows: list[tuple[str, list[Any]]]

  def to_dict(self) -> dict[str, dict[str, Any]]:
    """``{row label: {column: value}}``."""
    return {label: dict(zip(self.columns, values)) for label, values in self.rows}

  def format(self) -> str:
    """Plain text, accuracies in percent."""
    cells = [[label] + [_cell(label, v) for v in values] for label, values in self.rows]
    header = ["", *self.columns]
    widths = [max(len(str(r[i])) for r in [header, *cells]) for i in range(len(header))]
    lines = [
      "  ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(r, widths)))
      for r in [header, *cells]
    ]
    return "\n".join(line.rstrip() for line in lines)

  def __str__(self) -> str:
    return self.format()


def _cell(label: str, value: Any) -> str:
  if value is None:
    return "-"
  if label.split(" ")[0] in STREAMS:
    return f"{100 * value:.2f}" if math.isfinite(value) else "nan"
  return str(value)


def table(
  runs: Mapping[str, Mapping],
  *,
  streams: Sequence[str] = STREAMS,
  metrics: Sequence[str] | None = None,
) -> Table:
  """The table of ``runs`` (column name → ``eval_results.json`` content).

  ``streams`` and ``metrics`` (keys of :data:`METRICS`; default: all) choose
  the accuracy rows.
  """
  chosen = [(k, n) for k, n in METRICS if metrics is None or k in metrics]
  results = list(runs.values())
  several = len(results) > 1
  columns = list(runs) + ([MEAN_COLUMN] if several else [])

  def info(label, fn):
    return (label, [fn(r) for r in results] + ([None] if several else []))

  rows = [
    info("step", lambda r: r.get("step")),
    info("split", lambda r: "/".join(str(r[k]) for k in ("dataset", "split") if r.get(k)) or None),
    info("examples", lambda r: r.get("num_examples")),
    info("views", lambda r: r.get("views")),
  ]
  for stream in streams:
    if not any(stream in r for r in results):
      continue
    for key, name in chosen:
      values = [float(r[stream][key]) if stream in r else None for r in results]
      if several:
        values.append(None if None in values else float(np.mean(values)))
      rows.append((f"{stream} {name}", values))
  return Table(columns, rows)
