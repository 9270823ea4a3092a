"""``python -m depthsense.pretrain`` (``make pretrained``): runs :func:`depthsense.experiments.pretrain.main`.

The command the README and the Makefile document and the shipped checkpoint records as
the one that made it; the recipe itself lives in :mod:`depthsense.experiments.pretrain`.
"""

import sys

from depthsense.config import run_cli
from depthsense.experiments.pretrain import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(run_cli(main))
