"""The 6-layer SparseConvNet of Uhrig et al., "Sparsity Invariant CNNs" (3DV 2017).

Six :class:`~depthsense.models.sparse_conv.SparseConv2d` layers with kernels 11, 7, 5, 3, 3, 1 and
16 channels, ReLU between them, the last (1x1) layer mapping to one depth channel. Every
layer keeps the resolution (stride 1, "same" padding), so any input size works without
padding. Parameters: 1*16*121+16 + 16*16*49+16 + 16*16*25+16 + 2*(16*16*9+16) + 16*1+1
= 1952 + 12560 + 6416 + 2320 + 2320 + 17 = **25,585**.

Depth is divided by ``max_depth`` on the way in and multiplied on the way out, so
activations are O(1); the first layer is initialised for the expected input density
``init_density`` (see :class:`SparseConv2d`). Output: metres, clamped at 0 in eval mode
(raw in training mode, see :meth:`DepthModel.to_metres`); pixels whose 26x26 receptive
field saw no valid input are 0 (= no prediction).

Cost: every layer runs at full resolution, about 11 GMAC per 1216x352 frame: 210-260 ms
on 2 threads (benchmarks/bench_models.py), against ~40 ms for ``sparse_unet``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from depthsense.models._common import DEFAULT_MAX_DEPTH, DepthModel, register_model
from depthsense.models.sparse_conv import SparseConv2d

__all__ = ["SparseConvNet", "UHRIG_KERNELS"]

UHRIG_KERNELS = (11, 7, 5, 3, 3, 1)
"""Kernel sizes of the paper's six layers."""


@register_model("sparse_convnet")
class SparseConvNet(DepthModel):
    """Uhrig et al.'s sparsity-invariant CNN.

    Args:
        channels: width of the hidden layers (16 in the paper).
        max_depth: metres mapped to 1.0 inside the network.
        init_density: expected fraction of valid input pixels (first-layer init only).

    ``forward(sparse, mask, rgb=None)``: sparse (B,1,H,W) metres, 0 = missing; mask
    (B,1,H,W) {0,1} (None: ``sparse > 0``); rgb ignored. Returns (B,1,H,W) metres.

    Raises:
        ShapeError: missing sparse input or mismatched shapes.
    """

    needs_rgb = False
    needs_sparse = True

    def __init__(self, channels: int = 16, max_depth: float = DEFAULT_MAX_DEPTH, init_density: float = 0.05) -> None:
        super().__init__()
        self._store_config(channels=int(channels), max_depth=float(max_depth), init_density=float(init_density))
        self.max_depth = float(max_depth)
        chans = [1] + [channels] * (len(UHRIG_KERNELS) - 1) + [1]
        self.layers = nn.ModuleList(
            SparseConv2d(cin, cout, k, init_density=init_density if i == 0 else 1.0)
            for i, (cin, cout, k) in enumerate(zip(chans[:-1], chans[1:], UHRIG_KERNELS))
        )

    def forward(self, sparse: Tensor, mask: Tensor | None, rgb: Tensor | None = None) -> Tensor:
        sparse, mask, _ = self.check_inputs(sparse, mask, None)
        x, m = sparse / self.max_depth, mask
        for i, layer in enumerate(self.layers):
            x, m = layer(x, m)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return self.to_metres(x, self.max_depth)
