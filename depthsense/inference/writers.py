"""Output files of a prediction: KITTI depth PNG, colour preview with a colour bar, the
extra heads' maps and a PLY point cloud, written as one set (all or none).

Relative depth (``monocular``) has unknown scale and shift: :func:`relative_to_uint16`
stores it min-max normalised over the image as a 16-bit PNG, 0 = nearest, 65535 =
farthest pixel of that image (a constant map becomes all 0). It is *not* KITTI depth
(value/256 is not metres).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from depthsense.config import UsageError
from depthsense.errors import ShapeError
from depthsense.inference.pointcloud import ply_bytes
from depthsense.inference.predictor import Prediction
from depthsense.io import atomic_write_files, encode_depth, encode_image, encode_rgb
from depthsense.viz import colorize_confidence, colorize_depth, depth_range, mask_overlay, with_colorbar

__all__ = ["relative_to_uint16", "output_names", "write_prediction", "prediction_outputs"]


def relative_to_uint16(rel) -> np.ndarray:
    """Min-max normalise relative depth over the image to uint16.

    Args:
        rel: (H,W) relative depth, larger = farther, finite.
    Returns:
        (H,W) uint16: 0 at the nearest pixel, 65535 at the farthest; all 0 when the map
        is constant.
    Raises:
        ShapeError: not 2-D or non-finite values.
    """
    r = np.asarray(rel, dtype=np.float64)
    if r.ndim != 2:
        raise ShapeError(f"relative depth must be (H,W); got shape {r.shape}.")
    if not np.isfinite(r).all():
        raise ShapeError("relative depth has NaN/Inf values; cannot normalise it.")
    lo, hi = float(r.min()), float(r.max())
    if not hi > lo:
        return np.zeros(r.shape, np.uint16)
    return np.clip(np.rint((r - lo) / (hi - lo) * 65535.0), 0, 65535).astype(np.uint16)


def output_names(stem: str, relative: bool, with_ply: bool, heads: tuple[str, ...] = (),
                 npy: bool = False) -> dict[str, str]:
    """File names :func:`write_prediction` writes for image ``stem``.

    Returns:
        ``{"depth": ..., "color": ..., ["ply": ...], ["conf": ...], ["fg": ...]}``:
        ``<stem>_depth.png`` (``.npy`` with ``npy``) / ``<stem>_depth_color.png`` for metric
        depth, ``<stem>_relative.png`` / ``<stem>_relative_color.png`` for relative depth,
        ``<stem>.ply``, ``<stem>_conf.png`` and ``<stem>_fg.png`` for the heads in ``heads``.
    """
    kind = "relative" if relative else "depth"
    names = {"depth": f"{stem}_{kind}{'.npy' if npy and not relative else '.png'}",
             "color": f"{stem}_{kind}_color.png"}
    if with_ply:
        names["ply"] = f"{stem}.ply"
    for head in ("conf", "fg"):
        if head in heads:
            names[head] = f"{stem}_{head}.png"
    return names


def write_prediction(
    out_dir: str | os.PathLike, stem: str, prediction: Prediction, K=None, min_conf: float | None = None,
    unit: str | None = None,
) -> dict[str, Path]:
    """Write a prediction's files (see :func:`output_names`) into ``out_dir``, all or none.

    Metric depth: a uint16 PNG in ``unit`` (default the unit its sparse input was read
    in, ``prediction.depth_unit``: KITTI's depth*256 unless told), or a
    ``.npy`` of float32 metres when ``unit`` is ``"npy"``; and a colour preview
    (near bright, far dark, invalid black) with a colour bar in metres underneath; with
    ``K`` also a coloured PLY point cloud of the valid pixels. Relative depth:
    :func:`relative_to_uint16` PNG and a preview whose bar reads near / far.

    With a confidence head: ``<stem>_conf.png``, uint16 = round(conf x 65535); with a
    foreground head: ``<stem>_fg.png``, 8-bit 0/255 (probability > 0.5). The preview then
    also shows the confidence (dark = 0, bright = 1, with its bar) and the foreground
    mask over the image, stacked under the depth.

    Every file is encoded in memory and written to a temporary file first; only when all
    are complete are they renamed into place, so a full disk never leaves a new depth PNG
    next to the previous run's preview.

    Args:
        out_dir: an existing directory.
        stem: base name, usually the image's stem.
        K: optional (3,3) intrinsics of this image (metric depth only).
        min_conf: with ``K``: leave out of the PLY the pixels whose confidence is below
            this (needs ``prediction.conf``).
    Returns:
        ``{"depth": path, "color": path, ["ply": path], ["conf": path], ["fg": path]}``
        plus ``"points"`` -> number of PLY vertices when a PLY was written (an int).
    Raises:
        UsageError: ``K`` given for relative depth (no metric scale for a point cloud), or
            ``min_conf`` without a confidence map.
        DepthFileError: a file cannot be written (none of them is then replaced).
    """
    out_dir = Path(out_dir)
    if prediction.relative and K is not None:
        raise UsageError(
            "a point cloud needs metric depth, but this model predicts relative depth; drop "
            "--intrinsics/--fx..."
        )
    if min_conf is not None and prediction.conf is None:
        raise UsageError("--min-conf needs a confidence map, but this model has no conf head; train one with "
                         "--model-arg heads=depth,conf (or drop --min-conf)")
    heads = tuple(h for h in ("conf", "fg") if getattr(prediction, h) is not None)
    unit = prediction.depth_unit if unit is None else str(unit)
    npy = unit == "npy"
    paths = {k: out_dir / v for k, v in output_names(stem, prediction.relative, K is not None, heads, npy).items()}
    files: dict[Path, bytes] = {}
    if prediction.relative:
        u16 = relative_to_uint16(prediction.depth)
        # +1 keeps the nearest pixel valid (colorize_depth treats <= 0 as missing).
        preview = with_colorbar(colorize_depth(u16.astype(np.float32) / 65535.0 + 1.0, 1.0, 2.0), 1.0, 2.0,
                                labels=("near", "far"))
        files[paths["depth"]] = encode_image(paths["depth"], u16)
    else:
        lo, hi = depth_range(prediction.depth) or (0.0, 1.0)
        preview = with_colorbar(colorize_depth(prediction.depth, lo, hi), lo, hi, unit="m")
        files[paths["depth"]] = encode_depth(paths["depth"], prediction.depth, None if npy else unit)
    tiles = [preview]
    if prediction.conf is not None:
        conf = np.clip(prediction.conf, 0.0, 1.0)
        files[paths["conf"]] = encode_image(paths["conf"], np.rint(conf * 65535.0).astype(np.uint16))
        tiles.append(with_colorbar(colorize_confidence(conf), 0.0, 1.0, cmap="viridis", kind="error",
                                   labels=("confidence 0", "1")))
    if prediction.fg is not None:
        fg = prediction.fg > 0.5
        files[paths["fg"]] = encode_image(paths["fg"], np.where(fg, 255, 0).astype(np.uint8))
        base = prediction.rgb if prediction.rgb is not None else np.zeros((*fg.shape, 3), np.float32)
        tiles.append(mask_overlay(base, fg))
    files[paths["color"]] = encode_rgb(paths["color"], np.concatenate(tiles, axis=0) if len(tiles) > 1 else preview)
    written: dict[str, Any] = {k: paths[k] for k in ("depth", "color", "conf", "fg") if k in paths}
    if K is not None:
        depth = prediction.depth
        if min_conf is not None:
            depth = np.where(prediction.conf >= min_conf, depth, np.float32(0.0))
        files[paths["ply"]], written["points"] = ply_bytes(depth, K, prediction.rgb)
        written["ply"] = paths["ply"]
    atomic_write_files(files)
    return written


def prediction_outputs(out_dir: str | os.PathLike, image: str | os.PathLike, relative: bool,
                       with_ply: bool, heads: tuple[str, ...] = (), npy: bool = False) -> list[Path]:
    """The files :func:`write_prediction` would write for ``image`` into ``out_dir``."""
    names = output_names(Path(image).stem, relative, with_ply, heads, npy)
    return [Path(out_dir) / n for n in names.values()]
