"""``python -m depthsense.demo`` (``make demo``): runs :func:`depthsense.experiments.demo.main`.

The command the README and the Makefile document; the experiment itself lives in
:mod:`depthsense.experiments.demo`.
"""

import sys

from depthsense.config import run_cli
from depthsense.experiments.demo import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(run_cli(main, prog="depthsense-demo"))
