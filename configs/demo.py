r"""Demo: tiny two-stream networks on the generated ``synthetic_motion`` dataset.

Command::

  python -m jaxact.main --config configs/demo.py --workdir /tmp/jaxact_demo

(The default ``--config``: ``python -m jaxact.main --workdir /tmp/jaxact_demo``
runs the installed copy of this file from any folder, as does ``--config demo``.)

Hardware: any CPU; a 2-core machine is enough (no GPU needed).

Training flips clips horizontally (``augment='baseline'``, ``flip_prob``
0.5). A flip turns "right" into "left" and "rotate_cw" into "rotate_ccw":
``synthetic_motion`` declares these mirror pairs and a flipped clip gets the
mirror label (``jaxact.data.transforms``). Before that rule the flip kept the
label, which made half the classes ambiguous (200 steps ended at temporal
71-75%, fused 72-78% top-1).

Expected result after 120 steps (``WORKDIR/eval_results.json``, 72 test
clips, 9 classes, chance 11%): the temporal (flow) stream and the fused scores
reach 100% top-1, the spatial (RGB) stream stays near chance (appearance is
drawn independently of the class). The final evaluation is of the last
checkpoint (``eval.checkpoint='best'`` would pick by the test clips
themselves, as this demo has no separate validation split).

The run ends (``eval.explain_examples = 1``) by printing a short table of
the spatial / temporal / fused top-1 and top-5, the path of
``WORKDIR/confusion_matrix.png`` and that of a Grad-CAM grid of one test clip
(``WORKDIR/cam/``, drawn by ``jaxact.eval.cam`` as ``python -m
jaxact.tools.cam`` draws it).

Time and result, measured on the 2-core dev box (``nproc`` 2) shared with
other jobs (load average 4.6-6.7 during the run), from an empty ``data_dir``
(``python -m jaxact.main --workdir DIR --config.data.data_dir=EMPTY_DIR``):
3 min 20 s wall in all, 2 min 11 s of CPU time (user + sys), the dataset
build (360 clips of 16 frames at 64×64, TV-L1 flow) about 1 min of it;
spatial 18.1%, temporal 100.0%, fused 100.0% top-1 (validation at step 60:
temporal 98.6%, fused 94.4%). A second run, at load average 6.9-10.8: 6 min
24 s wall, 2 min 35 s of CPU time, the same accuracies (the run is
deterministic). On the idle box (load average 1.4 at the start, nothing
else running; 2026-12-01): 1 min 40 s wall, 2 min 39 s of CPU time (user +
sys), the same accuracies, ending with the table, the confusion matrix and
the Grad-CAM grid.

Variants (``--config configs/demo.py:ARG`` or ``--config demo:ARG``):

* ``smoke``: 4 training steps on 4 clips per batch, for tests (seconds once
  compiled);
* ``lstm``: paper A's shape (CoTNet-tiny + LSTM) instead of paper B's
  (ResNet-tiny + sum fusion + ConvLSTM).
"""

from jaxact.config import get_base_config
from jaxact.configs import common


def get_config(arg: str | None = None):
  args = common.parse_arg(arg, smoke=False, lstm=False)
  c = get_base_config()
  c.seed = 0
  c.model.name = "two_stream_lstm_tiny" if args["lstm"] else "two_stream_convlstm_tiny"

  c.build_dataset = True
  c.data.name = "synthetic_motion"
  c.data.sampling = "uniform"
  c.data.num_steps = 3
  c.data.flow_length = 5
  c.data.resize_short = 64
  c.data.image_size = 56
  c.data.canvas_pixels = 64 * 64  # synthetic_motion stores 64×64 frames
  c.data.augment = "baseline"
  c.data.eval_clips = 1
  c.data.eval_crops = 1
  c.data.num_workers = 0
  c.data.read_threads = 2

  c.batch_size = 16
  c.num_train_steps = 120
  c.log_every_steps = 10
  c.checkpoint_every_steps = 60
  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 2e-3
  c.optimizer.schedule = "cosine"
  c.optimizer.warmup_steps = 20
  c.optimizer.grad_clip_norm = 5.0
  # Train the head (the network's own fused classifier) and each stream's own
  # classifier, so that the accuracies can be compared.
  c.loss.head_weight = 1.0
  c.loss.spatial_weight = 1.0
  c.loss.temporal_weight = 1.0
  # Score the 72 test clips at every checkpoint (seconds) and keep the best.
  c.eval.validate_at_checkpoints = True
  c.checkpoint.best_metric = "val_top1_fused"
  c.eval.batch_size = 24
  c.eval.fusion_weights.head = 1.0
  # The ending: a short table, the confusion matrix and a Grad-CAM of one test clip.
  c.eval.explain_examples = 1

  if args["smoke"]:
    c.batch_size = 4
    c.num_train_steps = 4
    c.log_every_steps = 1
    c.checkpoint_every_steps = 2
    c.optimizer.warmup_steps = 0
    c.eval.batch_size = 8
    c.progress_bar = False
  return c
