"""Model zoo: backbones, recurrent heads, fusion and the two papers' networks.

Use :func:`create` to build any registered network by name::

    model = jaxact.models.create("two_stream_lstm", num_classes=101)
    logits, features = model.apply(variables, {"rgb": rgb, "flow": flow})

Registered names are listed by :func:`names`.
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn

from jaxact.models import resnet, two_stream

# Every registered network by name: the backbones, then the two papers' networks.
REGISTRY: dict[str, Callable[..., nn.Module]] = {
  **resnet.BACKBONES,
  **two_stream.TWO_STREAM_MODELS,
}


def names() -> list[str]:
  """Sorted names accepted by :func:`create`."""
  return sorted(REGISTRY)


def create(name: str, *, num_classes: int, **overrides: Any) -> nn.Module:
  """Build the registered network ``name`` with a ``num_classes``-way head.

  Args:
    name: one of :func:`names` (e.g. ``resnet101``, ``cotnet101``,
      ``two_stream_lstm``, ``two_stream_convlstm``, and ``*_tiny`` variants).
    num_classes: size of the classifier output.
    **overrides: module fields to change (``dtype``, ``param_dtype``,
      ``backbone``, ``fusion``, …); an unknown field raises ``TypeError``.

  Returns:
    An unbound ``flax.linen.Module``; ``module.apply(variables, x, train=False)``
    returns ``(logits, features)``.
  """
  if name not in REGISTRY:
    raise ValueError(f"Unknown model {name!r}; known models: {', '.join(names())}")
  return REGISTRY[name](num_classes=num_classes, **overrides)
