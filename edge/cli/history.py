"""``platewatch history``: search the event history, export CSV, save crops, prune.

    platewatch history search --plate AB123CD [--camera gate] [--device DEV]
                              [--since 2025-05-01T00:00Z|24h] [--until ISO] [--watchlist NAME|*]
                              [--exact] [--max-distance 1] [--limit 100] [--db PATH|URL]
                              [--csv OUT|-] [--json]
    platewatch history cameras [--db PATH|URL]
    platewatch history crop EVENT_ID --out crop.jpg [--db PATH|URL] [--crop-dir DIR]
    platewatch history prune [--retention-days N] [--max-rows N] [--max-mb N] [--db PATH]

``--db`` is a device's SQLite file or the centre's ``postgresql://`` URL (the collector's
database; edge.history.backend): the same search, table, JSON and CSV on either. The store is
opened read-only for search/cameras/crop (safe while the runtime or the collector writes).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.history.backend import HistoryReader, open_history
from edge.history.store import HistoryRecord, HistoryStore, default_history_path, write_csv

_TABLE = [("last_seen", 24), ("device", 14), ("camera", 12), ("plate", 16), ("dist", 4),
          ("conf", 5), ("direction", 9), ("watchlist", 14), ("zones", 16)]  # fmt: skip


def _open(args: argparse.Namespace) -> HistoryReader:
    """The store ``--db`` names; ConnectionError/ValueError/FileNotFoundError say why not."""
    return open_history(args.db, crop_dir=getattr(args, "crop_dir", None))


def _table_row(r: HistoryRecord) -> list[str]:
    return [
        r.last_seen,
        r.device or "",
        r.camera,
        r.plate + (" #" if r.plate_hashed else ""),
        "" if r.distance is None else str(r.distance),
        f"{r.confidence:.2f}",
        r.direction or "",
        r.watchlist or "",
        ",".join(r.zones),
    ]


def _print_table(records: list[HistoryRecord]) -> None:
    print("  ".join(name.ljust(w) for name, w in _TABLE).rstrip())
    for r in records:
        cells = _table_row(r)
        print("  ".join(c.ljust(w) for c, (_, w) in zip(cells, _TABLE, strict=True)).rstrip())
    print(f"({len(records)} event{'s' if len(records) != 1 else ''})", file=sys.stderr)


def _search(args: argparse.Namespace) -> int:
    try:
        store = _open(args)
        try:
            records = store.search(
                plate=args.plate,
                fuzzy=not args.exact,
                max_distance=args.max_distance,
                camera=args.camera,
                since=args.since,
                until=args.until,
                watchlist=args.watchlist,
                limit=args.limit,
                device=args.device,
            )
        finally:
            store.close()
    except (ValueError, ConnectionError) as exc:
        print(f"platewatch history search: error: {exc}", file=sys.stderr)
        return 2
    if args.csv:
        if args.csv == "-":
            write_csv(records, sys.stdout)
        else:
            with open(args.csv, "w", newline="", encoding="utf-8") as f:
                n = write_csv(records, f)
            print(f"wrote {n} events to {args.csv}", file=sys.stderr)
    elif args.json:
        for r in records:
            print(json.dumps(r.to_dict()))
    else:
        _print_table(records)
    return 0


def _cameras(args: argparse.Namespace) -> int:
    try:
        store = _open(args)
        try:
            cams = store.cameras()
        finally:
            store.close()
    except (ValueError, ConnectionError) as exc:
        print(f"platewatch history cameras: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        for c in cams:
            print(json.dumps(c.to_dict()))
        return 0
    cols = [("device", 16), ("camera", 14), ("status", 8), ("online", 7), ("fps", 6),
            ("stats at", 24), ("last event", 24)]  # fmt: skip
    print("  ".join(n.ljust(w) for n, w in cols).rstrip())
    for c in cams:
        st = c.stats or {}
        online = "" if not st else ("yes" if st.get("online") else "no")
        fps = "" if st.get("fps_analysed") is None else f"{st['fps_analysed']:.1f}"
        cells = [c.device or "", c.camera or "", c.device_status or "", online, fps,
                 c.stats_ts or "", c.last_event_at or ""]  # fmt: skip
        print("  ".join(v.ljust(w) for v, (_, w) in zip(cells, cols, strict=True)).rstrip())
    return 0


def _crop(args: argparse.Namespace) -> int:
    try:
        store = _open(args)
    except (ValueError, ConnectionError) as exc:
        print(f"platewatch history crop: error: {exc}", file=sys.stderr)
        return 2
    try:
        data = store.get_crop(args.event_id)
    finally:
        store.close()
    if data is None:
        print(f"platewatch history crop: no crop stored for {args.event_id}", file=sys.stderr)
        return 1
    Path(args.out).write_bytes(data)
    print(f"wrote {len(data)} bytes to {args.out}", file=sys.stderr)
    return 0


def _prune(args: argparse.Namespace) -> int:
    from edge.central.config import is_database_url

    if is_database_url(args.db):
        print(
            "platewatch history prune: error: the central database is pruned by "
            "`platewatch collect` (database.retention_days / --retention-days)",
            file=sys.stderr,
        )
        return 2
    if not Path(args.db).is_file():
        raise FileNotFoundError(f"history database not found: {args.db}")
    with HistoryStore(
        args.db,
        retention_days=args.retention_days,
        crop_retention_days=args.crop_retention_days,
        max_rows=args.max_rows,
        max_mb=args.max_mb,
    ) as store:
        res = store.prune()
    print(
        f"deleted {res.rows_deleted} events and {res.crops_deleted} crops; "
        f"{res.size_bytes / 1e6:.1f} MB in use"
    )
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "history",
        help="search the event history (a device's SQLite or the centre's PostgreSQL), export CSV",
        description="Search and maintain the local history of final plate events.",
    )
    sub = parser.add_subparsers(
        dest="history_command",
        metavar="ACTION",
        required=True,
        help="search, cameras, crop or prune",
    )
    db_default = str(default_history_path())

    s = sub.add_parser(
        "search",
        help="find events by plate (fuzzy), camera, time, watchlist",
        description="Find final events by plate (fuzzy: O/0, I/1 and an edit distance), camera, "
        "time and watchlist; print a table, JSON lines or CSV.",
    )
    s.add_argument("--plate", help="plate to find (fuzzy); '*'/'?' make it a glob, e.g. AB*")
    s.add_argument("--exact", action="store_true", help="no fuzzy matching")
    s.add_argument("--max-distance", type=int, default=1, help="edit distance (default 1)")
    s.add_argument("--camera", help="only this camera")
    s.add_argument("--device", help="only this device's events")
    s.add_argument("--since", help="ISO 8601 time (UTC if no offset) or an age: 30m, 24h, 7d")
    s.add_argument("--until", help="ISO 8601 time (UTC if no offset) or an age")
    s.add_argument("--watchlist", help="only events that matched this list ('*': any list)")
    s.add_argument("--limit", type=int, default=100, help="at most this many events (100)")
    s.add_argument("--db", default=db_default, help="SQLite file or postgresql:// URL")
    out = s.add_mutually_exclusive_group()
    out.add_argument("--csv", metavar="OUT", help="write CSV to OUT ('-' for stdout)")
    out.add_argument("--json", action="store_true", help="one JSON object per line")
    s.set_defaults(func=_search)

    c = sub.add_parser(
        "crop",
        help="save the stored plate crop of an event",
        description="Write the plate crop stored with an event to a JPEG file.",
    )
    c.add_argument("event_id", help="the event's event_id")
    c.add_argument("--out", required=True, help="JPEG file to write")
    c.add_argument("--db", default=db_default, help="SQLite file or postgresql:// URL")
    c.add_argument("--crop-dir", help="the collector's crop directory (crops: files)")
    c.set_defaults(func=_crop)

    k = sub.add_parser(
        "cameras",
        help="every device and camera with its health (last stats) and last event",
        description="List the devices and cameras a store knows: the centre's database has "
        "each device's status and each camera's last stats; a device's file, its cameras.",
    )
    k.add_argument("--db", default=db_default, help="SQLite file or postgresql:// URL")
    k.add_argument("--json", action="store_true", help="one JSON object per line")
    k.set_defaults(func=_cameras)

    p = sub.add_parser(
        "prune",
        help="apply retention and size limits now",
        description="Delete old events and crops, and shrink the database to its limits, now "
        "(the runtime does it as it goes).",
    )
    p.add_argument("--retention-days", type=float, help="delete events older than this")
    p.add_argument("--crop-retention-days", type=float, help="delete crops older than this")
    p.add_argument("--max-rows", type=int, help="keep at most this many events")
    p.add_argument("--max-mb", type=float, help="keep the database under this size")
    p.add_argument("--db", default=db_default, help="history database")
    p.set_defaults(func=_prune)
    return parser
