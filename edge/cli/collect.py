"""``platewatch collect``: the central collector, every device's events into PostgreSQL.

    platewatch collect --db postgresql://USER:PASSWORD@HOST/DBNAME [--mqtt HOST:PORT]
                       [--config collector.yaml] [--topic-prefix platewatch]
                       [--client-id platewatch-collector] [--batch-size 200] [--max-wait 0.2]
                       [--crops database|files|none] [--crop-dir DIR] [--retention-days 365]
                       [--username U --password P] [--tls --tls-ca-certs CA] [--migrate-only]

Subscribes with a persistent session (QoS 1, clean session off, fixed client id) to the
central broker every device's bridge forwards to, applies the schema migrations on start and
writes events, alerts, camera stats and crops in batches, acknowledging each message only once
its transaction has committed (edge.central.collector). Options override the YAML file; the
password may come from ``$MQTT_PASSWORD`` and the database URL from ``$PLATEWATCH_DB``.

Exit codes: 0 after SIGINT/SIGTERM (what it held was committed and acknowledged first), 2 for a
bad configuration or URL, 1 when the work failed (migrations, a database that refuses the
collector's credentials, a writer that stopped).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from typing import Any

from edge.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE

log = logging.getLogger("platewatch.collect")


def build_config(args: argparse.Namespace) -> Any:
    """The CollectorConfig of the YAML file (if any) with the command's options on top;
    raises ConfigError / ValidationError / argparse.ArgumentTypeError."""
    from edge.central.config import CollectorConfig
    from edge.cli.common import parse_host_port
    from edge.config.loader import load_settings

    data: dict[str, Any] = {}
    if args.config:
        base = load_settings(args.config, CollectorConfig, empty_hint="need 'database:'")
        data = base.model_dump(exclude_unset=True, mode="python")
        if base.mqtt.password is not None:
            data.setdefault("mqtt", {})["password"] = base.mqtt.password.get_secret_value()
    db = dict(data.get("database") or {})
    mq = dict(data.get("mqtt") or {})
    url = args.db or os.environ.get("PLATEWATCH_DB")
    if url:
        db["url"] = url
    for key, value in (
        ("crops", args.crops),
        ("crop_dir", args.crop_dir),
        ("retention_days", args.retention_days),
    ):
        if value is not None:
            db[key] = value
    if args.mqtt:
        mq["host"], mq["port"] = parse_host_port(args.mqtt)
    password = args.password if args.password is not None else os.environ.get("MQTT_PASSWORD")
    for key, value in (
        ("topic_prefix", args.topic_prefix),
        ("client_id", args.client_id),
        ("username", args.username),
        ("password", password),
        ("protocol", args.protocol),
    ):
        if value is not None:
            mq[key] = value
    if args.tls or args.tls_ca_certs:
        mq["tls"] = {"ca": args.tls_ca_certs, "insecure": args.tls_insecure}
    for key, value in (("batch_size", args.batch_size), ("max_wait_s", args.max_wait)):
        if value is not None:
            data[key] = value
    if "url" not in db:
        raise ValueError(
            "database.url: no database given: --db postgresql://USER:PASSWORD@HOST/DBNAME "
            "(or $PLATEWATCH_DB, or database.url in --config)"
        )
    data["database"], data["mqtt"] = db, mq
    return CollectorConfig.model_validate(data)


def _run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from edge.app.logs import setup_logging
    from edge.app.pipeline import install_signal_handlers
    from edge.central.collector import Collector, is_fatal_connect_error
    from edge.central.config import redact_url
    from edge.central.migrate import MigrationError
    from edge.cli.common import print_config_error
    from edge.config.loader import ConfigError

    setup_logging(logging.DEBUG if getattr(args, "verbose", False) else logging.INFO)
    from edge.central import require_psycopg

    require_psycopg()  # an ImportError: edge.cli prints it as one line, exit 2
    try:
        cfg = build_config(args)
    except ConfigError as exc:
        print_config_error(exc, args.config, hint=False)
        return EXIT_USAGE
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            print(f"platewatch collect: error: {loc}: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, argparse.ArgumentTypeError) as exc:
        print(f"platewatch collect: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    collector = Collector(cfg)
    where = redact_url(cfg.database.url)
    # The schema first: nothing is subscribed (nor acknowledged) before the tables exist. A
    # database that is down at start is waited for like one that goes down later.
    import psycopg

    stop = threading.Event()
    restore = install_signal_handlers(stop.set)
    delay = cfg.retry_min_s
    while True:
        try:
            collector.prepare_database()
            break
        except MigrationError as exc:
            print(f"platewatch collect: error: migrations: {exc}", file=sys.stderr)
            return EXIT_FAILED
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            if is_fatal_connect_error(exc):
                print(f"platewatch collect: error: database {where}: {first}", file=sys.stderr)
                return EXIT_FAILED
            log.error("database %s not reachable (%s); retrying in %.1f s", where, first, delay)
            if stop.wait(delay):
                return EXIT_OK
            delay = min(delay * 2, cfg.retry_max_s)
    if args.migrate_only:
        print(f"database {where} is up to date", file=sys.stderr)
        return EXIT_OK
    collector.start()
    log.info(
        "collecting %s/# from %s:%s into %s (batch %d, max wait %.2f s, crops %s)",
        cfg.mqtt.topic_prefix,
        cfg.mqtt.host,
        cfg.mqtt.port,
        where,
        cfg.batch_size,
        cfg.max_wait_s,
        cfg.database.crops,
    )
    try:
        while not stop.wait(1.0):
            if collector.wait(0):
                break  # the writer stopped by itself: a fatal error
    finally:
        restore()
        collector.stop()
    c = collector.counters
    log.info(
        "collector stopped: %d received, %d committed, %d acknowledged, %d rejected",
        c.received,
        c.committed,
        c.acked,
        c.rejected,
    )
    if collector.error is not None:
        print(f"platewatch collect: error: {collector.error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "collect",
        help="central collector: every device's events, alerts and stats into PostgreSQL",
        description="Subscribe to the central broker (persistent session, QoS 1) and store "
        "every device's events, alerts, camera stats and crops in PostgreSQL, acknowledging a "
        "message only after its transaction commits. See docs/central.md.",
    )
    p.add_argument("--config", metavar="YAML", help="collector configuration file")
    p.add_argument(
        "--db",
        metavar="URL",
        help="postgresql://USER:PASSWORD@HOST:5432/DBNAME (or env PLATEWATCH_DB)",
    )
    p.add_argument("--mqtt", metavar="HOST:PORT", help="central broker (default localhost:1883)")
    p.add_argument("--topic-prefix", help="topic prefix (default platewatch)")
    p.add_argument(
        "--client-id", help="MQTT client id of the persistent session (platewatch-collector)"
    )
    p.add_argument("--batch-size", type=int, help="rows per transaction at most (default 200)")
    p.add_argument(
        "--max-wait", type=float, metavar="S", help="write a batch at the latest after (0.2 s)"
    )
    p.add_argument("--crops", choices=["database", "files", "none"], help="where crops go")
    p.add_argument("--crop-dir", metavar="DIR", help="crop files' root (--crops files)")
    p.add_argument(
        "--retention-days", type=float, help="delete events older than this (default 365)"
    )
    p.add_argument("--protocol", choices=["3.1.1", "5"], help="MQTT protocol (default 3.1.1)")
    p.add_argument("--username", help="broker user name")
    p.add_argument("--password", help="broker password (or env MQTT_PASSWORD, kept out of `ps`)")
    p.add_argument("--tls", action="store_true", help="TLS with the system CAs")
    p.add_argument("--tls-ca-certs", metavar="PEM", help="CA bundle that signed the broker")
    p.add_argument("--tls-insecure", action="store_true", help="skip host name verification")
    p.add_argument(
        "--migrate-only", action="store_true", help="apply the schema migrations and exit"
    )
    p.set_defaults(func=_run)
    return p
