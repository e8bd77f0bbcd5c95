"""Imports (and so registers with TFDS) every jaxact builder.

For TFDS's own tooling, which finds builders by registered name::

  tfds build jaxact_ucf101 --imports jaxact.data.datasets.registered ...

jaxact itself never imports this module; it loads builders lazily through
``jaxact.data.datasets.builder_class``.
"""

# pylint: disable=unused-import
