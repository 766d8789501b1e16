"""The central store read like a device's history: ``search``, ``get``, ``get_crop``,
``count`` and ``cameras`` on PostgreSQL (the reading interface of edge.history.backend).

Search semantics are those of edge.history.store, so one query gives the same rows on either
store: literal plates are compared on the O/0-I/1-folded text within ``max_distance`` edits,
ranked by distance, then newest first; ``*``/``?`` make a glob; a privacy key also finds the
query's keyed hash. The fuzzy prefilter is the same pigeonhole rule (a plate within distance d
keeps one of the query's d + 1 pieces intact), written as ``plate_fold LIKE '%piece%'`` so the
``pg_trgm`` GIN index (migration 002) answers it without reading every row; the banded
Levenshtein then runs on the few candidates in Python (edge.rules.watchlist.levenshtein, the
function the SQLite store uses). Pieces shorter than three characters (distance 2 on short
plates) have no trigram and fall back to a scan within the other filters.

One connection in autocommit, behind a lock (the dashboard's HTTP threads share it), reopened
after the server went away.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edge.central.config import check_database_url, redact_url
from edge.central.writer import CropFiles
from edge.events.schema import format_utc
from edge.history import query as Q
from edge.history.backend import CameraStatus
from edge.history.store import HistoryRecord, parse_time

log = logging.getLogger(__name__)

_SELECT = (
    "SELECT e.id, e.event_id::text, e.camera, e.plate, e.plate_hashed, e.confidence, "
    "e.first_seen, e.last_seen, e.track_id, e.track_uuid::text, e.region, e.format, "
    "e.direction, e.zones, e.watchlist, e.watchlist_kind, e.watchlist_entry, "
    "e.watchlist_distance, e.video_time_s, e.vehicle_box, e.plate_box, e.candidates, "
    "e.has_crop, e.device FROM events e"
)


def _record(row: tuple[Any, ...], distance: int | None = None) -> HistoryRecord:
    last_seen: datetime = row[7]
    return HistoryRecord(
        id=row[0],
        event_id=row[1],
        camera=row[2],
        plate=row[3],
        plate_hashed=bool(row[4]),
        confidence=float(row[5]),
        first_seen=format_utc(row[6]),
        last_seen=format_utc(last_seen),
        ts=last_seen.timestamp(),
        track_id=int(row[8]),
        track_uuid=row[9],
        region=row[10],
        format=row[11],
        direction=row[12],
        zones=list(row[13] or []),
        watchlist=row[14],
        watchlist_kind=row[15],
        watchlist_entry=row[16],
        watchlist_distance=row[17],
        video_time_s=row[18],
        vehicle_box=list(row[19]) if row[19] is not None else None,
        plate_box=list(row[20]) if row[20] is not None else None,
        candidates=list(row[21] or []),
        has_crop=bool(row[22]),
        distance=distance,
        device=row[23],
    )


def _at(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


# PostgreSQL's spelling of the shared search plan (edge.history.query); pieces are matched
# with LIKE so the pg_trgm index on the folded/clear plate serves the prefilter.
POSTGRES = Q.Dialect(
    mark="%s",
    ts="e.last_seen",
    not_hashed="NOT e.plate_hashed",
    hashed="e.plate_hashed",
    time_arg=lambda ts: _at(ts),
    glob=lambda pattern: ("e.plate LIKE %s", glob_to_like(pattern)),
    contains=lambda col, piece: (f"{col} LIKE %s", f"%{glob_to_like(piece)}%"),
)


def glob_to_like(pattern: str) -> str:
    """``AB*1?`` -> ``AB%1_`` (LIKE's own wildcards in the plate escaped first)."""
    out = []
    for ch in pattern:
        if ch in "%_\\":
            out.append("\\" + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)


class PgHistory:
    """Read-only history on the central PostgreSQL database (see the module docstring)."""

    def __init__(self, url: str, *, crop_dir: str | Path | None = None) -> None:
        self.url = check_database_url(url)
        self.files = CropFiles(Path(crop_dir)) if crop_dir is not None else None
        self._lock = threading.Lock()
        self._conn: Any = None
        with self._lock:
            self._connection()  # fail now (bad password, no server) rather than on first use

    def _connection(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(
                    self.url, autocommit=True, connect_timeout=5, application_name="platewatch"
                )
            except psycopg.OperationalError as exc:
                raise ConnectionError(
                    f"cannot open {redact_url(self.url)}: {str(exc).strip()}"
                ) from exc
        return self._conn

    def _query(self, sql: str, args: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with self._lock:
            for attempt in (1, 2):
                conn = self._connection()
                try:
                    return list(conn.execute(sql, args).fetchall())
                except psycopg.OperationalError:
                    # The server restarted since: one retry on a new connection.
                    self._conn = None
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    # ---------------------------------------------------------------- reading

    def count(self) -> int:
        """Final events stored."""
        return int(self._query("SELECT count(*) FROM events WHERE type = 'final'")[0][0])

    def get(self, event_id: str) -> HistoryRecord | None:
        if not _is_uuid(event_id):
            return None
        rows = self._query(_SELECT + " WHERE e.event_id = %s AND e.type = 'final'", (event_id,))
        return _record(rows[0]) if rows else None

    def get_crop(self, event_id: str) -> bytes | None:
        if not _is_uuid(event_id):
            return None
        rows = self._query(
            "SELECT c.jpeg, e.crop_path FROM events e LEFT JOIN crops c ON c.event_row = e.id "
            "WHERE e.event_id = %s",
            (event_id,),
        )
        if not rows:
            return None
        jpeg, path = rows[0]
        if jpeg is not None:
            return bytes(jpeg)
        if path is not None and self.files is not None:
            return self.files.read(path)
        return None

    def cameras(self) -> list[CameraStatus]:
        rows = self._query(
            "SELECT d.device, c.camera, d.status, d.status_at, c.stats_ts, c.online, c.fps_in, "
            "c.fps_analysed, c.frames_dropped, c.frames_corrupt, c.latency_ms_p50, "
            "c.latency_ms_p95, c.reconnects, c.queue_depth, c.last_error, c.last_event_at "
            "FROM devices d LEFT JOIN cameras c ON c.device = d.device "
            "ORDER BY d.device, c.camera NULLS FIRST"
        )
        out = []
        keys = ("online", "fps_in", "fps_analysed", "frames_dropped", "frames_corrupt",
                "latency_ms_p50", "latency_ms_p95", "reconnects", "queue_depth",
                "last_error")  # fmt: skip
        for r in rows:
            stats = dict(zip(keys, r[5:15], strict=True)) if r[4] is not None else None
            out.append(
                CameraStatus(
                    device=r[0],
                    camera=r[1],
                    device_status=r[2],
                    device_status_at=format_utc(r[3]) if r[3] else None,
                    stats=stats,
                    stats_ts=format_utc(r[4]) if r[4] else None,
                    last_event_at=format_utc(r[15]) if r[15] else None,
                )
            )
        return out

    def search(
        self,
        plate: str | None = None,
        fuzzy: bool = True,
        max_distance: int = 1,
        camera: str | None = None,
        since: str | datetime | float | None = None,
        until: str | datetime | float | None = None,
        watchlist: str | None = None,
        limit: int | None = 100,
        fold: bool = True,
        privacy_key: str | bytes | None = None,
        device: str | None = None,
    ) -> list[HistoryRecord]:
        """Events matching all given filters; with ``plate``, best match first, else newest
        first (edge.history.store.HistoryStore.search, same arguments)."""
        Q.check_args(max_distance, limit)
        where, args = Q.filters(
            POSTGRES, device=device, camera=camera, since=parse_time(since),
            until=parse_time(until), watchlist=watchlist,
        )  # fmt: skip
        # Finals only, as a device's history: a provisional row is a vehicle still in view (or
        # one whose final has not arrived yet); SQL users see those too.
        where.insert(0, "e.type = 'final'")
        order = " ORDER BY e.last_seen DESC, e.id DESC" + (f" LIMIT {int(limit)}" if limit else "")

        if plate is None:
            return [
                _record(r)
                for r in self._query(_SELECT + " WHERE " + " AND ".join(where) + order, args)
            ]

        pq = Q.plate_query(plate, privacy_key)
        if pq.glob:
            match, arg = POSTGRES.glob(pq.text)
            sql = _SELECT + " WHERE " + " AND ".join([*where, POSTGRES.not_hashed, match]) + order
            return [_record(r) for r in self._query(sql, [*args, arg])]

        probe, col = Q.probe_of(pq, fold)
        d = max_distance if fuzzy else 0
        scored: list[tuple[int, float, int]] = []  # (distance, -ts, id)
        if d == 0:
            cond = [POSTGRES.not_hashed, f"{col} = %s"]
            rows = self._query(
                "SELECT e.id, e.last_seen FROM events e WHERE " + " AND ".join(where + cond),
                [*args, probe],
            )
            scored = [(0, -ts.timestamp(), rid) for rid, ts in rows]
        else:
            cond, cargs = Q.fuzzy_conditions(POSTGRES, col, probe, d)
            rows = self._query(
                f"SELECT e.id, e.last_seen, {col} FROM events e WHERE "
                + " AND ".join(where + cond),
                [*args, *cargs],
            )
            scored = Q.rank(rows, probe, d)
        if pq.hashed is not None:
            rows = self._query(
                "SELECT e.id, e.last_seen FROM events e WHERE "
                + " AND ".join(where + [POSTGRES.hashed, "e.plate = %s"]),
                [*args, pq.hashed],
            )
            scored += [(0, -ts.timestamp(), rid) for rid, ts in rows]
        scored.sort()
        if limit is not None:
            scored = scored[:limit]
        if not scored:
            return []
        dist_by_id = {rid: dist for dist, _, rid in scored}
        ids = list(dist_by_id)
        fetched = {r[0]: r for r in self._query(_SELECT + " WHERE e.id = ANY(%s)", [ids])}
        return [_record(fetched[rid], dist_by_id[rid]) for rid in ids if rid in fetched]

    # ---------------------------------------------------------------- misc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except Exception:  # closing a broken connection: it is gone either way
                    log.debug("closing the history connection failed", exc_info=True)
                self._conn = None

    def __enter__(self) -> PgHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
