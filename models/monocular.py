"""RGB-only relative-depth network: a small ResNet-style encoder and a U-Net decoder.

Encoder (written here, no torchvision): a 3x3 stride-2 stem, then four stages of one
BasicBlock each (two 3x3 conv + BatchNorm, identity or 1x1 projection shortcut), each
halving the resolution and doubling the channels: ``width * (1, 2, 4, 8, 16)`` at
1/2 .. 1/32. Decoder: per level, a 1x1 projection at the coarse level, bilinear x2
upsampling, addition of the encoder skip and a 3x3 conv; a 3x3 head at 1/2 and bilinear
upsampling to full resolution.

Output: unnormalised relative depth (B,1,H,W), larger = farther, with no activation:
its scale and shift are arbitrary, as expected by the scale-and-shift-invariant and
ordinal ranking losses (losses/ssi.py, losses/ranking.py). The RGB is normalised inside
(ImageNet mean/std). Any input size: padded by replication to a multiple of 32, cropped
back. Default (width 16): about 1.5 M parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from depthsense.models._common import DepthModel, crop_to, pad_to_multiple, register_model

__all__ = ["MonocularNet"]

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
_LEVELS = 5  # 1/2 .. 1/32


@register_model("monocular")
class MonocularNet(DepthModel):
    """Relative depth from one RGB image.

    Args:
        width: channels at 1/2 resolution (x2 per level, 16*width at 1/32).

    ``forward(sparse=None, mask=None, rgb) -> (B,1,H,W)`` relative depth; sparse and
    mask are ignored when given (call it as ``model(None, None, rgb)``).

    Raises:
        ShapeError: rgb missing or not (B,3,H,W) float.
    """

    needs_rgb = True
    needs_sparse = False

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"monocular: width must be >= 1; got {width}")
        self._store_config(width=int(width))
        ch = [width * 2**i for i in range(_LEVELS)]
        self.stem = nn.Sequential(
            nn.Conv2d(3, ch[0], 3, 2, 1, bias=False), nn.BatchNorm2d(ch[0]), nn.ReLU(inplace=True)
        )
        self.stages = nn.ModuleList(_BasicBlock(ch[i], ch[i + 1], stride=2) for i in range(_LEVELS - 1))
        self.proj = nn.ModuleList(nn.Conv2d(ch[i + 1], ch[i], 1) for i in range(_LEVELS - 1))
        self.refine = nn.ModuleList(
            nn.Sequential(nn.Conv2d(ch[i], ch[i], 3, 1, 1), nn.ReLU(inplace=True)) for i in range(_LEVELS - 1)
        )
        self.head = nn.Conv2d(ch[0], 1, 3, 1, 1)
        self.register_buffer("rgb_mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("rgb_std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
        # Start from a flat prediction: with Kaiming init the head's raw outputs are tens
        # of times the scale of any target and the first ~150 steps only shrink them.
        nn.init.zeros_(self.head.weight)

    def forward(self, sparse: Tensor | None, mask: Tensor | None, rgb: Tensor | None = None) -> Tensor:
        """Args: rgb (B,3,H,W) in [0,1] (sparse/mask ignored). Returns (B,1,H,W) relative depth."""
        _, _, rgb = self.check_inputs(None, None, rgb)
        size = tuple(rgb.shape[-2:])
        x = pad_to_multiple((rgb - self.rgb_mean) / self.rgb_std, 2**_LEVELS, "replicate")
        feats = [self.stem(x)]
        for stage in self.stages:
            feats.append(stage(feats[-1]))
        y = feats[-1]
        for i in range(_LEVELS - 2, -1, -1):
            y = F.interpolate(self.proj[i](y), size=feats[i].shape[-2:], mode="bilinear", align_corners=False)
            y = self.refine[i](y + feats[i])
        y = F.interpolate(self.head(y), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return crop_to(y, size)


class _BasicBlock(nn.Module):
    """ResNet basic block: conv3x3-BN-ReLU-conv3x3-BN + shortcut, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.short(x), inplace=True)
