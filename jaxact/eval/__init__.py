"""Using a trained run: evaluation, pictures, prediction on new videos, Grad-CAM.

* :mod:`jaxact.eval.evaluate` — restore, multi-view scoring, ``eval_results.json``
  and the result pictures.
* :mod:`jaxact.eval.figures` — confusion matrix and per-class accuracy pictures.
* :mod:`jaxact.eval.table` — runs side by side (``tools.report``, the demo's ending).
* :mod:`jaxact.eval.predict` — new videos through the evaluation path, flow included.
* :mod:`jaxact.eval.cam` — Grad-CAM of both streams.

Scoring, late fusion and the metrics live in :mod:`jaxact.runtime` (shared
with the training loop's validation at checkpoints).
"""
