"""Render the synthetic street world to disk in KITTI or ReDWeb layout.

    depthsense-make-synthetic --out data/synth --layout kitti --frames 100 --seed 0
    python -m depthsense.tools.make_synthetic --out data/redweb --layout redweb --frames 20

The trees written and the frame split are documented in ``data/synthetic.py``.
Bad arguments print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from depthsense.data.synthetic import DEFAULT_HEIGHT, DEFAULT_WIDTH, LAYOUTS, MIN_SIZE, LidarSpec, generate
from depthsense.errors import DepthSenseError

__all__ = ["main", "cli"]

_PROG = "depthsense-make-synthetic"


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and write the data set; return the exit status (0 ok, 2 user error)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        return _fail(str(exc))
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if args.frames < 1:
        return _fail(f"--frames {args.frames}: need at least 1 frame.")
    if args.seed < 0:
        return _fail(f"--seed {args.seed}: the seed must be >= 0.")
    for name in ("height", "width"):
        if getattr(args, name) < MIN_SIZE:
            return _fail(f"--{name} {getattr(args, name)}: images must be at least {MIN_SIZE} pixels.")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _fail(f"--out {out}: cannot create the directory ({exc.strerror}); choose a writable directory.")
    if not os.access(out, os.W_OK):
        return _fail(f"--out {out}: directory is not writable; choose a writable directory.")
    lidar = LidarSpec() if args.lidar == "hdl64" else None
    try:
        summary = generate(
            out, args.layout, args.frames, args.seed, args.height, args.width, lidar=lidar, progress=args.progress
        )
    except DepthSenseError as exc:
        return _fail(str(exc))
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


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog=_PROG, description="Render the synthetic street world (RGB, LiDAR, dense GT) to disk.")
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
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    return p


def _fail(message: str) -> int:
    print(f"{_PROG}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    cli()
