"""Defaults of the ``config.data`` subtree: the only place data keys are born.

Experiment configs start from :func:`get_data_config` and override fields;
``jaxact.data.pipeline.create_loader`` and ``jaxact.data.build`` read them.

Sampling schemes (see ``jaxact.data.sampling``):

* ``'segments'`` — paper A / TSN: the usable frames are cut into
  ``num_steps`` equal segments; each step takes one RGB frame and the stack of
  ``flow_length`` flows starting at it (random within its segment when
  training, the segment centre when evaluating). Paper A: ``flow_length=10``.
* ``'uniform'`` — paper B: ``num_steps=25`` frames at equal intervals, each with
  its RGB frame and a ``flow_length`` stack (random start offset when
  training).

Augmentations (drawn on the host, ``jaxact.data.augment_params``; run on the
device, ``jaxact.data.device_augment``; ``jaxact.data.transforms`` holds
the CPU reference): ``'paper_a'`` (resize short
side to ``resize_short``, random rotation, random erasing, random crop
``image_size``, horizontal flip), ``'paper_b'`` (random crop ``crop_base`` with
aspect/scale jitter, resize to ``image_size``, colour jitter on RGB),
``'baseline'`` (random crop + flip) and ``'none'`` (centre crop).
"""

import ml_collections

# Short (CLI) name → registered TFDS name. TFDS itself ships a ``ucf101``
# builder, so ours are prefixed.
DATASET_NAMES = {
  "ucf101": "jaxact_ucf101",
  "hmdb51": "jaxact_hmdb51",
  "kinetics400": "jaxact_kinetics400",
  "video_folder": "jaxact_video_folder",
  "synthetic_motion": "jaxact_synthetic_motion",
}


def get_data_config() -> ml_collections.ConfigDict:
  """Returns the default ``config.data`` subtree (demo dataset, paper A style).

  Returns:
    An unlocked ``ConfigDict``; callers override fields and may lock it.
  """
  c = ml_collections.ConfigDict()
  # Dataset: a short name (keys of DATASET_NAMES); '' data_dir = TFDS default
  # (~/tensorflow_datasets); manual_dir holds the official download.
  c.name = "synthetic_motion"
  c.builder_config = ""  # '' = the builder's default (ucf101 / hmdb51: 'all').
  c.data_dir = ""
  c.manual_dir = ""
  # TFDS split names; ucf101 / hmdb51 'all' also take 'train1' ... 'test3'
  # (the official splits, see jaxact/data/datasets/official_splits.py).
  c.train_split = "train"
  c.eval_split = "test"

  # Temporal sampling.
  c.sampling = "segments"  # 'segments' (paper A, TSN) | 'uniform' (paper B)
  c.num_steps = 3  # T: time steps per clip (paper B: 25)
  c.flow_length = 10  # L: stacked flows per step (2L channels)

  # Geometry.
  c.resize_short = 256  # frames are resized so the short side is this
  c.image_size = 224  # network input, square

  # Training augmentation.
  c.augment = "paper_a"  # 'paper_a' | 'paper_b' | 'baseline' | 'none'
  c.rotation_degrees = 15.0  # paper A: uniform in [-d, d]
  c.erasing_prob = 0.5  # paper A: random erasing probability
  c.erasing_area = (0.02, 0.2)  # fraction of the crop area erased
  c.erasing_aspect = (0.3, 3.3)
  c.crop_base = 256  # paper B: side of the random crop before jitter
  c.scale_jitter = (0.75, 4.0 / 3.0)  # paper B: aspect-ratio jitter range
  c.color_jitter = 0.4  # paper B: brightness/contrast/saturation strength
  c.flip_prob = 0.5

  # Evaluation views: V = eval_clips × eval_crops.
  c.eval_clips = 1
  c.eval_crops = 1  # 1 (centre) | 3 (along the long side) | 10 (5 + flips)

  # Host → device: frames go to the device decoded, on a canvas of this many
  # pixels (any aspect ratio with H × W <= canvas_pixels fits; larger frames
  # are decoded smaller, in the JPEG DCT domain). 256 × 456 holds 16:9 and
  # 9:16 frames stored at short side 256; see jaxact.data.canvas.
  c.canvas_pixels = 256 * 456

  # Loading.
  c.num_workers = 2  # Grain worker processes (0: in the main process)
  c.prefetch = 2  # batches buffered per worker
  c.read_threads = 4  # threads reading + decoding within a process
  return c
