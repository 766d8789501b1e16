"""``platewatch dashboard``: serve the live web dashboard for a broker's platewatch topics.

    platewatch dashboard [--mqtt HOST:PORT] [--topic-prefix platewatch] [--history DB|URL]
                         [--host 127.0.0.1] [--port 8080] [--username U --password P]
                         [--tls] [--tls-ca-certs CA] [--tls-certfile C --tls-keyfile K]

The page subscribes to nothing itself: this process subscribes to the broker (any MQTT broker,
the runtime's topics of every device) and pushes changes to every open page over Server-Sent
Events. ``--history`` is a device's SQLite file or the centre's ``postgresql://`` URL (search,
crops, and at the centre every device and camera with its last stats: ``/api/devices``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

log = logging.getLogger("platewatch.dashboard")


def _run(args: argparse.Namespace) -> int:
    # Imports here: `platewatch --help` and other commands do not pay for paho/pydantic setup.
    from pydantic import ValidationError

    from edge.cli.common import parse_host_port
    from edge.dashboard.server import DashboardServer, DashboardState, MqttFeed
    from edge.sinks.mqtt import MqttSettings

    try:
        host, port = parse_host_port(args.mqtt)
    except argparse.ArgumentTypeError as exc:
        print(f"platewatch dashboard: error: --mqtt: {exc}", file=sys.stderr)
        return 2
    password = args.password if args.password is not None else os.environ.get("MQTT_PASSWORD")
    try:
        settings = MqttSettings.model_validate(
            {
                "host": host,
                "port": port,
                "topic_prefix": args.topic_prefix,
                "protocol": args.protocol,
                "username": args.username,
                "password": password,
                # the flat paho-style options; MqttSettings nests them into its ``tls``
                "tls": args.tls,
                "tls_ca_certs": args.tls_ca_certs,
                "tls_certfile": args.tls_certfile,
                "tls_keyfile": args.tls_keyfile,
                "tls_insecure": args.tls_insecure,
            }
        )
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            print(f"platewatch dashboard: error: {loc}: {err['msg']}", file=sys.stderr)
        return 2

    history = None
    if args.history:
        from edge.history.backend import open_history

        # Read-only: safe next to the runtime (WAL) or the collector writing the same store.
        try:
            history = open_history(args.history, crop_dir=args.crop_dir)
        except (ValueError, ConnectionError) as exc:
            print(f"platewatch dashboard: error: --history: {exc}", file=sys.stderr)
            return 2

    state = DashboardState(
        settings.topic_prefix,
        max_events=args.max_events,
        stale_after_s=args.stale_after,
        history_enabled=history is not None,
    )
    from edge.dashboard.security import ANY_INTERFACE, Access

    token = args.token or os.environ.get("PLATEWATCH_DASHBOARD_TOKEN") or None
    if args.host in ANY_INTERFACE:
        print(
            "platewatch dashboard: WARNING: serving on every network interface "
            f"({args.host or 'all'}): anyone who can reach this machine sees every plate"
            + ("" if token else "; set --token (or PLATEWATCH_DASHBOARD_TOKEN) to require one"),
            file=sys.stderr,
            flush=True,
        )
    access = Access.make(args.host, args.allowed_host, token)
    try:
        server = DashboardServer(state, args.host, args.port, history=history, access=access)
    except OSError as exc:
        print(
            f"platewatch dashboard: error: cannot listen on {args.host}:{args.port}: {exc}",
            file=sys.stderr,
        )
        return 2
    feed = MqttFeed(state, settings).start()
    print(
        f"platewatch dashboard on {server.url} (MQTT {host}:{port}, topics "
        f"{settings.topic_prefix}/...{', history ' + _shown(args.history) if history else ''})",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.stopping.set()
        server.httpd.server_close()
        feed.stop()
        if history is not None:
            history.close()
    return 0


def _shown(target: str) -> str:
    from edge.central.config import redact_url

    return redact_url(target)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "dashboard",
        help="live web dashboard: events with crops, alerts, camera health, history search",
        description="Serve a local web page showing the platewatch MQTT topics live "
        "(no internet needed: no CDN assets).",
    )
    p.add_argument(
        "--mqtt",
        default="localhost:1883",
        metavar="HOST:PORT",
        help="MQTT broker (default localhost:1883)",
    )
    p.add_argument(
        "--topic-prefix", default="platewatch", help="runtime topic prefix (default platewatch)"
    )
    p.add_argument(
        "--history",
        metavar="DB",
        default=None,
        help="history to enable search: a device's SQLite file, or the centre's "
        "postgresql://USER:PASSWORD@HOST/DBNAME (platewatch collect's database)",
    )
    p.add_argument(
        "--crop-dir",
        default=None,
        metavar="DIR",
        help="the collector's crop directory, when it stores crops as files",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to serve on (default 127.0.0.1; 0.0.0.0 exposes it)",
    )
    p.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name the page is reached by (besides localhost and the bound address); "
        "requests for other names are refused (DNS rebinding); repeatable",
    )
    p.add_argument(
        "--token",
        default=None,
        help="require this access token (or env PLATEWATCH_DASHBOARD_TOKEN, kept out of `ps`): "
        "open the page once as /?token=TOKEN, scripts send 'Authorization: Bearer TOKEN'",
    )
    p.add_argument(
        "--max-events", type=int, default=200, help="events kept in memory and shown (default 200)"
    )
    p.add_argument(
        "--stale-after",
        type=float,
        default=75.0,
        metavar="S",
        help="camera stats older than this show 'no data' (default 75 s)",
    )
    p.add_argument("--protocol", choices=["3.1.1", "5"], default="3.1.1", help="MQTT protocol")
    p.add_argument("--username", default=None, help="broker user name")
    p.add_argument(
        "--password", default=None, help="broker password (or env MQTT_PASSWORD, kept out of `ps`)"
    )
    p.add_argument("--tls", action="store_true", help="TLS with the system CAs")
    p.add_argument("--tls-ca-certs", default=None, metavar="PEM", help="CA bundle")
    p.add_argument("--tls-certfile", default=None, metavar="PEM", help="client certificate")
    p.add_argument("--tls-keyfile", default=None, metavar="PEM", help="client key")
    p.add_argument(
        "--tls-insecure", action="store_true", help="skip host name verification (testing only)"
    )
    p.set_defaults(func=_run)
    return p
