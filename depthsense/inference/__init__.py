"""Inference on users' own data: the Predictor, output writers, folder / KITTI-test modes,
ONNX export and point clouds.

The public names of the stage, re-exported from the modules that define them::

    from depthsense.inference import Predictor
    depth = Predictor().predict(rgb, sparse)   # the shipped model
"""

from depthsense.config import check_output_dir, make_output_dir, refuse_overwrite
from depthsense.inference.folders import IMAGE_SUFFIXES, KITTI_TEST_SUBDIR, Pairing, kitti_test_dirs, pair_files
from depthsense.inference.onnx_export import OnnxExport, OnnxParityError, check_onnx_destination, export_onnx
from depthsense.inference.predictor import DEFAULT_MODEL, PRETRAINED_CHECKPOINT, Prediction, Predictor, pretrained_about
from depthsense.inference.writers import output_names, prediction_outputs, relative_to_uint16, write_prediction

__all__ = [
    "DEFAULT_MODEL",
    "PRETRAINED_CHECKPOINT",
    "pretrained_about",
    "IMAGE_SUFFIXES",
    "KITTI_TEST_SUBDIR",
    "Predictor",
    "Prediction",
    "Pairing",
    "OnnxExport",
    "OnnxParityError",
    "relative_to_uint16",
    "output_names",
    "write_prediction",
    "prediction_outputs",
    "check_output_dir",
    "make_output_dir",
    "refuse_overwrite",
    "pair_files",
    "kitti_test_dirs",
    "export_onnx",
    "check_onnx_destination",
]
