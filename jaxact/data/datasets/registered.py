"""Imports (and so registers with TFDS) every jaxact builder.

For TFDS's own tooling, which finds builders by registered name::

  tfds build jaxact_ucf101 --imports jaxact.data.datasets.registered ...

jaxact itself never imports this module; it loads builders lazily through
``jaxact.data.datasets.builder_class``.
"""

# pylint: disable=unused-import
from jaxact.data.datasets import (
  hmdb51,  # noqa: F401
  kinetics400,  # noqa: F401
  synthetic_motion,  # noqa: F401
  ucf101,  # noqa: F401
  video_folder,  # noqa: F401
)
