r"""Paper A on HMDB51: CoTNet-101 two-stream network with an LSTM on flow.

Command (run once per split; then average with jaxact.tools.average_splits)::

  python -m jaxact.main --config configs/hmdb51_paper_a.py:split=1 --workdir runs/hmdb51_a_s1 \
      --config.data.data_dir=/data/tfds --config.init_from.path=/weights/cotnet101.pth
  python -m jaxact.tools.average_splits runs/hmdb51_a_s1 runs/hmdb51_a_s2 runs/hmdb51_a_s3

(``--config hmdb51_paper_a:split=1`` runs the installed copy of this file from any folder.)

Data: ``python -m jaxact.data.build hmdb51 --manual_dir /data/hmdb51 --data_dir /data/tfds``,
once for the three splits (builder config ``all``: every video and its TV-L1 flow
stored once; 6,766 videos, 51 classes, those unused by all three splits left
out). ``split=N`` trains on ``trainN`` and evaluates on ``testN`` (70/30 per
class: 3,570 / 1,530 videos, per the official lists).
Hardware: written for one GPU or TPU host (bfloat16 compute); what it needs is
not measured yet.
Expected time: not measured yet (500 iterations of 64 clips, 3 time steps ×
(1 RGB frame + 10 flows) per clip, plus 3-crop testing).

Paper A settings (docs/reference.md): SGD momentum 0.9, batch 64, lr 1e-3
×0.1 at iteration 450 of 500; dropout 0.5 on FC-1 and FC-2; augmentation:
random rotation, random erasing, horizontal flip, 256→224 crop; concatenation
fusion; ImageNet CoTNet-101 weights in both streams (cross-modality conv1 for
flow).
Expected result (reported by paper A): 78.5% top-1 (fused), 3-split average;
not reproduced here yet.

Variants (``--config configs/hmdb51_paper_a.py:ARG``): ``split=1|2|3`` (default 1);
``smoke`` (tiny model, 2 steps; tests).
"""

from jaxact.config import get_base_config
from jaxact.configs import common


def get_config(arg: str | None = None):
  args = common.parse_arg(arg, split=1, smoke=False)
  c = get_base_config()

  # Model: CoTNet-101 in both streams, concatenation fusion, LSTM, dropout 0.5.
  c.model.name = "two_stream_lstm"
  c.model.overrides.backbone = "cotnet101"
  c.model.overrides.fusion = "concat"
  c.model.overrides.fc1_dropout = 0.5
  c.model.overrides.fc2_dropout = 0.5

  # Data: official split `split`; 3 segments, each 1 RGB frame + 10 flows; 256→224
  # with paper A's augmentation.
  c.data.name = "hmdb51"
  common.official_split(c, args["split"])
  c.data.sampling = "segments"
  c.data.num_steps = 3
  c.data.flow_length = 10
  c.data.resize_short = 256
  c.data.image_size = 224
  c.data.canvas_pixels = 256 * 344  # 320×240 videos stored at short side 256: 256×341
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
