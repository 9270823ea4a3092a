"""Tests for depthsense/provenance.py: versions and git commit of a run."""

from __future__ import annotations

import platform
import re
import subprocess

import numpy
import torch

import depthsense
from depthsense import provenance


def test_versions_name_the_libraries_and_the_machine():
    v = provenance.versions()
    assert v == {"depthsense": depthsense.__version__, "torch": torch.__version__, "numpy": numpy.__version__,
                 "python": platform.python_version(), "platform": platform.platform(terse=True)}


def test_git_info_is_a_commit_or_none():
    info = provenance.git_info()
    assert set(info) == {"git_commit", "git_dirty"}
    if info["git_commit"] is None:  # an installed copy, not a checkout
        assert info["git_dirty"] is None
    else:
        assert re.fullmatch(r"[0-9a-f]{40}", info["git_commit"]) and isinstance(info["git_dirty"], bool)


def test_git_info_without_git_is_none(monkeypatch):
    def missing(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", missing)
    assert provenance.git_info() == {"git_commit": None, "git_dirty": None}
