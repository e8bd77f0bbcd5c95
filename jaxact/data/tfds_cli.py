"""TFDS's ``tfds build`` command, runnable without TensorFlow: ``jaxact-tfds``.

With TensorFlow installed, the stock command builds jaxact's datasets
(verified with tensorflow-cpu 2.21.0 and tensorflow-datasets 4.9.10, see
docs/tfds_build.md)::

  tfds build jaxact_ucf101 --imports jaxact.data.datasets.registered \
      --manual_dir ~/UCF101 --data_dir ~/tensorflow_datasets \
      --config all

Without TensorFlow it cannot start: tensorflow-datasets 4.9.10's ``tfds``
script imports every command at start-up, and
``scripts/cli/convert_format_utils.py`` evaluates ``tf.train.Example`` (and
``beam.DoFn``) at module level, ``scripts/cli/croissant.py`` imports
``mlcroissant``; so the stock script needs TensorFlow, apache-beam and
mlcroissant even for ``build``. This module runs TFDS's own ``build`` command
(same flags, same code) without any of them::

  jaxact-tfds build jaxact_ucf101 --imports jaxact.data.datasets.registered \
      --manual_dir ~/UCF101 --data_dir ~/tensorflow_datasets \
      --config all

(``python -m jaxact.data.tfds_cli build ...`` is the same command.) With
either, jaxact's builders write ArrayRecord unless ``--file_format`` says
otherwise (TFDS's default, tfrecord, has no random access, so jaxact cannot
read it); pass ``--config`` (without it TFDS builds every config). Custom
configs are JSON, e.g. ``--config '{"name": "small", "short_side": 128}'``;
unnamed fields take the config class's defaults, not those of a named config.
"""

from __future__ import annotations

import sys

from tensorflow_datasets.scripts.cli import build, cli_utils

USAGE = (
  "usage: jaxact-tfds build DATASET [tfds build flags]\n"
  "(the flags of `tfds build`; `jaxact-tfds build --help` lists them)"
)


def main(argv: list[str]) -> None:
  """``argv``: ``[prog, 'build', ...]`` as on the ``tfds`` command line."""
  if len(argv) >= 2 and argv[1] in ("-h", "--help"):
    print(USAGE)
    return
  if len(argv) < 2 or argv[1] != "build":
    raise SystemExit(USAGE)
  parse = cli_utils.make_flags_parser(
    build.Args, description="tfds build (jaxact, no TensorFlow needed)"
  )
  parse([argv[0]] + argv[2:]).execute()


def run() -> None:
  """Console-script entry point (``jaxact-tfds``)."""
  main(sys.argv)


if __name__ == "__main__":
  main(sys.argv)
