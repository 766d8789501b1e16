"""`platewatch check-config FILE`: validate a configuration and print a summary or the errors.

`add_parser(subparsers)` registers the subcommand (edge/cli/__init__.py calls it); the handler
returns the process exit code: 0 when valid, 2 when not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from edge.capture.sources import SourceKind, redact
from edge.cli.common import print_config_error
from edge.config.loader import ConfigError, load_config
from edge.config.schema import AppConfig

EXIT_INVALID = 2


def summarize(cfg: AppConfig) -> list[str]:
    """Human-readable lines describing what a configuration will do."""
    lines = [f"{len(cfg.cameras)} camera(s):"]
    for cam in cfg.cameras:
        flags = []
        if not cam.enabled:
            flags.append("disabled")
        if cam.fps:
            flags.append(f"fps={cam.fps:g}")
        if cam.realtime:
            flags.append("realtime")
        if cam.loop:
            flags.append("loop")
        if cam.sample_every > 1:
            flags.append(f"every {cam.sample_every} frames")
        if cam.motion_gate:
            flags.append("motion gate")
        extra = f" ({', '.join(flags)})" if flags else ""
        lines.append(f"  - {cam.name}: {cam.kind.value} {redact(cam.source)}{extra}")
        if cam.kind in (SourceKind.FILE, SourceKind.IMAGES) and not Path(str(cam.source)).exists():
            lines.append(f"    warning: {cam.kind.value} not found here: {cam.source}")
    m = cfg.models
    lines.append(
        f"models: detector {m.detector} [{m.backend_for(m.detector)}], "
        f"reader {m.reader} [{m.backend_for(m.reader)}], {m.threads} thread(s), "
        f"device {m.device}"
    )
    for label, path in (("detector", m.detector), ("reader", m.reader)):
        if not path.exists():
            lines.append(f"  warning: {label} model file does not exist here: {path}")
    if cfg.mqtt is None:
        lines.append("mqtt: off")
    else:
        q = cfg.mqtt
        auth = f", user {q.username}" if q.username else ""
        tls = ", TLS" + (" (insecure)" if q.tls.insecure else "") if q.tls else ""
        lines.append(
            f"mqtt: {q.host}:{q.port}{tls}{auth}, "
            f"topics {q.topic_prefix}/{cfg.device}/<camera>/..., "
            f"spool {q.spool_dir or '(default state dir)'} (max {q.spool_max_mb:g} MB)"
        )
    v = cfg.voting
    lines.append(
        f"voting: provisional after {v.provisional_min_reads} reads >= "
        f"{v.provisional_min_confidence:g}, final >= {v.final_min_confidence:g}, "
        f"reappear window {v.reappear_window_s:g} s, "
        + (
            f"{len(v.patterns)} custom pattern(s)"
            if v.patterns
            else f"shipped formats of {', '.join(v.regions)}"
            if v.regions is not None
            else "shipped formats, label only (set voting.regions to repair reads)"
        )
    )
    sinks = [f"jsonl {cfg.sinks.jsonl}"] if cfg.sinks.jsonl else []
    if cfg.sinks.stdout:
        sinks.append("stdout")
    lines.append("sinks: " + (", ".join(sinks) if sinks else "none besides mqtt"))
    return lines


def check_config(path: str, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Validate ``path``; print OK and a summary (exit code 0) or every error (exit code 2)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        cfg = load_config(path)
    except ConfigError as e:
        print_config_error(e, path, err, hint=False)
        return EXIT_INVALID
    print(f"OK: {path}", file=out)
    for line in summarize(cfg):
        print(line, file=out)
    return 0


def _run(args: argparse.Namespace) -> int:
    return check_config(args.config_file)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``check-config``; the parser's ``func(args)`` returns the exit code."""
    p = subparsers.add_parser(
        "check-config",
        help="validate a cameras.yaml and print a summary",
        description="Validate a platewatch YAML configuration. Exit 0 when valid, 2 with "
        "'FILE:LINE: field: problem' messages when not.",
    )
    p.add_argument("config_file", metavar="FILE", help="YAML configuration, e.g. cameras.yaml")
    p.set_defaults(func=_run)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="platewatch")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
