"""depthsense-train: train a depth-completion or monocular model.

    depthsense-train --dataset synthetic --model sparse_unet --steps 500 --out runs/unet
    depthsense-train --out runs/unet --resume            # continue with the run's stored settings
    torchrun --nproc_per_node 2 -m depthsense.tools.train_depth --dataset synthetic ...   # DDP (gloo on CPU)

Exit codes: 0 trained (or the resumed run was already complete); 1 the loss diverged;
2 a user error (one line on stderr).
"""

from __future__ import annotations

import sys

from depthsense.config import parse_train_args, run_cli

PROG = "depthsense-train"
_SHOWN = ("mae", "rmse", "imae", "irmse", "whdr", "ssi_absrel", "ssi_rmse")
"""Validation metrics on the final line (KITTI's four; relative ones for monocular runs)."""


def main(argv: list[str] | None = None) -> int:
    from depthsense.data import dataset_class
    from depthsense.engine import NonFiniteLossError, train
    from depthsense.metrics import metric_unit

    cfg, explicit = parse_train_args(argv)
    try:
        result = train(cfg, explicit=explicit)
    except NonFiniteLossError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    if not result.main:  # under torchrun only rank 0 reports
        return 0
    dataset = result.config.dataset if result.config is not None else cfg.dataset
    metric_depth = dataset_class(dataset).has_metric_depth
    shown = [k for k in _SHOWN if isinstance(result.best.get(k), float)]  # all of them: summary.json
    units = {k: metric_unit(k, metric_depth=metric_depth) for k in shown}
    best = ", ".join(f"{k} {result.best[k]:.4g}{' ' + units[k] if units[k] else ''}" for k in shown)
    where = f"{result.last_checkpoint}" + (f", {result.best_checkpoint}" if result.best_checkpoint else "")
    at = f" (step {result.best['step']})" if best and "step" in result.best else ""
    if result.complete:
        print(f"nothing to train: the run is already complete at step {result.steps} of {result.steps}; "
              f"best val{at}: {best or 'n/a'}; checkpoints: {where}. To train longer pass --steps N --override.")
        return 0
    session = (f"trained {result.steps} steps" if not result.start_step else
               f"trained {result.steps - result.start_step} steps in this session (steps {result.start_step + 1}-"
               f"{result.steps}; the run has {result.steps})")
    print(
        f"{session} in {result.seconds:.1f} s ({result.samples_per_second:.2f} samples/s); "
        f"best val{at}: {best or 'n/a'}; checkpoints: {where}"
    )
    return 0


def cli_main(argv: list[str] | None = None) -> int:
    """``main`` with user errors reported as one line on stderr and exit code 2."""
    return run_cli(main, argv, prog=PROG)


def cli() -> None:
    raise SystemExit(cli_main())


if __name__ == "__main__":
    cli()
