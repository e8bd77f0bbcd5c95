"""Result pictures of an evaluation: confusion matrix and per-class accuracy.

Drawn from the content of ``eval_results.json`` (``jaxact.runtime.scoring.results_dict``):

* ``confusion_matrix.png``: the ``fused`` confusion matrix, row-normalised
  (each row: where the videos of that true class went), on a square-root
  colour scale so that small confusions stay visible. Class names label the
  axes up to :data:`MAX_NAMED_CLASSES` classes, class indices beyond.
* ``per_class_accuracy.png``: per-class top-1 of ``spatial``, ``temporal`` and
  ``fused``. Up to :data:`MAX_NAMED_CLASSES` classes: one bar group per class,
  sorted by fused accuracy, worst first. Beyond (UCF101, Kinetics): the sorted
  accuracy of all classes per stream, and bars for the :data:`SHOWN_AT_EACH_END`
  worst and best classes by fused accuracy (the rest is in ``eval_results.json``).

``jaxact.eval.evaluate`` writes both next to ``eval_results.json`` (and to
TensorBoard) after every evaluation; ``python -m jaxact.tools.report`` redraws
them. Figures are rendered once with matplotlib's Agg canvas (no display, no
pyplot state) and the same pixels go to the PNG file and TensorBoard.

Cost, measured on a 2-core AMD EPYC VM shared with other jobs (load average
6.8): both pictures of K = 400 classes, 20,000 examples, drawn and written
in 2.8-3.6 s (K = 101: 1.5-2.1 s; K = 51 with names on the axes: 3.7-4.9 s),
and 0.3-1.1 s more for the TensorBoard images (about 4 s more the first
time, which imports tensorboardX, already imported when training writes
TensorBoard). Small next to scoring 20,000 videos on V views each.
"""

import os
import textwrap
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from PIL import Image

from jaxact.runtime import metrics as metrics_lib

# The files of a run directory: the results, and the pictures drawn beside them.
RESULTS_FILE = "eval_results.json"
CONFUSION_FILE = "confusion_matrix.png"
PER_CLASS_FILE = "per_class_accuracy.png"
# Up to this many classes, names label the confusion matrix's axes and every
# class gets its own bars; beyond, they would not be readable.
MAX_NAMED_CLASSES = 60
# With more classes, the per-class picture names this many worst and best classes.
SHOWN_AT_EACH_END = 20
# Up to this many classes, each confusion-matrix cell shows its percentage.
MAX_ANNOTATED_CLASSES = 12
STREAMS = ("spatial", "temporal", "fused")
COLORS = {"spatial": "#4c72b0", "temporal": "#dd8452", "fused": "#2a9d55"}
DPI = 100


def _escape(text: str) -> str:
  """Text drawn as is: matplotlib would parse ``$...$`` as mathtext."""
  return str(text).replace("$", r"\$")


def _wrap(text: str, width_in: float, fontsize: float) -> str:
  """``text`` broken into lines that fit ``width_in`` inches at ``fontsize`` points."""
  chars = max(20, int(width_in * 72 / (0.6 * fontsize)))
  return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


def class_names_of(results: Mapping, num_classes: int) -> list[str]:
  """``results['class_names']``, or the class indices when they are missing or do not match."""
  names = list(results.get("class_names") or [])
  return names if len(names) == num_classes else [str(i) for i in range(num_classes)]


def describe(results: Mapping) -> str:
  """One line naming a result: dataset, split, step, fused top-1, examples, views."""
  parts = []
  where = "/".join(str(results[k]) for k in ("dataset", "split") if results.get(k))
  if where:
    parts.append(where)
  if results.get("step") is not None:
    parts.append(f"step {results['step']}")
  fused = results.get("fused", {}).get("top1")
  if fused is not None:
    parts.append(f"fused top-1 {100 * float(fused):.2f}%")
  counts = []
  if results.get("num_examples") is not None:
    counts.append(f"{results['num_examples']} examples")
  if results.get("views"):
    views = int(results["views"])
    counts.append(f"{views} view{'s' if views != 1 else ''}")
  line = " · ".join(parts)
  return f"{line} ({', '.join(counts)})" if counts else line


def confusion_figure(
  confusion: np.ndarray | Sequence[Sequence[int]], class_names: Sequence[str], *, title: str = ""
) -> Figure:
  """The row-normalised confusion matrix (row = true class, column = predicted).

  Rows of classes with no example are grey.
  """
  counts = np.asarray(confusion, np.float64)
  k = counts.shape[0]
  totals = counts.sum(axis=1, keepdims=True)
  rows = np.divide(counts, totals, out=np.full_like(counts, np.nan), where=totals > 0)
  named = k <= MAX_NAMED_CLASSES
  if named:
    fontsize = 9 if k <= 20 else 7
    label_in = max(len(str(n)) for n in class_names) * fontsize * 0.55 / 72
    side = min(max(0.45 * k if k <= MAX_ANNOTATED_CLASSES else 0.17 * k, 4.0), 12.0)
    size = (max(side + label_in + 2.0, 7.0), side + label_in + 1.5)
  else:
    size = (10.0, 9.0)
  fig = Figure(figsize=size, dpi=DPI, layout="constrained")
  ax = fig.add_subplot()
  cmap = matplotlib.colormaps["Blues"].with_extremes(bad="0.8")
  image = ax.imshow(
    rows,
    cmap=cmap,
    norm=PowerNorm(0.5, vmin=0.0, vmax=1.0),
    interpolation="nearest" if named else "antialiased",
  )
  bar = fig.colorbar(image, ax=ax, shrink=0.8)
  bar.set_ticks([0, 0.05, 0.25, 0.5, 0.75, 1.0])
  bar.set_label("fraction of the true class's videos (square-root scale)")
  if named:
    ticks = np.arange(k)
    labels = [_escape(n) for n in class_names]
    ax.set_xticks(ticks, labels, rotation=90, fontsize=fontsize)
    ax.set_yticks(ticks, labels, fontsize=fontsize)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
  else:
    ax.set_xlabel("predicted class (index in class_names)")
    ax.set_ylabel("true class (index in class_names)")
  if k <= MAX_ANNOTATED_CLASSES:
    for i in range(k):
      for j in range(k):
        if counts[i, j]:
          ax.text(
            j,
            i,
            f"{100 * rows[i, j]:.0f}",
            ha="center",
            va="center",
            fontsize=8,
            color="white" if rows[i, j] > 0.4 else "black",
          )
  ax.set_title(
    _escape(_wrap(f"Confusion matrix (fused, row-normalised, %)\n{title}", size[0] - 1.5, 11)),
    fontsize=11,
  )
  return fig


def per_class_figure(
  accuracies: Mapping[str, np.ndarray], class_names: Sequence[str], *, title: str = ""
) -> Figure:
  """Per-class top-1 of each stream in ``accuracies`` (name → ``(K,)``, NaN: no example).

  Classes are ranked by the ``fused`` accuracy (the last stream given when
  there is no ``fused``); classes with no example are left out, with a note.
  """
  streams = [s for s in STREAMS if s in accuracies] or list(accuracies)
  key = "fused" if "fused" in accuracies else streams[-1]
  acc = {s: np.asarray(accuracies[s], np.float64) for s in streams}
  k = len(acc[key])
  present = np.nonzero(~np.isnan(acc[key]))[0]
  order = present[np.argsort(acc[key][present], kind="stable")]  # worst first
  notes = []
  if len(present) < k:
    notes.append(f"{k - len(present)} classes with no example left out")
  if len(order) <= MAX_NAMED_CLASSES:
    shown, gap = order, None
    fig = Figure(figsize=(9.0, max(3.0, 0.27 * len(shown) + 2.0)), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
  else:
    n = SHOWN_AT_EACH_END
    shown, gap = np.concatenate([order[:n], order[-n:]]), n
    notes.insert(0, f"the {n} worst and {n} best of {len(order)} classes by {key} top-1")
    fig = Figure(figsize=(15.0, 0.27 * (2 * n + 1) + 2.5), dpi=DPI, layout="constrained")
    overview, ax = fig.subplots(1, 2, width_ratios=[1, 1.6])
    _sorted_curves(overview, acc, streams)
  _bars(ax, acc, streams, shown, class_names, gap=gap, hidden=len(order) - len(shown))
  ax.set_title(_escape("; ".join(notes) or f"{key} top-1 per class, worst first"), fontsize=10)
  fig.suptitle(
    _escape(_wrap(f"Per-class top-1 accuracy\n{title}", fig.get_figwidth() - 0.5, 11)), fontsize=11
  )
  return fig


def _bars(ax, acc, streams, shown, class_names, *, gap, hidden):
  """Grouped horizontal bars of ``shown`` classes, first at the top; after ``gap`` of them,
  a row that says ``hidden`` classes are not shown."""
  rows = np.arange(len(shown), dtype=np.float64)
  if gap is not None:
    rows[gap:] += 1.0
  height = 0.8 / len(streams)
  for i, s in enumerate(streams):
    values = np.nan_to_num(100 * acc[s][shown])
    bars = ax.barh(
      rows + (i - (len(streams) - 1) / 2) * height,
      values,
      height=height,
      color=COLORS.get(s),
      label=s,
    )
    if s == "fused":  # its value, so that a class at 0 % still shows a mark
      ax.bar_label(bars, fmt="%.0f", padding=2, fontsize=6, color=COLORS[s])
  ax.set_yticks(rows, [_escape(class_names[c]) for c in shown], fontsize=8)
  if gap is not None:
    ax.text(50, gap, f"⋮  {hidden} classes not shown  ⋮", ha="center", va="center", fontsize=9)
  ax.set_ylim(rows[-1] + 0.7, -0.7)  # first class at the top
  ax.set_xlim(0, 106)
  ax.set_xticks(range(0, 101, 20))
  ax.set_xlabel("top-1 accuracy of the class (%)")
  ax.grid(axis="x", alpha=0.3)
  ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)


def _sorted_curves(ax, acc, streams):
  """Each stream's per-class accuracies, sorted best first: the spread over all classes."""
  for s in streams:
    values = np.sort(acc[s][~np.isnan(acc[s])])[::-1]
    ax.plot(
      np.arange(1, len(values) + 1),
      100 * values,
      color=COLORS.get(s),
      label=f"{s} (mean-class {100 * values.mean():.1f}%)" if len(values) else s,
      drawstyle="steps-mid",
    )
  ax.set_xlabel("class rank (each stream sorted on its own)")
  ax.set_ylabel("top-1 accuracy of the class (%)")
  ax.set_ylim(-2, 102)
  ax.set_xlim(0.5, max(2, max(int((~np.isnan(acc[s])).sum()) for s in streams)) + 0.5)
  ax.grid(alpha=0.3)
  ax.legend(loc="lower left", fontsize=8)
  ax.set_title("all classes", fontsize=10)


def render(fig: Figure) -> np.ndarray:
  """The figure's pixels, uint8 ``(H, W, 3)`` (Agg, no display)."""
  canvas = FigureCanvasAgg(fig)
  canvas.draw()
  return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def draw(results: Mapping) -> dict[str, np.ndarray]:
  """Both pictures of an ``eval_results.json`` content: file name → RGB pixels.

  Raises:
    KeyError: ``results`` has no ``fused`` confusion matrix.
  """
  confusion = np.asarray(results["fused"]["confusion"], np.int64)
  k = confusion.shape[0]
  names = class_names_of(results, k)
  title = describe(results)
  accuracies = {
    s: metrics_lib.per_class_accuracy(np.asarray(results[s]["confusion"], np.int64))
    for s in STREAMS
    if s in results and "confusion" in results[s]
  }
  return {
    CONFUSION_FILE: render(confusion_figure(confusion, names, title=title)),
    PER_CLASS_FILE: render(per_class_figure(accuracies, names, title=title)),
  }


def save_png(image: np.ndarray, path: str) -> None:
  """Write ``image`` (uint8 ``(H, W, 3)``) to ``path`` atomically."""
  tmp = path + ".tmp"
  Image.fromarray(image).save(tmp, format="PNG")
  os.replace(tmp, path)


def write_tensorboard(images: Mapping[str, np.ndarray], logdir: str, step: int) -> None:
  """Add ``images`` (file name → pixels) to TensorBoard in ``logdir`` as ``eval/<name>``."""
  # tensorboardX imports torch when it is installed: only when asked for.
  from tensorboardX import SummaryWriter  # noqa: PLC0415 (optional heavy dependency)

  writer = SummaryWriter(logdir)
  try:
    for name, image in images.items():
      writer.add_image(f"eval/{os.path.splitext(name)[0]}", image, step, dataformats="HWC")
  finally:
    writer.close()


def write_figures(results: Mapping, out_dir: str, *, tensorboard_dir: str | None = None) -> dict:
  """Draw both pictures of ``results`` into ``out_dir`` (and TensorBoard).

  Args:
    results: the ``eval_results.json`` content.
    out_dir: where ``confusion_matrix.png`` and ``per_class_accuracy.png`` go.
    tensorboard_dir: also add them to the TensorBoard event files there, at
      ``results['step']`` (0 when absent).

  Returns:
    File name → path written.
  """
  images = draw(results)
  os.makedirs(out_dir, exist_ok=True)
  paths = {}
  for name, image in images.items():
    paths[name] = os.path.join(out_dir, name)
    save_png(image, paths[name])
  if tensorboard_dir is not None:
    step = results.get("step")
    write_tensorboard(images, tensorboard_dir, int(step) if step is not None else 0)
  return paths
