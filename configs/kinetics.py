r"""Paper A on Kinetics-400: CoTNet-101 two-stream network with an LSTM on flow.

Command (every host of the job runs the same line; see launch/README.md)::

  python -m jaxact.main --config configs/kinetics.py --workdir /mnt/shared/runs/k400_paper_a \
      --config.data.data_dir=/data/tfds --config.init_from.path=/weights/cotnet101.pth

(``--config kinetics`` runs the installed copy of this file from any folder.)

Data: ``python -m jaxact.data.build kinetics400 --manual_dir /data/k400`` first
(TFDS + Apache Beam for the full set); the build reports the clips it skipped.
Hardware: written for a multi-host TPU pod slice or a multi-GPU node (batch 64
of 3 steps × 224² RGB + 10 stacked flows, bfloat16 compute); what it needs is
not measured yet.
Expected time: not measured yet (the paper's schedule: 500 iterations of 64
clips, short for Kinetics: we keep it as printed and expose
``num_train_steps``).

Paper A settings (docs/reference.md): SGD momentum 0.9, batch 64, lr 1e-3
×0.1 at iteration 450 of 500; dropout 0.5 on FC-1 and FC-2; augmentation:
random rotation, random erasing, horizontal flip, 256→224 crop; spatial
stream 1 RGB frame, temporal stream 10 TV-L1 flows per step; concatenation
fusion.
Expected result (reported by paper A, Kinetics-400 val): 75.8% top-1, 95.2%
top-5 (fused); not reproduced here yet. State the clip counts used
(``eval_results.json: num_examples``): every copy of Kinetics misses some videos.

Variants (``--config configs/kinetics.py:ARG``): ``smoke`` (tiny model and 2
steps, for config tests).
"""

from jaxact.config import get_base_config
from jaxact.configs import common


def get_config(arg: str | None = None):
  args = common.parse_arg(arg, smoke=False)
  c = get_base_config()

  # Model: CoTNet-101 in both streams, concatenation fusion, LSTM, dropout 0.5.
  c.model.name = "two_stream_lstm"
  c.model.overrides.backbone = "cotnet101"
  c.model.overrides.fusion = "concat"
  c.model.overrides.fc1_dropout = 0.5
  c.model.overrides.fc2_dropout = 0.5

  # Data: 3 segments, each 1 RGB frame + 10 flows; 256→224 with paper A's augmentation.
  c.data.name = "kinetics400"
  c.data.train_split = "train"
  # The CVDF test annotations carry no labels: evaluate on the validation set.
  c.data.eval_split = "validation"
  c.data.sampling = "segments"
  c.data.num_steps = 3
  c.data.flow_length = 10
  c.data.resize_short = 256
  c.data.image_size = 224
  c.data.canvas_pixels = 256 * 456  # 16:9 and 9:16 at short side 256 (456×256)
  c.data.augment = "paper_a"
  c.data.eval_clips = 1
  c.data.eval_crops = 3
  c.data.num_workers = 8

  # Schedule and optimizer: SGD 0.9, lr 1e-3 ×0.1 at iteration 450 of 500, batch 64.
  c.batch_size = 64
  c.num_train_steps = 500
  c.log_every_steps = 10
  c.checkpoint_every_steps = 100
  c.compute_dtype = "bfloat16"
  c.optimizer.name = "sgd"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.momentum = 0.9
  c.optimizer.weight_decay = 0.0
  c.optimizer.schedule = "step"
  c.optimizer.decay_steps = (450,)
  c.optimizer.decay_factor = 0.1

  # Loss on the head (the network's fused classifier) only.
  c.loss.head_weight = 1.0
  c.loss.spatial_weight = 0.0
  c.loss.temporal_weight = 0.0
  c.checkpoint.best_metric = "top1_head"

  # ImageNet CoTNet-101 weights (PyTorch) in both streams.
  c.init_from.kind = "torch"
  c.init_from.layout = "cotnet"

  # Evaluation: the head's scores, 3 crops per clip.
  c.eval.batch_size = 32
  c.eval.fusion_weights.head = 1.0
  c.eval.fusion_weights.spatial = 0.0
  c.eval.fusion_weights.temporal = 0.0

  if args["smoke"]:
    common.smoke(c)
  return c
