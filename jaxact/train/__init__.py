"""Training: the loop, the pure train step, optimizers, weight import, MFU.

* :mod:`jaxact.train.loop` — ``train(config, workdir, model=, loader=, mesh=)``.
* :mod:`jaxact.train.step` — ``make_train_step``.
* :mod:`jaxact.train.optim` — optimizers, schedules, frozen parts, lr multipliers.
* :mod:`jaxact.train.pretrained` — ``config.init_from``.
* :mod:`jaxact.train.perf` — FLOPs and MFU.

Shared with evaluation (mesh, state, checkpoints, scoring, reporting):
:mod:`jaxact.runtime`.
"""
