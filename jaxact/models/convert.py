"""Import PyTorch ResNet / CoTNet weights into jaxact's Flax backbones.

:func:`from_torch` merges a PyTorch state dict into the variables of a
:mod:`jaxact.models.resnet` backbone (or one stream of a two-stream network)
*by name*, and refuses silent partial loads: every missing, unexpected or
shape-mismatched entry is listed in one :class:`WeightImportError`. Two cases
are expected and only reported (logged at WARNING):

* the classifier: if the checkpoint's ``fc`` has another number of classes,
  or none, or the model has no head, the model's ``fc`` keeps its fresh
  initialisation (or the checkpoint's classifier is ignored);
* the first conv of a temporal (flow) stream with ``2L`` input channels from
  an RGB checkpoint: the "cross-modality" rule of TSN, i.e. the RGB kernel
  averaged over its 3 input channels and replicated ``2L`` times.

Layouts (names of the PyTorch modules):

* ``'torchvision'`` (also timm): ``conv1``, ``bn1``, ``layer1.0.conv1``, …,
  ``layer1.0.downsample.0``/``.1``, ``fc``.
* ``'cotnet'``: the official CoTNet repository (timm-based), e.g.
  ``layer1.0.conv2.key_embed.0.weight``; same rule as ``'torchvision'``.
* ``'hf'``: transformers ``ResNetModel`` / ``ResNetForImageClassification``
  (``[resnet.]embedder.embedder.convolution``, ``encoder.stages.0.layers.0.
  layer.1.normalization``, ``shortcut.convolution``, ``classifier.1``).

Tensors: conv kernels OIHW → HWIO, linear weights (out, in) → (in, out), BN
``weight``/``bias``/``running_mean``/``running_var`` → ``scale``/``bias`` (params)
and ``mean``/``var`` (batch_stats).

Checkpoint files: :func:`load_state_dict` reads ``.pth``/``.pt``/``.bin`` with
``torch.load(weights_only=True)`` and ``.safetensors``/``.npz`` without torch.
"""

import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from safetensors.numpy import load_file as load_safetensors

from jaxact.models import cot, resnet

logger = logging.getLogger(__name__)

LAYOUTS = ("torchvision", "timm", "cotnet", "hf")
_LEAF_TORCH = {
  ("params", "kernel"): "weight",
  ("params", "scale"): "weight",
  ("params", "bias"): "bias",
  ("batch_stats", "mean"): "running_mean",
  ("batch_stats", "var"): "running_var",
}
_IGNORED_SUFFIXES = ("num_batches_tracked",)


_MAX_LISTED = 20  # entries listed per kind of problem in an error message


def _is_backbone(model: nn.Module) -> bool:
  return isinstance(model, (resnet.ResNet, resnet.Bottleneck, cot.CotLayer))


class WeightImportError(ValueError):
  """The checkpoint does not fit the model; the message lists every problem."""


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads a checkpoint file into ``{name: numpy array}``.

  Args:
    path: ``.safetensors`` or ``.npz`` (no torch needed), or ``.pth`` / ``.pt``
      / ``.bin`` / ``.pth.tar`` (``torch.load(weights_only=True)``; a
      ``{'state_dict': ...}`` or ``{'model': ...}`` wrapper is unwrapped).

  Returns:
    Flat dict of float32 (or integer) numpy arrays.
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"Checkpoint not found: {path}")
  if path.endswith(".safetensors"):
    return _normalise(load_safetensors(path))
  if path.endswith(".npz"):
    with np.load(path) as data:
      return _normalise(dict(data))
  try:
    import torch  # noqa: PLC0415 (optional heavy dependency)
  except ImportError as e:
    raise ImportError(
      f"Reading {path} needs PyTorch (pip install torch); or convert it to .safetensors first"
    ) from e
  try:
    obj = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as e:  # pickle errors, truncated files, non-tensor objects
    raise WeightImportError(f"Cannot read PyTorch checkpoint {path}: {e}") from e
  return _normalise(obj)


def _to_numpy(value: Any) -> np.ndarray:
  if hasattr(value, "detach"):  # torch.Tensor, without importing torch
    value = value.detach().cpu()
    if value.is_floating_point():
      value = value.float()
    value = value.numpy()
  value = np.asarray(value)
  if np.issubdtype(value.dtype, np.floating):
    value = value.astype(np.float32)
  return value


def _normalise(state_dict: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """Unwraps training checkpoints, strips ``module.``, converts to numpy."""
  for key in ("state_dict", "model", "model_state"):
    if key in state_dict and isinstance(state_dict[key], Mapping):
      state_dict = state_dict[key]
      break
  out = {}
  for name, value in state_dict.items():
    if name.endswith(_IGNORED_SUFFIXES):
      continue
    if name.startswith("module."):
      name = name[len("module.") :]
    out[name] = _to_numpy(value)
  return out


def _timm_name(path: tuple[str, ...]) -> str:
  """``('layer1_0', 'conv2', 'key_embed_0')`` → ``'layer1.0.conv2.key_embed.0'``."""
  parts = []
  for seg in path:
    if seg == "downsample_conv":
      parts.append("downsample.0")
    elif seg == "downsample_bn":
      parts.append("downsample.1")
    else:
      parts.append(re.sub(r"^(.+)_(\d+)$", r"\1.\2", seg))
  return ".".join(parts)


def _hf_name(path: tuple[str, ...], prefix: str) -> str:
  """Module path → transformers ``ResNet*`` module name."""
  head = path[0]
  if head == "fc":
    return "classifier.1"
  if head in ("conv1", "bn1") and len(path) == 1:
    kind = "convolution" if head == "conv1" else "normalization"
    return f"{prefix}embedder.embedder.{kind}"
  m = re.fullmatch(r"layer(\d+)_(\d+)", head)
  if m is None or len(path) != 2:
    raise WeightImportError(
      f"Layout 'hf' has no equivalent of {'/'.join(path)} "
      "(transformers ResNet has plain 3×3 convs only)"
    )
  block = f"{prefix}encoder.stages.{int(m[1]) - 1}.layers.{m[2]}"
  sub = path[1]
  if sub == "downsample_conv":
    return f"{block}.shortcut.convolution"
  if sub == "downsample_bn":
    return f"{block}.shortcut.normalization"
  m = re.fullmatch(r"(conv|bn)(\d)", sub)
  if m is None:
    raise WeightImportError(f"Layout 'hf' has no equivalent of {'/'.join(path)}")
  kind = "convolution" if m[1] == "conv" else "normalization"
  return f"{block}.layer.{int(m[2]) - 1}.{kind}"


def _name_fn(layout: str, state_dict: Mapping[str, Any]) -> Callable[[tuple[str, ...]], str]:
  if layout in ("torchvision", "timm", "cotnet"):
    return _timm_name
  if layout == "hf":
    prefix = "resnet." if any(k.startswith("resnet.") for k in state_dict) else ""
    return lambda path: _hf_name(path, prefix)
  raise ValueError(f"Unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")


def _to_flax(value: np.ndarray, leaf: str) -> np.ndarray:
  if leaf == "kernel" and value.ndim == 4:
    return value.transpose(2, 3, 1, 0)  # OIHW → HWIO
  if leaf == "kernel" and value.ndim == 2:
    return value.T  # (out, in) → (in, out)
  return value


def cross_modality_kernel(rgb_kernel: np.ndarray, in_channels: int) -> np.ndarray:
  """TSN cross-modality init: average an RGB conv kernel over its input channels.

  Args:
    rgb_kernel: HWIO ``(kh, kw, 3, O)``.
    in_channels: channels of the new input (``2L`` for L stacked flows).

  Returns:
    ``(kh, kw, in_channels, O)``: the channel mean, replicated.
  """
  mean = rgb_kernel.mean(axis=2, keepdims=True)
  return np.repeat(mean, in_channels, axis=2)


def _init_shapes(model: nn.Module, input_channels: int) -> dict:
  x = jnp.zeros((1, 64, 64, input_channels), jnp.float32)
  return jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))


def _init_values(model: nn.Module, input_channels: int, rng: jax.Array | None) -> dict:
  x = jnp.zeros((1, 64, 64, input_channels), jnp.float32)
  rng = jax.random.key(0) if rng is None else rng
  return jax.jit(lambda r: model.init(r, x, train=False))(rng)


def _fresh_classifier(flat: Mapping[tuple[str, ...], Any], rng: jax.Array | None) -> dict:
  """A freshly initialised ``fc`` alone (cheaper than initialising the model)."""
  kernel = flat[("params", "fc", "kernel")]
  dense = nn.Dense(kernel.shape[1], param_dtype=kernel.dtype)
  rng = jax.random.key(0) if rng is None else rng
  params = jax.jit(dense.init)(rng, jnp.zeros((1, kernel.shape[0]), kernel.dtype))["params"]
  return {("params", "fc", leaf): value for leaf, value in params.items()}


def from_torch(
  state_dict: Mapping[str, Any] | str | os.PathLike,
  model: nn.Module,
  *,
  layout: str = "torchvision",
  variables: Mapping[str, Any] | None = None,
  stream: str | None = None,
  input_channels: int = 3,
  rng: jax.Array | None = None,
  strict: bool = True,
) -> dict[str, Any]:
  """Builds Flax variables for ``model`` from a PyTorch checkpoint.

  Args:
    state_dict: ``{name: tensor or array}`` (a training checkpoint's
      ``{'state_dict': ...}`` wrapper and ``module.`` prefixes are handled), or
      a path for :func:`load_state_dict`.
    model: a :mod:`jaxact.models.resnet` backbone, or a two-stream network
      when ``stream`` is given.
    layout: ``'torchvision'`` (or ``'timm'``), ``'cotnet'`` or ``'hf'``.
    variables: existing variables to fill; required with ``stream``. Entries
      the checkpoint does not provide (a new classifier) keep these values.
      Without it the backbone is initialised with ``rng`` (only when needed).
    stream: ``'spatial'`` or ``'temporal'``: fill that backbone of a two-stream
      network's ``variables`` and return all variables.
    input_channels: input channels of a backbone built here (without
      ``variables``), e.g. 20 for 10 stacked flows.
    rng: PRNG key for fresh parameters (default ``jax.random.key(0)``).
    strict: raise on missing / unexpected / mismatched entries; if False,
      only log them and keep the model's values.

  Returns:
    ``{'params': ..., 'batch_stats': ...}`` (nested dicts of jax arrays in the
    model's parameter dtype).

  Raises:
    WeightImportError: listing every missing, unexpected and shape-mismatched
      entry (with ``strict=True``).
  """
  if isinstance(state_dict, (str, os.PathLike)):
    state_dict = load_state_dict(state_dict)
  else:
    state_dict = _normalise(state_dict)
  name_of = _name_fn(layout, state_dict)

  if stream is not None:
    if variables is None:
      raise ValueError(
        f"from_torch(stream={stream!r}) needs the two-stream network's "
        "variables=model.init(...) to fill"
      )
    full = flax.core.unfreeze(variables)
    if stream not in full.get("params", {}):
      raise ValueError(
        f"No stream {stream!r} in the variables; found {sorted(full.get('params', {}))}"
      )
    target = {col: full[col][stream] for col in ("params", "batch_stats")}
  elif variables is not None:
    target = flax.core.unfreeze(variables)
    if {"spatial", "temporal"} <= set(target.get("params", {})):
      raise ValueError(
        "These are two-stream variables: pass stream='spatial' or "
        "stream='temporal' to choose the backbone to fill"
      )
  else:
    if not _is_backbone(model):
      raise ValueError(
        f"from_torch builds variables for resnet backbones only; for "
        f"{type(model).__name__} pass variables=model.init(...) "
        "(and stream='spatial'|'temporal' for a two-stream network)"
      )
    target = _init_shapes(model, input_channels)
  target = {col: target[col] for col in ("params", "batch_stats")}

  flat = flax.traverse_util.flatten_dict(target)
  loaded, fresh, missing, mismatched, notes = {}, [], [], [], []
  used = set()
  for key, ref in flat.items():
    col, *mod_path, leaf = key
    mod_path = tuple(mod_path)
    torch_name = f"{name_of(mod_path)}.{_LEAF_TORCH[(col, leaf)]}"
    is_classifier = mod_path[0] == "fc"
    if torch_name not in state_dict:
      if is_classifier:
        fresh.append(key)
        notes.append(f"{torch_name}: not in checkpoint, classifier left freshly initialised")
      else:
        missing.append(f"{torch_name} (for {'/'.join(key)}, shape {tuple(ref.shape)})")
      continue
    used.add(torch_name)
    value = _to_flax(state_dict[torch_name], leaf)
    if value.shape != tuple(ref.shape):
      if (
        mod_path == ("conv1",)
        and leaf == "kernel"
        and value.ndim == 4
        and value.shape[2] == 3
        and value.shape[:2] + value.shape[3:] == tuple(ref.shape[:2]) + tuple(ref.shape[3:])
      ):
        value = cross_modality_kernel(value, ref.shape[2])
        notes.append(
          f"conv1: {ref.shape[2]}-channel kernel built from the RGB "
          "checkpoint by cross-modality averaging (mean over RGB, replicated)"
        )
      elif is_classifier:
        fresh.append(key)
        notes.append(
          f"{torch_name}: checkpoint shape {value.shape} != model "
          f"{tuple(ref.shape)} (other num_classes); classifier left "
          "freshly initialised"
        )
        continue
      else:
        mismatched.append(
          f"{torch_name}: checkpoint {value.shape} (as Flax) vs "
          f"model {tuple(ref.shape)} at {'/'.join(key)}"
        )
        continue
    loaded[key] = value.astype(ref.dtype)

  unexpected = sorted(set(state_dict) - used)
  head_names = {"fc.weight", "fc.bias", "classifier.1.weight", "classifier.1.bias"}
  if "params" in target and "fc" not in target["params"]:
    ignored = [n for n in unexpected if n in head_names]
    if ignored:
      notes.append(f"model has no classifier; ignored {', '.join(ignored)}")
    unexpected = [n for n in unexpected if n not in head_names]

  problems = []
  for title, names in (
    ("missing from checkpoint", missing),
    ("unexpected in checkpoint", unexpected),
    ("shape mismatch", mismatched),
  ):
    if names:
      shown = names[:_MAX_LISTED] + (
        [f"... and {len(names) - _MAX_LISTED} more"] if len(names) > _MAX_LISTED else []
      )
      problems.append(f"{title} ({len(names)}):\n  " + "\n  ".join(shown))
  if problems:
    msg = (
      f"Checkpoint does not fit {type(model).__name__} (layout={layout!r}"
      f"{f', stream={stream!r}' if stream else ''}); loaded {len(loaded)} of "
      f"{len(flat)} entries.\n" + "\n".join(problems)
    )
    if not loaded:
      msg += (
        f"\nNothing matched: is layout={layout!r} right (one of {', '.join(LAYOUTS)})? "
        f"Checkpoint names look like: {', '.join(sorted(state_dict)[:3])}"
      )
    if strict:
      raise WeightImportError(msg)
    logger.warning("%s", msg)
  for note in notes:
    logger.warning("from_torch: %s", note)

  keep = [k for k in flat if k not in loaded]
  if keep:
    if stream is not None or variables is not None:
      base = flax.traverse_util.flatten_dict(target)
    elif all(k[:2] == ("params", "fc") for k in keep):
      base = _fresh_classifier(flat, rng)
    else:
      init = _init_values(model, input_channels, rng)
      base = flax.traverse_util.flatten_dict({c: init[c] for c in ("params", "batch_stats")})
    for k in keep:
      loaded[k] = base[k]
  result = flax.traverse_util.unflatten_dict({k: jnp.asarray(v) for k, v in loaded.items()})
  result = {col: result.get(col, {}) for col in ("params", "batch_stats")}
  if stream is None:
    return result
  full = flax.core.unfreeze(variables)
  for col in ("params", "batch_stats"):
    full[col] = {**full[col], stream: result[col]}
  return full
