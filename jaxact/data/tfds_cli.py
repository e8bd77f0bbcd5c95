"""TFDS's ``tfds build`` command, runnable without TensorFlow.

``tfds build`` (tensorflow-datasets 4.9.x) imports TensorFlow at start-up for
its unrelated ``convert_format`` command, so it fails where TF is absent. This
module runs TFDS's own ``build`` command (same flags, same code) directly::

  python -m jaxact.data.tfds_cli build jaxact_ucf101 \
      --imports jaxact.data.datasets.registered \
      --manual_dir ~/UCF101 --data_dir ~/tensorflow_datasets \
      --file_format array_record --config split1

With TensorFlow installed, ``tfds build`` takes exactly the same arguments.
Custom builder configs can be given as JSON, e.g.
``--config '{"name": "small", "short_side": 128}'``.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
  """``argv``: ``[prog, 'build', ...]`` as on the ``tfds`` command line."""
  if len(argv) < 2 or argv[1] != "build":
    raise SystemExit("usage: python -m jaxact.data.tfds_cli build DATASET "
                     "[tfds build flags]")
  from tensorflow_datasets.scripts.cli import build  # pylint: disable=g-import-not-at-top
  from tensorflow_datasets.scripts.cli import cli_utils  # pylint: disable=g-import-not-at-top
  parse = cli_utils.make_flags_parser(
      build.Args, description="tfds build (jaxact, no TensorFlow needed)")
  parse([argv[0]] + argv[2:]).execute()


if __name__ == "__main__":
  main(sys.argv)
