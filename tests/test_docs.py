"""The project's own documentation stays true to the code (issue 15 item 14)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("depthsense", "data", "losses", "models", "tools")


def _page() -> str:
    return (ROOT / "docs" / "architecture.md").read_text()


def _source_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_and_package_is_described_in_the_architecture_page():
    page = _page()
    mentioned = set(re.findall(r"`((?:depthsense|data|losses|models|tools)/[\w/]+(?:\.py|/))`", page))
    trivial = {"depthsense/__init__.py", "tools/__init__.py"}
    missing = []
    for path in _source_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel in trivial or rel in mentioned:
            continue
        # a subpackage's __init__ (it re-exports the stage's names) is described with its folder
        if path.name == "__init__.py" and f"{path.parent.relative_to(ROOT).as_posix()}/" in mentioned:
            continue
        missing.append(rel)
    for folder in sorted({p.parent for p in (ROOT / "depthsense").rglob("__init__.py")} - {ROOT / "depthsense"}):
        if f"{folder.relative_to(ROOT).as_posix()}/" not in mentioned:
            missing.append(f"{folder.relative_to(ROOT).as_posix()}/")
    assert not missing, f"docs/architecture.md does not describe {missing}"


def test_every_path_and_name_on_the_architecture_page_exists():
    page = _page()
    paths = set(re.findall(r"`((?:depthsense|data|losses|models|tools|tests|benchmarks|docs)/[\w/.]*)`", page))
    assert len(paths) > 40
    gone = sorted(p for p in paths if not (ROOT / p).exists())
    assert not gone, f"docs/architecture.md names paths that do not exist: {gone}"
    names = set(re.findall(r"`(depthsense(?:\.\w+)+)", page))
    assert len(names) > 20
    unknown = [name for name in sorted(names) if not _resolves(name)]
    assert not unknown, f"docs/architecture.md names what the code does not have: {unknown}"


def _resolves(dotted: str) -> bool:
    """``depthsense.engine.run.train``: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_readme_links_the_projects_own_page_and_creates_the_venv_before_activating_it():
    readme = (ROOT / "README.md").read_text()
    assert "../shared" not in readme and "(docs/architecture.md)" in readme
    usage = readme[readme.index("## Usage"):]
    assert "make venv" in usage and usage.index("make venv") < usage.index("source .venv/bin/activate")
    assert "pip install" in usage
