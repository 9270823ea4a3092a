"""The classification experiment (depthsense.experiments.classify, .classify_report, tools/classify_sparse.py) on tiny sets."""

import csv
import json

import pytest

from depthsense.experiments.classify import ClassifyConfig, classify_config_from_args, level_name, run_classification
from depthsense.experiments.classify_report import CLASSIFY_CSV_COLUMNS, PLOT_NAME
from depthsense.tools import classify_sparse

TINY = ["--train-images", "96", "--test-images", "40", "--epochs", "1", "--batch-size", "32", "--width", "4",
        "--jobs", "1", "--no-progress"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One CLI run: one level, both protocols, all four nets."""
    out = tmp_path_factory.mktemp("classify")
    code = classify_sparse.main(["--levels", "0.5", "--out", str(out), *TINY])
    return code, out


def test_one_level_smoke_run_writes_the_report_files(smoke, capsys):
    code, out = smoke
    assert code == 0
    for name in ("report.md", "report.csv", "report.json", PLOT_NAME):
        assert (out / name).stat().st_size > 0, name
    assert (out / PLOT_NAME).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*.tmp*"))  # atomic writes leave no temporary files


def test_report_contents_agree_across_md_csv_and_json(smoke):
    _, out = smoke
    report = json.loads((out / "report.json").read_text())
    assert report["levels"] == ["50%"] and report["train_level"] == "50%"
    assert [n["name"] for n in report["nets"]] == ["convnet", "convnet_bn", "sparse", "sparse_bn"]
    assert len({n["parameters"] for n in report["nets"] if not n["batchnorm"]}) == 1  # same architecture
    assert report["data"]["train_images"] == 96 and report["data"]["test_images"] == 40
    assert len(report["runs"]) == 4  # protocol (b) reuses the nets protocol (a) trained at 50 %
    rows = list(csv.DictReader((out / "report.csv").open()))
    assert tuple(rows[0]) == CLASSIFY_CSV_COLUMNS and len(rows) == 8  # 2 protocols x 4 nets x 1 level
    for row in rows:
        value = report["results"][row["protocol"]][row["net"]][level_name(float(row["test_sparsity"]))]
        assert float(row["value"]) == value
        assert 0.0 <= value <= 1.0 and (value * 40).is_integer()  # a share of 40 test images
    assert report["results"]["a"] == report["results"]["b"]
    md = (out / "report.md").read_text()
    assert "## Protocol (a)" in md and "## Protocol (b): trained at 50% missing" in md
    assert "spread (max − min)" in md and "depthsense-classify --dataset digits" in md
    assert f"{100 * report['results']['a']['sparse']['50%']:.1f}" in md


def test_runs_are_reproducible_and_masks_paired(tmp_path):
    cfg = classify_config_from_args(["--levels", "0,0.9", "--train-level", "0.9", "--nets", "sparse,convnet",
                                     "--out", str(tmp_path), *TINY])
    first = run_classification(cfg, write=False)
    second = run_classification(cfg, write=False)
    assert first.protocol_a == second.protocol_a and first.protocol_b == second.protocol_b
    assert set(first.protocol_b["sparse"]) == {"0%", "90%"}
    assert first.protocol_b["sparse"]["90%"] == first.protocol_a["sparse"]["90%"]
    assert [n["name"] for n in first.nets] == ["convnet", "sparse"]  # registry order, not argument order
    spreads = first.spreads()
    row = first.protocol_b["convnet"]
    assert spreads["convnet"]["range"] == pytest.approx(max(row.values()) - min(row.values()))


def test_worker_processes_give_the_same_tables_as_one_process(tmp_path):
    argv = ["--levels", "0.5", "--protocols", "b", "--nets", "convnet,sparse", "--out", str(tmp_path), *TINY]
    one = run_classification(classify_config_from_args(argv), write=False)
    two = run_classification(classify_config_from_args(argv + ["--jobs", "2"]), write=False)
    assert one.protocol_b == two.protocol_b and not two.protocol_a


def test_config_round_trips_through_argv():
    cfg = ClassifyConfig(levels=(0.1, 0.95), nets=("sparse",), epochs=3, pool="avg", image_size=32,
                         progress=False).resolved()
    assert classify_config_from_args(cfg.to_argv()).resolved() == cfg


@pytest.mark.parametrize("argv, message", [
    (["--levels", "0,1.0"], "outside [0, 1)"),
    (["--levels", "0,x"], "expected numbers separated by commas"),
    (["--nets", "resnet"], "known nets are convnet, convnet_bn, sparse, sparse_bn"),
    (["--protocols", "c"], "use a, b or ab"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--first-kernel", "4"], "--first-kernel must be odd"),
    (["--dataset", "cifar"], "known: caltech101, digits, mnist"),
    (["--dataset", "mnist"], "needs --data-root"),
    (["--dataset", "mnist", "--data-root", "{tmp}"], "missing train-images-idx3-ubyte[.gz]; --dataset mnist expects"),
    (["--dataset", "caltech101", "--data-root", "{tmp}/none"], "not a folder"),
    (["--bogus"], "unrecognized arguments"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code = classify_sparse.cli_main([*argv, "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before any work or output
