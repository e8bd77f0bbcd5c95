r"""Average evaluation results over dataset splits (UCF101 / HMDB51 report 3-split means).

  python -m jaxact.tools.average_splits runs/ucf101_a_s1 runs/ucf101_a_s2 runs/ucf101_a_s3 \
      [--output runs/ucf101_a_mean.json]

Each argument is a run directory (holding ``eval_results.json``) or the file
itself. Prints, for ``spatial``, ``temporal`` and ``fused``, the mean and the
per-split values of ``top1``, ``top5`` and ``mean_class``, and writes them as
JSON when ``--output`` is given.
"""

import argparse
import json
import os
import sys
from collections.abc import Sequence

import numpy as np

STREAMS = ("spatial", "temporal", "fused")
METRICS = ("top1", "top5", "mean_class")


def load_results(path: str) -> dict:
  """Read ``eval_results.json`` from a run directory or a file path."""
  file = os.path.join(path, "eval_results.json") if os.path.isdir(path) else path
  if not os.path.exists(file):
    raise FileNotFoundError(
      f"{file} does not exist: evaluate that run first (python -m jaxact.main ... --mode eval)"
    )
  with open(file, encoding="utf-8") as f:
    return json.load(f)


def average(results: Sequence[dict]) -> dict:
  """Mean and per-split values of each stream's metrics.

  Returns:
    ``{'num_splits', 'num_examples': [...], 'steps': [...], stream: {metric:
    {'mean', 'splits'}}}`` for the streams present in every result.
  """
  if not results:
    raise ValueError("no results to average")
  out = {
    "num_splits": len(results),
    "num_examples": [r.get("num_examples") for r in results],
    "steps": [r.get("step") for r in results],
  }
  for stream in STREAMS:
    if all(stream in r for r in results):
      out[stream] = {}
      for m in METRICS:
        values = [float(r[stream][m]) for r in results]
        out[stream][m] = {"mean": float(np.mean(values)), "splits": values}
  return out


def format_table(avg: dict) -> str:
  """A plain-text table of the averaged metrics (percent)."""
  lines = [f"{'stream':<10}" + "".join(f"{m:>22}" for m in METRICS)]
  for stream in STREAMS:
    if stream in avg:
      cells = []
      for m in METRICS:
        v = avg[stream][m]
        cells.append(
          f"{100 * v['mean']:6.2f} (" + "/".join(f"{100 * x:.1f}" for x in v["splits"]) + ")"
        )
      lines.append(f"{stream:<10}" + "".join(f"{c:>22}" for c in cells))
  lines.append(f"examples per split: {avg['num_examples']}")
  return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("runs", nargs="+", help="run directories or eval_results.json files")
  parser.add_argument("--output", help="write the averages as JSON here")
  args = parser.parse_args(argv)
  try:
    avg = average([load_results(p) for p in args.runs])
  except (FileNotFoundError, KeyError, ValueError, json.JSONDecodeError) as e:
    print(f"average_splits: error: {e}", file=sys.stderr)
    return 1
  print(format_table(avg))
  if args.output:
    with open(args.output, "w", encoding="utf-8") as f:
      json.dump(avg, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
