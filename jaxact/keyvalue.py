"""The one ``key=value`` parser of jaxact's command lines and config arguments.

Used by ``--config path.py:split=2,smoke`` (:func:`parse`, typed by the
config's defaults), by ``python -m jaxact.data.build --set short_side=128``
and by the flow extraction CLI's ``--param warps=3`` (:func:`parse_item`,
typed by the value's own spelling).
"""

from collections.abc import Iterable, Mapping
from typing import Any


class KeyValueError(ValueError):
  """A ``key=value`` item that cannot be used; the message names it and the fix."""


def parse_value(text: str) -> Any:
  """``'3'`` → 3, ``'0.5'`` → 0.5, ``'true'``/``'false'`` → bool, else the string."""
  text = text.strip()
  if text.lower() in ("true", "false"):
    return text.lower() == "true"
  for cast in (int, float):
    try:
      return cast(text)
    except ValueError:
      pass
  return text


def parse_item(item: str) -> tuple[str, Any]:
  """``'warps=3'`` → ``('warps', 3)`` (value typed by :func:`parse_value`)."""
  key, sep, value = item.partition("=")
  if not sep or not key.strip():
    raise KeyValueError(f"expected KEY=VALUE, got {item!r}")
  return key.strip(), parse_value(value)


def parse(arg: str | Iterable[str] | None, defaults: Mapping[str, Any]) -> dict[str, Any]:
  """Parse ``'split=2,smoke'`` (or a list of items) against typed ``defaults``.

  A bare word ``w`` sets ``w=True``; a value is converted to the type of its
  default (``bool`` accepts 1/0, true/false, yes/no).

  Raises:
    KeyValueError: an unknown key (the known ones are listed) or a value of
      the wrong type.
  """
  items = arg.split(",") if isinstance(arg, str) else list(arg or ())
  out = dict(defaults)
  for item in filter(None, (i.strip() for i in items)):
    key, sep, value = item.partition("=")
    key = key.strip()
    if key not in defaults:
      raise KeyValueError(f"Unknown config argument {key!r}; known: {sorted(defaults)}")
    kind = type(defaults[key])
    if not sep:
      out[key] = True
    elif kind is bool:
      word = value.strip().lower()
      if word not in ("1", "0", "true", "false", "yes", "no"):
        raise KeyValueError(f"Config argument {key}={value!r} is not a bool (true/false)")
      out[key] = word in ("1", "true", "yes")
    else:
      try:
        out[key] = kind(value.strip())
      except ValueError:
        raise KeyValueError(f"Config argument {key}={value!r} is not a {kind.__name__}") from None
  return out
