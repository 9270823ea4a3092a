"""U-Net-style SparseConvNet with an optional RGB branch (the design card's main model).

Layout: ``depth`` levels at 1/2, 1/4, ..., 1/2^depth of the input, with channels
``c_l = width * 2**(l-1)`` capped at ``4 * width`` (16, 32, 64, 64 by default)::

    depth/max_depth + mask (full res)
      -> SparseConv 5x5 stride 2 (init_density)                      e1 (1/2)
      -> [SparseConv 3x3 stride 2 -> SparseConv 3x3] per level       e2 .. e_depth
    decoder, l = depth-1 .. 1:
      SparseConv 3x3 c_{l+1} -> c_l   (at the coarse level: 4x cheaper than after upsampling)
      -> sparse_upsample x2           (nearest; features and mask together)
      -> sparse_add with e_l          (mask-weighted mean: HMS-Net / Jaritz et al. skip fusion)
      -> [rgb=True: sparse_concat with RGB features r_l, whose mask is all ones]
      -> SparseConv 3x3
    head: SparseConv 1x1 c_1 -> 4 at 1/2 -> pixel_shuffle(2) -> coarse depth (B,1,H,W)
    refine (``refine`` channels, 0 = off), at full resolution: raw input -> SparseConv 9x9
      (normalised by the input's own mask) -> sparse_concat with the coarse depth ->
      SparseConv 5x5 -> SparseConv 3x3 -> residual added to the coarse depth (last layer
      initialised to 0, so training starts from the coarse prediction). Without it the net predicts from 1/2-resolution features only and
      cannot follow the exact measurements; on the demo's synthetic set it cut validation
      MAE from 1.42 m to 1.08 m at equal steps (150 steps, batch 8, 256x160 crops).

Extra heads (``heads="depth,conf,fg"``, off by default): a plain 3x3 convolution
(``head_width`` channels, 8 by default; the issue-17 models use 16: benchmarks/README.md,
table 7) on the last decoder features at 1/2 resolution, then a 1x1 to 4 sub-pixels per
head (pixel_shuffle, like depth), plus, with the refinement, a 1x1 on the refinement's
full-resolution hidden features. ``conf``: softplus -> the scale ``b`` (m, >= 0.01) of a
Laplacian around the predicted depth (trained by ``laplace_nll``), reported as
``conf = 1 m / (1 m + b)`` in (0,1]; ``fg``: a foreground logit -> sigmoid. The head
layers start at zero weight (confidence 0.59, foreground 0.12 everywhere), and they
exist only when asked for, so a depth-only model has exactly the old state dict.

ReLU after every convolution but the head; no BatchNorm. Every operation is sparsity
invariant (it reads features only where their mask is 1 and keeps ``x == 0`` where the
mask is 0), so without RGB the network's output does not depend on values stored under
missing pixels, and pixels whose receptive field saw no valid input get 0 (no
prediction). Downsampling is by strided SparseConv2d: learned and value-aware (it
averages only valid pixels). The RGB branch is plain strided convolutions (5x5 then 3x3,
stride 2) giving r_l at each decoder scale; with it the decoder and the output are dense.

Speed. No convolution runs at full resolution: the stem is strided and the head is a
sub-pixel (pixel-shuffle) 1x1 convolution at 1/2, so most work happens at 1/2 to 1/8
with few channels (~2 GMAC per 1216x352 frame). That is what makes the CPU target of
>= 10 frames/s at 1216x352 on 2 threads reachable; a full-resolution 16-channel sparse
layer alone costs 10-20 ms there.

Default (width 16, depth 4, no RGB): 252,164 parameters (324,900 with ``rgb=True``);
forward at 1216x352 (eval, ``torch.inference_mode``, 2 threads), measured with
``benchmarks/bench_models.py`` on the 2-core development machine (shared with other jobs):
40-50 ms per frame (20-25 frames/s; 57-65 ms with RGB) over three runs. channels_last
makes this net 13-17% slower (its (B,1,H,W) masks broadcast poorly over NHWC features),
so keep NCHW; it helps dense_unet (30-35 -> 25-27 ms). ``dense_unet`` (models/dense.py) is the same
network with plain convolutions and the mask as a second input channel.

Any input size: depth and mask are padded with 0 (= missing), RGB by replication, to a
multiple of ``2**depth`` at the bottom/right and the output is cropped back. Output:
metres, clamped at 0 in eval mode (raw in training, see ``DepthModel.to_metres``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from depthsense.models._common import DEFAULT_MAX_DEPTH, DepthModel, crop_to, pad_to_multiple, plain_conv, register_model
from depthsense.models.sparse_conv import SparseConv2d, cat_channels, sparse_add, sparse_concat, sparse_upsample

__all__ = ["SparseUNet", "UNetBase", "unet_channels", "PREFILLS", "parse_prefill", "HEADS", "parse_heads",
           "CONF_REF_M", "MIN_SCALE_M", "scale_to_confidence", "NORMS", "REF_DEPTH_M", "image_scale"]

PREFILLS = ("ip_basic", "nearest", "pyramid")
"""Classical fills a U-Net can take as dense guidance (``prefill="ip_basic+nearest"``)."""

NORMS = ("fixed", "image")
"""How depth enters the U-Net: divided by ``max_depth`` (``fixed``), or per image (``image``:
scaled so its geometric mean is :data:`REF_DEPTH_M`, with log-space, always-positive
outputs; the model is then exactly scale-equivariant)."""

REF_DEPTH_M = 10.0
"""With ``norm="image"`` every input is scaled so the geometric mean of its valid depths is
this many metres before the network (and the pre-fills) see it."""

_MAX_LOG_CORRECTION = 3.0  # log-space corrections are bounded to +-3 (a factor of 20)

HEADS = ("depth", "conf", "fg")
"""Output heads of the U-Net (``heads="depth,conf,fg"``); depth is always predicted."""

CONF_REF_M = 1.0
"""Confidence = ``CONF_REF_M / (CONF_REF_M + b)`` for a predicted Laplacian scale ``b``
(m): 0.5 where the expected absolute error (``b``) is 1 m, -> 1 as it shrinks."""

MIN_SCALE_M = 0.01
"""Smallest predicted Laplacian scale (m): keeps the likelihood bounded."""

_EXTRA_CH = 8  # channels of the extra heads' own 3x3 layer (at 1/2 resolution)
_FG_PRIOR_LOGIT = -2.0  # initial foreground probability sigmoid(-2) = 0.12

_MIN_FILL = 1e-4  # (normalised) fills are >= this before their log: a fill of 0 means "nothing seen"
_CAP = 4  # channel cap (x width): the deepest levels are tiny, wider buys little there
_FIRST_FILL_LOGIT = 1.5  # initial blend: softmax(1.5, 0) = 0.82 of the first fill
_RGB_MEAN = 0.45  # rough ImageNet statistics; only to centre the RGB branch's input
_RGB_STD = 0.25


def unet_channels(width: int, depth: int) -> list[int]:
    """Channels of levels 1..depth: ``width * 2**(l-1)`` capped at ``4 * width``."""
    return [min(width * 2**i, _CAP * width) for i in range(depth)]


class UNetBase(DepthModel):
    """The shared U-Net; ``sparse=True`` uses SparseConv2d and mask-aware ops, ``False``
    plain Conv2d with the mask as a second input channel (the dense peer).

    Args:
        width: channels at 1/2 resolution (doubling per level, capped at 4*width).
        depth: number of resolution levels (>= 2); inputs are padded to 2**depth.
        rgb: add the RGB branch (then ``needs_rgb`` is True on the instance).
        max_depth: metres mapped to 1.0 inside the network.
        init_density: expected input density, initialises the first sparse layer.
        sparse: sparsity-invariant (True) or plain (False) convolutions.
        prefill: classical fills fed as dense guidance (see :class:`SparseUNet`).
        heads: ``"depth"`` or ``"depth,conf"``, ``"depth,fg"``, ``"depth,conf,fg"``:
            extra 1-channel heads sharing the decoder (see :meth:`forward`).
        head_width: channels of the extra heads' own 3x3 layer.
        norm: ``"fixed"`` (depth / ``max_depth``) or ``"image"`` (per-image scale and
            log-space outputs, see :data:`NORMS`; needs ``prefill``).
    """

    needs_rgb = False
    needs_sparse = True
    OPTIONAL_MODULES: tuple[str, ...] = ("extra_trunk", "extra_head", "extra_refine")
    """Submodules only built for the extra heads: ``depthsense-train --init`` starts them
    fresh from a depth-only checkpoint (and drops them when the heads are not asked for)."""

    def __init__(
        self,
        width: int = 16,
        depth: int = 4,
        rgb: bool = False,
        max_depth: float = DEFAULT_MAX_DEPTH,
        init_density: float = 0.05,
        refine: int = 8,
        *,
        sparse: bool = True,
        prefill: str = "",
        heads: str = "depth",
        head_width: int = _EXTRA_CH,
        norm: str = "fixed",
    ) -> None:
        super().__init__()
        self.heads = parse_heads(heads)
        if norm not in NORMS:
            raise ValueError(f"norm={norm!r}: use one of {', '.join(NORMS)}")
        if norm == "image" and not prefill:
            raise ValueError("norm='image' predicts a correction of the pre-fills; give prefill= too "
                             "(e.g. prefill=ip_basic+nearest)")
        self.norm = norm
        if head_width < 1:
            raise ValueError(f"head_width={head_width}: need >= 1 channel for the extra heads' layer")
        if width < 1 or depth < 2:
            raise ValueError(f"need width >= 1 and depth >= 2 (levels); got width={width}, depth={depth}")
        self.prefill = parse_prefill(prefill)
        self.sparse = bool(sparse)
        self.use_rgb = bool(rgb)
        self.needs_rgb = self.use_rgb
        self.max_depth = float(max_depth)
        self.depth = int(depth)
        ch = unet_channels(int(width), int(depth))
        self.channels = ch
        conv = self._conv
        self.stem = conv(1 if sparse else 2, ch[0], 5, 2, init_density=init_density)
        self.down = nn.ModuleList(
            nn.ModuleList([conv(ch[l - 1], ch[l], 3, 2), conv(ch[l], ch[l], 3)]) for l in range(1, depth)
        )
        self.up = nn.ModuleList(conv(ch[l + 1], ch[l], 3) for l in range(depth - 1))
        guided = bool(rgb or self.prefill)
        self.fuse = nn.ModuleList(conv(ch[l] * (2 if guided else 1), ch[l], 3) for l in range(depth - 1))
        # 1x1: a 3x3 conv with 4 outputs runs ~20x slower in oneDNN for ~no gain after the
        # 3x3 fusion conv that precedes it. With pre-fills it also predicts, per pixel, the
        # logits of a convex blend of the fills (4 sub-pixels each, for pixel_shuffle).
        n_fill = len(self.prefill)
        self.head = conv(ch[0], 4 * (1 + (n_fill if n_fill > 1 else 0)), 1)
        if n_fill:
            # Start as a classical completion: no correction, and a blend that leans on
            # the first fill (IP-Basic, the better one at LiDAR densities).
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
            if n_fill > 1:
                with torch.no_grad():
                    self.head.bias[4:8] = _FIRST_FILL_LOGIT
        # Full-resolution residual refinement: the coarse prediction next to the raw
        # input, so the output can follow the exact measurements (the U-Net alone
        # predicts from 1/2-resolution features and blurs them).
        self.refine_ch = int(refine)
        if self.refine_ch:
            # The raw input gets its own layer, normalised by its own mask, before it
            # meets the (dense) coarse prediction: concatenating the raw depth under the
            # union mask would make the refinement scale with the input density.
            self.refine_in = conv(1 if sparse else 2, self.refine_ch, 9, init_density=init_density)
            # With pre-fills the refinement also sees the guidance (fills, RGB) at full
            # resolution, where depth edges have to be placed to the pixel.
            guide_ch = self.refine_ch if n_fill else 0
            self.refine_guide = plain_conv((3 if rgb else 0) + n_fill, guide_ch, 3) if guide_ch else None
            self.refine = nn.ModuleList(
                [conv(self.refine_ch + guide_ch + 1, self.refine_ch, 5), conv(self.refine_ch, 1, 3)]
            )
            nn.init.zeros_(self.refine[-1].weight)  # start as the coarse prediction
        # Extra heads (confidence, foreground): their own 1x1 layer on the last decoder
        # features (sub-pixel, like depth) plus, with the refinement, a 1x1 layer on its
        # full-resolution features, which see the exact measurements and depth edges.
        # Only created when asked for, so depth-only state dicts keep their keys.
        n_extra = len(self.heads)
        if n_extra:
            # The heads' own 3x3 layer: with only a 1x1 on the shared features, the depth
            # loss (80x larger gradients: metres vs a probability) shapes every feature
            # and the foreground head barely learns (tests/test_models.py).
            self.extra_trunk = plain_conv(ch[0], int(head_width), 3)
            self.extra_head = plain_conv(int(head_width), 4 * n_extra, 1)
            nn.init.zeros_(self.extra_head.weight)
            with torch.no_grad():
                self.extra_head.bias.zero_()
                if "fg" in self.heads:
                    i = self.heads.index("fg")
                    self.extra_head.bias[4 * i : 4 * i + 4] = _FG_PRIOR_LOGIT
            self.extra_refine = plain_conv(self.refine_ch, n_extra, 1) if self.refine_ch else None
            if self.extra_refine is not None:
                nn.init.zeros_(self.extra_refine.weight)
        guide_in = (3 if rgb else 0) + n_fill
        if guide_in:
            # Plain convolutions: RGB and the pre-fills are dense, no mask to carry.
            self.rgb_enc = nn.ModuleList(
                [plain_conv(guide_in, ch[0], 5, 2)] + [plain_conv(ch[l - 1], ch[l], 3, 2) for l in range(1, depth - 1)]
            )

    def _conv(self, cin: int, cout: int, k: int, stride: int = 1, init_density: float = 1.0) -> nn.Module:
        if self.sparse:
            return SparseConv2d(cin, cout, k, stride, padding=k // 2, init_density=init_density)
        return plain_conv(cin, cout, k, stride)

    def forward(
        self, sparse: Tensor, mask: Tensor | None, rgb: Tensor | None = None, prefill: Tensor | None = None,
        *, return_heads: bool = False,
    ) -> Tensor | dict[str, Tensor]:
        """Complete sparse depth (and, when asked, the extra heads).

        Args:
            sparse: (B,1,H,W) metres, 0 = missing.
            mask: (B,1,H,W) {0,1}; None means ``sparse > 0``.
            rgb: (B,3,H,W) in [0,1]; required when built with ``rgb=True``, else ignored.
            prefill: (B,n,H,W) metres, the classical fills of ``sparse`` in the order of
                the ``prefill`` option (:meth:`compute_prefill`); computed here when None.
                Passing them lets a graph without the OpenCV code run (ONNX).
            return_heads: return a dict of every head instead of the depth tensor.
        Returns:
            (B,1,H,W) depth in metres (>= 0 in eval mode; 0 where nothing was seen); with
            ``return_heads`` a dict with ``depth`` and, for the heads built, ``conf``
            (B,1,H,W) confidence in [0,1] and ``scale`` (B,1,H,W) the predicted Laplacian
            scale in metres (expected absolute error; ``conf = scale_to_confidence(scale)``),
            ``fg`` (B,1,H,W) foreground probability in [0,1] and ``fg_logit`` its logit.
        Raises:
            ShapeError: missing or mismatched inputs.
        """
        sparse, mask, rgb = self.check_inputs(sparse, mask, rgb if self.use_rgb else None)
        size = tuple(sparse.shape[-2:])
        mult = 2**self.depth
        gain = None
        if self.prefill:
            fills_m = self.compute_prefill(sparse) if prefill is None else prefill  # metres
        if self.norm == "image":  # the network and the fills see every input at one scale
            gain = REF_DEPTH_M / image_scale(sparse, mask)
            sparse = sparse * gain
            fills_m = fills_m * gain
        x = pad_to_multiple(sparse / self.max_depth, mult)
        m = pad_to_multiple(mask, mult)
        if not self.sparse:
            x, m = torch.cat([x, m], dim=1), None
        x_in, m_in = x, m
        fills = None
        if self.prefill:
            fills = fills_m / self.max_depth
        guide = [] if rgb is None else [(rgb - _RGB_MEAN) / _RGB_STD]
        if fills is not None:
            guide.append(fills)
        guide = pad_to_multiple(torch.cat(guide, 1), mult, "replicate") if guide else None
        feats = self._rgb_features(guide) if guide is not None else None

        x, m = self._layer(self.stem, x, m)
        skips = [(x, m)]
        for block in self.down:
            for layer in block:
                x, m = self._layer(layer, x, m)
            skips.append((x, m))
        for l in range(self.depth - 2, -1, -1):
            x, m = self._layer(self.up[l], x, m)
            skip_x, skip_m = skips[l]
            x, m = self._upsample(x, m, tuple(skip_x.shape[-2:]))
            x, m = self._add(x, m, skip_x, skip_m)
            if feats is not None:
                x, m = self._concat(x, m, feats[l])
            x, m = self._layer(self.fuse[l], x, m)
        y, ym = self._layer(self.head, x, m, relu=False)
        y = F.pixel_shuffle(y, 2)
        if fills is not None:
            y = self._blend(y, guide[:, -fills.shape[1]:])
        hidden = None
        if self.refine_ch:
            y, hidden = self._refine(y, None if ym is None else sparse_upsample(ym, ym, 2)[1], x_in, m_in, guide)
        if gain is None:
            depth = self.to_metres(crop_to(y, size), self.max_depth)
        else:  # y is the log of the normalised depth: positive by construction, back to metres
            depth = torch.exp(crop_to(y, size)) * (self.max_depth / gain)
            if not self.training:
                depth = depth.clamp(max=self.max_depth)
        if not return_heads:
            return depth
        out = {"depth": depth}
        if self.heads:
            out.update(self._extra_heads(x, m, hidden, size))
        return out

    def _extra_heads(self, x: Tensor, m: Tensor | None, hidden: Tensor | None,
                     size: tuple[int, int]) -> dict[str, Tensor]:
        """The extra heads from the last decoder features ``x`` (1/2 resolution) and the
        refinement's full-resolution features ``hidden``, cropped to ``size``."""
        e = _pointwise(self.extra_head, F.relu(self.extra_trunk(x)))
        e = F.pixel_shuffle(e, 2)
        if self.extra_refine is not None and hidden is not None:
            e = e + _pointwise(self.extra_refine, hidden)
        e = crop_to(e, size).float()
        out: dict[str, Tensor] = {}
        for i, name in enumerate(self.heads):
            raw = e[:, i : i + 1]
            if name == "conf":
                scale = F.softplus(raw) + MIN_SCALE_M
                out["scale"] = scale
                out["conf"] = scale_to_confidence(scale)
            else:
                out["fg_logit"] = raw
                out["fg"] = torch.sigmoid(raw)
        return out

    def compute_prefill(self, sparse: Tensor) -> Tensor:
        """(B,n,H,W) metres: the classical fills named by ``prefill`` (CPU, OpenCV), no gradient.

        With ``norm="image"`` each image is filled at the network's scale (geometric mean
        :data:`REF_DEPTH_M`; IP-Basic's thresholds are in metres) and scaled back, so the
        result is the same whether the forward computes it or a caller passes it in.
        """
        from depthsense.models.classical import ip_basic_fill, nearest_fill, pyramid_fill

        fns = {"ip_basic": ip_basic_fill, "nearest": nearest_fill, "pyramid": pyramid_fill}
        with torch.no_grad():
            gain = REF_DEPTH_M / image_scale(sparse, (sparse > 0).to(sparse.dtype)) if self.norm == "image" else None
            scaled = sparse if gain is None else sparse * gain
            arr = scaled.detach().to("cpu", torch.float32).numpy()
            out = np.stack([np.stack([fns[name](arr[b, 0]) for name in self.prefill]) for b in range(arr.shape[0])])
            fills = torch.from_numpy(out).to(device=sparse.device, dtype=sparse.dtype)
            return fills if gain is None else fills / gain

    def _blend(self, y: Tensor, fills: Tensor) -> Tensor:
        """Coarse depth = softmax-weighted blend of the fills + the predicted correction
        (``norm="image"``: the log of the blend + a bounded log correction).

        In float32 also under bf16 autocast: blend weights with bf16's 8-bit mantissa
        move every output pixel by up to ~0.4 % of its depth (MAE +2.5 % at dense inputs),
        the rest of the network's bf16 rounding costs < 0.1 %."""
        y = y.float()
        if fills.shape[1] == 1:
            blend = fills
        else:
            blend = (torch.softmax(y[:, 1:], dim=1) * fills).sum(1, keepdim=True)
        if self.norm == "image":
            return torch.log(blend.clamp_min(_MIN_FILL)) + _bounded(y[:, :1])
        return blend + y[:, :1]

    def _refine(self, y: Tensor, ym: Tensor | None, x_in: Tensor, m_in: Tensor | None,
                guide: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Refined depth and the refinement's last hidden features (B,refine,H',W')."""
        e, em = self._layer(self.refine_in, x_in, m_in)
        parts = [torch.exp(y) if self.norm == "image" else y, e]
        if self.refine_guide is not None:
            parts.append(F.relu(self.refine_guide(guide)))
        if ym is None:  # dense peer
            r, rm = cat_channels(parts), None
        else:
            masks = [ym, em] + ([torch.ones_like(ym)] if len(parts) > 2 else [])
            r, rm = sparse_concat(parts, masks)
        hidden = r
        for i, layer in enumerate(self.refine):
            if i == len(self.refine) - 1:
                hidden = r
            r, rm = self._layer(layer, r, rm, relu=i < len(self.refine) - 1)
        return y + (_bounded(r) if self.norm == "image" else r), hidden

    # -- ops that work on (features, mask) for the sparse net and (features, None) for the dense one

    def _rgb_features(self, r: Tensor) -> list[Tensor]:
        out = []
        for layer in self.rgb_enc:
            r = F.relu(layer(r))
            out.append(r)
        return out

    @staticmethod
    def _layer(layer: nn.Module, x: Tensor, m: Tensor | None, relu: bool = True) -> tuple[Tensor, Tensor | None]:
        if m is None:
            x = layer(x)
        else:
            x, m = layer(x, m)
        return (F.relu(x, inplace=True) if relu else x), m

    @staticmethod
    def _upsample(x: Tensor, m: Tensor | None, size: tuple[int, int]) -> tuple[Tensor, Tensor | None]:
        if m is None:
            return F.interpolate(x, size=size, mode="nearest"), None
        return sparse_upsample(x, m, size=size)

    @staticmethod
    def _add(x1: Tensor, m1: Tensor | None, x2: Tensor, m2: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if m1 is None:
            return (x1 + x2) * 0.5, None  # what sparse_add gives where both are valid
        return sparse_add(x1, m1, x2, m2)

    @staticmethod
    def _concat(x: Tensor, m: Tensor | None, r: Tensor) -> tuple[Tensor, Tensor | None]:
        if m is None:
            return cat_channels([x, r]), None
        return sparse_concat([x, r], [m, torch.ones_like(m)])


@register_model("sparse_unet")
class SparseUNet(UNetBase):
    """U-Net SparseConvNet (see the module docstring).

    Args: as :class:`UNetBase` without ``sparse``: ``width=16, depth=4, rgb=False,
    max_depth=80.0, init_density=0.05, refine=8, prefill=""``. ``prefill`` names classical
    completions (``"ip_basic"``, ``"nearest"``, ``"ip_basic+nearest"``) computed from the
    input and fed, with RGB, to the dense guidance branch; the network then predicts a
    blend of them plus a correction. ``heads`` adds a confidence (``conf``) and/or a
    foreground-mask (``fg``) head: ``"depth,conf,fg"``; without it the model and its
    state dict are exactly the depth-only ones. ``forward(sparse, mask, rgb=None,
    return_heads=False)`` as there.

    Examples:
        >>> import torch
        >>> net = SparseUNet(width=4, depth=2, refine=2, heads="depth,conf,fg").eval()
        >>> sparse = torch.zeros(1, 1, 8, 12); sparse[0, 0, 2, 3] = 10.0
        >>> out = net(sparse, None, return_heads=True)
        >>> sorted(out), tuple(out["conf"].shape)
        (['conf', 'depth', 'fg', 'fg_logit', 'scale'], (1, 1, 8, 12))
        >>> net(sparse, None).shape  # the depth tensor, as every model returns
        torch.Size([1, 1, 8, 12])
    """

    def __init__(
        self,
        width: int = 16,
        depth: int = 4,
        rgb: bool = False,
        max_depth: float = DEFAULT_MAX_DEPTH,
        init_density: float = 0.05,
        refine: int = 8,
        prefill: str = "",
        heads: str = "depth",
        head_width: int = _EXTRA_CH,
        norm: str = "fixed",
    ) -> None:
        super().__init__(width, depth, rgb, max_depth, init_density, refine, sparse=True, prefill=prefill,
                         heads=heads, head_width=head_width, norm=norm)
        self._store_config(
            width=int(width),
            depth=int(depth),
            rgb=bool(rgb),
            max_depth=float(max_depth),
            init_density=float(init_density),
            refine=int(refine),
            **({"prefill": "+".join(self.prefill)} if self.prefill else {}),
            **({"heads": ",".join(("depth",) + self.heads)} if self.heads else {}),
            **({"head_width": int(head_width)} if self.heads and head_width != _EXTRA_CH else {}),
            **({"norm": norm} if norm != "fixed" else {}),
        )


def image_scale(sparse: Tensor, mask: Tensor) -> Tensor:
    """(B,1,1,1) geometric mean of each image's valid depths (m); :data:`REF_DEPTH_M` where none.

    The normaliser of ``norm="image"``: scaling an input by c scales it by c, so the
    normalised input, and with it the model's output divided by c, does not change.
    """
    logd = torch.log(sparse.clamp_min(1e-3)) * mask
    n = mask.sum(dim=(2, 3), keepdim=True)
    mean = torch.exp(logd.sum(dim=(2, 3), keepdim=True) / n.clamp_min(1.0))
    return torch.where(n > 0, mean, torch.full_like(mean, REF_DEPTH_M))


def _bounded(v: Tensor) -> Tensor:
    """A log-space correction limited to +-:data:`_MAX_LOG_CORRECTION` (identity near 0)."""
    return _MAX_LOG_CORRECTION * torch.tanh(v / _MAX_LOG_CORRECTION)


def parse_prefill(spec: str | None) -> tuple[str, ...]:
    """``"ip_basic+nearest"`` -> ``("ip_basic", "nearest")``; ``""``/``None`` -> ``()``.

    Raises:
        ValueError: an unknown fill name (the message lists :data:`PREFILLS`).
    """
    names = tuple(n.strip() for n in str(spec or "").replace(",", "+").split("+") if n.strip())
    unknown = [n for n in names if n not in PREFILLS]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"prefill={spec!r}: use names from {', '.join(PREFILLS)} joined by '+', each once")
    return names


def parse_heads(spec: str | None) -> tuple[str, ...]:
    """``"depth,conf,fg"`` -> ``("conf", "fg")``: the extra heads, in :data:`HEADS` order.

    ``depth`` is always predicted; naming it is optional. ``""``/``None``/``"depth"`` -> ``()``.

    Raises:
        ValueError: an unknown or repeated head name (the message lists :data:`HEADS`).
    """
    names = [n.strip() for n in str(spec or "").replace("+", ",").split(",") if n.strip()]
    unknown = [n for n in names if n not in HEADS]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"heads={spec!r}: use names from {', '.join(HEADS)} joined by ',', each once "
                         "(e.g. heads=depth,conf,fg)")
    return tuple(n for n in HEADS[1:] if n in names)


def scale_to_confidence(scale: Tensor) -> Tensor:
    """Confidence in (0,1] from a predicted Laplacian scale ``b`` (m): ``r / (r + b)``, r = 1 m.

    ``b`` is the expected absolute error, so 0.5 means "about 1 m off", 0.9 "about 11 cm".
    A ratio rather than e.g. ``P(|error| < r) = 1 - exp(-r/b)`` because that saturates
    at 1.0 in float32 for ``b`` below ~6 cm, tying the best pixels that a threshold or
    a sparsification curve has to order.
    """
    return CONF_REF_M / (CONF_REF_M + scale)


def _pointwise(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """A 1x1 ``conv`` as a matrix product: same weights, same result, but oneDNN's 1x1
    convolution with few output channels is ~30x slower (41 ms vs 1.2 ms for 8 -> 2
    channels at 1216x352 on 2 threads; it made the heads cost 30 % of a forward)."""
    return torch.einsum("oc,bchw->bohw", conv.weight[:, :, 0, 0], x) + conv.bias.view(1, -1, 1, 1)
