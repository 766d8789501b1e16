"""``platewatch demo``: the whole product on shipped defaults, with no setup.

1. The sample clip ``samples/demo.mp4`` (synthetic plates the project renders itself; when the
   file is missing it is rendered with ``training.synth.video`` if that package is importable);
2. the shipped models (``models/``, or ``--models`` / ``$PLATEWATCH_MODELS``);
3. events printed on stdout AND published over MQTT: to ``--mqtt HOST:PORT`` when given, else to
   an embedded broker started here (amqtt in-process; a ``mosquitto`` binary as fall-back; with
   neither, stdout only, and the demo says so).

The MQTT spool of the demo lives in a temporary directory: a demo never leaves state behind and
never replays an older run's events.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from edge.config.schema import REPO_ROOT

log = logging.getLogger("platewatch.demo")

DEMO_CLIP = REPO_ROOT / "samples" / "demo.mp4"
# How the fallback renders the clip when samples/demo.mp4 is missing.
DEMO_RENDER = {"width": 1280, "height": 720, "fps": 25, "seconds": 12, "n_vehicles": 4, "seed": 7}


def ensure_demo_clip(path: Path = DEMO_CLIP) -> Path:
    """The demo clip, rendered first if missing. Raises FileNotFoundError with what to do."""
    if path.is_file():
        return path
    try:
        from training.synth.video import render_clip
    except ImportError as e:
        raise FileNotFoundError(
            f"demo clip {path} is missing and training.synth.video cannot render it ({e}); "
            "install the training extras (pip install 'platewatch[train]') or pass --video FILE"
        ) from e
    target = path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        probe = target.parent / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "platewatch"
        cache.mkdir(parents=True, exist_ok=True)
        target = cache / path.name
        if target.is_file():
            return target
    print(f"rendering the demo clip {target} (once) ...", file=sys.stderr)
    t0 = time.monotonic()
    render_clip(target, **DEMO_RENDER)  # type: ignore[arg-type]
    print(f"rendered in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    return target


def _run(args: argparse.Namespace) -> int:
    from edge.analysis.analyzer import EventOptions
    from edge.app.broker import start_embedded_broker
    from edge.app.pipeline import AlprEngine
    from edge.cli.replay import format_summary, mqtt_sink, parse_host_port, replay_file
    from edge.detect.alpr import Alpr
    from edge.detect.models import models_from_args
    from edge.sinks.base import Sink
    from edge.sinks.stdout import StdoutSink

    logging.getLogger("platewatch").setLevel(logging.INFO if args.verbose else logging.WARNING)
    video = Path(args.video) if args.video else ensure_demo_clip()
    det, rd = models_from_args(args)  # FileNotFoundError -> one clear line from edge.cli
    engine = AlprEngine(Alpr(det, rd))

    broker = None
    sinks: list[Sink] = [StdoutSink()]
    spool = Path(tempfile.mkdtemp(prefix="platewatch-demo-spool-"))
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
    if host is not None and port is not None:
        sinks.append(mqtt_sink(host, port, spool))
        print(f"subscribe: mosquitto_sub -h {host} -p {port} -t 'platewatch/#' -v", file=sys.stderr)
    print(f"replaying {video}" + (" in real time" if args.realtime else ""), file=sys.stderr)
    try:
        result = replay_file(
            video,
            engine,
            sinks,
            camera="demo",
            sample_every=args.sample_every,
            realtime=args.realtime,
            annotate=args.annotate,
            events=EventOptions(crop=True),
            progress=not args.no_progress,
        )
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
        help=f"clip to use instead of {DEMO_CLIP.relative_to(REPO_ROOT)}",
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


__all__ = ["DEMO_CLIP", "add_parser", "ensure_demo_clip"]
