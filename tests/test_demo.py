"""`make demo` end to end, at tiny settings (--quick): generate, train 4 models, evaluate."""

import json

from depthsense import demo


def test_quick_demo_trains_evaluates_and_resumes(tmp_path, capsys):
    out = tmp_path / "demo"
    assert demo.main(["--quick", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "## MAE [mm]" in text and "## RMSE [mm]" in text and "report:" in text
    header = next(line for line in text.splitlines() if line.startswith("| level |"))
    for name in demo.DEMO_MODELS:
        assert (out / "runs" / name / "last.pt").is_file()
        assert f"| {name} |" in header
    assert "| ip_basic |" in header and "| nearest |" in header
    report = json.loads((out / "report" / "report.json").read_text())
    columns = {m["name"] for m in report["models"]} if isinstance(report["models"], list) else set(report["models"])
    assert set(demo.DEMO_MODELS) | {"ip_basic", "nearest"} <= columns
    for f in ("report.md", "report.csv", "mae_vs_density.png", "rmse_vs_density.png"):
        assert (out / "report" / f).is_file()
    # A second run reuses the data and the finished runs instead of training again.
    assert demo.main(["--quick", "--out", str(out)]) == 0
    again = capsys.readouterr().out
    assert "reusing synthetic frames" in again and again.count("already trained") == len(demo.DEMO_MODELS)
