"""depthsense-infer: depth from your own images (one pair, folders, the KITTI test set), ONNX export.

    depthsense-infer image.png sparse.png                       # the shipped pretrained model
    depthsense-infer image.png sparse.png --model ip_basic      # classical IP-Basic, no weights
    depthsense-infer --about                                    # what the shipped model is and scored
    depthsense-infer image.png sparse.png --checkpoint runs/unet/best.pt --out out --intrinsics K.txt
    depthsense-infer image.png --checkpoint runs/mono/best.pt   # RGB only: RELATIVE depth
    depthsense-infer --image-dir imgs --sparse-dir lidar --checkpoint best.pt --out out
    depthsense-infer --kitti-submission submission --data-root KITTI --checkpoint best.pt
    depthsense-infer --export-onnx model.onnx --checkpoint runs/unet/best.pt
    depthsense-infer image.png sparse.png --runtime onnxruntime  # ONNX Runtime on the CPU

Outputs for image ``<name>.png``: ``<name>_depth.png`` (KITTI uint16, depth*256; every
pixel predicted: pixels a model leaves at 0 m are filled from the nearest predicted
pixel, with a note counting them), ``<name>_depth_color.png`` (near bright, far dark,
with a colour bar in metres underneath, or the bare ramp where the labels do not fit) and, with intrinsics, ``<name>.ply`` (coloured
camera-frame point cloud, metres). A monocular checkpoint writes ``<name>_relative.png``
(16-bit, min-max normalised per image: 0 = nearest, 65535 = farthest; not metres) and
``<name>_relative_color.png``. A checkpoint with extra heads (``sparse_unet`` trained
with ``--model-arg heads=depth,conf,fg``) also writes ``<name>_conf.png`` (uint16,
confidence in [0,1] x 65535) and ``<name>_fg.png`` (8-bit, 255 = foreground object), and
its preview shows both under the depth; ``--min-conf C`` leaves the pixels with
confidence below C out of the point cloud. The files of one image are replaced together
or not at all.

No output may replace a file the command reads (image, sparse depth, checkpoint,
intrinsics; e.g. ``--out`` pointing at the input folder with clashing names, or a KITTI
submission written into ``velodyne_raw``): that is refused before any work.

Exit codes: 0 done; 1 folder/submission mode with files that have no partner or could
not be processed (all listed at the end; the others are written), or an ONNX parity
failure; 2 a user error or a failed write such as a full disk (one line on stderr).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

from depthsense.config import (
    UsageError,
    parse_kv,
    refuse_shared_outputs,
    report_problems,
    run_cli,
    written_so_far,
)
from depthsense.errors import DepthSenseError
from depthsense.infer_config import PROG, InferConfig, infer_config_from_args, infer_parser
from depthsense.outputs import remove_killed_writes


def build_parser() -> argparse.ArgumentParser:
    """The ``depthsense-infer`` argument parser (errors are one line): :func:`depthsense.infer_config.infer_parser`."""
    return infer_parser()


def main(argv: list[str] | None = None) -> int:
    from depthsense import inference

    cfg = infer_config_from_args(argv)
    if cfg.about:
        print(_about_text(_about(cfg, inference)))
        return 0
    mode = _mode(cfg)
    cfg = _units(cfg, mode)
    K = _intrinsics(cfg)
    if cfg.min_conf is not None and not (0.0 <= cfg.min_conf <= 1.0):
        raise UsageError(f"--min-conf {cfg.min_conf}: a confidence threshold is in [0, 1]")
    if cfg.min_conf is not None and (K is None or mode in ("kitti", "onnx")):
        raise UsageError("--min-conf filters the point cloud; pass --intrinsics (or --fx/--fy/--cx/--cy) too")
    if mode == "onnx":
        return _export(cfg, inference)
    out = Path(cfg.kitti_submission if mode == "kitti" else cfg.out)
    # Before any work: a bad --out must not cost a model load, and nothing may overwrite an input.
    inference.check_output_dir(out, option="--kitti-submission" if mode == "kitti" else "--out")
    pairing = _pairing(cfg, inference, mode, K)
    _refuse_overwriting_inputs(cfg, inference, mode, out, pairing, K)
    if cfg.runtime != "torch":
        print(f"runtime: {cfg.runtime} (the first run exports the model into the cache, 10-60 s)", flush=True)
    predictor = inference.Predictor(cfg.checkpoint, cfg.model, cfg.device, parse_kv(list(cfg.model_args)),
                                    depth_unit=cfg.depth_unit, runtime=cfg.runtime, precision=cfg.precision,
                                    log=lambda line: print(line, flush=True))
    if predictor.pretrained:
        print("no --checkpoint or --model given: using the pretrained completion model shipped with DepthSense "
              "(--about says what it is; --model ip_basic for the classical fill)")
    elif predictor.default_model_used:
        print(f"no --checkpoint or --model given and no pretrained model installed: using the classical "
              f"{inference.DEFAULT_MODEL} completion (no learned weights)")
    print(f"model: {predictor.describe()}")
    if cfg.min_conf is not None and "conf" not in predictor.heads:
        raise UsageError(f"--min-conf: {predictor.name!r} has no confidence head; pass a checkpoint trained with "
                         "--model-arg heads=depth,conf (or drop --min-conf)")
    if mode == "single":
        return _single(cfg, inference, predictor, out, K)
    return _folder(cfg, inference, predictor, out, K, pairing, kitti=(mode == "kitti"))


def cli_main(argv: list[str] | None = None) -> int:
    """``main`` with user errors reported as one line on stderr and exit code 2."""
    return run_cli(main, argv, prog=PROG)


def cli() -> None:
    raise SystemExit(cli_main())


# --------------------------------------------------------------------------- modes


def _single(cfg, inference, predictor, out: Path, K) -> int:
    # Everything is read, validated and predicted before the first file is written.
    if predictor.relative and K is not None:
        raise UsageError("--intrinsics/--fx..: a point cloud needs metric depth, but this model predicts "
                         "RELATIVE depth; drop the intrinsics.")
    pred = predictor.predict_files(cfg.image, cfg.sparse)
    _unit_note(cfg, pred)
    inference.make_output_dir(out)
    remove_killed_writes(out)  # of an earlier run that was killed mid-write
    written = inference.write_prediction(out, Path(cfg.image).stem, pred, K, cfg.min_conf, cfg.out_unit)
    _report(written, pred.relative, cfg.out_unit or pred.depth_unit)
    return 0


def _units(cfg: InferConfig, mode: str) -> InferConfig:
    """Check --depth-unit / --depth-scale / --out-unit; ``cfg`` with --depth-scale folded into
    --depth-unit and --out-unit in lower case."""
    from depthsense.io import parse_depth_unit

    if cfg.depth_scale is not None:
        if cfg.depth_unit is not None:
            raise UsageError("--depth-unit and --depth-scale both given; pass one (--depth-scale N is --depth-unit N)")
        cfg = dataclasses.replace(cfg, depth_unit=repr(cfg.depth_scale))
    for option, value in (("--depth-unit", cfg.depth_unit), ("--out-unit", cfg.out_unit)):
        if value is not None and not (option == "--out-unit" and str(value).lower() == "npy"):
            try:
                parse_depth_unit(value)
            except ValueError as exc:
                raise UsageError(f"{option}: {exc}") from None
    if cfg.out_unit is not None:
        cfg = dataclasses.replace(cfg, out_unit=str(cfg.out_unit).lower())
        if mode == "kitti":
            raise UsageError("--out-unit: the KITTI benchmark takes KITTI units only; drop --out-unit")
    return cfg


def _npy_out(cfg, sparse) -> bool:
    if cfg.out_unit is not None:
        return cfg.out_unit == "npy"
    return sparse is not None and Path(sparse).suffix.lower() == ".npy"


def _unit_note(cfg, pred) -> None:
    """A depth camera's frame read in the default KITTI units is a likely unit mistake: say so."""
    if cfg.depth_unit is None and pred.depth_unit == "kitti" and pred.sparse is not None:
        share = float((pred.sparse > 0).mean())
        if share > 0.3:
            print(f"note: {100 * share:.0f}% of the pixels of {pred.sparse_path} have depth, as from a depth camera; "
                  "it was read in KITTI units (m x 256). For RealSense/Kinect/NYU files pass --depth-unit mm, "
                  "for TUM --depth-unit tum")


def _pairing(cfg, inference, mode: str, K):
    """The (image, sparse) pairs to process; reads only folder listings (no model needed)."""
    if mode == "single":
        pairing = inference.Pairing(pairs=[(Path(cfg.image), None if cfg.sparse is None else Path(cfg.sparse))])
        pairing.files = [p for p, _ in pairing.pairs] + [s for _, s in pairing.pairs if s is not None]
        return pairing
    if mode == "kitti":
        if cfg.data_root:
            image_dir, sparse_dir = inference.kitti_test_dirs(cfg.data_root)
        elif cfg.image_dir and cfg.sparse_dir:
            image_dir, sparse_dir = Path(cfg.image_dir), Path(cfg.sparse_dir)
        else:
            raise UsageError("--kitti-submission needs --data-root KITTI_ROOT (or --image-dir and --sparse-dir "
                             "of depth_selection/test_depth_completion_anonymous).")
        if K is not None:
            raise UsageError("--kitti-submission writes only the benchmark PNGs; drop --intrinsics/--fx...")
        return inference.pair_files(image_dir, sparse_dir)
    return inference.pair_files(cfg.image_dir, cfg.sparse_dir)


def _refuse_overwriting_inputs(cfg, inference, mode: str, out: Path, pairing, K) -> None:
    if mode == "kitti":
        outputs = [out / s.name for _, s in pairing.pairs]
    else:  # without sparse depth the model must be monocular: relative-depth names
        # The model (and so its heads) is not loaded yet: the head outputs are assumed, which
        # at worst refuses an --out holding an input named like <stem>_conf.png.
        outputs = [p for image, sparse in pairing.pairs
                   for p in inference.prediction_outputs(out, image, sparse is None, K is not None,
                                                         () if sparse is None else ("conf", "fg"),
                                                         _npy_out(cfg, sparse))]
    inputs = list(pairing.files) + [Path(f) for f in (cfg.checkpoint, cfg.intrinsics) if f]
    option = "--kitti-submission" if mode == "kitti" else "--out"
    # distinct names, but a symlink in --out (x_depth_color.png -> x_depth.png) would still make two one file
    refuse_shared_outputs((str(p), p) for p in outputs)
    inference.refuse_overwrite(outputs, inputs, fix=f"choose an {option} folder that holds no input")


def _folder(cfg, inference, predictor, out: Path, K, pairing, kitti: bool) -> int:
    from tqdm import tqdm

    from depthsense.io import WriteError, write_depth

    if kitti:
        if predictor.relative:
            raise UsageError(f"--kitti-submission needs a depth-completion model; {predictor.name!r} predicts "
                             "relative depth. Pass a completion checkpoint (or none for ip_basic).")
        sparse_dir = inference.kitti_test_dirs(cfg.data_root)[1] if cfg.data_root else Path(cfg.sparse_dir)
    else:
        sparse_dir = cfg.sparse_dir
        if sparse_dir is None and predictor.needs_sparse:
            raise UsageError(f"--image-dir without --sparse-dir: {predictor.name!r} completes sparse depth. Pass "
                             "--sparse-dir with the depth PNGs, or a monocular checkpoint for relative depth.")
        if sparse_dir is not None and predictor.relative:
            raise UsageError(f"--sparse-dir: {predictor.name!r} predicts relative depth from images alone; "
                             "drop --sparse-dir or pass a depth-completion checkpoint.")
        if predictor.relative and K is not None:
            raise UsageError("--intrinsics/--fx..: a point cloud needs metric depth, but this model predicts "
                             "RELATIVE depth; drop the intrinsics.")
    problems = list(pairing.problems)
    inference.make_output_dir(out)
    remove_killed_writes(out)  # of an earlier run that was killed mid-write
    if kitti:
        ours = {s.name for _, s in pairing.pairs}
        others = [p.name for p in out.iterdir() if p.name not in ours]
        if others:
            print(f"note: {out} already holds {len(others)} other file(s) (e.g. {others[0]}); the benchmark "
                  "zip must contain only the prediction PNGs")
    written: list[str] = []
    for image, sparse in tqdm(pairing.pairs, desc="depthsense-infer", unit="img", disable=not cfg.progress,
                              file=sys.stderr):
        try:
            pred = predictor.predict_files(image, sparse)
            if kitti:
                write_depth(out / sparse.name, pred.depth)
            else:
                inference.write_prediction(out, image.stem, pred, K, cfg.min_conf, cfg.out_unit)
            written.append(image.name)
        except UsageError:
            raise
        except WriteError as exc:  # a full disk fails every further file too: stop, saying what stays
            raise WriteError(f"{exc} {written_so_far(written, len(pairing.pairs), out, 'images')}") from None
        except DepthSenseError as exc:  # a bad file: report it, keep going
            problems.append(f"failed: {exc}")
    done = len(written)
    total = len(pairing.pairs) + len(pairing.problems)
    kind = "RELATIVE depth (not metres; 16-bit min-max normalised per image)" if predictor.relative else "depth"
    print(f"wrote {kind} for {done} of {len(pairing.pairs)} pairs into {out}")
    if kitti:
        expected = pairing.sparse_count
        print(f"KITTI submission: {done} PNGs for {expected} velodyne_raw inputs in {sparse_dir}"
              + ("" if expected == 1000 else " (the official test set has 1000)")
              + ("; zip the PNGs in it" if done == expected else ""))
        if done != expected and not problems:
            problems.append(f"{out}: {done} predictions for {expected} inputs")
    return report_problems(problems, total, "inputs")


def _about(cfg, inference) -> dict:
    """The card --about prints: the shipped model's, or --checkpoint's (its own record if it
    has one, else what the checkpoint stores: model, options, training settings, scores)."""
    from depthsense.checkpoint import load_checkpoint

    work = [n for n, v in (("IMAGE", cfg.image), ("--image-dir", cfg.image_dir), ("--sparse-dir", cfg.sparse_dir),
                           ("--kitti-submission", cfg.kitti_submission), ("--data-root", cfg.data_root),
                           ("--export-onnx", cfg.export_onnx), ("--intrinsics", cfg.intrinsics),
                           ("--model-arg", cfg.model_args)) if v]
    if work:
        raise UsageError(f"--about prints a model's card and exits; it does not use {', '.join(work)}. Drop --about "
                         "to predict, or drop those to read the card.")
    if cfg.checkpoint is None:
        if cfg.model:
            raise UsageError(f"--about describes a trained model; --model {cfg.model} has no card (pass "
                             "--checkpoint FILE, or neither for the shipped model)")
        return inference.pretrained_about()
    ckpt = load_checkpoint(cfg.checkpoint, map_location="cpu")
    if isinstance(ckpt.get("about"), dict):
        return ckpt["about"]
    train_cfg = ckpt.get("train_cfg") or {}
    metrics = {k: v for k, v in (ckpt.get("metrics") or {}).items() if isinstance(v, (int, float))}
    return {"name": str(cfg.checkpoint), "model": ckpt["model"], "model_cfg": ckpt.get("model_cfg"),
            "parameters": int(sum(v.numel() for v in ckpt["state_dict"].values() if hasattr(v, "numel"))),
            "step": ckpt.get("step"), "train_cfg": train_cfg, "metrics": metrics}


def _about_text(about: dict) -> str:
    lines = [f"{about.get('name', 'pretrained model')}: {about.get('model')} {about.get('model_cfg')}, "
             f"{about.get('parameters')} parameters"]
    if "train_cfg" in about:  # a checkpoint of depthsense-train, without a shipped model's record
        cfg = about["train_cfg"]
        lines.append(f"trained {about.get('step')} steps with depthsense-train on {cfg.get('dataset', '?')} "
                     f"({cfg.get('data_root') or 'the synthetic cache'}), loss {cfg.get('loss')}, seed {cfg.get('seed')}")
        if about.get("metrics"):
            lines.append("validation at that step: " + ", ".join(f"{k} {v:.4g}" for k, v in about["metrics"].items()))
        return "\n".join(lines)
    lines += [f"trained in {about.get('train_minutes')} min on {about.get('machine', 'the CPU')} ({about.get('created')}, "
              f"torch {about.get('torch')})",
              f"command: {about.get('command')}"]
    for k, v in (about.get("training_data") or {}).items():
        lines.append(f"training data ({k}): {v}")
    for where, table in (about.get("scores") or {}).items():
        lines.append(f"scores, {where} (MAE / RMSE mm):")
        for level, row in table.items():
            cells = ", ".join(f"{m} {v.get('mae', float('nan')):.0f} / {v.get('rmse', float('nan')):.0f}"
                              for m, v in row.items())
            lines.append(f"  {level}: {cells}")
    return "\n".join(lines)


def _export(cfg, inference) -> int:
    from depthsense.inference import onnx_export

    checkpoint = cfg.checkpoint
    if not checkpoint and not cfg.model and inference.PRETRAINED_CHECKPOINT.is_file():
        checkpoint = str(inference.PRETRAINED_CHECKPOINT)  # the shipped model
    if not checkpoint:
        raise UsageError("--export-onnx needs --checkpoint RUN_DIR/best.pt (classical models have no ONNX graph).")
    dest = onnx_export.check_onnx_destination(cfg.export_onnx)  # before the model load
    inference.refuse_overwrite([dest], [checkpoint], fix="choose another --export-onnx path")
    predictor = inference.Predictor(checkpoint, cfg.model, "cpu")
    print(f"model: {predictor.describe()}", flush=True)
    try:
        result = onnx_export.export_onnx(predictor, dest, exporter=cfg.onnx_exporter,
                                       log=lambda line: print(line, flush=True))
    except onnx_export.OnnxParityError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    if result.fallback_reason:
        print(f"dynamo exporter failed ({result.fallback_reason}); used the TorchScript exporter")
    print(f"wrote {result.path} ({result.path.stat().st_size / 1e6:.2f} MB, self-contained; {result.exporter} "
          f"exporter; inputs {', '.join(result.inputs)} as (B,C,H,W) float32 with dynamic B, H, W; output depth "
          "(B,1,H,W))")
    unit = " (relative units)" if predictor.relative else " m"
    for (h, w), diff, scale in result.checks:
        print(f"onnxruntime vs torch at {h}x{w}: max abs difference {diff:.3g}{unit} (max |depth| {scale:.3g}{unit}; "
              f"tolerance {result.atol:g}{unit} + {result.rtol:g} x max|depth|)")
    return 0


# --------------------------------------------------------------------------- helpers


def _mode(cfg) -> str:
    """single | folder | kitti | onnx, with conflicting arguments refused."""
    positional = cfg.image is not None
    if cfg.export_onnx:
        extra = [n for n, v in (("IMAGE", cfg.image), ("--image-dir", cfg.image_dir),
                                ("--kitti-submission", cfg.kitti_submission)) if v]
        if extra:
            raise UsageError(f"--export-onnx exports a model only; drop {', '.join(extra)}.")
        return "onnx"
    if cfg.kitti_submission:
        if positional:
            raise UsageError("--kitti-submission runs over the test set; drop IMAGE/SPARSE.")
        return "kitti"
    if cfg.data_root:
        raise UsageError("--data-root is used with --kitti-submission only.")
    if cfg.image_dir:
        if positional:
            raise UsageError("pass either IMAGE [SPARSE] or --image-dir, not both.")
        return "folder"
    if cfg.sparse_dir:
        raise UsageError("--sparse-dir needs --image-dir.")
    if not positional:
        raise UsageError("nothing to do: pass IMAGE [SPARSE], --image-dir DIR, --kitti-submission DIR or "
                         "--export-onnx OUT.onnx (see --help).")
    return "single"


def _intrinsics(cfg) -> np.ndarray | None:
    from depthsense.io import read_intrinsics

    given = {k: getattr(cfg, k) for k in ("fx", "fy", "cx", "cy") if getattr(cfg, k) is not None}
    if cfg.intrinsics and given:
        raise UsageError("pass either --intrinsics or --fx/--fy/--cx/--cy, not both.")
    if cfg.calib_key and not cfg.intrinsics:
        raise UsageError("--calib-key names a line of the --intrinsics calibration file; pass --intrinsics FILE too.")
    if cfg.intrinsics:
        return read_intrinsics(cfg.intrinsics, key=cfg.calib_key)
    if not given:
        return None
    if len(given) < 4:
        missing = [f"--{k}" for k in ("fx", "fy", "cx", "cy") if k not in given]
        raise UsageError(f"camera intrinsics need all of --fx --fy --cx --cy; missing {' '.join(missing)}.")
    if not (given["fx"] > 0 and given["fy"] > 0):
        raise UsageError(f"--fx {given['fx']} --fy {given['fy']}: focal lengths must be positive (pixels).")
    return np.array([[given["fx"], 0.0, given["cx"]], [0.0, given["fy"], given["cy"]], [0.0, 0.0, 1.0]])


def _report(written: dict, relative: bool, unit: str = "kitti") -> None:
    files = ", ".join(str(v) for k, v in written.items() if k != "points")
    if relative:
        print(f"wrote RELATIVE depth (not metres): {files}")
        print("  16-bit PNG, min-max normalised over this image: 0 = nearest, 65535 = farthest; scale and shift "
              "are unknown")
    else:
        print(f"wrote {files}")
        if unit == "npy":
            print("  depth .npy: float32 metres")
        else:
            from depthsense.io import parse_depth_unit

            scale = parse_depth_unit(unit).scale
            print(f"  depth PNG: uint16 {'KITTI units, ' if unit == 'kitti' else ''}metres*{scale:g}")
        if "conf" in written:
            print("  confidence PNG: uint16, confidence in [0,1] x 65535")
        if "fg" in written:
            print("  foreground PNG: 8-bit, 255 = foreground object (cars, poles), 0 = background")
    if "points" in written:
        print(f"  point cloud: {written['points']} points (camera frame, metres)")


if __name__ == "__main__":
    cli()
