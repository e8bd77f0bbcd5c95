"""Build a jaxact dataset: ``python -m jaxact.data.build NAME [options]``.

Examples::

  python -m jaxact.data.build synthetic_motion --data_dir ~/tensorflow_datasets
  python -m jaxact.data.build ucf101 --manual_dir ~/UCF101 --config split2
  python -m jaxact.data.build video_folder --manual_dir ~/my_videos \
      --set short_side=128

The same builders work with TFDS's CLI (``tfds build`` needs TensorFlow;
``jaxact-tfds build`` takes the same flags without it, see
``jaxact.data.tfds_cli``)::

  jaxact-tfds build jaxact_synthetic_motion --imports jaxact.data.datasets.registered

and from Python with :func:`ensure_built` / :func:`make_builder`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import tensorflow_datasets as tfds

from jaxact import keyvalue
from jaxact.data import datasets

# Fields every TFDS BuilderConfig has; the rest are jaxact's build options.
_BASE_CONFIG_FIELDS = {
  "name",
  "version",
  "release_notes",
  "supported_versions",
  "description",
  "tags",
}


def make_builder(
  name: str, data_dir=None, manual_dir=None, *, config: str = "", flow_fn=None, **overrides
):
  """Instantiates a builder.

  Args:
    name: short or registered dataset name.
    data_dir: TFDS data dir ('' / None: TFDS default).
    manual_dir: the official download (not needed for synthetic_motion).
    config: builder config name ('' : default).
    flow_fn: replaces the default TV-L1 (``uint8 (T,H,W,3) -> (T-1,H,W,2)``).
    **overrides: builder-config fields (e.g. ``short_side=128``); a config
      with overrides gets a derived name so it never collides with the default.

  Returns:
    A ``tfds.core.DatasetBuilder``.
  """
  cls = datasets.builder_class(name)
  configs = {c.name: c for c in cls.BUILDER_CONFIGS}
  base = config or cls.BUILDER_CONFIGS[0].name
  if base not in configs:
    raise KeyError(f"{name}: unknown config {base!r}; known: {', '.join(configs)}")
  cfg = configs[base]
  if overrides:
    fields = {f.name for f in dataclasses.fields(cfg)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
      raise KeyError(
        f"{name}: unknown build option(s) {unknown}; known: {sorted(fields - _BASE_CONFIG_FIELDS)}"
      )
    suffix = "-".join(f"{k}{v}" for k, v in sorted(overrides.items()))
    cfg = dataclasses.replace(cfg, name=f"{base}-{suffix}".replace(".", "p"), **overrides)
  kwargs = {"config": cfg, "file_format": "array_record"}
  if data_dir:
    kwargs["data_dir"] = os.path.expanduser(os.fspath(data_dir))
  return cls(flow_fn=flow_fn, manual_dir=manual_dir, **kwargs)


def ensure_built(
  name: str, data_dir=None, manual_dir=None, *, config: str = "", flow_fn=None, **overrides
) -> datasets.DatasetInfo:
  """Builds the dataset if it is missing; returns its metadata.

  Args: as :func:`make_builder`.

  Returns:
    ``jaxact.data.datasets.DatasetInfo``.
  """
  builder = make_builder(name, data_dir, manual_dir, config=config, flow_fn=flow_fn, **overrides)
  config_name = builder.builder_config.name
  if datasets.prepared_dir(name, data_dir, config_name) is None:
    dl_config = tfds.download.DownloadConfig(
      manual_dir=os.fspath(manual_dir) if manual_dir else None
    )
    _announce(builder)
    builder.download_and_prepare(download_config=dl_config)
  return datasets.load_info(name, data_dir, config_name)


def _announce(builder) -> None:
  """One jaxact line instead of TFDS's two about a build.

  TFDS prints "Downloading and preparing dataset Unknown size (download:
  Unknown size, generated: Unknown size, ...)" and "Dataset ... downloaded
  and prepared to ...": a jaxact build downloads nothing and cannot know its
  size before writing it. It says what it builds and where instead; the
  builder's summary (classes, clips per split, skipped videos) ends it.
  """
  where = f"{builder.name}/{builder.builder_config.name}"

  def start():
    print(
      f"Building {where} in {builder.data_dir} (once; later runs reuse it) ...",
      flush=True,
    )

  builder._log_download_bytes = start  # TFDS's hooks (tensorflow_datasets.core.dataset_builder)
  builder._log_download_done = lambda: None


def main(argv=None) -> int:
  p = argparse.ArgumentParser(
    prog="python -m jaxact.data.build",
    description="Build a jaxact TFDS dataset (ArrayRecord, RGB JPEG + TV-L1 flow).",
  )
  p.add_argument("name", help=", ".join(sorted(datasets.DATASET_NAMES)))
  p.add_argument("--manual_dir", default=None, help="the official download (layouts in the README)")
  p.add_argument("--data_dir", default=None, help="TFDS data dir")
  p.add_argument("--config", default="", help="builder config, e.g. split2")
  p.add_argument(
    "--set",
    action="append",
    default=[],
    metavar="KEY=VALUE",
    help="builder-config field, e.g. short_side=128 (repeatable)",
  )
  args = p.parse_args(argv)
  overrides = {}
  for item in args.set:
    try:
      key, value = keyvalue.parse_item(item)
    except keyvalue.KeyValueError as e:
      p.error(f"--set: {e}")
    overrides[key] = value
  try:
    info = ensure_built(args.name, args.data_dir, args.manual_dir, config=args.config, **overrides)
  except (KeyError, FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(
    f"{info.name}/{info.config} ready at {info.path}: "
    f"{info.num_classes} classes, "
    + ", ".join(f"{k} {v}" for k, v in sorted(info.split_sizes.items()))
    + f", {len(info.skipped)} skipped"
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
