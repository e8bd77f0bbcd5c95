"""Evaluation of a checkpoint: ``evaluate_checkpoint`` writes ``eval_results.json``.

* :mod:`jaxact.eval.evaluate` — restore, multi-view scoring, results file.

Scoring, late fusion and the metrics live in :mod:`jaxact.runtime` (shared
with the training loop's validation at checkpoints).
"""
