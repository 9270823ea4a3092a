"""depthsense-train: train a depth-completion or monocular model.

    python tools/train_depth.py --dataset synthetic --model sparse_unet --steps 500 --out runs/unet
    torchrun --nproc_per_node 2 tools/train_depth.py --dataset synthetic ...   # DDP (gloo on CPU)
"""

from __future__ import annotations

import sys

from depthsense.config import run_cli, train_config_from_args


def main(argv: list[str] | None = None) -> int:
    from depthsense.engine import NonFiniteLossError, train

    cfg = train_config_from_args(argv)
    try:
        result = train(cfg)
    except NonFiniteLossError as exc:
        print(f"depthsense-train: error: {exc}", file=sys.stderr)
        return 1
    best = ", ".join(f"{k}={v:.4g}" for k, v in result.best.items() if isinstance(v, float))
    print(
        f"trained {result.steps} steps in {result.seconds:.1f} s ({result.samples_per_second:.2f} samples/s); "
        f"best val: {best or 'n/a'}; checkpoints: {result.last_checkpoint}"
        + (f", {result.best_checkpoint}" if result.best_checkpoint else "")
    )
    return 0


def cli_main(argv: list[str] | None = None) -> int:
    """``main`` with user errors reported as one line on stderr and exit code 2."""
    return run_cli(main, argv)


def cli() -> None:
    raise SystemExit(cli_main())


if __name__ == "__main__":
    cli()
