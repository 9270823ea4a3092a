"""depthsense.options: every parser generated from its dataclass, one flag per field."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

import pytest

from depthsense.cli import UsageError
from depthsense.config import EvalConfig, TrainConfig, eval_config_from_args, eval_parser, train_parser
from depthsense.experiments.classify_config import ClassifyConfig, classify_config_from_args, classify_parser
from depthsense.infer_config import InferConfig, infer_config_from_args, infer_parser
from depthsense.options import (
    config_from_namespace,
    field_default,
    number_list,
    option,
    options_parser,
    split_list,
)


@dataclass(frozen=True)
class _Toy:
    name: str = option("a", "a name")
    count: int = option(3, "how many", metavar="N")
    scale: float | None = option(None, "a scale", group="numbers")
    tags: tuple = option((), "tags, comma-separated", nargs="*", convert=lambda given: tuple(split_list(given)))
    size: tuple = option((2, 3), "HxW", parse_default=None, show=lambda s: "x".join(map(str, s)),
                         type=lambda text: tuple(int(v) for v in text.split("x")))
    fast: bool = option(False, "go fast")
    progress: bool = option(True, "show progress")
    hidden: bool = option(True, "use the hidden level", flag="--no-hidden", action="store_false",
                          cli_help="skip the hidden level")
    path: str | None = option(None, "an input file", positional=True, nargs="?")


def _parse(argv):
    return config_from_namespace(_Toy, vars(options_parser(_Toy, "toy", "a toy").parse_args(argv)))


def test_a_generated_parser_gives_the_dataclass_defaults_and_converts_what_is_given():
    assert _parse([]) == _Toy()
    cfg = _parse(["in.png", "--name", "b", "--count", "7", "--scale", "0.5", "--tags", "x,y", "z", "--size", "4x5",
                  "--fast", "--no-progress", "--no-hidden"])
    assert cfg == _Toy(name="b", count=7, scale=0.5, tags=("x", "y", "z"), size=(4, 5), fast=True, progress=False,
                       hidden=False, path="in.png")
    with pytest.raises(UsageError, match=r"argument --count: invalid int value: 'x' \(see toy --help\)"):
        _parse(["--count", "x"])


def test_help_shows_every_field_once_with_its_group_and_defaults():
    text = options_parser(_Toy, "toy", "a toy").format_help()
    assert "numbers:" in text and "--count N" in text and "--no-hidden" in text and "skip the hidden level" in text
    assert "--progress, --no-progress" in text and "(default: 2x3)" in text and "(default: 3)" in text
    plain = " ".join(options_parser(_Toy, "toy", "a toy", defaults_in_help=True).format_help().split())
    assert "how many (default: 3)" in plain and "a name (default: a)" in plain and "(default: False)" not in plain


def test_defaults_false_parses_only_what_is_given():
    parser = options_parser(_Toy, "toy", "a toy", defaults=False)
    assert vars(parser.parse_args([])) == {}
    assert vars(parser.parse_args(["--count", "2", "--fast"])) == {"count": 2, "fast": True}


def test_option_refuses_an_unknown_parse_key():
    with pytest.raises(TypeError, match="unknown keys \\['nargz'\\]"):
        option(1, "x", nargz="+")


def test_list_helpers_split_and_name_bad_numbers():
    assert split_list(["a, b", "", "c"]) == ["a", "b", "c"]
    assert number_list(["64,32", "16"], int, "--beams", "64,32") == (64, 32, 16)
    assert number_list(["none"], float, "--densities", "0.05") == ()
    with pytest.raises(UsageError, match=r"--beams: 'x' is not an integer; expected e.g. --beams 64,32 \(or none\)"):
        number_list(["64,x"], int, "--beams", "64,32")


def _one_action_per_field(cls, parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    dests = [a.dest for a in actions]
    assert sorted(dests) == sorted(f.name for f in dataclasses.fields(cls)), "one flag per field, nothing else"
    return {a.dest: a for a in actions}


@pytest.mark.parametrize("cls, make_parser", [(EvalConfig, eval_parser), (InferConfig, infer_parser),
                                             (TrainConfig, train_parser), (ClassifyConfig, classify_parser)])
def test_every_field_has_one_flag_with_help_and_the_dataclass_default(cls, make_parser):
    actions = _one_action_per_field(cls, make_parser())
    for f in dataclasses.fields(cls):
        action = actions[f.name]
        assert f.metadata["help"] and action.help, f.name
        if "parse_default" in f.metadata:  # None: "not given", which takes the dataclass default
            assert f.metadata["parse_default"] is None and action.default is None, f.name
        else:
            assert action.default == field_default(f), f.name


def test_parsing_nothing_gives_the_dataclass_defaults():
    assert eval_config_from_args([]) == EvalConfig()
    assert infer_config_from_args([]) == InferConfig()
    assert classify_config_from_args([]) == ClassifyConfig()
    from depthsense.config import parse_train_args

    assert parse_train_args([]) == (TrainConfig(), frozenset())


def test_eval_parser_is_generated_from_the_fields():
    # a help text written once, on the field: change it there and --help changes
    help_of = {a.dest: a.help for a in eval_parser()._actions}
    for f in dataclasses.fields(EvalConfig):
        if "cli_help" not in f.metadata:
            assert help_of[f.name].startswith(f.metadata["help"].replace("%", "%%")), f.name
    assert help_of["max_images"].endswith("(default: 0)") and help_of["out"].endswith("(default: reports/eval)")
    cfg = eval_config_from_args(["--checkpoints", "a.pt", "--baselines", "none", "--densities", "0.1,0.05",
                                 "--beams", "64", "32", "--holdout", "beams:2,beams:4", "--no-lidar"])
    assert cfg.checkpoints == ("a.pt",) and cfg.baselines == () and cfg.densities == (0.1, 0.05)
    assert cfg.beams == (64, 32) and cfg.holdout == ("beams:2", "beams:4") and cfg.lidar is False
