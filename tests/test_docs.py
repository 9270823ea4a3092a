"""The project's own documentation stays true to the code (issue 15 item 14)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("depthsense", "data", "losses", "models", "tools")


def test_every_module_is_described_in_the_architecture_page():
    page = (ROOT / "docs" / "architecture.md").read_text()
    mentioned = set(re.findall(r"`((?:depthsense|data|losses|models|tools)/[\w/]+\.py)`", page))
    modules = {f"{pkg}/{p.name}" for pkg in PACKAGES for p in (ROOT / pkg).glob("*.py")}
    trivial = {"depthsense/__init__.py", "tools/__init__.py"}
    missing = sorted(modules - trivial - mentioned)
    assert not missing, f"docs/architecture.md does not describe {missing}"


def test_readme_links_the_projects_own_page_and_creates_the_venv_before_activating_it():
    readme = (ROOT / "README.md").read_text()
    assert "../shared" not in readme and "(docs/architecture.md)" in readme
    usage = readme[readme.index("## Usage"):]
    assert "make venv" in usage and usage.index("make venv") < usage.index("source .venv/bin/activate")
    assert "pip install" in usage
