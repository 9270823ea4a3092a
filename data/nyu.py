"""NYU Depth v2 in the HDF5 layout of sparse-to-dense (Ma & Karaman 2018).

Layout: ``<root>/train/<scene>/<n>.h5`` and ``<root>/val/<scene>/<n>.h5``; each file holds
``rgb`` (3,480,640) uint8 and ``depth`` (480,640) float32 metres (an (H,W,3) ``rgb`` is
accepted too). Samples are ordered by scene name, then numerically by ``<n>``.

NYU has no measured sparse input: it is sampled from the ground truth, by default
``num_points=500`` uniformly chosen valid pixels (the sparse-to-dense protocol), or
``density=f`` of the pixels if given; ``beams`` is refused (no LiDAR scan lines).

``K`` is the constant NYU Kinect colour intrinsics (fx 518.8579, fy 519.4696,
cx 325.5824, cy 253.7362) at 640x480, adjusted for crops and flips like any other.

Errors: a missing or corrupt HDF5 file (or one without ``rgb`` / ``depth``) raises
``DepthFileError`` from :func:`depthsense.io.read_h5`, passed through unchanged (like
``DatasetError`` it is a ``ValueError`` and a ``DepthSenseError``); inconsistent arrays
in a readable file raise ``DatasetError``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from depthsense.data.dataset import DepthDataset, RawSample, SampleRecord, register_dataset
from depthsense.data.sparsity import SparsitySpec
from depthsense.errors import DatasetError
from depthsense.io import read_h5

__all__ = ["NyuDataset", "NYU_K", "NYU_NUM_POINTS"]

NYU_K = np.array([[518.8579, 0.0, 325.5824], [0.0, 519.4696, 253.7362], [0.0, 0.0, 1.0]], dtype=np.float32)
"""NYU Depth v2 colour-camera intrinsics for 640x480 images."""

NYU_NUM_POINTS = 500
"""Default number of sparse points sampled from GT (sparse-to-dense protocol)."""


@register_dataset("nyu")
class NyuDataset(DepthDataset):
    """NYU Depth v2 (sparse-to-dense HDF5): ``train`` | ``val``.

    Args:
        root: folder holding ``train/`` and ``val/``.
        split: ``train`` or ``val``.
        transform, sparsity, seed, cache: see :class:`depthsense.data.DepthDataset`; the
            input is ``num_points=500`` of the ground truth unless ``sparsity`` says
            otherwise (``density``, other ``num_points``, a sensor pattern).
    Raises:
        DatasetError: missing root/split folder, no ``*.h5`` files, ``beams`` given.
    """

    splits = ("train", "val")
    default_sparsity = SparsitySpec(num_points=NYU_NUM_POINTS)
    own_input = f"{NYU_NUM_POINTS} points"
    default_crop = (448, 576)

    def _find_samples(self) -> list[SampleRecord]:
        split_dir = self.root / self.split
        pattern = f"{split_dir}/<scene>/*.h5"
        if not split_dir.is_dir():
            raise DatasetError(
                f"{split_dir}: split folder not found; expected {pattern} (sparse-to-dense "
                "NYU Depth v2 layout). Check the root folder."
            )
        files = [p for p in split_dir.glob("*/*.h5") if p.is_file() and not p.name.startswith(".")]
        if not files:
            raise DatasetError(f"{split_dir}: no samples found; searched {pattern}.")
        files.sort(key=_natural_key)
        return [SampleRecord(rgb=p, gt=p, name=f"{p.parent.name}/{p.stem}") for p in files]

    def _load(self, record: SampleRecord) -> RawSample:
        arrays = read_h5(record.rgb, ("rgb", "depth"))
        rgb, depth = arrays["rgb"], arrays["depth"]
        if depth.ndim != 2:
            raise DatasetError(f"{record.rgb}: 'depth' has shape {depth.shape}; expected (H,W) metres.")
        if rgb.shape == (3, *depth.shape):
            rgb = rgb.transpose(1, 2, 0)
        elif rgb.shape != (*depth.shape, 3):
            raise DatasetError(
                f"{record.rgb}: 'rgb' has shape {rgb.shape} but 'depth' is {depth.shape}; expected "
                f"rgb (3,H,W) (or (H,W,3)) of the same H,W. The file does not follow the "
                "sparse-to-dense layout; re-convert it."
            )
        if rgb.dtype == np.uint8:
            rgb = rgb.astype(np.float32) / np.float32(255.0)
        elif np.issubdtype(rgb.dtype, np.floating) and rgb.size and 0.0 <= rgb.min() and rgb.max() <= 1.0:
            rgb = rgb.astype(np.float32)
        else:
            raise DatasetError(f"{record.rgb}: 'rgb' is {rgb.dtype}; expected uint8 (or float in [0,1]).")
        depth = depth.astype(np.float32)
        # Missing depth may be stored as NaN or negative in home-made conversions.
        depth = np.where(np.isfinite(depth) & (depth > 0), depth, np.float32(0.0))
        return RawSample(rgb=np.ascontiguousarray(rgb), sparse=None, gt=depth, K=NYU_K)

    def _layout_hint(self) -> str:
        return "the nyudepthv2 folder with train/<scene>/*.h5 and val/<scene>/*.h5"


def _natural_key(path: Path) -> tuple:
    stem = path.stem
    return (path.parent.name, 0 if stem.isdigit() else 1, int(stem) if stem.isdigit() else 0, stem)
