"""PyTorch reference CoT layer and CoTNet, written from docs/reference.md § Paper A: CoT layer.

Module names follow the official CoTNet repository (timm-based: ``conv1``,
``bn1``, ``layer1.0.conv2.key_embed.0``, ``embed``, ``conv1x1``, ``bn``,
``se``, ``downsample.0``, ``fc``), so its state dicts have the official
layout. The local aggregation is written independently of jaxact's (an
``unfold`` of the values, not shifted sums). Test helper only; needs torch.
"""

import torch
from torch import nn
from torch.nn import functional as F


class CotLayer(nn.Module):
  """CoT layer (stride 1, ``dim`` channels in and out)."""

  def __init__(self, dim: int, kernel_size: int = 3):
    super().__init__()
    self.dim, self.kernel_size = dim, kernel_size
    self.groups = dim // 8
    k2 = kernel_size * kernel_size
    self.key_embed = nn.Sequential(
      nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=4, bias=False),
      nn.BatchNorm2d(dim),
      nn.ReLU(inplace=True),
    )
    self.embed = nn.Sequential(
      nn.Conv2d(2 * dim, dim // 2, 1, bias=False),
      nn.BatchNorm2d(dim // 2),
      nn.ReLU(inplace=True),
      nn.Conv2d(dim // 2, k2 * self.groups, 1),
      nn.GroupNorm(self.groups, k2 * self.groups),
    )
    self.conv1x1 = nn.Sequential(nn.Conv2d(dim, dim, 1, bias=False), nn.BatchNorm2d(dim))
    self.bn = nn.BatchNorm2d(dim)
    self.act = nn.SiLU(inplace=True)
    attn = max(dim * 2 // 4, 32)
    self.se = nn.Sequential(
      nn.Conv2d(dim, attn, 1),
      nn.BatchNorm2d(attn),
      nn.ReLU(inplace=True),
      nn.Conv2d(attn, 2 * dim, 1),
    )

  def aggregate(self, v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """v (B, C, H, W), w (B, G·k², H, W) → (B, C, H, W); channel c uses group c % G."""
    b, c, h, wd = v.shape
    k, g = self.kernel_size, self.groups
    cols = F.unfold(v, k, padding=k // 2).view(b, c // g, g, k * k, h, wd)
    return (cols * w.view(b, 1, g, k * k, h, wd)).sum(3).reshape(b, c, h, wd)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    k1 = self.key_embed(x)
    w = self.embed(torch.cat([x, k1], dim=1))
    k2 = self.act(self.bn(self.aggregate(self.conv1x1(x), w)))
    b, c = x.shape[:2]
    gap = (k1 + k2).mean((2, 3), keepdim=True)
    attn = F.softmax(self.se(gap).view(b, c, 2), dim=2)
    return k2 * attn[..., 0, None, None] + k1 * attn[..., 1, None, None]


class CoTBottleneck(nn.Module):
  """1×1 → [avg pool 3×3/2] → CoT → 1×1 (×4), residual (official names)."""

  def __init__(self, inplanes: int, planes: int, stride: int = 1, mixer: str = "cot"):
    super().__init__()
    out = planes * 4
    self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.act1 = nn.ReLU(inplace=True)
    self.avd = None
    if mixer == "cot":
      self.avd = nn.AvgPool2d(3, 2, padding=1) if stride > 1 else None
      self.conv2 = CotLayer(planes, 3)
    else:  # torchvision Bottleneck: 3×3 conv with the stride, BN, ReLU
      self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
      self.bn2 = nn.BatchNorm2d(planes)
      self.act2 = nn.ReLU(inplace=True)
    self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(out)
    self.act3 = nn.ReLU(inplace=True)
    self.downsample = None
    if stride != 1 or inplanes != out:
      self.downsample = nn.Sequential(
        nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
      )

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    y = self.act1(self.bn1(self.conv1(x)))
    if self.avd is not None:
      y = self.avd(y)
    y = self.conv2(y)
    if hasattr(self, "bn2"):
      y = self.act2(self.bn2(y))
    y = self.bn3(self.conv3(y))
    shortcut = x if self.downsample is None else self.downsample(x)
    return self.act3(y + shortcut)


class CoTNet(nn.Module):
  """timm/torchvision-style ResNet with CoT (or, ``mixer='conv'``, plain) bottlenecks."""

  def __init__(
    self,
    layers=(1, 1, 1, 1),
    width: int = 16,
    num_classes: int = 10,
    in_chans: int = 3,
    mixer: str = "cot",
  ):
    super().__init__()
    self.conv1 = nn.Conv2d(in_chans, width, 7, stride=2, padding=3, bias=False)
    self.bn1 = nn.BatchNorm2d(width)
    self.act1 = nn.ReLU(inplace=True)
    self.maxpool = nn.MaxPool2d(3, 2, padding=1)
    inplanes = width
    for i, n in enumerate(layers):
      planes = width * 2**i
      blocks = []
      for j in range(n):
        blocks.append(CoTBottleneck(inplanes, planes, 2 if i > 0 and j == 0 else 1, mixer))
        inplanes = planes * 4
      setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
    self.fc = nn.Linear(inplanes, num_classes)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
    for i in range(4):
      x = getattr(self, f"layer{i + 1}")(x)
    return self.fc(x.mean((2, 3)))


def randomize_bn(module: nn.Module, generator: torch.Generator) -> None:
  """Non-trivial BN/GN affine parameters and running statistics (in place)."""
  with torch.no_grad():
    for m in module.modules():
      if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
        m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=generator))
        m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=generator))
      if isinstance(m, nn.BatchNorm2d):
        m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=generator))
        m.running_var.copy_(torch.rand(m.running_var.shape, generator=generator) + 0.5)
