"""depthsense-evaluate: every model at every sparsity level -> report (md/csv/json/png).

    depthsense-evaluate --dataset synthetic --data-root data/synth --split val \\
        --checkpoints runs/unet/best.pt runs/convnet/best.pt --baselines ip_basic nearest \\
        --densities 0.005,0.01,0.02,0.05,0.1,0.2,0.5 --beams 64,32,16,8 --out reports/eval
    depthsense-evaluate --dataset synthetic --checkpoints runs/unet/best.pt   # the training cache

``--densities none`` / ``--beams none`` / ``--baselines none`` skip a sweep; ``NAME=FILE``
in ``--checkpoints`` names a column. ``--dataset synthetic`` without ``--data-root``
reads (and if needed generates) the synthetic set that ``depthsense-train --dataset
synthetic`` uses with its default ``--synthetic-*`` and ``--seed`` options, and prints its
path. Prints the MAE and RMSE tables (mm) and where the report lies; the whole report is
``REPORT_DIR/report.md``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from depthsense.config import print_note, run_cli

PROG = "depthsense-evaluate"


def main(argv: list[str] | None = None) -> int:
    from depthsense.evaluation import eval_config_from_args, evaluate

    cfg = eval_config_from_args(argv)
    if cfg.dataset == "synthetic" and not cfg.data_root:
        from depthsense.config import TrainConfig
        from depthsense.engine import ensure_synthetic_cache

        t = TrainConfig()
        root = ensure_synthetic_cache(t.synthetic_frames, t.seed, t.synthetic_size, cfg.progress,
                                      log=lambda line: print(line, flush=True))
        cfg = dataclasses.replace(cfg, data_root=str(root))
    from depthsense.config import check_output_dir
    from depthsense.io import remove_stale_temps
    from depthsense.runlock import refuse_if_locked, run_lock

    cfg.resolved()  # every option checked before the lock creates --out
    check_output_dir(cfg.out, "report directory")
    refuse_if_locked(cfg.out)
    with run_lock(cfg.out):  # two evaluations into one --out would mix their reports
        for stale in remove_stale_temps(cfg.out):  # of report files whose writer was killed
            print_note(f"removed {stale.name}, a temporary file of a write that was interrupted")
        report = evaluate(cfg)
    metric_models = any(not m.relative for m in report.models)
    print(report.markdown(["mae", "rmse"] if metric_models else ["ssi_absrel", "ssi_rmse", "ssi_delta1", "whdr"]),
          end="")
    out = Path(report.config.out)
    print(f"report: {out / 'report.md'} (with report.csv, report.json, plots and panels in {out}/)")
    for note in report.notes:
        print_note(note)  # once: the warnings behind them were printed as the same notes
    return 0


def cli_main(argv: list[str] | None = None) -> int:
    """``main`` with user errors reported as one line on stderr and exit code 2."""
    return run_cli(main, argv, prog=PROG)


def cli() -> None:
    raise SystemExit(cli_main())


if __name__ == "__main__":
    cli()
