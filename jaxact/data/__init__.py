"""Video data for jaxact: TFDS builders, sampling, augmentation, Grain loaders.

* ``config.get_data_config()`` — the ``config.data`` defaults;
* ``build`` — ``python -m jaxact.data.build NAME --manual_dir DIR`` and
  ``ensure_built(...)``; builders in ``datasets/`` (``ucf101``, ``hmdb51``,
  ``kinetics400``, ``video_folder``, ``synthetic_motion``), stored as
  ArrayRecord: per-frame RGB JPEG + TV-L1 flow (x, y grayscale JPEG);
* ``sampling`` — which frames/flows a clip takes (paper A / TSN segments,
  paper B uniform) and the short-video rule;
* ``transforms`` — augmentation applied identically to RGB and flow, with
  flow vectors transformed (flip, resize, rotation);
* ``pipeline.create_loader(...)`` — sharded, seeded, resumable Grain loaders;
* media: ``video`` — decoding (``read_frames``: decode, truncate to
  ``max_frames``, reject < 2 frames; the one ``VIDEO_EXTS``), ``jpeg`` — the
  one RGB and the one flow JPEG setting, ``frame_formats`` — the flow
  extraction CLI's on-disk outputs (``python -m jaxact.tools.extract_flow``);
* ``normalize`` — on-device input normalisation.

Nothing is imported here: importing ``jaxact.data`` has no side effects.
"""
