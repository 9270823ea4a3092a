"""Dense-convolution baselines: the paper's ConvNet / ConvNet+mask and a dense U-Net.

``convnet`` and ``convnet_mask`` are Uhrig et al.'s (3DV 2017) dense baselines: the same
six layers as ``sparse_convnet`` (kernels 11, 7, 5, 3, 3, 1; 16 channels; ReLU) built
from plain ``nn.Conv2d``. ``convnet`` sees the sparse depth with 0 for missing pixels
(25,585 parameters); ``convnet_mask`` also gets the mask as a second input channel
(27,521 parameters). ``dense_unet`` is :mod:`depthsense.models.sparse_unet`'s U-Net with plain
convolutions and the mask as a second input channel: the fair dense peer of
``sparse_unet`` (same widths, depth, optional RGB branch).

All normalise depth by ``max_depth`` inside and return metres, clamped at 0 in eval
mode. They are not sparsity invariant: what is stored under missing pixels is zeroed
before the network (so it cannot leak in), but the output depends on where the holes are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from depthsense.models._common import DEFAULT_MAX_DEPTH, DepthModel, plain_conv, register_model
from depthsense.models.sparse_convnet import UHRIG_KERNELS
from depthsense.models.sparse_unet import UNetBase

__all__ = ["ConvNet", "ConvNetMask", "DenseUNet"]


@register_model("convnet")
class ConvNet(DepthModel):
    """Uhrig et al.'s dense ConvNet baseline (depth only, 0 = missing).

    Args:
        channels: hidden width (16 in the paper).
        max_depth: metres mapped to 1.0 inside the network.

    ``forward(sparse, mask, rgb=None) -> (B,1,H,W)`` metres; rgb is ignored.

    Raises:
        ShapeError: missing sparse input or mismatched shapes.
    """

    needs_rgb = False
    needs_sparse = True
    _with_mask = False

    def __init__(self, channels: int = 16, max_depth: float = DEFAULT_MAX_DEPTH) -> None:
        super().__init__()
        self._store_config(channels=int(channels), max_depth=float(max_depth))
        self.max_depth = float(max_depth)
        chans = [2 if self._with_mask else 1] + [channels] * (len(UHRIG_KERNELS) - 1) + [1]
        self.layers = nn.ModuleList(
            plain_conv(cin, cout, k) for cin, cout, k in zip(chans[:-1], chans[1:], UHRIG_KERNELS)
        )

    def forward(self, sparse: Tensor, mask: Tensor | None, rgb: Tensor | None = None) -> Tensor:
        sparse, mask, _ = self.check_inputs(sparse, mask, None)
        x = sparse / self.max_depth
        if self._with_mask:
            x = torch.cat([x, mask], dim=1)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return self.to_metres(x, self.max_depth)


@register_model("convnet_mask")
class ConvNetMask(ConvNet):
    """:class:`ConvNet` with the validity mask as a second input channel (same args)."""

    _with_mask = True


@register_model("dense_unet")
class DenseUNet(UNetBase):
    """The U-Net of ``sparse_unet`` with plain convolutions; input channels depth + mask.

    Args: ``width=16, depth=4, rgb=False, max_depth=80.0`` (see :class:`UNetBase`).
    """

    def __init__(
        self, width: int = 16, depth: int = 4, rgb: bool = False, max_depth: float = DEFAULT_MAX_DEPTH,
        refine: int = 8,
    ) -> None:
        super().__init__(width, depth, rgb, max_depth, 1.0, refine, sparse=False)
        self._store_config(
            width=int(width), depth=int(depth), rgb=bool(rgb), max_depth=float(max_depth), refine=int(refine)
        )
