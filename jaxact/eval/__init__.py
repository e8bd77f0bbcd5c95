"""Evaluation: multi-view scoring, stream fusion, metrics, ``eval_results.json``.

* :mod:`jaxact.eval.evaluate` — ``evaluate_checkpoint(config, workdir)``.
* :mod:`jaxact.eval.metrics` — top-k, mean-class accuracy, confusion matrix.
"""
