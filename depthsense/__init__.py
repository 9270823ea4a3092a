"""DepthSense: depth completion with sparsity-invariant CNNs and monocular relative depth.

The package is kept import-light: submodules (``depthsense.io``, ``depthsense.metrics``,
...) are imported explicitly by their users.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
