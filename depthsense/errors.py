"""Error types shared by every DepthSense package.

A leaf module (imports nothing from the project) so that ``models``, ``losses`` and
``data`` may raise the same errors the CLIs know how to print as one line.
"""

from __future__ import annotations

__all__ = ["DepthSenseError", "ShapeError", "DepthFileError", "DatasetError", "CheckpointError"]


class DepthSenseError(Exception):
    """Base class of user-facing errors: CLIs print them as one line and exit 2."""


class ShapeError(DepthSenseError, ValueError):
    """A tensor has the wrong shape, dtype or layout."""


class DepthFileError(DepthSenseError, ValueError):
    """A file handed in (depth PNG, RGB image, HDF5, intrinsics) is missing or invalid."""


class DatasetError(DepthSenseError, ValueError):
    """A data set root or split is missing, empty or inconsistent."""


class CheckpointError(DepthSenseError, ValueError):
    """A checkpoint is missing, not a DepthSense checkpoint, or does not fit the model."""
