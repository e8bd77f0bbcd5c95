"""What training and evaluation share; neither ``jaxact.train`` nor ``jaxact.eval``
imports the other.

* :mod:`jaxact.runtime.mesh` — the ``data`` mesh, global batches, barriers.
* :mod:`jaxact.runtime.state` — ``TrainState``, created already sharded.
* :mod:`jaxact.runtime.checkpoint` — Orbax manager with data-iterator state;
  newest-readable restore.
* :mod:`jaxact.runtime.scoring` — multi-view scoring step, ``Validator``.
* :mod:`jaxact.runtime.metrics` — top-k, mean-class accuracy, confusion
  matrix, late fusion.
* :mod:`jaxact.runtime.reporting` — progress bar, metrics.jsonl, TensorBoard.
* :mod:`jaxact.runtime.inputs` — the model and loaders a config asks for.
"""
