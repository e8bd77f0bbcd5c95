"""Result pictures: written after an evaluation, readable, and they show the data."""

import glob
import logging
import os
import time

import fake_run
import numpy as np
import pytest
from PIL import Image

from jaxact import experiment
from jaxact.eval import evaluate, figures
from jaxact.runtime import scoring


def synthetic_results(num_classes: int, per_class: int = 3, seed: int = 0, names=None) -> dict:
  """An ``eval_results.json`` content from random scores, about half of them right."""
  rng = np.random.default_rng(seed)
  labels = np.repeat(np.arange(num_classes), per_class)
  scores = {}
  for stream in ("spatial", "temporal", "head"):
    x = rng.random((len(labels), num_classes))
    right = rng.random(len(labels)) < 0.5
    x[right, labels[right]] += 1.0
    scores[stream] = x / x.sum(1, keepdims=True)
  names = names or [f"action_{i}" for i in range(num_classes)]
  return scoring.results_dict(
    scores,
    labels,
    names,
    {"spatial": 1.0, "temporal": 1.5},
    step=100,
    views=10,
    dataset="fake",
    split="test",
    checkpoint="latest",
  )


def _png(path) -> np.ndarray:
  with Image.open(path) as im:
    assert im.format == "PNG"
    return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A 2-step run of the tiny network, evaluated at its end, with TensorBoard."""
  workdir = tmp_path_factory.mktemp("run")
  results = experiment.run(
    fake_run.tiny_config(tensorboard=True, num_train_steps=2, checkpoint_every_steps=2),
    str(workdir),
    mode="train",
    model_fn=fake_run.model_fn,
    loader_fn=fake_run.loader_fn,
  )
  return workdir, results


def test_evaluation_writes_pictures_next_to_results(trained):
  workdir, results = trained
  assert (workdir / evaluate.RESULTS_FILE).exists()
  for name in (figures.CONFUSION_FILE, figures.PER_CLASS_FILE):
    image = _png(workdir / name)
    h, w, _ = image.shape
    assert 300 <= w <= 3000 and 250 <= h <= 3000, (name, image.shape)
    assert image.std() > 10, name  # not a blank picture
  # The same pixels went to TensorBoard, tagged by picture name.
  events = glob.glob(str(workdir / "tensorboard" / "events.out.tfevents.*"))
  blobs = b"".join(open(p, "rb").read() for p in events)
  assert b"eval/confusion_matrix" in blobs and b"eval/per_class_accuracy" in blobs
  # --mode eval draws them again (from the restored checkpoint, no TensorBoard).
  for name in (figures.CONFUSION_FILE, figures.PER_CLASS_FILE):
    os.remove(workdir / name)
  again = experiment.run(
    fake_run.tiny_config(num_train_steps=2, checkpoint_every_steps=2),
    str(workdir),
    mode="eval",
    model_fn=fake_run.model_fn,
    loader_fn=fake_run.loader_fn,
  )
  assert again["fused"]["confusion"] == results["fused"]["confusion"]
  assert (workdir / figures.CONFUSION_FILE).exists()
  assert (workdir / figures.PER_CLASS_FILE).exists()


def test_confusion_picture_follows_the_matrix():
  names = [f"c{i}" for i in range(6)]
  diagonal = np.diag([5] * 6)
  swapped = diagonal[[1, 0, 2, 3, 4, 5]]  # classes 0 and 1 always confused
  a = figures.render(figures.confusion_figure(diagonal, names, title="same title"))
  b = figures.render(figures.confusion_figure(swapped, names, title="same title"))
  assert a.shape == b.shape
  changed = np.any(a != b, axis=-1)
  assert changed.any()
  # Only the cells of rows 0 and 1 differ: a band of the picture, not everywhere.
  assert changed.mean() < 0.2
  assert figures.render(
    figures.confusion_figure(diagonal, names, title="same title")
  ).tobytes() == (a.tobytes())


def test_per_class_picture_follows_the_accuracies():
  names = [f"c{i}" for i in range(4)]
  acc = {s: np.array([0.2, 0.4, 0.6, 0.8]) for s in ("spatial", "temporal", "fused")}
  other = dict(acc, fused=np.array([0.2, 0.4, 0.6, 0.1]))
  a = figures.render(figures.per_class_figure(acc, names, title="t"))
  b = figures.render(figures.per_class_figure(other, names, title="t"))
  assert a.shape == b.shape and np.any(a != b)


def test_pictures_of_400_classes(tmp_path):
  results = synthetic_results(400, per_class=2)
  start = time.perf_counter()
  paths = figures.write_figures(results, str(tmp_path))
  seconds = time.perf_counter() - start
  for path in paths.values():
    h, w, _ = _png(path).shape
    assert 600 <= w <= 2000 and 600 <= h <= 2000, (path, h, w)
  # Generous bound for a loaded 2-core machine (about 1-2 s measured there).
  assert seconds < 30


def test_names_with_dollars_and_empty_classes(tmp_path):
  results = synthetic_results(5, names=["a$b", "$x$", "c_d", "e", "f"])
  conf = np.asarray(results["fused"]["confusion"])
  conf[2] = 0  # a class with no example
  results["fused"]["confusion"] = conf.tolist()
  paths = figures.write_figures(results, str(tmp_path))
  assert all(os.path.getsize(p) > 0 for p in paths.values())


def test_describe_names_the_run():
  text = figures.describe(synthetic_results(3))
  assert "fake/test" in text and "step 100" in text and "9 examples" in text and "10 views" in text


def test_a_picture_that_cannot_be_written_is_a_warning(tmp_path, caplog):
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  with caplog.at_level(logging.WARNING, logger="jaxact.eval.evaluate"):
    evaluate.write_pictures(synthetic_results(3), str(blocker), tensorboard=False)
  assert "python -m jaxact.tools.report" in caplog.text
