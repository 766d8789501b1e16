"""The ``platewatch`` command line: a thin argparse shell over one module per command.

Each command module exposes ``add_parser(subparsers)`` and sets ``func`` (args -> exit code) on
its parser. The runtime's own commands are listed in EDGE_COMMANDS; other packages add commands
through the ``platewatch.commands`` entry point group (an entry ``name = "module:function"``,
the function registering its commands on the subparsers): ``edge`` never imports ``training``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from importlib import metadata

# (command name, module). Imported lazily-light: these modules import only numpy/cv2 at top.
EDGE_COMMANDS: list[tuple[str, str]] = [
    ("image", "edge.cli.image"),
    ("eval", "edge.cli.eval"),
    ("history", "edge.cli.history"),
    ("build-engines", "edge.cli.build_engines"),
    ("doctor", "edge.cli.doctor"),
    ("check-config", "edge.cli.check_config"),
    ("run", "edge.cli.run"),
    ("replay", "edge.cli.replay"),
    ("demo", "edge.cli.demo"),
    ("dashboard", "edge.cli.dashboard"),
    ("collect", "edge.cli.collect"),
]


PLUGIN_GROUP = "platewatch.commands"


def _plugin_commands(argv: Sequence[str]) -> list[Callable[[argparse._SubParsersAction], None]]:
    """Registration functions of the installed plugin commands. Only looked up when the
    command is not one of edge's own, so ``platewatch image``/``run`` start fast and never
    import another package."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first in {name for name, _ in EDGE_COMMANDS}:
        return []
    out = []
    for ep in metadata.entry_points(group=PLUGIN_GROUP):
        if first is not None and ep.name != first:
            continue
        try:
            out.append(ep.load())
        except ImportError as e:  # the plugin's own dependencies are not installed
            logging.getLogger("platewatch.cli").debug("command %s unavailable: %s", ep.name, e)
    return out


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions keep their paragraphs (minus reST ``markup``); every option shows its
    default unless its help already says it or there is none to show."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(text.replace("``", ""))

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and "default" not in text.lower()
            and default not in (None, False, argparse.SUPPRESS)
            and not isinstance(action, argparse._VersionAction)
        ):
            text += " (default: %(default)s)"
        return text


def version() -> str:
    try:
        return metadata.version("platewatch")
    except metadata.PackageNotFoundError:  # run from a checkout without installing
        return "0+unknown"


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="platewatch",
        description="Real-time licence-plate recognition (ALPR).",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"platewatch {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for _name, module in EDGE_COMMANDS:
        importlib.import_module(module).add_parser(sub)
    seen: set[int] = set()
    for register in _plugin_commands(argv):
        if id(register) not in seen:  # one function may register several commands
            seen.add(id(register))
            register(sub)
    for command in sub.choices.values():
        command.formatter_class = HelpFormatter
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    from edge.app.logs import JOURNAL_FORMAT, setup_logging

    # One console handler for every command; `run` replaces it with its own (never a second).
    setup_logging(logging.DEBUG if args.verbose else logging.WARNING, console_format=JOURNAL_FORMAT)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    from edge.detect.backends import BackendError
    from edge.detect.models import ModelSpecError

    try:
        return int(func(args) or 0)
    except (FileNotFoundError, ModelSpecError, BackendError, ImportError) as exc:
        # Set-up problems (missing model, bad sidecar, missing TensorRT): one clear line.
        print(f"platewatch {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` & co.: stop quietly; point stdout at devnull so the
        # interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    raise SystemExit(main())
