"""Where a result comes from: library versions and the git commit, for every report and record.

``depthsense-evaluate``'s ``report.json``, the classification report and the shipped
model's ``about`` record all describe their run with these two functions, so a number
can be traced to the code that made it.
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["versions", "git_info"]


def versions() -> dict[str, str]:
    """Versions of DepthSense, torch, numpy and Python, and the platform, as strings."""
    import numpy as np
    import torch

    import depthsense

    return {
        "depthsense": depthsense.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def git_info() -> dict[str, Any]:
    """Commit of the source tree DepthSense runs from.

    Returns:
        ``{"git_commit": sha or None, "git_dirty": bool or None}``; both ``None`` outside a
        git checkout (an installed wheel) or when git is missing. ``git_dirty`` ignores
        untracked files.
    """
    root = Path(__file__).resolve().parents[1]
    none = {"git_commit": None, "git_dirty": None}
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return none
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return none
    commit = head.stdout.strip() or None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return {"git_commit": commit, "git_dirty": dirty if commit else None}
