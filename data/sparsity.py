"""Which sparse input a data set yields: :class:`SparsitySpec`, one option of density, beams,
point count or sensor pattern.

Every data set takes one spec (``build_dataset(name, root, split, density=0.05)`` builds
it from the keywords), checks it against its abilities (:class:`depthsense.data.DepthDataset`
``has_lidar``, ``has_dense_gt``, ``has_metric_depth``) and makes each sample's input with
:meth:`SparsitySpec.make_input`. A training mix is a list of specs whose ranges
(``density=(0.01, 0.5)``, ``pattern="holes:5%..60%"``) are drawn per sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from depthsense.data.patterns import SensorPattern, apply_pattern, parse_pattern
from depthsense.data.sparsify import LIDAR_BEHIND_OFFSET, LIDAR_HEIGHT_OFFSET, apply_sparsity, check_sparsity_args

__all__ = ["SparsitySpec", "SPARSITY_OPTIONS"]

SPARSITY_OPTIONS: tuple[str, ...] = ("density", "beams", "num_points", "pattern")
"""The fields of :class:`SparsitySpec`, the sparsity keywords of ``build_dataset``."""


@dataclass(frozen=True)
class SparsitySpec:
    """How each sample's sparse input is made: at most one option; none = the data set's own input.

    Attributes:
        density: a fraction of the pixels in (0, 1], sampled uniformly from the ground
            truth; or a ``(low, high)`` range drawn log-uniformly per sample (training mixes).
        beams: the data set's LiDAR input thinned to this many scan lines (a divisor of 64).
        num_points: exactly this many points sampled from the ground truth.
        pattern: a sensor pattern (:mod:`depthsense.data.patterns`; text is parsed, e.g.
            ``"holes:25%"``, ranges such as ``"samples:50..5000"`` drawn per sample).
    Raises:
        ValueError: more than one option, or a value out of range (the message names it).
    """

    density: float | tuple[float, float] | None = None
    beams: int | None = None
    num_points: int | None = None
    pattern: SensorPattern | None = None

    def __post_init__(self) -> None:
        if self.pattern is not None:
            object.__setattr__(self, "pattern", parse_pattern(self.pattern))
            others = [n for n in ("density", "beams", "num_points") if getattr(self, n) is not None]
            if others:
                raise ValueError(f"sparsity options {others + ['pattern']} were all set; choose one: a sensor "
                                 "pattern replaces density, num_points and beams.")
        d = self.density
        if isinstance(d, (tuple, list)):
            if len(d) != 2:
                raise ValueError(f"density={d!r}; a range is (low, high), e.g. (0.01, 0.5).")
            check_sparsity_args(d[0], self.beams, self.num_points)
            check_sparsity_args(d[1], None, None)
            object.__setattr__(self, "density", (float(d[0]), float(d[1])))
        else:
            check_sparsity_args(d, self.beams, self.num_points)

    @property
    def is_own_input(self) -> bool:
        """No option: the data set's own sparse input (its LiDAR scan, or none)."""
        return self.density is None and self.beams is None and self.num_points is None and self.pattern is None

    @property
    def samples_gt(self) -> bool:
        """The input is sampled from the ground truth (density, num_points, or a pattern but ``beams:K``)."""
        return (self.density is not None or self.num_points is not None
                or (self.pattern is not None and not self.pattern.needs_lidar))

    def draw(self, rng: np.random.Generator) -> "SparsitySpec":
        """This spec with a ``density`` range drawn log-uniformly with ``rng``; itself if none.

        A pattern's range is drawn later, by :meth:`make_input`, from the input's own
        generator.
        """
        if not isinstance(self.density, tuple):
            return self
        lo, hi = self.density
        return SparsitySpec(density=float(np.exp(rng.uniform(np.log(lo), np.log(hi)))))

    def make_input(
        self,
        gt: np.ndarray | None,
        sparse: np.ndarray | None,
        rng: np.random.Generator,
        *,
        rgb: np.ndarray | None = None,
        K: np.ndarray | None = None,
        lidar_offsets: tuple[float, float] = (LIDAR_HEIGHT_OFFSET, LIDAR_BEHIND_OFFSET),
    ) -> np.ndarray:
        """One frame's sparse input under this spec (full frame, before any crop).

        Args:
            gt: (H,W) ground truth in metres (0 = missing), or ``None``.
            sparse: (H,W) the data set's own sparse input, or ``None``.
            rng: the sample's generator (``np.random.default_rng([seed, index])``).
            rgb: (H,W,3) in [0,1], for the patterns that look at the image.
            K: (3,3) intrinsics (``beams`` only).
            lidar_offsets: (metres above, metres behind) the camera of the LiDAR (``beams`` only).
        Returns:
            (H,W) float32 metres, 0 = no input; zeros for a frame with neither its own
            input nor an option that samples one (monocular data).
        Raises:
            ValueError: a density range not drawn first, or the frame lacks what the
                option needs (ground truth, a LiDAR scan, an image).
        """
        if isinstance(self.density, tuple):
            raise ValueError(f"density range {self.density}: draw a value first (SparsitySpec.draw)")
        height, behind = lidar_offsets
        if self.pattern is not None:
            return apply_pattern(self.pattern, gt, rng, rgb=rgb, sparse=sparse, K=K,
                                 lidar_height_offset=height, lidar_behind_offset=behind)
        if sparse is None and self.density is None and self.num_points is None:
            return np.zeros(rgb.shape[:2] if rgb is not None else np.shape(gt), np.float32)
        return apply_sparsity(sparse, gt, K, rng, density=self.density, beams=self.beams, num_points=self.num_points,
                              lidar_height_offset=height, lidar_behind_offset=behind)

    def __str__(self) -> str:
        if self.pattern is not None:
            return f"pattern={self.pattern}"
        if isinstance(self.density, tuple):
            return f"density={self.density[0]:g}..{self.density[1]:g}"
        for name in ("density", "beams", "num_points"):
            if getattr(self, name) is not None:
                return f"{name}={getattr(self, name):g}"
        return "own input"
