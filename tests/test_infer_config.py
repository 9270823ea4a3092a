"""depthsense.infer_config: the depthsense-infer options, parsed from the command line."""

from __future__ import annotations

import re

import pytest

from depthsense.cli import UsageError
from depthsense.infer_config import InferConfig, infer_config_from_args, infer_parser
from depthsense.tools import infer

FLAGS_BEFORE_INFER_CONFIG = [
    "-h", "--help", "--depth-unit", "--depth-scale", "--out-unit", "--checkpoint", "--model", "--model-arg",
    "--device", "--runtime", "--precision", "--about", "--out", "--intrinsics", "--calib-key", "--fx", "--fy",
    "--cx", "--cy", "--min-conf", "--progress", "--no-progress", "--image-dir", "--sparse-dir", "--kitti-submission", "--data-root",
    "--export-onnx", "--onnx-exporter",
]
"""The flags of the hand-written depthsense-infer parser, in its order (recorded before InferConfig;
``--precision`` was added to both on the same day)."""


def test_help_lists_the_same_flags_as_the_hand_written_parser(capsys):
    with pytest.raises(SystemExit) as stop:
        infer.main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    usage = text[: text.index("\n\n")]
    listed = [flag for line in re.findall(r"^  (-[\w-]+(?:, -[\w-]+)*)", text, flags=re.M) for flag in line.split(", ")]
    assert listed == FLAGS_BEFORE_INFER_CONFIG
    in_usage = list(dict.fromkeys(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", usage)))
    assert in_usage == [f for f in FLAGS_BEFORE_INFER_CONFIG if f != "--help"]
    assert usage.rstrip().endswith("[image] [sparse]")
    for section in ("depth units:", "model (default: the pretrained completion model shipped in the package):",
                    "output:", "folders:", "ONNX:"):
        assert f"\n{section}\n" in text, section
    flat = " ".join(text.split())
    assert "--device DEVICE auto | cpu | cuda | cuda:N (default: auto)" in flat
    assert "--model-arg KEY=VALUE" in flat and "(default: None)" not in flat and "default: True" not in flat


def test_the_parsed_options_are_an_infer_config():
    cfg = infer_config_from_args(["a.png", "b.png", "--model", "ip_basic", "--model-arg", "blur=bilateral",
                                  "--model-arg", "extrapolate=False", "--fx", "500", "--no-progress",
                                  "--runtime", "onnxruntime"])
    assert cfg == InferConfig(image="a.png", sparse="b.png", model="ip_basic",
                              model_args=("blur=bilateral", "extrapolate=False"), fx=500.0, progress=False,
                              runtime="onnxruntime")
    assert infer_config_from_args(["--about"]).about is True and infer_config_from_args([]).model_args == ()


def test_a_value_argparse_rejects_is_one_line_naming_the_command():
    with pytest.raises(UsageError, match=r"--runtime: invalid choice: 'tensorrt'.*\(see depthsense-infer --help\)"):
        infer_config_from_args(["--runtime", "tensorrt"])
    with pytest.raises(UsageError, match=r"argument --fx: invalid float value: 'wide'"):
        infer_config_from_args(["--fx", "wide"])
    assert infer_parser().prog == "depthsense-infer"
