"""The ``zeroshot`` parser: every option of every sub-command is explained, global options go anywhere."""

from __future__ import annotations

import argparse

import pytest

from zeroshot_core.cli.parser import build_parser
from zeroshot_core.plugins.manager import guidance_registry, segmenter_registry


def _sub_commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_option_of_every_sub_command_has_help_and_shows_its_default():
    parser = build_parser()
    commands = _sub_commands(parser)
    assert {"train", "translate", "segment", "plugins", "models", "evaluate", "demo"} <= set(commands)
    missing, no_default = [], []
    for name, command in {"zeroshot": parser, **commands}.items():
        formatter = command._get_formatter()
        for action in command._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
            default = action.default
            if (action.option_strings and default not in (None, argparse.SUPPRESS) and default is not False
                    and not isinstance(default, bool)):
                if "default" not in formatter._get_help_string(action).lower():
                    no_default.append(f"{name} {action.option_strings[0]}")
    assert not missing, f"options without help: {missing}"
    assert not no_default, f"options whose default is not shown: {no_default}"


def test_guidance_and_segmenter_help_name_the_built_in_choices():
    commands = _sub_commands(build_parser())
    for name in ("train", "translate"):
        [guidance] = [a for a in commands[name]._actions if "--guidance" in a.option_strings]
        for strategy in guidance_registry().names():
            assert strategy in guidance.help
    [segmenter] = [a for a in commands["segment"]._actions if "--segmenter" in a.option_strings]
    for name in segmenter_registry().names():
        assert name in segmenter.help


@pytest.mark.parametrize("argv", [
    ["-q", "--threads", "1", "models"],
    ["models", "-q", "--threads", "1"],
    ["--threads", "1", "models", "--quiet"],
    ["-q", "models", "--threads", "1"],
])
def test_global_options_are_accepted_before_or_after_the_sub_command(argv):
    args = build_parser().parse_args(argv)
    assert args.quiet is True and args.threads == 1 and args.command == "models"


def test_global_options_default_when_given_nowhere():
    args = build_parser().parse_args(["models"])
    assert args.quiet is False and args.threads == 0
