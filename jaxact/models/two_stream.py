"""The two papers' two-stream networks, composed from backbones, heads and fusion.

Inputs are a dict of *normalised* float arrays in NTHWC layout::

    {'rgb':  (N, T, H, W, 3),    # ImageNet mean/std (jaxact.data.normalize)
     'flow': (N, T, H, W, 2L)}   # (v - 128) / 128 on quantised flow, x1,y1,x2,y2,…

Normalisation is *not* done here: the input pipeline ships uint8 and the
jitted train / eval step calls :func:`jaxact.data.normalize.normalize_inputs`
on the device, so the networks stay comparable with PyTorch references that
take normalised tensors.

Both networks return ``(logits, features)`` where ``logits`` ``(N, K)`` are the
fused scores and ``features`` holds ``spatial_logits`` and ``temporal_logits``
``(N, K)`` (each stream's own classifier), so spatial-only, temporal-only and
fused accuracies come from one forward pass (paper A Table II, paper B Table 3),
and each stream can be trained alone.

Parameter trees: backbones under ``spatial`` and ``temporal`` (so weight import
and freezing work by name), then the head parts listed in each class.

Grad-CAM (``jaxact.eval.cam``) reaches each stream's stage maps under the same
names: ``intermediates/spatial/conv5``, ``perturbations/temporal/conv4``, …
(``resnet.ResNet.expose``); a spatial stream fed only the centre frame has one
map per clip, a stream fed every step has T.
"""

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxact.models import fusion as fusion_lib
from jaxact.models import recurrent, resnet

Dtype = Any
FUSION_LAYERS = ("conv3", "conv4", "conv5")


def _check_inputs(x: dict, same_steps: bool) -> tuple[jax.Array, jax.Array]:
  if not isinstance(x, dict) or "rgb" not in x or "flow" not in x:
    raise ValueError(
      "two-stream networks take a dict with 'rgb' (N,T,H,W,3) and "
      f"'flow' (N,T,H,W,2L) arrays; got {type(x).__name__}"
    )
  rgb, flow = x["rgb"], x["flow"]
  if rgb.ndim != 5 or flow.ndim != 5:
    raise ValueError(f"expected 5-D NTHWC inputs; got rgb {rgb.shape}, flow {flow.shape}")
  if rgb.shape[0] != flow.shape[0] or (same_steps and rgb.shape[1] != flow.shape[1]):
    raise ValueError(
      f"rgb {rgb.shape} and flow {flow.shape} disagree in batch"
      + (" or time steps" if same_steps else "")
    )
  return rgb, flow


def _merge_time(x: jax.Array) -> jax.Array:
  """``(N, T, ...)`` → ``(N·T, ...)``: each step through the backbone as a frame."""
  return x.reshape((-1,) + x.shape[2:])


def _split_time(x: jax.Array, n: int) -> jax.Array:
  return x.reshape((n, -1) + x.shape[1:])


def _backbone(
  name: str, num_classes: int | None, dtype: Dtype, param_dtype: Dtype, module_name: str
) -> nn.Module:
  if name not in resnet.BACKBONES:
    raise ValueError(f"Unknown backbone {name!r}; known: {sorted(resnet.BACKBONES)}")
  return resnet.BACKBONES[name](
    num_classes=num_classes, dtype=dtype, param_dtype=param_dtype, name=module_name
  )


def _run_backbone(module: nn.Module, x: jax.Array, train: bool, frozen: bool):
  """Backbone on ``(N·T, H, W, C)``; a frozen one uses running BN statistics
  and passes no gradient (paper B's second stage)."""
  logits, features = module(x, train=train and not frozen)
  if frozen:
    logits, features = jax.lax.stop_gradient((logits, features))
  return logits, features


class TwoStreamLSTM(nn.Module):
  """Paper A: CoTNet (or ResNet) two-stream network with an LSTM on flow.

  Spatial stream: backbone on RGB → pooled → FC-1 (ReLU, dropout).
  Temporal stream: backbone on each of the T flow stacks → pooled per step →
  LSTM → last hidden state → FC-2 (ReLU, dropout).
  Fusion (concatenation in the paper) → ``classifier``. ``spatial_classifier``
  and ``temporal_classifier`` score FC-1 and FC-2 alone.

  Parameters: ``spatial``, ``temporal``, ``fc1``, ``lstm``, ``fc2``,
  ``fusion`` (conv fusion only), ``classifier``, ``spatial_classifier``,
  ``temporal_classifier``.

  Attributes:
    num_classes: number of action classes.
    backbone: ``'cotnet101'`` (the paper) or ``'resnet101'`` (its ablation),
      or any name of ``resnet.BACKBONES``.
    spatial_frames: ``'center'`` feeds the spatial stream one RGB frame (the
      middle step, as in the paper); ``'all'`` averages pooled features of all
      T frames (TSN-style consensus).
    fc_features: width of FC-1 and FC-2 (the paper does not state it).
    lstm_features, lstm_layers: LSTM size.
    fc1_dropout, fc2_dropout: dropout rates on FC-1 and FC-2 (paper: 0.5 each).
    fusion: ``'concat'`` (paper), ``'sum'``, ``'max'`` or ``'conv'``.
  """

  num_classes: int
  backbone: str = "cotnet101"
  spatial_frames: str = "center"
  fc_features: int = 512
  lstm_features: int = 512
  lstm_layers: int = 1
  fc1_dropout: float = 0.5
  fc2_dropout: float = 0.5
  fusion: str = "concat"
  freeze_backbones: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: dict, train: bool = False):
    """Args: x ``{'rgb': (N,Ts,H,W,3), 'flow': (N,T,H,W,2L)}``; train enables
    dropout (RNG ``'dropout'``) and batch statistics. Returns ``(logits,
    features)`` with ``spatial_logits``, ``temporal_logits``, ``spatial``
    (FC-1 output) and ``temporal`` (FC-2 output)."""
    rgb, flow = _check_inputs(x, same_steps=False)
    n = rgb.shape[0]
    dense = functools.partial(nn.Dense, dtype=self.dtype, param_dtype=self.param_dtype)

    if self.spatial_frames == "center":
      rgb = rgb[:, rgb.shape[1] // 2][:, None]
    elif self.spatial_frames != "all":
      raise ValueError(f"spatial_frames must be 'center' or 'all', got {self.spatial_frames!r}")
    spatial = _backbone(self.backbone, None, self.dtype, self.param_dtype, "spatial")
    _, fs = _run_backbone(spatial, _merge_time(rgb), train, self.freeze_backbones)
    pooled_s = _split_time(fs["pooled"], n).mean(axis=1)
    f1 = nn.relu(dense(self.fc_features, name="fc1")(pooled_s))
    f1 = nn.Dropout(self.fc1_dropout, deterministic=not train)(f1)

    temporal = _backbone(self.backbone, None, self.dtype, self.param_dtype, "temporal")
    _, ft = _run_backbone(temporal, _merge_time(flow), train, self.freeze_backbones)
    last, _ = recurrent.LSTMHead(
      self.lstm_features,
      self.lstm_layers,
      dtype=self.dtype,
      param_dtype=self.param_dtype,
      name="lstm",
    )(_split_time(ft["pooled"], n))
    f2 = nn.relu(dense(self.fc_features, name="fc2")(last))
    f2 = nn.Dropout(self.fc2_dropout, deterministic=not train)(f2)

    fused = fusion_lib.Fusion(
      self.fusion, dtype=self.dtype, param_dtype=self.param_dtype, name="fusion"
    )(f1, f2)
    as_f32 = lambda a: jnp.asarray(a, jnp.float32)
    logits = as_f32(dense(self.num_classes, name="classifier")(fused))
    features = {
      "spatial_logits": as_f32(dense(self.num_classes, name="spatial_classifier")(f1)),
      "temporal_logits": as_f32(dense(self.num_classes, name="temporal_classifier")(f2)),
      "spatial": f1,
      "temporal": f2,
    }
    return logits, features


class TwoStreamConvLSTM(nn.Module):
  """Paper B: ResNet two-stream network, feature-map fusion, ConvLSTM.

  At each step t the spatial backbone sees RGB frame t and the temporal
  backbone the flow stack at t; their maps at ``fusion_layer`` are fused with
  ``fusion`` and the T fused maps go through the ConvLSTM; the last hidden
  map is averaged over space → dropout → ``classifier``. Each backbone keeps
  its own ``fc`` head: its logits averaged over the T steps are the stream's
  own scores (paper B's first stage fine-tunes each stream with them).

  Parameters: ``spatial``, ``temporal`` (each with ``fc``), ``fusion`` (conv
  fusion only), ``convlstm``, ``classifier``.

  Attributes:
    num_classes: number of action classes.
    backbone: ``'resnet101'`` (the paper) or any name of ``resnet.BACKBONES``.
    fusion: ``'sum'`` (the paper's choice), ``'max'``, ``'concat'``, ``'conv'``.
    fusion_layer: ``'conv3'``, ``'conv4'`` or ``'conv5'`` (the paper's best).
    convlstm_features, convlstm_layers, convlstm_kernel: ConvLSTM size
      (paper: 300, 1–3, 3 or 5).
    untied_first_step: paper B's released ConvLSTM (True) or the tied cell.
    dropout_rate: dropout before the classifier.
    freeze_backbones: run the backbones with running BN statistics and no
      gradient (paper B's second stage: only the ConvLSTM head trains).
  """

  num_classes: int
  backbone: str = "resnet101"
  fusion: str = "sum"
  fusion_layer: str = "conv5"
  convlstm_features: int = 300
  convlstm_layers: int = 1
  convlstm_kernel: int = 3
  untied_first_step: bool = True
  dropout_rate: float = 0.5
  freeze_backbones: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: dict, train: bool = False):
    """Args: x ``{'rgb': (N,T,H,W,3), 'flow': (N,T,H,W,2L)}`` with equal T.
    Returns ``(logits, features)`` with ``spatial_logits``,
    ``temporal_logits`` and ``fused`` (the ConvLSTM input, ``(N,T,h,w,C')``)."""
    if self.fusion_layer not in FUSION_LAYERS:
      raise ValueError(f"fusion_layer must be one of {FUSION_LAYERS}, got {self.fusion_layer!r}")
    rgb, flow = _check_inputs(x, same_steps=True)
    n = rgb.shape[0]
    kw = {"dtype": self.dtype, "param_dtype": self.param_dtype}

    spatial = _backbone(self.backbone, self.num_classes, self.dtype, self.param_dtype, "spatial")
    temporal = _backbone(self.backbone, self.num_classes, self.dtype, self.param_dtype, "temporal")
    logits_s, fs = _run_backbone(spatial, _merge_time(rgb), train, self.freeze_backbones)
    logits_t, ft = _run_backbone(temporal, _merge_time(flow), train, self.freeze_backbones)

    fused = fusion_lib.Fusion(self.fusion, name="fusion", **kw)(
      _split_time(fs[self.fusion_layer], n), _split_time(ft[self.fusion_layer], n)
    )
    last, _ = recurrent.ConvLSTMHead(
      self.convlstm_features,
      self.convlstm_layers,
      self.convlstm_kernel,
      self.untied_first_step,
      name="convlstm",
      **kw,
    )(fused)
    pooled = jnp.mean(last, axis=(1, 2))
    pooled = nn.Dropout(self.dropout_rate, deterministic=not train)(pooled)
    logits = nn.Dense(self.num_classes, name="classifier", **kw)(pooled)
    features = {
      "spatial_logits": _split_time(logits_s, n).mean(axis=1),
      "temporal_logits": _split_time(logits_t, n).mean(axis=1),
      "fused": fused,
    }
    return jnp.asarray(logits, jnp.float32), features


TWO_STREAM_MODELS: dict[str, Callable[..., nn.Module]] = {
  "two_stream_lstm": TwoStreamLSTM,
  "two_stream_convlstm": TwoStreamConvLSTM,
  # Tiny variants for tests and the CPU demo.
  "two_stream_lstm_tiny": functools.partial(
    TwoStreamLSTM, backbone="cotnet_tiny", fc_features=32, lstm_features=32
  ),
  "two_stream_convlstm_tiny": functools.partial(
    TwoStreamConvLSTM, backbone="resnet_tiny", convlstm_features=16
  ),
}
