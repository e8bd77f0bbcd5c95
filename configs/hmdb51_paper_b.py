r"""Paper B on HMDB51: ResNet-101 two-stream network, sum fusion at conv5, ConvLSTM.

Two stages per split (stage 2 starts from stage 1's run)::

  python -m jaxact.main --config configs/hmdb51_paper_b.py:split=1,stage=1 \
      --workdir runs/hmdb51_b_s1_stage1 --config.data.data_dir=/data/tfds \
      --config.init_from.path=/weights/resnet101-imagenet.pth
  python -m jaxact.main --config configs/hmdb51_paper_b.py:split=1,stage=2 \
      --workdir runs/hmdb51_b_s1 --config.data.data_dir=/data/tfds \
      --config.init_from.path=runs/hmdb51_b_s1_stage1
  python -m jaxact.tools.average_splits runs/hmdb51_b_s1 runs/hmdb51_b_s2 runs/hmdb51_b_s3

Data: ``python -m jaxact.data.build hmdb51 --manual_dir /data/hmdb51 --data_dir /data/tfds``,
once for the three splits (builder config ``all``: every video and its TV-L1 flow
stored once; 6,766 videos, 51 classes, those unused by all three splits left
out). ``split=N`` trains on ``trainN`` and evaluates on ``testN`` (70/30 per
class: 3,570 / 1,530).
Hardware: one H100 / A100 (stage 2: 25 frames × two ResNet-101 per clip,
frozen, bfloat16; batch 16). Expected time: stage 1 ~3 h, stage 2 ~6 h per
split on one H100.

Paper B settings (REFERENCE.md): stage 1 fine-tunes each ImageNet ResNet-101
stream alone: SGD momentum 0.9, weight decay 1e-4, spatial lr 5e-6, temporal
lr 5e-3 (printed "5×10^3"), ÷10 when accuracy saturates (fixed steps here);
stage 2: backbones frozen, Adam lr 5e-5, 25 frames at equal intervals, 10
stacked flows, sum fusion of conv5 maps, 1-layer 3×3 ConvLSTM of 300 channels;
augmentation: random crop 256, scale jitter 3/4–4/3, resize 224, colour jitter.
Stage 1's evaluation reports each stream and their late fusion (spatial 1 :
temporal 1.5); stage 2's "fused" is the ConvLSTM head.
Expected result (paper B): 69.4% top-1, 3-split average, no Kinetics pre-training.

Variants: ``split=1|2|3``, ``stage=1|2`` (defaults 1, 1); ``smoke`` (tiny model, 2 steps).
"""

from jaxact.config import paper_b_config, parse_config_arg


def get_config(arg: str | None = None):
  args = parse_config_arg(arg, split=1, stage=1, smoke=False)
  return paper_b_config("hmdb51", split=args["split"], stage=args["stage"], smoke=args["smoke"])
