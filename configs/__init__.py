"""The experiment configs, installed with the package as ``jaxact.configs``.

Each ``NAME.py`` here is one experiment (its docstring gives the command, the
hardware, the time and the expected result); :mod:`jaxact.configs.common`
holds what they share. From a checkout run ``--config configs/NAME.py[:ARG]``;
anywhere, ``--config NAME[:ARG]`` runs the installed copy (see ``jaxact.main``).
"""
