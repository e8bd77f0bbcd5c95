r"""Result pictures and a side-by-side table of evaluated runs.

  python -m jaxact.tools.report runs/ucf_a1 runs/ucf_a2 runs/ucf_a3 [--out DIR] [--no-pictures]

Each argument is a run directory (holding ``eval_results.json``) or that file.
Redraws ``confusion_matrix.png`` and ``per_class_accuracy.png``
(``jaxact.eval.figures``) into each run directory, or into ``--out`` (one
subdirectory per run when there are several), and prints one column per run:
step, dataset/split, examples, views and top-1 / top-5 / mean-class accuracy
(%) of ``spatial``, ``temporal``, ``fused`` (and ``head`` when present), plus
their mean over the runs when there are several (e.g. the three splits of a
paper config).

In a notebook: ``table = report.report(["runs/ucf_a1", "runs/ucf_a2"])``, then
``print(table)`` or ``table.to_dict()['fused top-1']['mean']`` (fractions).
"""

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

# Not jaxact.eval.evaluate: the report needs no JAX, and starts in a second.
from jaxact.eval import figures
from jaxact.eval.figures import RESULTS_FILE
from jaxact.eval.table import MEAN_COLUMN, METRICS, STREAMS, Table, table

__all__ = [
  "MEAN_COLUMN",
  "METRICS",
  "STREAMS",
  "ResultsError",
  "Table",
  "load_results",
  "main",
  "report",
  "results_file",
  "run_names",
  "table",
]


def _is_number(x: Any) -> bool:
  return isinstance(x, (int, float)) and not isinstance(x, bool)


class ResultsError(ValueError):
  """An ``eval_results.json`` is missing or unreadable (the message names it, in one line)."""


def results_file(path: str) -> str:
  """``path/eval_results.json`` for a directory, ``path`` itself otherwise."""
  return os.path.join(path, RESULTS_FILE) if os.path.isdir(path) else path


def load_results(path: str) -> dict:
  """Read and check the ``eval_results.json`` of a run directory (or that file).

  Raises:
    ResultsError: it does not exist, is not JSON, or lacks the metrics.
  """
  file = results_file(path)
  if not os.path.exists(file):
    raise ResultsError(
      f"{file} does not exist: evaluate that run first (python -m jaxact.main ... --mode eval)"
    )
  try:
    with open(file, encoding="utf-8") as f:
      results = json.load(f)
  except json.JSONDecodeError as e:
    raise ResultsError(f"{file} is not valid JSON ({e.msg} at line {e.lineno})") from None
  except (OSError, UnicodeDecodeError) as e:
    raise ResultsError(f"{file} cannot be read ({e})") from None
  if not isinstance(results, dict) or not isinstance(results.get("fused"), dict):
    raise ResultsError(f"{file} is not an evaluation result: it has no 'fused' metrics")
  for stream in STREAMS:
    if stream in results:
      got = results[stream]
      missing = [m for m, _ in METRICS if not isinstance(got, dict) or not _is_number(got.get(m))]
      if missing:
        raise ResultsError(f"{file} is not an evaluation result: '{stream}' lacks {missing}")
  return results


def run_names(paths: Sequence[str]) -> list[str]:
  """Column names: each run directory's name, or the paths as given when names repeat."""
  dirs = [os.path.normpath(p if os.path.isdir(p) else os.path.dirname(p) or ".") for p in paths]
  names = [os.path.basename(os.path.abspath(d)) for d in dirs]
  return names if len(set(names)) == len(names) else dirs


def picture_dirs(paths: Sequence[str], out: str | None) -> list[str]:
  """Where each run's pictures go: its directory, ``out``, or ``out/<run name>`` for several."""
  if out is None:
    return [os.path.dirname(results_file(p)) or "." for p in paths]
  if len(paths) == 1:
    return [out]
  return [
    os.path.join(out, re.sub(r"[^\w.-]+", "_", n).strip("_.") or "run") for n in run_names(paths)
  ]


def report(paths: Sequence[str], *, out: str | None = None, pictures: bool = True) -> Table:
  """Load the runs, redraw their pictures and return their table.

  Args:
    paths: run directories or ``eval_results.json`` files.
    out: draw into this directory instead of each run's (``out/<run name>``
      for several runs).
    pictures: redraw the pictures.

  Returns:
    The :class:`Table`.

  Raises:
    ResultsError: a results file is missing, unreadable or has no confusion
      matrix to draw.
    OSError: a picture cannot be written.
  """
  return _report(paths, out=out, pictures=pictures)[0]


def _report(paths, *, out, pictures) -> tuple[Table, list[dict[str, str]]]:
  if not paths:
    raise ResultsError("no run given")
  results = [load_results(p) for p in paths]
  written = []
  if pictures:
    for path, res, where in zip(paths, results, picture_dirs(paths, out)):
      if "confusion" not in res["fused"]:
        raise ResultsError(f"{results_file(path)} has no fused confusion matrix to draw")
      written.append(figures.write_figures(res, where))
  return table(dict(zip(run_names(paths), results))), written


def main(argv: Sequence[str]) -> int:
  parser = argparse.ArgumentParser(
    prog="python -m jaxact.tools.report", description=__doc__.split("\n\n")[0]
  )
  parser.add_argument("runs", nargs="+", help="run directories or eval_results.json files")
  parser.add_argument("--out", help="draw the pictures here instead of into each run directory")
  parser.add_argument(
    "--no-pictures", dest="pictures", action="store_false", help="only print the table"
  )
  args = parser.parse_args(argv)
  try:
    result, written = _report(args.runs, out=args.out, pictures=args.pictures)
  except ResultsError as e:
    print(f"report: error: {e}", file=sys.stderr)
    return 1
  except OSError as e:
    where = f" {e.filename}" if e.filename else ""
    print(
      f"report: error: cannot write{where}: {e.strerror or e} (draw elsewhere with --out DIR)",
      file=sys.stderr,
    )
    return 1
  print(result)
  for paths in written:
    print("pictures: " + ", ".join(paths.values()))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
