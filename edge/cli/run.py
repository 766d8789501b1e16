"""``platewatch run --config cameras.yaml``: the long-running service.

Loads and validates the configuration (errors name file, line and field; exit code 2), starts
one capture thread per enabled camera, one shared model instance and the configured sinks, logs
each camera's health every stats interval, and stops cleanly on SIGINT/SIGTERM (< 2 s, final
events flushed, unacknowledged MQTT messages kept in the spool). When every source is a file
that ends, the service ends too.

Under systemd (deploy/jetson/platewatch.service, ``Type=notify``): READY=1 once running,
WATCHDOG=1 while the pipeline is healthy (`Pipeline.healthy`: the inference worker keeps going
round and the stage watchdog, edge.app.watchdog, sees no stuck worker or sink thread), STOPPING=1
on shutdown (edge.app.sdnotify). A stalled camera is restarted in-process by the stage watchdog; a
stuck worker or sink cannot be (Python cannot kill a thread), so the pings stop and systemd's
``WatchdogSec=`` restarts the process. Logs go to stderr and, with ``--log-file`` or
``$PLATEWATCH_LOG_FILE``, to a size-rotated file (edge.app.logs).

Registered in edge/cli/__init__.py (EDGE_COMMANDS) with ``check-config`` (edge.cli.check_config).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from edge.cli.common import EXIT_USAGE, load_config_or_report

log = logging.getLogger("platewatch.run")


def _run(args: argparse.Namespace) -> int:
    from edge.app import sdnotify
    from edge.app.assembly import build_pipeline
    from edge.app.logs import setup_logging
    from edge.app.pipeline import install_signal_handlers
    from edge.sinks.log import LogSink

    level = logging.DEBUG if getattr(args, "verbose", False) else getattr(logging, args.log_level)
    setup_logging(level, log_file=args.log_file or os.environ.get("PLATEWATCH_LOG_FILE") or None)
    cfg = load_config_or_report(args.config)
    if cfg is None:
        return EXIT_USAGE
    if args.camera:
        unknown = set(args.camera) - {c.name for c in cfg.cameras}
        if unknown:
            print(f"unknown camera(s): {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        cfg = cfg.model_copy(
            update={
                "cameras": [
                    c.model_copy(update={"enabled": c.enabled and c.name in args.camera})
                    for c in cfg.cameras
                ]
            }
        )
    cameras = cfg.enabled_cameras
    if not cameras:
        print(f"{args.config}: no enabled camera", file=sys.stderr)
        return 2
    from edge.rules.privacy import PrivacyError

    try:
        pipe = build_pipeline(cfg, extra_sinks=[LogSink()])
    except PrivacyError as e:
        print(f"{args.config}: privacy: {e}", file=sys.stderr)
        return 2
    log.info(
        "platewatch running: %d camera(s) (%s); Ctrl-C or SIGTERM to stop",
        len(cameras),
        ", ".join(c.name for c in cameras),
    )
    restore = install_signal_handlers(pipe.request_stop)
    pinger = sdnotify.WatchdogPinger(healthy=pipe.healthy)
    try:
        pipe.start()
        sdnotify.ready(f"{len(cameras)} camera(s)")
        pinger.start()  # systemd WatchdogSec: pings only while the worker keeps going round
        while not pipe.wait(0.5):
            if pipe.stop_requested:
                break
    finally:
        sdnotify.stopping()
        pinger.stop()
        summary = pipe.stop()
        restore()
    for c in summary.cameras:
        log.info(
            "%s: %d frames, %d analysed, %d plate reads, %d final / %d provisional events "
            "(%d duplicates, %d static text suppressed), %d dropped, %d corrupt, %d reconnects",
            c.camera,
            c.frames,
            c.analysed,
            c.reads,
            c.final,
            c.provisional,
            c.duplicates,
            c.static_plates,
            c.dropped,
            c.corrupt,
            c.reconnects,
        )
        if c.alerts or c.watchlist_matches or c.outside_zones or c.capture_restarts:
            log.info(
                "%s: %d watchlist matches, %d alerts, %d outside required zones, %d hashed, "
                "%d capture restarts (watchdog)",
                c.camera,
                c.watchlist_matches,
                c.alerts,
                c.outside_zones,
                c.hashed,
                c.capture_restarts,
            )
    if summary.watchdog:
        log.info("watchdog: %s", summary.watchdog)
    if pipe.error is not None:
        log.error("stopped after an internal error: %s", pipe.error)
        return 1
    failed = [c for c in summary.cameras if c.state == "failed" or (c.ended and c.frames == 0)]
    if failed and not pipe.stop_requested or len(failed) == len(summary.cameras):
        # Scripts and systemd must see it: a camera that can never work (a missing file, a
        # source this machine cannot open) is a failed run, not a quiet one.
        for c in failed:
            log.error("camera %s delivered no frame: %s", c.camera, c.last_error or c.state)
        return 1
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "run",
        help="run the service on the cameras of a configuration",
        description="Run platewatch on every enabled camera of a YAML configuration "
        "(validate it first with `platewatch check-config`). Stops on SIGINT/SIGTERM.",
    )
    p.add_argument("--config", "-c", required=True, metavar="FILE", help="cameras.yaml")
    p.add_argument(
        "--camera", action="append", metavar="NAME", help="only this camera (repeatable)"
    )
    p.add_argument(
        "--log-file",
        default=None,
        metavar="FILE",
        help="also log to this size-rotated file (default: $PLATEWATCH_LOG_FILE, else none)",
    )
    p.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="least severe messages logged",
    )
    p.set_defaults(func=_run)
    return p


__all__ = ["add_parser"]
