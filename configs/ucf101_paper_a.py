r"""Paper A on UCF101: CoTNet-101 two-stream network with an LSTM on flow.

Command (run once per split; then average with jaxact.tools.average_splits)::

  python -m jaxact.main --config configs/ucf101_paper_a.py:split=1 --workdir runs/ucf101_a_s1 \
      --config.data.data_dir=/data/tfds --config.init_from.path=/weights/cotnet101.pth
  python -m jaxact.tools.average_splits runs/ucf101_a_s1 runs/ucf101_a_s2 runs/ucf101_a_s3

Data: ``python -m jaxact.data.build ucf101 --manual_dir /data/ucf101 --data_dir /data/tfds``,
once for the three splits (builder config ``all``: every video and its TV-L1 flow
stored once; 13,320 clips, 101 classes). ``split=N`` trains on ``trainN`` and
evaluates on ``testN`` (split 1: 9,537 / 3,783).
Hardware: one H100 / A100 (or a TPU v4-8); bfloat16 compute.
Expected time: ~1 h per split on one H100 (500 iterations of 64 clips,
3 time steps × (1 RGB frame + 10 flows) per clip, plus 3-crop testing).

Paper A settings (REFERENCE.md): SGD momentum 0.9, batch 64, lr 1e-3 ×0.1 at
iteration 450 of 500; dropout 0.5 on FC-1 and FC-2; augmentation: random
rotation, random erasing, horizontal flip, 256→224 crop; concatenation fusion;
ImageNet CoTNet-101 weights in both streams (cross-modality conv1 for flow).
Expected result (paper A): 97.3% top-1 (fused), 3-split average.

Variants: ``split=1|2|3`` (default 1); ``smoke`` (tiny model, 2 steps; tests).
"""

from jaxact.config import paper_a_config, parse_config_arg


def get_config(arg: str | None = None):
  args = parse_config_arg(arg, split=1, smoke=False)
  return paper_a_config("ucf101", split=args["split"], smoke=args["smoke"])
