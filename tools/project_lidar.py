"""depthsense-project-lidar: Velodyne scans + KITTI calibration -> sparse depth PNGs.

    depthsense-project-lidar velodyne/000000.bin --calib calib/000000.txt --image image_2/000000.png \\
        --out 000000_depth.png --overlay 000000_overlay.png
    depthsense-project-lidar scan.bin --calib 2011_09_26/calib_cam_to_cam.txt --size 375x1242 --out d.png
    depthsense-project-lidar --data-root kitti_object --out-dir projected --beams 16 --overlay
    depthsense-project-lidar --data-root raw/2011_09_26/2011_09_26_drive_0001_sync --out-dir projected

One frame: the scan, its calibration (KITTI object ``calib/<id>.txt``, or KITTI raw
``calib_cam_to_cam.txt`` with ``calib_velo_to_cam.txt`` beside it) and the image size
(from ``--image``, or ``--size HxW``) give a KITTI uint16 PNG (depth*256, 0 = no point).
A folder (``--data-root``: KITTI object root, or a KITTI-raw drive or date folder) writes
``<out-dir>/<frame>.png`` for every frame of ``--split``. ``--beams N`` keeps every
(64/N)-th laser ring; ``--overlay`` also draws the points over the image. The projection
is :mod:`depthsense.data.lidar`.

Bad input is one line on stderr and exit status 2; nothing is written then, and no input
file is ever written over. Two outputs may not share a path (``--out`` and ``--overlay``,
or two frames' files in folder mode; symlinks and ``..`` resolved). A frame's depth PNG
and overlay are written together or not at all. Folder mode skips a frame it cannot
project, lists every skipped frame at the end (one line each) and exits 1; a failed
write (a full disk) stops it, saying which frames were written and stay. What is worth
knowing but not an error (depth clipped at the PNG's 256 m, a scan of which almost
nothing lands in the image) is a ``note: ...`` line.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from depthsense.config import (
    OneLineParser,
    UsageError,
    make_output_dir,
    parse_size,
    refuse_overwrite,
    refuse_shared_outputs,
    report_problems,
    run_cli,
    written_so_far,
)
from depthsense.outputs import remove_killed_writes

__all__ = ["main", "cli"]

_PROG = "depthsense-project-lidar"


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and project; return the exit status (0 ok, 2 user error)."""
    args = _parser().parse_args(argv)
    if args.beams is not None and (args.beams < 1 or 64 % args.beams):
        raise UsageError(f"--beams {args.beams}: not a divisor of 64; use 64, 32, 16, 8, 4, 2 or 1")
    if args.data_root:
        if args.scan or args.calib or args.image or args.size or args.out:
            raise UsageError("--data-root projects a whole folder into --out-dir; drop SCAN/--calib/--image/--size/--out")
        if not args.out_dir:
            raise UsageError("--data-root needs --out-dir DIR for the projected PNGs")
        if args.overlay:
            raise UsageError("with --data-root, --overlay takes no path (it writes <out-dir>/<frame>_overlay.png)")
        return _project_folder(args)
    if not args.scan:
        raise UsageError("pass a scan (.bin) with --calib and --image or --size, or --data-root DIR --out-dir DIR")
    if not args.calib:
        raise UsageError(f"{args.scan}: needs --calib (KITTI-object calib/<id>.txt or KITTI-raw calib_cam_to_cam.txt)")
    if bool(args.image) == bool(args.size):
        raise UsageError("give the image size with exactly one of --image IMAGE or --size HxW")
    if args.size:
        _check_size(*args.size)
    if not args.out:
        raise UsageError("--out FILE.png: where to write the projected depth")
    if args.overlay is not None and not args.image:
        raise UsageError("--overlay draws on the image: pass --image as well")
    if args.overlay == "":
        raise UsageError("--overlay needs a PNG path for one scan, e.g. --overlay 000000_overlay.png")
    return _project_one(args)


def cli_main(argv: list[str] | None = None) -> int:
    """``main`` with user errors reported as one line on stderr and exit code 2."""
    return run_cli(main, argv, prog=_PROG)


def cli() -> None:
    """Console-script entry point."""
    raise SystemExit(cli_main())


def _project_one(args: argparse.Namespace) -> int:
    from depthsense.data.lidar import keep_rings, project_file, read_calibration, ring_ids
    from depthsense.io import atomic_write_files, encode_depth, encode_rgb, read_rgb
    from depthsense.viz import sparse_overlay

    out = Path(args.out)
    overlay = Path(args.overlay) if args.overlay else None
    refuse_shared_outputs({"--out": out, "--overlay": overlay})
    refuse_overwrite([p for p in (out, overlay) if p], [p for p in (args.scan, args.calib, args.image) if p],
                     fix="choose another --out/--overlay path (inputs are never written over)")
    if out.suffix.lower() != ".png" or (overlay is not None and overlay.suffix.lower() != ".png"):
        raise UsageError("--out and --overlay must be .png files (KITTI depth is a 16-bit PNG)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        calib = read_calibration(args.calib, camera=args.camera)
        rgb = read_rgb(args.image) if args.image else None
        size = rgb.shape[:2] if rgb is not None else args.size
        points, scan = project_file(args.scan, calib, size)
        keep = None
        if args.beams is not None and args.beams != 64:
            keep = keep_rings(ring_ids(points, source=args.scan), args.beams)[scan.index]
        depth = scan.depth_map(keep)
        files = {out: encode_depth(out, depth)}
        if overlay is not None:
            files[overlay] = encode_rgb(overlay, sparse_overlay(rgb, depth))
        for path in files:
            if path.parent != Path(""):
                make_output_dir(path.parent, "folder for the output")
                remove_killed_writes(path.parent)
        atomic_write_files(files)  # the depth PNG and its overlay together, or neither
    print(f"{out}: {int((depth > 0).sum())} points ({100 * (depth > 0).mean():.2f}% of {size[1]}x{size[0]} pixels)"
          + (f"; overlay {overlay}" if overlay else ""))
    _print_notes(caught)
    return 0


def _project_folder(args: argparse.Namespace) -> int:
    from depthsense.data import build_dataset
    from depthsense.errors import DepthSenseError
    from depthsense.io import WriteError, atomic_write_files, encode_depth, encode_rgb
    from depthsense.viz import sparse_overlay

    ds = build_dataset("kitti_object", args.data_root, args.split, beams=None if args.beams == 64 else args.beams,
                       camera=args.camera)
    out_dir = Path(args.out_dir)
    names = [rec.name for rec in ds.samples]
    outputs = {name: [out_dir / f"{name}.png"] + ([out_dir / f"{name}_overlay.png"] if args.overlay is not None
                                                   else []) for name in names}
    # frame "000010_overlay" would write 000010's overlay path: no two frames' files may share one
    refuse_shared_outputs({f"{name}'s {'overlay' if i else 'depth PNG'}": p
                           for name, paths in outputs.items() for i, p in enumerate(paths)})
    refuse_overwrite([p for paths in outputs.values() for p in paths],
                     [p for rec in ds.samples for p in (rec.rgb, rec.sparse, rec.calib)],
                     fix="choose another --out-dir (inputs are never written over)")
    make_output_dir(out_dir, "folder for the projected PNGs", option="--out-dir")
    remove_killed_writes(out_dir)  # of an earlier run that was killed mid-write
    bar = None
    if args.progress:
        from tqdm import tqdm

        bar = tqdm(total=len(ds), unit="scan", desc="project", file=sys.stderr)
    done: list[str] = []
    problems: list[str] = []
    density = 0.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            for i, name in enumerate(names):
                if bar is not None:
                    bar.update(1)
                paths = outputs[name]
                try:  # a frame that cannot be projected is listed at the end; the others are written
                    sample = ds[i]
                    depth = sample["sparse"][0].numpy()
                    files = {paths[0]: encode_depth(paths[0], depth)}
                    if len(paths) > 1:
                        files[paths[1]] = encode_rgb(paths[1], sparse_overlay(sample["rgb"].numpy(), depth))
                except DepthSenseError as exc:
                    problems.append(f"skipped {name}: {exc}")
                    continue
                try:
                    paths[0].parent.mkdir(parents=True, exist_ok=True)
                    atomic_write_files(files)  # depth PNG and overlay together, or neither
                except (WriteError, OSError) as exc:  # a full disk fails every further frame too: stop
                    first = str(exc) if isinstance(exc, WriteError) else f"{paths[0]}: cannot write ({exc.strerror})."
                    raise WriteError(f"{first} {written_so_far(done, len(names), out_dir)}") from None
                done.append(name)
                density += float((depth > 0).mean())
        finally:
            if bar is not None:
                bar.close()
    overlays = f" and {len(done)} overlays" if args.overlay is not None else ""
    beams = f", {args.beams} beams" if args.beams else ""
    print(f"wrote {len(done)} of {len(names)} frames to {out_dir}: {len(done)} depth PNGs{overlays} "
          f"(mean density {100 * density / max(len(done), 1):.2f}%{beams})")
    _print_notes(caught)
    return report_problems(problems, len(names), "frames")


def _print_notes(caught: list[warnings.WarningMessage]) -> None:
    """Warnings as ``note: <message>`` lines, once each, the format of depthsense-evaluate's notes."""
    from depthsense.config import print_note

    for w in caught:
        print_note(str(w.message))


def _check_size(h: int, w: int) -> None:
    """Refuse a --size no PNG of ours can hold, before any memory is allocated."""
    from depthsense.io import MAX_PIXELS, MAX_SIDE  # io loads OpenCV: only when needed

    if h * w > MAX_PIXELS:
        raise UsageError(f"--size {h}x{w}: {h * w / 1e6:,.0f} megapixels; DepthSense reads and writes images of at "
                         f"most {MAX_PIXELS / 1e6:.0f} MP (depthsense.io.MAX_PIXELS; KITTI is 375x1242)")
    if max(h, w) > MAX_SIDE:
        raise UsageError(f"--size {h}x{w}: a PNG side may be at most {MAX_SIDE:,} pixels (libpng's limit)")


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=_PROG, description="Project Velodyne .bin scans into the camera: KITTI uint16 depth PNGs.")
    p.add_argument("scan", nargs="?", help="one Velodyne scan (.bin, N x 4 float32)")
    p.add_argument("--calib", help="KITTI-object calib/<id>.txt, or KITTI-raw calib_cam_to_cam.txt "
                   "(calib_velo_to_cam.txt beside it)")
    p.add_argument("--image", help="the camera image: gives the size (and the overlay's background)")
    p.add_argument("--size", type=parse_size, help="image size HxW instead of --image, e.g. 375x1242")
    p.add_argument("--out", help="output depth PNG (one scan)")
    p.add_argument("--overlay", nargs="?", const="", default=None, metavar="PNG",
                   help="also draw the points over the image: PNG path for one scan; with --data-root "
                   "no value (writes <frame>_overlay.png)")
    p.add_argument("--data-root", help="KITTI-object root or KITTI-raw drive/date folder: project every frame")
    p.add_argument("--split", default="all", help="with --data-root: all | train | report | testing (default all)")
    p.add_argument("--out-dir", help="with --data-root: folder for <frame>.png")
    p.add_argument("--beams", type=int, help="keep every (64/N)-th laser ring, e.g. 32, 16, 8 (default: all 64)")
    p.add_argument("--camera", type=int, default=2, choices=(2, 3), help="colour camera: 2 left, 3 right (default 2)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    return p


if __name__ == "__main__":
    cli()
