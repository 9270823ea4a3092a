"""Depth models, chosen by name: ``build_model(name, **cfg)``.

Every model follows one API (ARCHITECTURE.md section 2)::

    model = build_model("sparse_unet", width=16)
    depth = model(sparse, mask, rgb=None)   # (B,1,H,W)

with class attributes ``needs_rgb``, ``needs_sparse``, ``learned``, and ``model.config``
(JSON-able constructor arguments: ``build_model(model.name, **model.config)`` rebuilds
it); ``model_class(name)`` gives a registered class without building it. Registered names:

=================  ==========================================================  =========
name               what                                                         module
=================  ==========================================================  =========
sparse_convnet     Uhrig et al. 2017 six-layer SparseConvNet (25,585 params)   sparse_convnet
sparse_unet        U-Net SparseConvNet, optional RGB branch                     sparse_unet
convnet            the paper's dense ConvNet baseline (sparse depth in)         dense
convnet_mask       ConvNet with the mask as a second channel                    dense
dense_unet         sparse_unet's U-Net with plain convolutions                  dense
ip_basic           IP-Basic morphology (Ku et al. 2018), no parameters          classical
nearest            nearest-valid-pixel fill, no parameters                      classical
monocular          RGB-only relative depth (ResNet-style encoder-decoder)       monocular
=================  ==========================================================  =========
"""

from depthsense.models import classical, dense, monocular, sparse_convnet, sparse_unet  # noqa: F401  (fill the registry)
from depthsense.models._common import (
    DepthModel,
    available_models,
    build_model,
    forward_outputs,
    model_class,
    register_model,
)
from depthsense.models.classical import IPBasic, NearestFill, ip_basic_fill, nearest_fill
from depthsense.models.dense import ConvNet, ConvNetMask, DenseUNet
from depthsense.models.monocular import MonocularNet
from depthsense.models.sparse_convnet import SparseConvNet
from depthsense.models.sparse_unet import SparseUNet

__all__ = [
    "DepthModel",
    "build_model",
    "model_class",
    "available_models",
    "register_model",
    "forward_outputs",
    "SparseConvNet",
    "SparseUNet",
    "ConvNet",
    "ConvNetMask",
    "DenseUNet",
    "IPBasic",
    "NearestFill",
    "ip_basic_fill",
    "nearest_fill",
    "MonocularNet",
]
