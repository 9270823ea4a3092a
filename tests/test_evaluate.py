"""Evaluation runs (depthsense.evaluation, tools/evaluate.py) on tiny generated data sets."""

import contextlib
import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from depthsense import data
from depthsense import models
from depthsense.checkpoint import save_checkpoint
from depthsense.evaluation import (
    CSV_COLUMNS,
    TIME_METRIC,
    EvalConfig,
    checkpoint_names,
    eval_config_from_args,
    evaluate,
)
from depthsense.config import UsageError
from depthsense.metrics import DEFAULT_METRICS, RELATIVE_METRICS
from depthsense.tools import evaluate as evaluate_cli

H, W = 64, 192
DENSITIES = (0.01, 0.05)
BEAMS = (64, 32)  # the 64x192 synthetic LiDAR has 10 lines: 32 beams keeps every 2nd
LEVELS = ["1%", "5%", "64 beams", "32 beams", "lidar"]
MODELS = ["run/best", "run/best-2", "ip_basic"]


def _save(path: Path, name: str, seed: int, **cfg) -> Path:
    torch.manual_seed(seed)
    model = models.build_model(name, **cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    train_cfg = {"dataset": "synthetic", "density": 0.05, "seed": seed}
    save_checkpoint(path, {"format": 1, "model": name, "model_cfg": model.config, "state_dict": model.state_dict(),
                           "train_cfg": train_cfg, "step": 7 + seed, "metrics": {}})
    return path


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    from depthsense.data import synthetic

    root = tmp_path_factory.mktemp("eval_kitti")
    synthetic.generate(root, layout="kitti", frames=4, seed=1, height=H, width=W,
                       splits={"train": 1, "val": 2, "val_selection": 0, "test": 1})
    return root


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    base = tmp_path_factory.mktemp("eval_ckpts")
    # Same "<run dir>/<stem>" twice: the second column must be renamed, not merged.
    return [_save(base / "a" / "run" / "best.pt", "sparse_convnet", 0),
            _save(base / "b" / "run" / "best.pt", "sparse_convnet", 1)]


def _args(root, ckpts, out, *extra):
    return ["--dataset", "synthetic", "--data-root", str(root), "--split", "val",
            "--checkpoints", *map(str, ckpts), "--baselines", "ip_basic",
            "--densities", ",".join(map(str, DENSITIES)), "--beams", ",".join(map(str, BEAMS)),
            "--out", str(out), "--panels", "2", "--device", "cpu", "--no-progress", *extra]


@pytest.fixture(scope="module")
def first_run(tiny_root, ckpts, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval_out") / "report"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert evaluate_cli.main(_args(tiny_root, ckpts, out)) == 0
    return out, stdout.getvalue()


def _csv(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


# --------------------------------------------------------------------------- a full run


def test_cli_writes_every_report_file_and_prints_the_tables(first_run):
    out, stdout = first_run
    for name in ("report.md", "report.csv", "report.json", "mae_vs_density.png", "rmse_vs_density.png",
                 "mae_vs_beams.png", "rmse_vs_beams.png", "panel_0.png", "panel_1.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert not (out / "panel_2.png").exists()  # 2 images -> at most 2 panels
    assert not list(out.glob(".*tmp*"))  # no temporary file left behind
    assert "## MAE [mm]" in stdout and "## RMSE [mm]" in stdout and "## iMAE" not in stdout
    assert f"report: {out / 'report.md'}" in stdout
    for level in LEVELS:
        assert f"| {level} |" in stdout


def test_csv_has_one_row_per_level_model_and_metric(first_run):
    out, _ = first_run
    header, rows = _csv(out / "report.csv")
    assert tuple(header) == CSV_COLUMNS
    metrics = [*DEFAULT_METRICS, TIME_METRIC]
    assert len(rows) == len(LEVELS) * len(MODELS) * len(metrics)
    keys = {(r["level"], r["model"], r["metric"]) for r in rows}
    assert keys == {(lv, m, k) for lv in LEVELS for m in MODELS for k in metrics}
    kinds = {r["level"]: r["level_kind"] for r in rows}
    assert kinds == {"1%": "uniform", "5%": "uniform", "64 beams": "beams", "32 beams": "beams", "lidar": "lidar"}
    for r in rows:
        assert float(r["value"]) >= 0
        assert float(r["density_measured"]) > 0
        if r["level_kind"] == "uniform":
            assert float(r["density_requested"]) == {"1%": 0.01, "5%": 0.05}[r["level"]]
        else:
            assert r["density_requested"] == ""


def test_json_holds_config_versions_checkpoints_and_the_csv_results(first_run, ckpts, tiny_root):
    out, _ = first_run
    rep = json.loads((out / "report.json").read_text())
    cfg = rep["config"]
    assert cfg["dataset"] == "synthetic" and cfg["data_root"] == str(tiny_root) and cfg["split"] == "val"
    assert cfg["densities"] == list(DENSITIES) and cfg["beams"] == list(BEAMS) and cfg["baselines"] == ["ip_basic"]
    assert EvalConfig.from_dict(cfg).resolved() == EvalConfig.from_dict(cfg)  # saved resolved, reloadable
    import depthsense
    import numpy

    assert rep["versions"]["torch"] == torch.__version__ and rep["versions"]["numpy"] == numpy.__version__
    assert rep["versions"]["depthsense"] == depthsense.__version__
    assert rep["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", rep["git_commit"])
    assert [c["path"] for c in rep["checkpoints"]] == [str(p.resolve()) for p in ckpts]
    assert [c["step"] for c in rep["checkpoints"]] == [7, 8]
    assert rep["checkpoints"][1]["train_cfg"] == {"dataset": "synthetic", "density": 0.05, "seed": 1}
    assert [m["name"] for m in rep["models"]] == MODELS
    assert [lv["name"] for lv in rep["levels"]] == LEVELS
    _, rows = _csv(out / "report.csv")
    for r in rows:
        if r["metric"] == TIME_METRIC:
            got = rep["timings_ms"][r["level"]][r["model"]]
        else:
            got = rep["results"][r["level"]][r["model"]][r["metric"]]
        assert got == float(r["value"])  # the CSV writes floats with repr: exact round trip


def test_markdown_has_tables_with_units_timing_and_provenance(first_run):
    out, _ = first_run
    md = (out / "report.md").read_text()
    header = "| level | density requested | density measured | " + " | ".join(MODELS) + " |"
    for title in ("## MAE [mm]", "## RMSE [mm]", "## iMAE [1/km]", "## iRMSE [1/km]"):
        section = md.split(title, 1)[1].split("\n## ", 1)[0]
        assert header in section
        rows = [ln.split("|")[1].strip() for ln in section.splitlines() if ln.startswith("| ")]
        assert rows[1:] == LEVELS  # rows[0] is the header
    timing = md.split("## Forward time per image [ms]", 1)[1].split("\n## ", 1)[0]
    assert "| level | " + " | ".join(MODELS) + " |" in timing
    assert "Produced by depthsense" in md and ("commit `" in md or "no git commit" in md)
    assert "depthsense-evaluate --dataset synthetic" in md  # the command that reproduces it
    assert "![mae_vs_density](mae_vs_density.png)" in md


def test_measured_density_matches_the_request_for_uniform_levels(first_run):
    out, _ = first_run
    levels = {lv["name"]: lv for lv in json.loads((out / "report.json").read_text())["levels"]}
    for name, d in (("1%", 0.01), ("5%", 0.05)):
        measured = levels[name]["density_measured"]
        assert measured == pytest.approx(round(d * H * W) / (H * W), abs=1e-12)  # exact pixel count
        assert abs(measured - d) <= 0.5 / (H * W)
    # thinning to 32 beams drops about every second line; 64 beams keeps the scan as it is
    assert levels["32 beams"]["density_measured"] < 0.7 * levels["64 beams"]["density_measured"]
    assert levels["64 beams"]["density_measured"] == levels["lidar"]["density_measured"]
    assert all(lv["images"] == 2 and lv["images_with_gt"] == 2 for lv in levels.values())


def test_tables_equal_an_independent_metric_computation(first_run, tiny_root, ckpts):
    out, _ = first_run
    results = json.loads((out / "report.json").read_text())["results"]
    from depthsense.checkpoint import build_model_from_checkpoint

    cases = [("5%", dict(density=0.05), "ip_basic", models.build_model("ip_basic").eval()),
             ("32 beams", dict(beams=32), "run/best-2", build_model_from_checkpoint(ckpts[1]))]
    for level, opts, name, model in cases:
        ds = data.build_dataset("synthetic", tiny_root, "val", seed=0, **opts)
        per_image = []
        with torch.no_grad():
            for i in range(len(ds)):
                s = ds[i]
                pred = model(s["sparse"][None], s["mask"][None], s["rgb"][None])
                per_image.append(_metrics_by_hand(pred[0, 0].double().numpy(), s["gt"][0].double().numpy()))
        assert set(per_image[0]) == set(DEFAULT_METRICS)
        for k in DEFAULT_METRICS:
            expected = sum(m[k] for m in per_image) / len(per_image)
            assert results[level][name][k] == pytest.approx(expected, rel=1e-5, abs=1e-9), (level, name, k)


def _metrics_by_hand(d, g):
    """KITTI's definitions written out in numpy (not depthsense.metrics): mean over the
    pixels with ground truth; inverse and ratio metrics clamp the prediction to 1 mm."""
    valid = g > 0
    d, g = d[valid], g[valid]
    dc = np.maximum(d, 1e-3)
    err, inv = d - g, 1.0 / dc - 1.0 / g
    ratio = np.maximum(dc / g, g / dc)
    return {"mae": np.abs(err).mean() * 1000, "rmse": np.sqrt((err**2).mean()) * 1000,
            "imae": np.abs(inv).mean() * 1000, "irmse": np.sqrt((inv**2).mean()) * 1000,
            "absrel": (np.abs(err) / g).mean(), "sqrel": (err**2 / g).mean(),
            "delta1": (ratio < 1.25).mean(), "delta2": (ratio < 1.25**2).mean(), "delta3": (ratio < 1.25**3).mean()}


def test_second_run_gives_identical_tables(first_run, tiny_root, ckpts, tmp_path):
    out, _ = first_run
    cfg = EvalConfig(dataset="synthetic", data_root=str(tiny_root), checkpoints=tuple(map(str, ckpts)),
                     baselines=("ip_basic",), densities=DENSITIES, beams=BEAMS, out=str(tmp_path / "again"),
                     panels=2, device="cpu", progress=False)
    report = evaluate(cfg)
    first = json.loads((out / "report.json").read_text())
    assert report.tables == first["results"]
    assert set(report.timings) == set(LEVELS)  # timings exist but are kept out of .tables

    def without_time(path):
        return [r for r in _csv(path)[1] if r["metric"] != TIME_METRIC]

    assert without_time(tmp_path / "again" / "report.csv") == without_time(out / "report.csv")
    assert json.loads(report.to_json())["results"] == first["results"]
    short = report.markdown(["mae"])
    assert "## MAE [mm]" in short and "RMSE" not in short and "Forward time" not in short


def test_density_above_the_ground_truth_coverage_is_measured_and_noted(tiny_root, tmp_path):
    cfg = EvalConfig(dataset="synthetic", data_root=str(tiny_root), baselines=("nearest",), densities=(1.0,),
                     beams=(), lidar=False, panels=0, out=str(tmp_path / "out"), device="cpu", progress=False)
    report = evaluate(cfg)
    ds = data.build_dataset("synthetic", tiny_root, "val")
    coverage = sum(float((ds[i]["gt"] > 0).double().mean()) for i in range(len(ds))) / len(ds)
    assert report.level_stats["100%"]["density_measured"] == pytest.approx(coverage, abs=1e-12)  # every GT pixel
    assert coverage < 0.9 and any("below the requested 100%" in n for n in report.notes)
    assert report.tables["100%"]["nearest"]["mae"] == pytest.approx(0.0, abs=1e-3)  # input = GT: nothing to fill
    assert not list((tmp_path / "out").glob("panel_*.png"))
    assert "## Notes" in (tmp_path / "out" / "report.md").read_text()


def test_monocular_checkpoint_gets_relative_metrics_on_rgb_only(tiny_root, tmp_path):
    mono = _save(tmp_path / "mono" / "best.pt", "monocular", 0, width=4)
    cfg = EvalConfig(dataset="synthetic", data_root=str(tiny_root), checkpoints=(str(mono),),
                     baselines=("ip_basic",), densities=(0.05,), beams=(), lidar=False, panels=1,
                     out=str(tmp_path / "out"), device="cpu", progress=False)
    report = evaluate(cfg)
    assert [lv.name for lv in report.levels] == ["5%", "rgb-only"]
    assert set(report.tables["5%"]) == {"ip_basic"}  # a monocular model has no sparse input to use
    assert set(report.tables["rgb-only"]) == {"mono/best"}
    assert set(report.tables["rgb-only"]["mono/best"]) == set(RELATIVE_METRICS)
    assert 0.0 <= report.tables["rgb-only"]["mono/best"]["whdr"] <= 1.0
    _, rows = _csv(tmp_path / "out" / "report.csv")
    assert {(r["level"], r["model"]) for r in rows} == {("5%", "ip_basic"), ("rgb-only", "mono/best")}
    assert (tmp_path / "out" / "panel_0.png").is_file()


def test_redweb_layout_evaluates_monocular_only(tmp_path):
    from depthsense.data import synthetic

    root = tmp_path / "redweb"
    synthetic.generate(root, layout="redweb", frames=2, seed=0, height=48, width=64)
    mono = _save(tmp_path / "mono" / "best.pt", "monocular", 0, width=4)
    report = evaluate(EvalConfig(dataset="redweb", data_root=str(root), split="all", checkpoints=(f"mono={mono}",),
                                 out=str(tmp_path / "out"), device="cpu", progress=False))
    assert report.config.baselines == () and report.config.densities == () and report.config.beams == ()
    assert list(report.tables) == ["rgb-only"] and list(report.tables["rgb-only"]) == ["mono"]
    values = report.tables["rgb-only"]["mono"]
    assert values["ssi_absrel"] >= 0 and 0 <= values["ssi_delta1"] <= 1 and 0 <= values["whdr"] <= 1
    _, rows = _csv(tmp_path / "out" / "report.csv")
    assert len(rows) == len(RELATIVE_METRICS) + 1
    assert not (tmp_path / "out" / "mae_vs_density.png").exists()  # no density sweep to plot
    assert "## Relative depth" in report.markdown()


def test_metric_units_follow_the_data_sets_ability_not_its_name(monkeypatch):
    from depthsense.evaluation.report import metric_label

    assert metric_label("ssi_rmse") == metric_label("ssi_rmse", "kitti") == "RMSE (aligned) [m]"
    assert metric_label("ssi_rmse", "redweb") == "RMSE (aligned)"  # relative ground truth: no unit
    assert metric_label("rmse", "redweb") == "RMSE [mm]"
    monkeypatch.setattr(data.dataset_class("kitti"), "has_metric_depth", False)
    monkeypatch.setattr(data.dataset_class("redweb"), "has_metric_depth", True)
    assert metric_label("ssi_rmse", "kitti") == "RMSE (aligned)"
    assert metric_label("ssi_rmse", "redweb") == "RMSE (aligned) [m]"


# --------------------------------------------------------------------------- names and config


def test_checkpoint_names_are_run_and_stem_unique_or_given(tmp_path):
    a = _save(tmp_path / "x" / "unet" / "best.pt", "sparse_convnet", 0)
    b = _save(tmp_path / "y" / "unet" / "best.pt", "sparse_convnet", 0)
    names = checkpoint_names([str(a), str(b), str(a), f"mine={b}"])
    assert [n for n, _ in names] == ["unet/best", "unet/best-2", "unet/best-3", "mine"]
    assert [p for _, p in names] == [a, b, a, b]


def test_config_round_trips_through_argv():
    for cfg in (
        EvalConfig(dataset="kitti", data_root="/d", split="val_selection", checkpoints=("a.pt", "n=b.pt"),
                   baselines=(), densities=(0.5, 0.005), beams=(), lidar=False, max_images=5, seed=3,
                   out="r", panels=0, workers=1, device="cpu", progress=False),
        EvalConfig(data_root="/d"),
    ):
        assert eval_config_from_args(cfg.to_argv()) == cfg
    parsed = eval_config_from_args(["--data-root", "/d", "--densities", "0.05", "0.01,0.02", "--beams", "none",
                                    "--baselines", "none"])
    assert parsed.densities == (0.05, 0.01, 0.02) and parsed.beams == () and parsed.baselines == ()
    resolved = EvalConfig(data_root="/d").resolved()
    assert resolved.densities == (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5) and resolved.beams == (64, 32, 16, 8)
    assert resolved.baselines == ("ip_basic", "nearest", "colorization") and resolved.lidar
    assert EvalConfig(data_root="/d", densities=(0.1, 0.01, 0.1), beams=(8, 64)).resolved().densities == (0.01, 0.1)
    assert EvalConfig(data_root="/d", beams=(8, 64, 8)).resolved().beams == (64, 8)


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit) as exc:
        evaluate_cli.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--dataset", "--data-root", "--split", "--checkpoints", "--baselines", "--densities", "--beams",
                 "--no-lidar", "--max-images", "--seed", "--device", "--out", "--panels", "--workers"):
        assert flag in text


# --------------------------------------------------------------------------- bad input


def _bad_cases():
    def ckpt_file(tmp, payload):
        p = tmp / "bad.pt"
        torch.save(payload, p)
        return str(p)

    def garbage(tmp):
        p = tmp / "garbage.pt"
        p.write_bytes(b"not a checkpoint at all")
        return str(p)

    def empty_split(tmp):
        (tmp / "empty" / "val").mkdir(parents=True)
        return str(tmp / "empty")

    good = ["--baselines", "ip_basic"]
    return {
        "missing checkpoint": (lambda t, r: ["--checkpoints", str(t / "nope.pt")], "not found"),
        "unknown checkpoint format": (
            lambda t, r: ["--checkpoints", ckpt_file(t, {"format": 9, "model": "sparse_convnet", "model_cfg": {},
                                                         "state_dict": {}})], "format 9"),
        "not a DepthSense checkpoint": (
            lambda t, r: ["--checkpoints", ckpt_file(t, {"weights": torch.zeros(2)})], "not a DepthSense checkpoint"),
        "not a torch file": (lambda t, r: ["--checkpoints", garbage(t)], "garbage.pt: "),
        "empty split": (lambda t, r: [*good, "--data-root", empty_split(t)], "no samples"),
        "missing data root": (lambda t, r: [*good, "--data-root", str(t / "nowhere")], "does not exist"),
        "split without ground truth": (lambda t, r: [*good, "--split", "test"], "no ground truth"),
        "density zero": (lambda t, r: [*good, "--densities", "0"], "outside (0, 1]"),
        "density above one": (lambda t, r: [*good, "--densities", "0.05,1.5"], "outside (0, 1]"),
        "density not a number": (lambda t, r: [*good, "--densities", "5%"], "not a number"),
        "beams not dividing 64": (lambda t, r: [*good, "--beams", "3"], "divisor of 64"),
        "unknown baseline": (lambda t, r: ["--baselines", "magic"], "unknown baseline 'magic'"),
        "learned model as baseline": (lambda t, r: ["--baselines", "sparse_unet"], "learned model"),
        "unknown dataset": (lambda t, r: [*good, "--dataset", "foo"], "known data sets"),
        "nothing to evaluate": (lambda t, r: ["--baselines", "none"], "nothing to evaluate"),
        "unknown option": (lambda t, r: [*good, "--bogus"], "unrecognized arguments"),
        "sparse model on redweb": (
            lambda t, r: ["--dataset", "redweb", "--baselines", "none", "--densities", "none", "--checkpoints",
                          str(_save(t / "r" / "best.pt", "sparse_convnet", 0))], "needs sparse depth"),
        "beams on nyu": (lambda t, r: [*good, "--dataset", "nyu", "--beams", "64"], "no LiDAR scan lines"),
    }


@pytest.mark.parametrize("case", list(_bad_cases()))
def test_bad_input_is_one_line_and_exit_2_before_any_work(case, tiny_root, tmp_path, capsys):
    make, fragment = _bad_cases()[case]
    out = tmp_path / "out"
    base = ["--dataset", "synthetic", "--data-root", str(tiny_root), "--densities", "0.05", "--beams", "none",
            "--out", str(out), "--no-progress", "--device", "cpu"]
    rc = evaluate_cli.cli_main(base + make(tmp_path, tiny_root))
    err = capsys.readouterr().err
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "error:" in err and fragment in err, err
    assert not out.exists()  # validated before anything was run or written


# --------------------------------------------------------------------------- extra heads


def test_headed_checkpoint_gets_confidence_and_foreground_sections(tiny_root, tmp_path):
    ckpt = _save(tmp_path / "h" / "best.pt", "sparse_unet", 0, width=4, refine=2, heads="depth,conf,fg")
    cfg = EvalConfig(dataset="synthetic", data_root=str(tiny_root), split="val", checkpoints=(str(ckpt),),
                     baselines=("ip_basic",), densities=(), beams=(64,), out=str(tmp_path / "r"), panels=0,
                     device="cpu", progress=False)
    report = evaluate(cfg)
    summary = report.heads["64 beams"]["h/best"]
    assert set(summary["confidence"]) == {"conf", "distance"}
    assert len(summary["oracle"]) == len(summary["fractions"]) == 19
    for c in summary["confidence"].values():
        assert c["ause"] >= -1e-9 and len(c["curve"]) == 19
    assert 0.0 <= summary["fg"]["iou"] <= 1.0 and set(summary["depth_in_fg"]) == {"inside", "outside"}
    assert "ip_basic" not in report.heads["64 beams"]
    md = (tmp_path / "r" / "report.md").read_text()
    assert "## Extra heads" in md and "distance to nearest measurement (baseline)" in md and "| IoU |" in md
    assert json.loads((tmp_path / "r" / "report.json").read_text())["heads"]["64 beams"]["h/best"]["fg"]
    assert (tmp_path / "r" / "sparsification_64_beams_h_best.png").is_file()


# --------------------------------------------------------------------------- RGB-D folders and sensor patterns


@pytest.fixture(scope="module")
def rgbd_root(tmp_path_factory):
    from depthsense.data.synthetic_indoor import generate_indoor

    root = tmp_path_factory.mktemp("eval_rgbd")
    generate_indoor(root, frames=2, seed=3, height=48, width=64, source="cam_a")
    generate_indoor(root, frames=1, seed=4, height=48, width=64, source="cam_b")
    return root


def test_rgbd_patterns_are_scored_where_the_input_is_silent_per_source(rgbd_root, tmp_path):
    ckpt = _save(tmp_path / "m" / "best.pt", "sparse_unet", 0, width=4, rgb=True, prefill="nearest+pyramid",
                 norm="image", max_depth=100.0)
    rep = evaluate(EvalConfig(dataset="rgbd", data_root=str(rgbd_root), split="all", checkpoints=(str(ckpt),),
                              baselines=("ip_basic", "nearest"), patterns=("samples:100", "holes:30%"),
                              out=str(tmp_path / "r"), panels=1, device="cpu", progress=False))
    assert [lv.name for lv in rep.levels] == ["samples:100", "holes:30%"] and rep.config.lidar is False
    # By hand: nearest at the ground-truth pixels that are not input pixels, per source and overall.
    ds = data.build_dataset("rgbd", rgbd_root, "all", pattern="holes:30%")
    per_source: dict[str, list] = {}
    for i in range(len(ds)):
        s = ds[i]
        sparse, gt = s["sparse"][0].numpy(), s["gt"][0].numpy()
        pred = models.build_model("nearest")(s["sparse"][None], None)[0, 0].numpy()
        hidden = np.where(sparse > 0, 0.0, gt)
        assert (hidden > 0).sum() < 0.45 * (gt > 0).sum()  # inside the holes only
        per_source.setdefault(ds.group(i), []).append(_metrics_by_hand(pred.astype(np.float64), hidden))
    for src, rows in per_source.items():
        got = rep.groups["holes:30%"][src]["nearest"]["rmse"]
        assert got == pytest.approx(np.mean([r["rmse"] for r in rows]), rel=1e-5)
    overall = [r for rows in per_source.values() for r in rows]
    assert rep.tables["holes:30%"]["nearest"]["mae"] == pytest.approx(np.mean([r["mae"] for r in overall]), rel=1e-5)
    # Report files: per-source tables, group rows in the CSV, the summary against the classical fills.
    md = (tmp_path / "r" / "report.md").read_text()
    assert "per source" in md and "| cam_b | holes:30% |" in md and "against the better of ip_basic / nearest" in md
    _, rows = _csv(tmp_path / "r" / "report.csv")
    assert {r["group"] for r in rows} == {"", "cam_a", "cam_b"}
    vs = rep.versus_classical("rmse")["m/best"]
    assert vs["cells"] == 4 and 0 <= vs["wins"] <= 4
    best = min(rep.groups["samples:100"]["cam_a"][b]["rmse"] for b in ("ip_basic", "nearest"))
    assert vs["worst"] >= rep.groups["samples:100"]["cam_a"]["m/best"]["rmse"] / best - 1e-9


@pytest.mark.parametrize("extra, message", [
    (dict(patterns=("beams:16",)), "no LiDAR scan to thin; use lines:16"),
    (dict(patterns=("samples:10..100",)), "a range is for training"),
    (dict(patterns=("holes:100%",)), "holes needs"),
    (dict(depth_unit="feet"), "--depth-unit: depth unit 'feet'"),
])
def test_rgbd_option_errors_are_one_line(rgbd_root, extra, message):
    with pytest.raises(UsageError, match=message):
        EvalConfig(dataset="rgbd", data_root=str(rgbd_root), split="all", baselines=("nearest",), **extra).resolved()
    with pytest.raises(UsageError, match="--depth-unit is for --dataset rgbd"):
        EvalConfig(dataset="synthetic", data_root="/x", baselines=("nearest",), depth_unit="mm").resolved()


def test_rgbd_cli_reads_millimetre_folders(rgbd_root, tmp_path, capsys):
    from depthsense.io import read_depth, write_depth

    mm = tmp_path / "mm"
    for f in rgbd_root.rglob("*"):
        if f.is_file():
            dst = mm / f.relative_to(rgbd_root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            if f.parent.name == "gt":
                write_depth(dst, read_depth(f), "mm")
            else:
                dst.write_bytes(f.read_bytes())
    args = ["--dataset", "rgbd", "--data-root", str(mm), "--split", "all", "--baselines", "nearest", "--patterns", "samples:50",
            "--out", str(tmp_path / "o"), "--device", "cpu", "--no-progress", "--panels", "0"]
    assert evaluate_cli.main(args + ["--depth-unit", "mm"]) == 0
    in_mm = json.loads((tmp_path / "o" / "report.json").read_text())["results"]["samples:50"]["nearest"]["rmse"]
    ref = evaluate(EvalConfig(dataset="rgbd", data_root=str(rgbd_root), split="all", baselines=("nearest",),
                              patterns=("samples:50",), device="cpu", progress=False), write=False)
    assert in_mm == pytest.approx(ref.tables["samples:50"]["nearest"]["rmse"], rel=0.02)  # 1 mm vs 3.9 mm steps
