"""The options of ``depthsense-infer``: :class:`InferConfig` and its parser.

Every field has a default and a help string (:func:`depthsense.options.option`); the
parser is generated from them as the training and evaluation parsers are, with the
fields' ``group`` as the sections of ``--help``. What the options mean together (which
mode, which files) is checked by ``depthsense-infer`` (``tools/infer.py``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from depthsense.options import config_from_namespace, option, options_parser

__all__ = ["InferConfig", "infer_parser", "infer_config_from_args"]

PROG = "depthsense-infer"

_UNITS = "depth units"
_MODEL = "model (default: the pretrained completion model shipped in the package)"
_OUTPUT = "output"
_FOLDERS = "folders"
_ONNX = "ONNX"


@dataclass(frozen=True)
class InferConfig:
    """Everything one ``depthsense-infer`` command needs: the input, the model, the outputs.

    ``None`` means "not given" (the command's own default applies); ``model_args`` are the
    ``KEY=VALUE`` strings as given, read when the model is built.
    """

    image: str | None = option(None, "RGB image (PNG/JPEG)", positional=True, nargs="?")
    sparse: str | None = option(None, "sparse depth, same size: a uint16 PNG (KITTI units, depth*256, unless "
                                      "--depth-unit says otherwise; 0 = missing) or a .npy of metres",
                                positional=True, nargs="?")
    depth_unit: str | None = option(None, "unit of the sparse depth PNGs: kitti (m x 256, default), mm (RealSense, "
                                          "Kinect, NYU), tum (m x 5000) or a number of stored values per metre",
                                    metavar="UNIT", group=_UNITS)
    depth_scale: float | None = option(None, "stored values per metre (same as --depth-unit N)", metavar="N",
                                       group=_UNITS)
    out_unit: str | None = option(None, "unit of the written depth: kitti, mm, tum, a number per metre, or npy "
                                        "(float32 metres); default: the input's unit", metavar="UNIT", group=_UNITS)
    checkpoint: str | None = option(None, "DepthSense checkpoint (RUN_DIR/best.pt); loaded with weights_only=True",
                                    group=_MODEL)
    model: str | None = option(None, "classical model name (ip_basic, nearest), or a check of the checkpoint's model",
                               group=_MODEL)
    model_args: tuple = option((), "classical model option (repeatable, with --model), e.g. --model ip_basic "
                                   "--model-arg blur=bilateral", flag="--model-arg", action="append",
                               metavar="KEY=VALUE", parse_default=None, convert=tuple, group=_MODEL)
    device: str = option("auto", "auto | cpu | cuda | cuda:N", group=_MODEL)
    runtime: str = option("torch", "torch: the PyTorch model; onnxruntime: its ONNX graph in ONNX Runtime on the CPU "
                                   "(exported once into the cache, $DEPTHSENSE_CACHE or ~/.cache/depthsense)",
                          choices=("torch", "onnxruntime"), group=_MODEL)
    precision: str = option("fp32", "fp32: as trained; bf16: bfloat16 autocast with --runtime torch on CPUs with "
                                    "AVX512-BF16 or AMX (about 1.1x faster, RMSE and MAE within 0.1 %%; "
                                    "benchmarks/README.md)", choices=("fp32", "bf16"), group=_MODEL)
    about: bool = option(False, "print what the shipped pretrained model (or --checkpoint's model) was trained on, "
                                "its command and scores, and exit", group=_MODEL)
    out: str = option(".", "output directory (created if missing)", group=_OUTPUT)
    intrinsics: str | None = option(None, "K file (9 numbers, or a 3x4 P) -> also write <name>.ply", group=_OUTPUT)
    calib_key: str | None = option(None, "with --intrinsics: the line of a 'name: values' calibration file to use, "
                                         "e.g. P_rect_02", metavar="NAME", group=_OUTPUT)
    fx: float | None = option(None, "camera fx in pixels (all four instead of --intrinsics)", group=_OUTPUT)
    fy: float | None = option(None, "camera fy in pixels (all four instead of --intrinsics)", group=_OUTPUT)
    cx: float | None = option(None, "camera cx in pixels (all four instead of --intrinsics)", group=_OUTPUT)
    cy: float | None = option(None, "camera cy in pixels (all four instead of --intrinsics)", group=_OUTPUT)
    min_conf: float | None = option(None, "with intrinsics and a checkpoint with a conf head: drop points with "
                                          "confidence below C (0..1) from the PLY", metavar="C", group=_OUTPUT)
    progress: bool = option(True, "show progress bars on stderr in folder and submission mode (default: on; "
                                  "--no-progress hides them)", group=_OUTPUT)
    image_dir: str | None = option(None, "folder of images; pairs with --sparse-dir by file name", group=_FOLDERS)
    sparse_dir: str | None = option(None, "folder of sparse depth PNGs (same stem, or KITTI _velodyne_raw_ naming)",
                                    group=_FOLDERS)
    kitti_submission: str | None = option(None, "write the KITTI test-set predictions (uint16 PNGs, benchmark "
                                                "names) into DIR", metavar="DIR", group=_FOLDERS)
    data_root: str | None = option(None, "KITTI root holding depth_selection/test_depth_completion_anonymous",
                                   group=_FOLDERS)
    export_onnx: str | None = option(None, "export the checkpoint's model to ONNX and verify it", metavar="OUT.onnx",
                                     group=_ONNX)
    onnx_exporter: str = option("auto", "auto: torch.onnx dynamo exporter, TorchScript exporter if that fails",
                                choices=("auto", "dynamo", "torchscript"), group=_ONNX)


def infer_parser() -> argparse.ArgumentParser:
    """The ``depthsense-infer`` parser, generated from :class:`InferConfig`'s fields (errors are one line)."""
    return options_parser(InferConfig, prog=PROG,
                          description="Complete sparse depth (or predict relative depth) for your own images.")


def infer_config_from_args(argv: list[str] | None) -> InferConfig:
    """Parse ``depthsense-infer`` arguments into an :class:`InferConfig`.

    Raises:
        UsageError: an argument argparse rejects (one line).
    """
    return config_from_namespace(InferConfig, vars(infer_parser().parse_args(argv)))
