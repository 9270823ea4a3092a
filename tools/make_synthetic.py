"""Render the synthetic street world to disk in KITTI or ReDWeb layout.

    depthsense-make-synthetic --out data/synth --layout kitti --frames 100 --seed 0
    python -m depthsense.tools.make_synthetic --out data/redweb --layout redweb --frames 20

The trees written and the frame split are documented in ``data/synthetic.py``.
Bad arguments print one line on stderr and exit with status 2; sizes are checked (at most
16 MP a frame) before anything is written. While it writes, ``OUT/.incomplete`` marks the
folder; it is removed after the last file, so a set left by a full disk, Ctrl-C or kill -9
stays marked and data-set loaders refuse it until the command is run again.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from depthsense.config import OneLineParser, UsageError, run_cli
from depthsense.outputs import remove_killed_writes
from depthsense.data.synthetic import (
    DEFAULT_HEIGHT,
    DEFAULT_WIDTH,
    LAYOUTS,
    LidarSpec,
    check_frame_size,
    generate,
)

__all__ = ["main", "cli"]

_PROG = "depthsense-make-synthetic"


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and write the data set; return the exit status (0 ok, 2 user error).

    Errors (bad options, an unwritable ``--out``, a full disk) are one line on stderr.
    """
    try:
        return run_cli(_main, argv, prog=_PROG)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.frames < 1:
        raise UsageError(f"--frames {args.frames}: need at least 1 frame.")
    if args.seed < 0:
        raise UsageError(f"--seed {args.seed}: the seed must be >= 0.")
    try:
        check_frame_size(args.height, args.width)  # before anything is created
    except ValueError as exc:
        raise UsageError(f"--height {args.height} --width {args.width}: {exc}") from None
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create the directory ({exc.strerror}); choose a writable directory.") from None
    if not os.access(out, os.W_OK):
        raise UsageError(f"--out {out}: directory is not writable; choose a writable directory.")
    remove_killed_writes(out, recursive=True)  # of an earlier run that was killed
    lidar = LidarSpec() if args.lidar == "hdl64" else None
    try:
        summary = generate(
            out, args.layout, args.frames, args.seed, args.height, args.width, lidar=lidar, progress=args.progress
        )
    except MemoryError:
        raise UsageError(f"--height {args.height} --width {args.width}: out of memory rendering a frame; "
                         f"{out} stays marked incomplete. Pass a smaller size.") from None
    splits = ", ".join(f"{k} {v}" for k, v in summary["splits"].items())
    lidar_note = f"LiDAR density {100 * summary['mean_density']:.2f}%, " if args.layout == "kitti" else ""
    print(
        f"wrote {summary['files']} files ({splits}) to {summary['out_dir']}; "
        f"{lidar_note}GT density {100 * summary['mean_gt_density']:.1f}%"
    )
    return 0


def cli() -> None:
    """Console-script entry point."""
    raise SystemExit(main())


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=_PROG, description="Render the synthetic street world (RGB, LiDAR, dense GT) to disk.")
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    p.add_argument("--layout", choices=LAYOUTS, default="kitti", help="directory layout to write (default kitti)")
    p.add_argument("--frames", type=int, default=10, help="number of frames to render (default 10)")
    p.add_argument("--seed", type=int, default=0, help="world seed; same seed -> identical files (default 0)")
    p.add_argument("--height", type=int, default=DEFAULT_HEIGHT, help=f"image height (default {DEFAULT_HEIGHT})")
    p.add_argument("--width", type=int, default=DEFAULT_WIDTH, help=f"image width (default {DEFAULT_WIDTH})")
    p.add_argument(
        "--lidar",
        choices=("scaled", "hdl64"),
        default="scaled",
        help="scaled: sensor resolution follows the image width, ~4.4%% density at any size "
        "(the HDL-64E itself at width 1216); hdl64: the full 64-beam sensor at any size",
    )
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="show progress bars on stderr (default: on; --no-progress hides them)")
    return p


if __name__ == "__main__":
    cli()
