r"""Paper A on Kinetics-400: CoTNet-101 two-stream network with an LSTM on flow.

Command (every host of the job runs the same line; see launch/README.md)::

  python -m jaxact.main --config configs/kinetics.py --workdir /mnt/shared/runs/k400_paper_a \
      --config.data.data_dir=/data/tfds --config.init_from.path=/weights/cotnet101.pth

Data: ``python -m jaxact.data.build kinetics400 --manual_dir /data/k400`` first
(TFDS + Apache Beam for the full set); the build reports the clips it skipped.
Hardware: a TPU v4-32 pod slice or 8× H100 (batch 64 of 3 steps × 224² RGB +
10 stacked flows; bfloat16 compute). Expected time: ~6 h on 8× H100 for the
paper's schedule (500 iterations of 64 clips is short: the paper reports it as
printed; we keep it and expose ``num_train_steps``).

Paper A settings (REFERENCE.md): SGD momentum 0.9, batch 64, lr 1e-3 ×0.1 at
iteration 450 of 500; dropout 0.5 on FC-1 and FC-2; augmentation: random
rotation, random erasing, horizontal flip, 256→224 crop; spatial stream 1 RGB
frame, temporal stream 10 TV-L1 flows per step; concatenation fusion.
Expected result (paper A, Kinetics-400 val): 75.8% top-1, 95.2% top-5 (fused).
State the clip counts used (``eval_results.json: num_examples``): every copy of
Kinetics misses some videos.

Variants: ``smoke`` (tiny model and 2 steps, for config tests).
"""

from jaxact.config import paper_a_config, parse_config_arg


def get_config(arg: str | None = None):
  args = parse_config_arg(arg, smoke=False)
  return paper_a_config("kinetics400", smoke=args["smoke"])
