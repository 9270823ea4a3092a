"""Data sets that yield depth-completion samples, chosen by name.

``build_dataset("kitti", root, "val", density=0.05)`` builds a registered data set (the
keywords make its :class:`~depthsense.data.sparsity.SparsitySpec`), ``dataset_class(name)``
gives its class and with it its abilities (``has_lidar``, ``default_crop``, ...),
``datasets_with(is_real_scan=True)`` the names with given abilities; every
data set yields the same sample dict and runs the same per-sample pipeline
(:mod:`depthsense.data.dataset`). Importing this package registers the data sets of
:mod:`depthsense.data.kitti`, :mod:`~depthsense.data.kitti_object`,
:mod:`~depthsense.data.nyu`, :mod:`~depthsense.data.redweb` and :mod:`~depthsense.data.rgbd` (``synthetic`` is the
KITTI reader on generated files).
"""

from depthsense.data.dataset import (
    INCOMPLETE_MARKER,
    OPTIONAL_KEYS,
    DepthDataset,
    RawSample,
    SampleRecord,
    available_datasets,
    build_dataset,
    collate_samples,
    dataset_class,
    datasets_with,
    register_dataset,
)
from depthsense.data.sparsity import SparsitySpec
from depthsense.errors import DatasetError

from depthsense.data import kitti, kitti_object, nyu, redweb, rgbd  # noqa: F401  (they register themselves)

__all__ = [
    "DepthDataset",
    "SampleRecord",
    "RawSample",
    "register_dataset",
    "build_dataset",
    "dataset_class",
    "SparsitySpec",
    "available_datasets",
    "datasets_with",
    "dataset_class",
    "collate_samples",
    "OPTIONAL_KEYS",
    "INCOMPLETE_MARKER",
    "DatasetError",
]
