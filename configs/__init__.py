"""The experiment configs, installed with the package as ``jaxact.configs``.

Each ``NAME.py`` here is one experiment (its docstring gives the command, the
hardware, the time and the expected result); :mod:`jaxact.configs.common`
holds what they share. From a checkout run ``--config configs/NAME.py[:ARG]``;
anywhere, ``--config NAME[:ARG]`` runs the installed copy (see ``jaxact.main``).
"""

import os

DIRECTORY = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(DIRECTORY, "demo.py")


def names() -> list[str]:
  """Names of the installed experiment configs (``demo``, ``kinetics``, ...)."""
  return sorted(
    f[:-3]
    for f in os.listdir(DIRECTORY)
    if f.endswith(".py") and not f.startswith("_") and f != "common.py"
  )


def resolve(value: str) -> str:
  """The file behind a ``--config`` value, its ``:ARG`` kept.

  An existing path is used as given; otherwise ``NAME`` or ``NAME.py`` naming
  an installed config (:func:`names`) is its installed file, so
  ``--config demo:smoke`` runs from any folder. Anything else is left for
  ml_collections to report.
  """
  path, sep, arg = value.partition(":")
  name = path.removesuffix(".py")
  if not os.path.exists(path) and name in names():
    return os.path.join(DIRECTORY, f"{name}.py") + sep + arg
  return value
