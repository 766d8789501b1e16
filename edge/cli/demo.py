"""``platewatch demo``: the whole product on shipped defaults, with no setup.

1. The sample clip ``samples/demo.mp4`` (synthetic plates the project renders itself, shipped);
2. the shipped models (``models/``, or ``--models`` / ``$PLATEWATCH_MODELS``);
3. events printed on stdout AND published over MQTT: to ``--mqtt HOST:PORT`` when given, else to
   an embedded broker started here (amqtt in-process; a ``mosquitto`` binary as fall-back; with
   neither, stdout only, and the demo says so).

It runs through the same assembly path as ``platewatch run`` (edge.app.replay). The MQTT spool of
the demo lives in a temporary directory: a demo never leaves state behind and never replays an
older run's events.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from edge import resources
from edge.cli.common import apply_model_arguments, parse_host_port

log = logging.getLogger("platewatch.demo")

DEMO_CLIP = resources.demo_clip()


def demo_clip(path: Path = DEMO_CLIP) -> Path:
    """The shipped demo clip; FileNotFoundError saying how to get one when it is missing."""
    if path.is_file():
        return path
    raise FileNotFoundError(
        f"demo clip {path} is missing: pass --video FILE, or render it with the training "
        "extras as samples/README.md says (python -m training.synth.video ...)"
    )


def _run(args: argparse.Namespace) -> int:
    from edge.app.broker import start_embedded_broker
    from edge.app.replay import format_summary, replay, replay_config
    from edge.sinks.mqtt import MqttSettings

    logging.getLogger("platewatch").setLevel(logging.INFO if args.verbose else logging.WARNING)
    video = Path(args.video) if args.video else demo_clip()
    cfg = replay_config(video, camera="demo", sample_every=args.sample_every,
                        realtime=True if args.realtime else None)  # fmt: skip
    cfg = apply_model_arguments(cfg, args)

    broker = None
    if args.mqtt:
        host, port = parse_host_port(args.mqtt)
    elif args.no_broker:
        host, port = None, None
    else:
        broker = start_embedded_broker(args.port)
        if broker is None:
            host, port = None, None
            print(
                "no MQTT broker available (amqtt not importable and no mosquitto binary): "
                "events go to stdout only",
                file=sys.stderr,
            )
        else:
            host, port = broker.host, broker.port
            print(f"embedded MQTT broker ({broker.kind}) on {host}:{port}", file=sys.stderr)
    update: dict[str, object] = {"sinks": cfg.sinks.model_copy(update={"stdout": True})}
    if host is not None and port is not None:
        spool = Path(tempfile.mkdtemp(prefix="platewatch-demo-spool-"))
        update["mqtt"] = MqttSettings(host=host, port=port, spool_dir=spool)
        print(f"subscribe: mosquitto_sub -h {host} -p {port} -t 'platewatch/#' -v", file=sys.stderr)
    cfg = cfg.model_copy(update=update)
    print(f"replaying {video}" + (" in real time" if args.realtime else ""), file=sys.stderr)
    try:
        result = replay(cfg, annotate=args.annotate, progress=not args.no_progress)
        for line in format_summary(result):
            print(line, file=sys.stderr)
        if broker is not None and args.hold:
            print(
                f"broker still running on {broker.host}:{broker.port} "
                "(retained: platewatch/demo/plate, platewatch/status); Ctrl-C to quit",
                file=sys.stderr,
            )
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    finally:
        if broker is not None:
            broker.stop()
    return 130 if result.interrupted else 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from edge.detect.models import add_model_arguments

    p = subparsers.add_parser(
        "demo",
        help="run the sample clip with the shipped models; events to stdout and MQTT",
        description="The whole pipeline with no setup: the sample clip, the shipped models, "
        "events on stdout and on an embedded MQTT broker (or --mqtt HOST:PORT).",
    )
    p.add_argument(
        "--video",
        default=None,
        metavar="FILE",
        help=f"clip to use instead of {DEMO_CLIP}",
    )
    p.add_argument(
        "--mqtt",
        default=None,
        metavar="HOST:PORT",
        help="publish to this broker instead of an embedded one",
    )
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help="embedded broker port (default 1883 if free, else any free port)",
    )
    p.add_argument("--no-broker", action="store_true", help="stdout only, no MQTT")
    p.add_argument(
        "--realtime", action="store_true", help="play at the clip's frame rate (like a live camera)"
    )
    p.add_argument(
        "--hold",
        action="store_true",
        help="keep the embedded broker running after the clip until Ctrl-C",
    )
    p.add_argument(
        "--sample-every",
        type=int,
        default=2,
        metavar="N",
        help="analyse every Nth frame (default 2)",
    )
    p.add_argument("--annotate", default=None, metavar="OUT.mp4", help="annotated video")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_model_arguments(p)
    p.set_defaults(func=_run)
    return p


__all__ = ["DEMO_CLIP", "add_parser", "demo_clip"]
