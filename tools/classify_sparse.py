"""depthsense-classify: ConvNet vs SparseConvNet image classification at every sparsity level.

    python tools/classify_sparse.py                       # embedded digits, both protocols, ~10 min
    python tools/classify_sparse.py --dataset mnist --data-root /data/mnist --train-images 20000
    python tools/classify_sparse.py --dataset caltech101 --data-root /data/101_ObjectCategories \\
        --levels 0.05,0.5,0.7,0.9 --protocols a

Trains the four nets (ConvNet, SparseConvNet, each with and without BatchNorm) with
pixels dropped at each ``--levels`` sparsity (protocol a) and at ``--train-level`` only
(protocol b, tested at every level); prints the accuracy tables and where the report
(``report.md/csv/json``, ``accuracy_vs_sparsity.png``) lies.
"""

from __future__ import annotations

from pathlib import Path

from depthsense.config import run_cli


def main(argv: list[str] | None = None) -> int:
    from depthsense.experiments.classify import classify_config_from_args, run_classification

    report = run_classification(classify_config_from_args(argv))
    print(report.markdown(full=False), end="")
    out = Path(report.config.out)
    print(f"report: {out / 'report.md'} (with report.csv, report.json and accuracy_vs_sparsity.png in {out}/)")
    return 0


def cli_main(argv: list[str] | None = None) -> int:
    """``main`` with user errors reported as one line on stderr and exit code 2."""
    return run_cli(main, argv)


def cli() -> None:
    raise SystemExit(cli_main())


if __name__ == "__main__":
    cli()
