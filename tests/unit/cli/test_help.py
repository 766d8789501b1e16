"""Every command and option explains itself in --help; --version answers."""

from __future__ import annotations

import argparse

import pytest

from edge.cli import build_parser, main


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    out = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out[name] = sub
                out.update({f"{name} {k}": v for k, v in _subcommands(sub).items()})
    return out


def test_every_command_and_option_has_help() -> None:
    commands = _subcommands(build_parser(["--help"]))  # --help: the plugin commands too
    assert {"run", "replay", "import-labels", "extract-frames", "crop-plates"} <= set(commands)
    missing = []
    for name, p in commands.items():
        if not p.description:
            missing.append(f"{name}: no description")
        for a in p._actions:
            if not isinstance(a, argparse._HelpAction) and not a.help:
                missing.append(f"{name} {a.option_strings or a.dest}: no help")
        text = p.format_help()
        if "``" in text:
            missing.append(f"{name}: raw ``markup`` in --help")
    assert missing == []


def test_defaults_are_shown() -> None:
    text = _subcommands(build_parser(["--help"]))["extract-frames"].format_help()
    assert "(default: 10)" in text  # --every


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("platewatch ")
