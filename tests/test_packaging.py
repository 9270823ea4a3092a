"""The built wheel installs only the ``depthsense`` namespace (no top-level ``models``...)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_SOURCES = ("pyproject.toml", "README.md", "depthsense", "data", "losses", "models", "tools")


def test_wheel_holds_only_the_depthsense_namespace(tmp_path):
    # Build from a copy, so the test never writes build/ or *.egg-info into the checkout.
    src = tmp_path / "src"
    src.mkdir()
    for name in _SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    out = tmp_path / "wheel"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = out.glob("depthsense-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"depthsense"}, f"top-level entries besides depthsense: {sorted(top - {'depthsense'})}"
    for sub in ("engine", "evaluation", "inference", "experiments", "metrics", "data", "losses", "models", "tools"):
        assert f"depthsense/{sub}/__init__.py" in names
    # every module of the source tree is in the wheel (a subpackage missing from pyproject's
    # `packages` would silently drop its modules)
    for pkg, folder in (("depthsense", "depthsense"), ("depthsense/data", "data"), ("depthsense/losses", "losses"),
                        ("depthsense/models", "models"), ("depthsense/tools", "tools")):
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" not in path.parts:
                assert f"{pkg}/{path.relative_to(ROOT / folder).as_posix()}" in names, f"{path} is not in the wheel"
    assert "depthsense/pretrained/completion.pt" in names
    assert "depthsense/models/sparse_conv.py" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry).decode()
    assert "depthsense-infer = depthsense.tools.infer:cli" in scripts


def test_generic_top_level_names_are_not_importable_from_elsewhere(tmp_path):
    code = (
        "import importlib.util, sys\n"
        "import depthsense.models, depthsense.data, depthsense.losses, depthsense.tools.infer\n"
        "bad = [n for n in ('models', 'data', 'losses', 'tools') if importlib.util.find_spec(n)]\n"
        "print(','.join(bad)); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"importable as top-level packages: {proc.stderr or proc.stdout}"
