"""Inference on users' own data: the Predictor, output writers, folder / KITTI-test modes,
ONNX export and point clouds.

The public names of the stage, re-exported from the modules that define them::

    from depthsense.inference import Predictor
    depth = Predictor().predict(rgb, sparse)   # the shipped model
"""

from depthsense.inference.predictor import (
    DEFAULT_MODEL,
    IMAGE_SUFFIXES,
    KITTI_TEST_SUBDIR,
    PRETRAINED_CHECKPOINT,
    OnnxExport,
    OnnxParityError,
    Pairing,
    Prediction,
    Predictor,
    check_onnx_destination,
    check_output_dir,
    export_onnx,
    kitti_test_dirs,
    make_output_dir,
    output_names,
    pair_files,
    prediction_outputs,
    pretrained_about,
    refuse_overwrite,
    relative_to_uint16,
    write_prediction,
)

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
