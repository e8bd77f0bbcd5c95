r"""Paper B on UCF101: ResNet-101 two-stream network, sum fusion at conv5, ConvLSTM.

Two stages per split (stage 2 starts from stage 1's run)::

  python -m jaxact.main --config configs/ucf101_paper_b.py:split=1,stage=1 \
      --workdir runs/ucf101_b_s1_stage1 --config.data.data_dir=/data/tfds \
      --config.init_from.path=/weights/resnet101-imagenet.pth
  python -m jaxact.main --config configs/ucf101_paper_b.py:split=1,stage=2 \
      --workdir runs/ucf101_b_s1 --config.data.data_dir=/data/tfds \
      --config.init_from.path=runs/ucf101_b_s1_stage1
  python -m jaxact.tools.average_splits runs/ucf101_b_s1 runs/ucf101_b_s2 runs/ucf101_b_s3

(``--config ucf101_paper_b:split=1,stage=1`` runs the installed copy of this file from any
folder.)

Data: ``python -m jaxact.data.build ucf101 --manual_dir /data/ucf101 --data_dir /data/tfds``,
once for the three splits (builder config ``all``: every video and its TV-L1 flow
stored once; 13,320 clips, 101 classes). ``split=N`` trains on ``trainN`` and
evaluates on ``testN`` (split 1: 9,537 / 3,783 clips, per the official lists).
Hardware: written for one GPU or TPU host (stage 2: 25 frames × two frozen
ResNet-101 per clip, bfloat16, batch 16); what it needs is not measured yet.
Expected time: not measured yet (stage 1: 6,000 iterations of 32 clips; stage
2: 12,000 iterations of 16 clips; per split).

Paper B settings (docs/reference.md): stage 1 fine-tunes each ImageNet ResNet-101
stream alone: SGD momentum 0.9, weight decay 1e-4, spatial lr 5e-6, temporal
lr 5e-3 (printed "5×10^3"), ÷10 when accuracy saturates (fixed steps here);
stage 2: backbones frozen, Adam lr 5e-5, 25 frames at equal intervals, 10
stacked flows, sum fusion of conv5 maps, 1-layer 3×3 ConvLSTM of 300 channels;
augmentation: random crop 256, scale jitter 3/4–4/3, resize 224, colour jitter.
Stage 1's evaluation reports each stream and their late fusion (the "fused"
scores: spatial 1 : temporal 1.5); stage 2 trains and evaluates the ConvLSTM
head (fused scores = the head's).
Expected result (reported by paper B): 93.9% top-1, 3-split average, no Kinetics
pre-training; not reproduced here yet.

Variants (``--config configs/ucf101_paper_b.py:ARG``): ``split=1|2|3``, ``stage=1|2``
(defaults 1, 1); ``smoke`` (tiny model, 2 steps).
"""

from jaxact.config import ConfigError, get_base_config
from jaxact.configs import common


def get_config(arg: str | None = None):
  args = common.parse_arg(arg, split=1, stage=1, smoke=False)
  stage = args["stage"]
  if stage not in (1, 2):
    raise ConfigError(f"stage={stage}: paper B has stages 1 and 2")
  c = get_base_config()

  # Model: ResNet-101 in both streams, sum fusion of the conv5 maps, 1-layer 3×3
  # ConvLSTM of 300 channels.
  c.model.name = "two_stream_convlstm"
  c.model.overrides.backbone = "resnet101"
  c.model.overrides.fusion = "sum"
  c.model.overrides.fusion_layer = "conv5"
  c.model.overrides.convlstm_features = 300
  c.model.overrides.convlstm_layers = 1
  c.model.overrides.convlstm_kernel = 3

  # Data: official split `split`; equally spaced frames, each with 10 flows;
  # paper B's augmentation (random crop 256, scale jitter, resize 224, colour jitter).
  c.data.name = "ucf101"
  common.official_split(c, args["split"])
  c.data.sampling = "uniform"
  c.data.flow_length = 10
  c.data.resize_short = 256
  c.data.image_size = 224
  c.data.canvas_pixels = 256 * 344  # 320×240 videos stored at short side 256: 256×341
  c.data.augment = "paper_b"
  c.data.eval_clips = 1
  c.data.eval_crops = 1
  c.data.num_workers = 8

  c.compute_dtype = "bfloat16"
  c.log_every_steps = 20
  c.checkpoint_every_steps = 500
  c.eval.batch_size = 16

  if stage == 1:
    # Each stream fine-tuned alone, from ImageNet ResNet-101 (PyTorch weights).
    c.data.num_steps = 5
    c.batch_size = 32
    c.num_train_steps = 6000
    c.optimizer.name = "sgd"
    c.optimizer.momentum = 0.9
    c.optimizer.weight_decay = 1e-4
    c.optimizer.learning_rate = 5e-6
    c.optimizer.lr_multipliers.temporal = 1000.0  # 5e-3 ("5×10^3" in the paper: a typo)
    # "÷10 when the accuracy saturates": at fixed steps here (no plateau detection).
    c.optimizer.schedule = "step"
    c.optimizer.decay_steps = (3000, 5000)
    c.optimizer.decay_factor = 0.1
    # Loss on each stream's own classifier; the head is not trained.
    c.loss.head_weight = 0.0
    c.loss.spatial_weight = 1.0
    c.loss.temporal_weight = 1.0
    c.checkpoint.best_metric = "top1_temporal"
    c.init_from.kind = "torch"
    c.init_from.layout = "torchvision"
    # Evaluation: late fusion of the streams, spatial 1 : temporal 1.5.
    c.eval.fusion_weights.head = 0.0
    c.eval.fusion_weights.spatial = 1.0
    c.eval.fusion_weights.temporal = 1.5
  else:
    # Backbones frozen (weights and BatchNorm statistics); only the ConvLSTM head trains,
    # starting from stage 1's run (--config.init_from.path=its workdir).
    c.data.num_steps = 25
    c.batch_size = 16
    c.num_train_steps = 12000
    c.model.overrides.freeze_backbones = True
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 5e-5
    c.optimizer.weight_decay = 0.0
    c.optimizer.schedule = "constant"
    c.optimizer.frozen = ("spatial", "temporal")
    c.loss.head_weight = 1.0
    c.loss.spatial_weight = 0.0
    c.loss.temporal_weight = 0.0
    c.checkpoint.best_metric = "top1_head"
    c.init_from.kind = "orbax"
    # Evaluation: the head's scores.
    c.eval.fusion_weights.head = 1.0
    c.eval.fusion_weights.spatial = 0.0
    c.eval.fusion_weights.temporal = 0.0

  if args["smoke"]:
    common.smoke(c)
    c.data.num_steps = 3
  return c
