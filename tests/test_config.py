"""depthsense.config: option validation, one-line CLI errors, resume settings, output guards."""

from __future__ import annotations

import errno
import os
import sys

import pytest

from depthsense.config import (
    RUN_SETTINGS,
    OneLineParser,
    TrainConfig,
    UsageError,
    build_model_from_options,
    check_output_dir,
    make_output_dir,
    parse_train_args,
    refuse_output_inside,
    refuse_overwrite,
    refuse_shared_outputs,
    report_problems,
    resume_config,
    run_cli,
    written_so_far,
)
from depthsense.errors import DepthFileError

# --------------------------------------------------------------------------- item 9: values that cannot work


def test_empty_loss_and_nothing_to_train_are_errors():
    with pytest.raises(UsageError, match="--loss '' is empty"):
        TrainConfig(loss="").resolved()
    with pytest.raises(UsageError, match="--loss '  ' is empty"):
        TrainConfig(loss="  ").resolved()
    with pytest.raises(UsageError, match="--steps 0 and --epochs 0: nothing to train"):
        TrainConfig(steps=0, epochs=0).resolved()
    assert TrainConfig(steps=0, epochs=1).resolved().loss.startswith("l1")  # None still means the default
    with pytest.raises(UsageError, match="--rgb-root is for --dataset kitti"):
        TrainConfig(dataset="nyu", data_root="x", rgb_root="y").resolved()


# --------------------------------------------------------------------------- item 6: --model-arg


@pytest.mark.parametrize(
    "name, options, needle",
    [
        ("sparse_unet", {"width": "abc"}, "--model-arg width='abc': sparse_unet expects an integer for width"),
        ("sparse_unet", {"width": -3}, "--model-arg width=-3: sparse_unet cannot be built: need width >= 1"),
        ("sparse_unet", {"width": 2.5}, "expects an integer"),
        ("sparse_unet", {"rgb": 1}, "expects true or false"),
        ("sparse_unet", {"nope": 1}, "does not accept option(s) nope"),
        ("ip_basic", {"blur": 3}, "expects a string for blur"),
        ("ip_basic", {"blur": "box"}, "blur must be one of"),
    ],
)
def test_model_options_are_type_checked_and_constructor_errors_are_usage_errors(name, options, needle):
    with pytest.raises(UsageError) as exc:
        build_model_from_options(name, options)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_model_options_that_fit_build_the_model():
    model = build_model_from_options("sparse_unet", {"width": 4, "depth": 3, "max_depth": 50})  # int for a float
    assert model.config["width"] == 4 and model.config["max_depth"] == 50
    with pytest.raises(KeyError, match="known models"):
        build_model_from_options("no_such_model", {})


# --------------------------------------------------------------------------- item 7: one-line argparse errors


def test_one_line_parser_error_names_the_program_and_help():
    p = OneLineParser(prog="depthsense-x")
    p.add_argument("--n", type=int)
    with pytest.raises(UsageError, match=r"^argument --n: invalid int value: 'q' \(see depthsense-x --help\)$"):
        p.parse_args(["--n", "q"])


@pytest.mark.parametrize("argv,message", [
    (["--crop", "-5x10"], "argument --crop: crop '-5x10': both sides must be >= 16 pixels"),
    (["--crop=-5x10"], "argument --crop: crop '-5x10': both sides must be >= 16 pixels"),
    (["--synthetic-size", "-352x1216"], "crop '-352x1216': both sides must be >= 16 pixels"),
])
def test_a_value_starting_with_minus_reaches_its_own_check(argv, message):
    # argparse alone reads "--crop -5x10" as two options: "expected one argument"
    with pytest.raises(UsageError, match=message):
        parse_train_args(argv)
    p = OneLineParser(prog="depthsense-x")
    p.add_argument("--n", type=int)
    p.add_argument("--flag", action="store_true")
    p.add_argument("rest", nargs="*")
    assert p.parse_args(["--n", "-3", "--flag", "--", "-4x5"]) .rest == ["-4x5"]  # "--" still ends options


def test_run_cli_prefix_is_the_console_script_name_however_started(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/some/where/train_depth.py"])

    def main(argv):
        raise UsageError("bad value")

    assert run_cli(main, [], prog="depthsense-train") == 2
    assert capsys.readouterr().err == "depthsense-train: error: bad value\n"


def test_run_cli_turns_os_errors_and_a_full_disk_into_one_line(capsys):
    def full(argv):
        raise OSError(errno.ENOSPC, "No space left on device", "out/x.png")

    assert run_cli(full, [], prog="depthsense-infer") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("depthsense-infer: error: out/x.png: No space left on device")
    assert "free disk space" in err

    def bug(argv):
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):  # bugs still raise
        run_cli(bug, [], prog="p")


# --------------------------------------------------------------------------- item 2: resume settings


def _stored(**kw):
    return TrainConfig(dataset="synthetic", data_root="/data/s", model="sparse_convnet", loss="l1:1.0",
                       crop=(32, 96), batch_size=2, steps=3, **kw).resolved().to_dict()


def test_resume_restores_the_stored_settings_and_keeps_the_run_options():
    given, explicit = parse_train_args(["--out", "runs/x", "--resume", "--workers", "0", "--no-progress"])
    cfg, notes = resume_config(given, _stored(), explicit)
    assert (cfg.model, cfg.loss, cfg.crop, cfg.batch_size, cfg.steps) == ("sparse_convnet", "l1:1.0", (32, 96), 2, 3)
    assert cfg.data_root == "/data/s" and cfg.workers == 0 and cfg.progress is False and notes == []
    assert set(RUN_SETTINGS) <= set(TrainConfig.__dataclass_fields__)


def test_resume_refuses_a_contradicting_option_naming_both_values_unless_override():
    given, explicit = parse_train_args(["--resume", "--batch-size", "4", "--steps", "5", "--loss", "l1"])
    with pytest.raises(UsageError) as exc:
        resume_config(given, _stored(), explicit, source="runs/x/last.pt")
    msg = str(exc.value)
    assert "--batch-size 4 but the run was trained with 2" in msg and "--steps 5" in msg and "with 3" in msg
    assert "--loss" not in msg  # 'l1' is the stored 'l1:1.0'
    assert "--override" in msg and "runs/x/last.pt" in msg and "\n" not in msg
    given, explicit = parse_train_args(["--resume", "--batch-size", "4", "--steps", "5", "--override"])
    cfg, notes = resume_config(given, _stored(), explicit)
    assert (cfg.batch_size, cfg.steps, cfg.model) == (4, 5, "sparse_convnet")
    assert any("--batch-size 2 -> 4" in n for n in notes)


def test_resume_explicit_default_value_still_counts_and_same_value_is_no_conflict():
    given, explicit = parse_train_args(["--resume", "--batch-size", "4"])  # 4 is the default, but given
    with pytest.raises(UsageError, match="--batch-size 4 but the run was trained with 2"):
        resume_config(given, _stored(), explicit)
    given, explicit = parse_train_args(["--resume", "--batch-size", "2", "--crop", "32x96"])
    assert resume_config(given, _stored(), explicit)[0].batch_size == 2


# --------------------------------------------------------------------------- item 1 / 12: outputs


def test_refuse_overwrite_by_path_symlink_and_hard_link(tmp_path):
    src = tmp_path / "in" / "a.png"
    src.parent.mkdir()
    src.write_bytes(b"x")
    with pytest.raises(UsageError, match="is the input"):
        refuse_overwrite([tmp_path / "in" / "." / "a.png"], [src])
    (tmp_path / "link").symlink_to(tmp_path / "in")
    with pytest.raises(UsageError, match="is the input"):
        refuse_overwrite([tmp_path / "link" / "a.png"], [src])
    os.link(src, tmp_path / "hard.png")
    with pytest.raises(UsageError, match="is the same file as the input"):
        refuse_overwrite([tmp_path / "hard.png"], [src])
    refuse_overwrite([tmp_path / "in" / "b.png", tmp_path / "new" / "a.png"], [src])  # no clash


def test_refuse_shared_outputs_by_path_dotdot_symlink_and_hard_link(tmp_path):
    (tmp_path / "o").mkdir()
    a = tmp_path / "o" / "a.png"
    refuse_shared_outputs({"--out": a, "--overlay": tmp_path / "o" / "b.png", "--extra": None})  # distinct: fine
    (tmp_path / "link.png").symlink_to(a)
    (tmp_path / "dir").symlink_to(tmp_path / "o")
    for other in (a, tmp_path / "o" / ".." / "o" / "a.png", tmp_path / "link.png", tmp_path / "dir" / "a.png"):
        with pytest.raises(UsageError, match=rf"^--overlay {other}: is the same file as --out {a}; two outputs"):
            refuse_shared_outputs({"--out": a, "--overlay": other})
    a.write_bytes(b"x")
    os.link(a, tmp_path / "hard.png")
    with pytest.raises(UsageError, match="hard.png: is the same file as"):
        refuse_shared_outputs({str(a): a, str(tmp_path / "hard.png"): tmp_path / "hard.png"})


def test_folder_mode_reports_list_problems_and_say_what_stays(capsys):
    assert report_problems([], 3) == 0 and capsys.readouterr().err == ""
    assert report_problems(["skipped a: bad", "skipped b: worse"], 3, "frames") == 1
    assert capsys.readouterr().err == "2 problem(s) (3 frames):\n  skipped a: bad\n  skipped b: worse\n"
    assert written_so_far([], 4, "out") == "None of the 4 frames was written to out."
    assert written_so_far(["a", "b", "c", "d", "e"], 9, "out", "images") == (
        "Before it, 5 of 9 images were written completely to out and stay (a, b, c ... e); the other 4 were not.")


def test_refuse_output_inside_the_data_it_reads(tmp_path):
    with pytest.raises(UsageError, match="is inside --data-root"):
        refuse_output_inside(tmp_path / "data", {"--data-root": tmp_path / "data"})
    with pytest.raises(UsageError, match="is inside --rgb-root"):
        refuse_output_inside(tmp_path / "raw" / "runs", {"--data-root": None, "--rgb-root": tmp_path / "raw"})
    refuse_output_inside(tmp_path / "data2", {"--data-root": tmp_path / "data"})  # a prefix is not a parent


def test_check_output_dir_creates_nothing_and_make_output_dir_does(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(DepthFileError, match="f is a file"):
        check_output_dir(tmp_path / "f" / "o")
    target = tmp_path / "a" / "b"
    check_output_dir(target)
    assert not (tmp_path / "a").exists()
    assert make_output_dir(target).is_dir()


# --------------------------------------------------------------------------- item 11: one progress flag


def test_every_cli_has_progress_and_no_progress_defaulting_to_on():
    from depthsense.config import train_parser
    from depthsense.evaluation import eval_parser
    from depthsense.tools import infer, make_synthetic

    parsers = {"train": train_parser(), "infer": infer.build_parser(), "evaluate": eval_parser(),
               "make-synthetic": make_synthetic._parser()}
    for name, parser in parsers.items():
        assert parser.parse_args(["--out", "x"] if name == "make-synthetic" else []).progress is True, name
        base = ["--out", "x"] if name == "make-synthetic" else []
        assert parser.parse_args(base + ["--no-progress"]).progress is False, name
        assert parser.parse_args(base + ["--progress"]).progress is True, name
        text = " ".join(parser.format_help().split())
        assert "--progress, --no-progress" in text and "(default: on;" in text, name
        assert "default: True" not in text and "(default: None)" not in text, name


# --------------------------------------------------------------------------- issue 18: TrainConfig validation


@pytest.mark.parametrize(
    "fields, needle",
    [
        ({"batch_size": 0}, "--batch-size must be >= 1, got 0"),
        ({"epochs": -1}, "--epochs must be >= 0, got -1"),
        ({"workers": -2}, "--workers must be >= 0, got -2"),
        ({"val_every": -1}, "--val-every must be >= 0"),
        ({"lr": 0.0}, "--lr must be > 0, got 0.0"),
        ({"lr": float("nan")}, "--lr must be > 0, got nan"),
        ({"density": 0.0}, "--density must be in (0, 1], got 0.0"),
        ({"density": 1.5}, "--density must be in (0, 1], got 1.5"),
        ({"beams": 3}, "--beams must divide 64 (64/32/16/8...), got 3"),
        ({"holdout": "beams:2"}, "--holdout needs real scans (--dataset kitti_object)"),
        ({"dataset": "kitti_object", "data_root": "x"}, "train self-supervised with --holdout beams:2"),
        ({"dataset": "kitti_object", "data_root": "x", "holdout": "beams:3"}, "--holdout: "),
        ({"dataset": "kitti_object", "data_root": "x", "holdout": "beams:2", "density": 0.1},
         "kitti_object has none (use --holdout)"),
        ({"synthetic_frames": 3}, "--synthetic-frames must be >= 4"),
    ],
)
def test_train_config_refuses_values_that_cannot_work(fields, needle):
    with pytest.raises(UsageError) as exc:
        TrainConfig(**fields).resolved()
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_train_config_fills_per_dataset_defaults_and_keeps_explicit_values():
    kitti = TrainConfig(dataset="kitti").resolved()
    assert (kitti.model, kitti.loss, kitti.crop) == ("sparse_unet", "l1:1.0,l2:0.1,ssim:0.2,edge:0.1", (256, 1216))
    real = TrainConfig(dataset="kitti_object", holdout="beams:2").resolved()
    assert real.loss == "l1:1.0,l2:0.1" and real.crop == (256, 1216)  # no window losses on rings
    mono = TrainConfig(dataset="redweb").resolved()
    assert (mono.model, mono.loss, mono.crop) == ("monocular", "rank:1.0,ssi:0.5", (320, 320))
    mine = TrainConfig(dataset="kitti", model="convnet", loss="l2", crop=()).resolved()
    assert (mine.model, mine.loss, mine.crop) == ("convnet", "l2", None)  # () = no crop
    assert TrainConfig(density=1.0, beams=8).resolved().density == 1.0  # the edges of the ranges are valid


# --------------------------------------------------------------------------- issue 25: every CLI through run_cli


def test_run_cli_reports_a_full_disk_a_library_wrapped_in_its_own_error(capsys):
    def torch_like(argv):  # torch's zip writer: RuntimeError("unexpected pos") while handling the OSError
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "run/.last.pt.1-x.tmp.pt")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 832 vs 726")

    assert run_cli(torch_like, [], prog="depthsense-train") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "unexpected pos" not in err

    def bug(argv):
        try:
            raise OSError(errno.ENOENT, "No such file")
        except OSError:
            raise RuntimeError("a bug while handling it")

    with pytest.raises(RuntimeError, match="a bug"):  # only a full disk behind it is the environment
        run_cli(bug, [], prog="p")


def test_run_cli_prints_warnings_as_notes_once_each(capsys):
    import warnings

    from depthsense.config import print_note

    def main(argv):
        for _ in range(3):
            warnings.warn("level 5%: density capped", RuntimeWarning)
        print_note("level 5%: density capped")  # the command's own note of the same thing
        warnings.warn("another thing", UserWarning)
        return 0

    assert run_cli(main, [], prog="depthsense-evaluate") == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["note: level 5%: density capped", "note: another thing"]
    assert err == ""  # no "file.py:12: RuntimeWarning" and source line


def test_run_cli_ends_quietly_when_stdout_is_closed(capsys, monkeypatch):
    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self):
            raise ValueError("no fd")  # the redirect to /dev/null is skipped in this test

    def main(argv):
        print("line 1\nline 2")
        return 0

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert run_cli(main, [], prog="depthsense-infer") == 141
    monkeypatch.undo()
    assert capsys.readouterr().err == ""  # not "error: Broken pipe"


@pytest.mark.parametrize("option, value", [("grad_clip", -1.0), ("weight_decay", -0.01), ("max_depth", 0.0),
                                           ("lr", float("inf")), ("grad_clip", float("nan")), ("seed", -1)])
def test_every_numeric_training_option_outside_its_range_is_refused(option, value):
    flag = "--" + option.replace("_", "-")
    with pytest.raises(UsageError, match=f"{flag} must be"):
        TrainConfig(**{option: value}).resolved()


def test_resume_command_keeps_how_the_run_ran():
    from depthsense.config import resume_command

    cfg = TrainConfig(out="runs/my run", workers=0, progress=False, ckpt_every=5, lr=0.1, dataset="nyu")
    assert resume_command(cfg) == ("depthsense-train --out 'runs/my run' --resume --workers 0 --ckpt-every 5 "
                                   "--no-progress")  # lr and data set come from last.pt


# --------------------------------------------------------------------------- data-set abilities, not names


def test_completion_data_sets_are_the_trainable_metric_ones_of_the_registry():
    from depthsense.config import COMPLETION_DATASETS, train_parser

    assert set(COMPLETION_DATASETS) == {"kitti", "synthetic", "nyu", "kitti_object"}
    choices = next(a.choices for a in train_parser()._actions if a.dest == "dataset")
    assert set(choices) == {"kitti", "kitti_object", "redweb", "nyu", "synthetic"}  # not rgbd: evaluation only
    assert "data set: kitti | kitti_object | nyu | redweb | synthetic" in " ".join(train_parser().format_help().split())


def test_train_checks_follow_the_data_sets_abilities(monkeypatch):
    from depthsense.data import dataset as registry
    from depthsense.data.kitti_object import KittiObjectDataset

    class _OtherScans(KittiObjectDataset):  # a second real-scan data set: same rules, its own name
        pass

    monkeypatch.setitem(registry._DATASETS, "other_scans", _OtherScans)
    with pytest.raises(UsageError, match="^--dataset other_scans has no dense ground truth: train self-supervised"):
        TrainConfig(dataset="other_scans", data_root="x").resolved()
    with pytest.raises(UsageError, match="--density samples dense ground truth; other_scans has none"):
        TrainConfig(dataset="other_scans", data_root="x", holdout="beams:2", density=0.1).resolved()
    cfg = TrainConfig(dataset="other_scans", data_root="x", holdout="beams:2").resolved()
    assert cfg.loss == "l1:1.0,l2:0.1" and cfg.model == "sparse_unet" and cfg.crop == (256, 1216)
    with pytest.raises(UsageError, match=r"--holdout needs real scans \(--dataset kitti_object \| other_scans\); "
                                         "--dataset nyu has none"):
        TrainConfig(dataset="nyu", holdout="beams:2").resolved()
