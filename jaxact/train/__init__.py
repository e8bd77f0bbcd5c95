"""Training: mesh, born-sharded state, pure steps, the loop, Orbax checkpoints.

* :mod:`jaxact.train.loop` — ``train_and_evaluate(config, workdir)``.
* :mod:`jaxact.train.step` — ``make_train_step`` / ``make_eval_step``.
* :mod:`jaxact.train.state` — ``TrainState``, ``create_train_state``.
* :mod:`jaxact.train.optim` — optimizers, schedules, frozen parts, lr multipliers.
* :mod:`jaxact.train.checkpoint` — Orbax manager with data-iterator state.
* :mod:`jaxact.train.mesh` — the ``data`` mesh and global batches.
* :mod:`jaxact.train.pretrained` — ``config.init_from``.
* :mod:`jaxact.train.reporting`, :mod:`jaxact.train.perf` — metrics, MFU.
"""
