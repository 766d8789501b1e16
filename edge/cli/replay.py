"""``platewatch replay VIDEO``: a recorded clip through the full pipeline, as fast as it goes.

The work is edge.app.replay's (the same assembly path as ``platewatch run``): with
``--config``, every rule of the configuration applies (models, voting, events, watchlists,
zones, privacy, history and its sinks), the file taking the place of the camera named by
``--camera`` (or of the configuration's only camera). Options given here add sinks
(``--events``, ``--print-events``), point MQTT at ``--mqtt HOST:PORT``, and override the
camera's sampling. With no sink at all, events are printed as JSON lines.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    apply_model_arguments,
    load_config_or_report,
    parse_host_port,
)


def _run(args: argparse.Namespace) -> int:
    from edge.app.replay import ReplayConfigError, format_summary, replay, replay_config
    from edge.sinks.base import Sink
    from edge.sinks.mqtt import MqttSettings

    if args.stats_interval is not None and args.stats_interval <= 0:
        print(f"--stats-interval must be > 0, got {args.stats_interval}", file=sys.stderr)
        return EXIT_USAGE
    base = None
    if args.config:
        base = load_config_or_report(args.config)
        if base is None:
            return EXIT_USAGE
    try:
        cfg = replay_config(
            args.video,
            base,
            camera=args.camera,
            sample_every=args.sample_every,
            realtime=True if args.realtime else None,
            motion_gate=True if args.motion_gate else None,
        )
    except (ReplayConfigError, ValueError) as e:
        print(f"platewatch replay: {e}", file=sys.stderr)
        return EXIT_USAGE
    cfg = apply_model_arguments(cfg, args)
    update: dict[str, object] = {}
    if args.no_crops:
        update["events"] = cfg.events.model_copy(update={"crop": False})
    if args.history is not None:
        from edge.history.store import HistoryConfig

        base_history = cfg.history.model_dump() if cfg.history is not None else {}
        update["history"] = HistoryConfig.model_validate({**base_history, "path": args.history})
    if args.mqtt:
        host, port = parse_host_port(args.mqtt)
        mqtt = cfg.mqtt.model_dump() if cfg.mqtt is not None else {}
        mqtt.update(host=host, port=port)
        if args.spool is not None:
            mqtt["spool_dir"] = args.spool
        if args.stats_interval is not None:
            mqtt["stats_interval_s"] = args.stats_interval
        update["mqtt"] = MqttSettings.model_validate(mqtt)
    sinks: list[Sink] = []
    if args.events:
        from edge.sinks.jsonl import JsonlSink

        out = Path(args.events)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("")  # a replay writes a fresh file (JsonlSink itself appends)
        sinks.append(JsonlSink(out))
    configured = cfg.sinks.stdout or cfg.sinks.jsonl is not None or cfg.mqtt is not None
    if args.print_events or not (sinks or configured or "mqtt" in update):
        update["sinks"] = cfg.sinks.model_copy(update={"stdout": True})
    if update:
        cfg = cfg.model_copy(update=update)
    result = replay(
        cfg,
        extra_sinks=sinks,
        annotate=args.annotate,
        progress=not args.no_progress,
        drain_timeout_s=args.drain_timeout,
        annotate_all=args.annotate_all,
    )
    for line in format_summary(result):
        print(line, file=sys.stderr)
    if args.events:
        print(f"events: {args.events}", file=sys.stderr)
    if args.annotate:
        print(f"annotated video: {args.annotate}", file=sys.stderr)
    if result.interrupted:
        return 130
    cam = result.summary.cameras[0]
    if cam.frames == 0:
        why = f": {cam.last_error}" if cam.last_error else ""
        print(f"platewatch replay: no frame could be read from {args.video}{why}", file=sys.stderr)
        return EXIT_FAILED
    if result.summary.undelivered:
        print(
            f"platewatch replay: {result.summary.undelivered} message(s) not delivered within "
            f"--drain-timeout {args.drain_timeout:g} s (kept in the MQTT spool for the next run)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from edge.detect.models import add_model_arguments

    p = subparsers.add_parser(
        "replay",
        help="run a video file through the pipeline (events, annotated video)",
        description="Replay a recorded clip through detection, tracking and voting as fast as "
        "possible (no frame is dropped). Events are printed as JSON lines unless a sink is "
        "given (--events, --mqtt, or the --config's sinks). Exit 1 when no frame could be read.",
    )
    p.add_argument("video", metavar="VIDEO", help="video file (mp4, mkv, avi, ...)")
    p.add_argument("--events", metavar="OUT.jsonl", help="write events as JSON Lines")
    p.add_argument("--annotate", metavar="OUT.mp4", help="write the annotated video (H.264)")
    p.add_argument(
        "--annotate-all",
        action="store_true",
        help="draw every plate track, also unsure ones tied to no vehicle (hidden by default)",
    )
    p.add_argument(
        "--sample-every",
        type=int,
        default=None,
        metavar="N",
        help="analyse every Nth frame (default: the config camera's, else 1)",
    )
    p.add_argument("--motion-gate", action="store_true", help="skip detection on idle frames")
    p.add_argument(
        "--mqtt", metavar="HOST:PORT", help="publish to this MQTT broker (overrides the config's)"
    )
    p.add_argument(
        "--spool",
        type=Path,
        default=None,
        metavar="DIR",
        help="MQTT spool directory (default: the config's, else the state dir)",
    )
    p.add_argument(
        "--camera",
        default=None,
        help="camera name in events (default: the file name); with --config, the camera whose "
        "settings (zones, sampling) apply",
    )
    p.add_argument(
        "--realtime",
        action="store_true",
        help="pace at the file's fps and drop frames like a live camera",
    )
    p.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="run with every rule and sink of this cameras.yaml",
    )
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="at the end, wait up to S seconds for MQTT to deliver what is spooled; exit 1 if "
        "anything is left (default 10)",
    )
    p.add_argument(
        "--history",
        type=Path,
        default=None,
        metavar="DB",
        help="store the final events in this SQLite history (overrides the config's path)",
    )
    p.add_argument("--print-events", action="store_true", help="also print events to stdout")
    p.add_argument("--no-crops", action="store_true", help="no base64 plate crops in events")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--stats-interval",
        type=float,
        default=None,
        metavar="S",
        help="period of <camera>/stats messages with --mqtt (default 30; a short clip needs less)",
    )
    add_model_arguments(p)
    p.set_defaults(func=_run)
    return p


__all__ = ["add_parser"]
