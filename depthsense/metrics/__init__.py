"""Depth metrics: the single place a metric is defined.

Training logs, evaluation reports and tests all call these functions. Everything here is
a pure function of tensors (no file I/O), runs on the inputs' device and never makes a
NaN: pixels or images without ground truth are skipped, not averaged as NaN or 0.

Conventions (ARCHITECTURE.md section 2):

* ``pred`` and ``gt`` are depth in metres, shape (B,1,H,W); (H,W), (1,H,W) and (B,H,W)
  are accepted and read as single-channel images. ``gt == 0`` (or NaN/Inf) is missing.
* A pixel counts when ``gt > 0`` and finite and, if given, ``mask != 0``; ``mask`` may be
  bool or float {0,1} and broadcasts against ``gt`` (e.g. one (1,1,H,W) crop for a batch).
* Metrics are computed **per image** over that image's valid pixels, then averaged over
  the images that have at least one valid pixel, as the KITTI devkit does. So an image
  with 100 valid pixels weighs as much as one with 10 000; this differs from pooling all
  pixels of a batch.

Metric definitions (``d`` = prediction, ``g`` = ground truth, mean over valid pixels):

=========  ==============================================  ========
name       definition                                      unit
=========  ==============================================  ========
mae        mean|d - g| * 1000                              mm
rmse       sqrt(mean (d - g)^2) * 1000                     mm
imae       mean|1/d' - 1/g| * 1000                         1/km
irmse      sqrt(mean (1/d' - 1/g)^2) * 1000                1/km
absrel     mean|d - g| / g                                 (ratio)
sqrel      mean (d - g)^2 / g  (Eigen et al. convention)   m
delta<k>   fraction with max(d'/g, g/d') < 1.25^k          (ratio)
=========  ==============================================  ========

``d' = max(d, MIN_DEPTH_M)``: inverse and ratio metrics clamp the prediction to 1 mm so
that a zero or negative prediction gives a large, finite error (and can never pass a
delta threshold by a sign flip) instead of Inf or NaN. MAE/RMSE/AbsRel/SqRel use the
raw prediction, where a negative depth is simply a large error.

Relative (affine-invariant) depth, for monocular models:

* ``ssi_align`` fits a per-image least-squares scale and shift ``s*d + t`` to ``g``.
* ``whdr`` is the Weighted Human Disagreement Rate on ordinal pixel pairs.
* ``ssi_absrel``, ``ssi_rmse`` (metres), ``ssi_delta1`` and ``whdr`` after alignment
  are ``RELATIVE_METRICS``, summarised by ``relative_metrics``.

Precision: float64 inputs are kept in float64; float16/bfloat16 are computed in float32
(squared errors in mm overflow half precision). The only host synchronisations are in the
summary helpers ``depth_metrics``, ``relative_metrics`` and ``MetricAccumulator.compute``.

The package's modules, one idea each: :mod:`~depthsense.metrics.names` (names, units,
constants), :mod:`~depthsense.metrics.per_image` (the metric functions),
:mod:`~depthsense.metrics.alignment` (the scale-and-shift fit),
:mod:`~depthsense.metrics.pairs` (ordinal labels and pair samplers),
:mod:`~depthsense.metrics.accumulator` (averages over a data set) and ``_inputs`` (input
checks and masked reductions). Import the names from ``depthsense.metrics``.
"""

from depthsense.metrics.accumulator import MetricAccumulator, depth_metrics, relative_metrics
from depthsense.metrics.alignment import fit_scale_shift, ssi_align, ssi_scale_shift
from depthsense.metrics.names import (
    DEFAULT_METRICS,
    HIGHER_IS_BETTER,
    METRIC_UNITS,
    MIN_DEPTH_M,
    RELATIVE_METRICS,
    WHDR_NUM_PAIRS,
    WHDR_SIGMA,
    metric_unit,
)
from depthsense.metrics.pairs import ordinal_labels, sample_pixel_pairs, sample_pixels
from depthsense.metrics.per_image import (
    absrel,
    delta,
    imae,
    irmse,
    mae,
    per_image_metrics,
    rmse,
    sqrel,
    valid_images,
    whdr,
)

__all__ = [
    "DEFAULT_METRICS",
    "RELATIVE_METRICS",
    "METRIC_UNITS",
    "metric_unit",
    "HIGHER_IS_BETTER",
    "MIN_DEPTH_M",
    "WHDR_SIGMA",
    "WHDR_NUM_PAIRS",
    "per_image_metrics",
    "valid_images",
    "depth_metrics",
    "relative_metrics",
    "MetricAccumulator",
    "mae",
    "rmse",
    "imae",
    "irmse",
    "absrel",
    "sqrel",
    "delta",
    "whdr",
    "ssi_scale_shift",
    "ssi_align",
    "fit_scale_shift",
    "ordinal_labels",
    "sample_pixel_pairs",
    "sample_pixels",
]
