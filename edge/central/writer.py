"""One batch of rows -> one PostgreSQL transaction; crops in the database or in files;
retention.

Query layer: psycopg 3, plain SQL. Why not SQLAlchemy Core: the writes that matter here are
PostgreSQL's own (``INSERT ... ON CONFLICT ... DO UPDATE ... WHERE``, ``bytea`` with
``STORAGE EXTERNAL``, ``pg_trgm``), which Core would only pass through as dialect extras, and
the schema already lives in plain SQL migration files (edge.central.migrate) a DBA can read.
psycopg 3 gives the rest directly: ``executemany`` in pipeline mode (a batch is one round
trip, not one per row), automatic prepared statements, binary ``bytea``, timezone-aware
timestamps, and it is one small dependency. The device-side SQLite history keeps the standard
library's sqlite3; both stores answer one search interface (edge.history.backend).

Idempotence: events are upserted on ``track_key`` (one row per vehicle track) and change only
when the incoming message is another one (``event_id`` differs) and not a provisional arriving
after its final, so a redelivered message is a no-op and a final replaces its provisional.
Alerts and stats are keyed by event id and (device, camera, ts) and never rewritten.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from edge.central.rows import EventRow, Merged

log = logging.getLogger(__name__)

CropMode = Literal["database", "files", "none"]

_EVENT_COLS = [
    "event_id", "track_key", "track_uuid", "schema_version", "type", "device", "camera",
    "track_id", "plate", "plate_fold", "plate_len", "plate_hashed", "confidence",
    "char_confidences", "candidates", "region", "format", "first_seen", "last_seen",
    "first_frame", "last_frame", "video_time_s", "vehicle_box", "plate_box", "direction",
    "zones", "watchlist", "watchlist_kind", "watchlist_entry", "watchlist_distance",
    "watchlist_description", "has_crop", "crop_path", "received_at",
]  # fmt: skip
_UPDATED = [c for c in _EVENT_COLS if c != "track_key"]

UPSERT_EVENT = (
    f"INSERT INTO events ({', '.join(_EVENT_COLS)}) "
    f"VALUES ({', '.join(f'%({c})s' for c in _EVENT_COLS)}) "
    "ON CONFLICT (track_key) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _UPDATED)
    + ", stored_at = now() "
    "WHERE events.event_id <> EXCLUDED.event_id "
    "AND NOT (events.type = 'final' AND EXCLUDED.type = 'provisional')"
)
# Only the message the events row now holds may bring its crop (a late provisional may not).
UPSERT_CROP = (
    "INSERT INTO crops (event_row, event_id, jpeg) "
    "SELECT id, event_id, %(jpeg)s FROM events WHERE event_id = %(event_id)s "
    "ON CONFLICT (event_row) DO UPDATE SET event_id = EXCLUDED.event_id, jpeg = EXCLUDED.jpeg "
    "WHERE crops.event_id <> EXCLUDED.event_id"
)
# A final without a crop replacing a provisional with one: the old crop is not the final's.
DROP_STALE_CROPS = (
    "DELETE FROM crops c USING events e WHERE c.event_row = e.id "
    "AND e.event_id = ANY(%s::uuid[]) AND c.event_id <> e.event_id"
)
INSERT_ALERT = (
    "INSERT INTO alerts (event_id, device, camera, plate, plate_hashed, watchlist, kind, entry, "
    "distance, description, last_seen, received_at) VALUES (%(event_id)s, %(device)s, "
    "%(camera)s, %(plate)s, %(plate_hashed)s, %(watchlist)s, %(kind)s, %(entry)s, %(distance)s, "
    "%(description)s, %(last_seen)s, %(received_at)s) ON CONFLICT (event_id) DO NOTHING"
)
_STATS_COLS = [
    "device", "camera", "ts", "online", "fps_in", "fps_analysed", "frames_dropped",
    "frames_corrupt", "latency_ms_p50", "latency_ms_p95", "reconnects", "queue_depth",
    "last_error", "received_at",
]  # fmt: skip
INSERT_STATS = (
    f"INSERT INTO camera_stats ({', '.join(_STATS_COLS)}) "
    f"VALUES ({', '.join(f'%({c})s' for c in _STATS_COLS)}) ON CONFLICT DO NOTHING"
)
TOUCH_DEVICE = (
    "INSERT INTO devices (device) VALUES (%s) "
    "ON CONFLICT (device) DO UPDATE SET last_message_at = now()"
)
_CAMERA_STATS = [c for c in _STATS_COLS if c not in ("device", "camera", "ts", "received_at")]
UPSERT_CAMERA_STATS = (
    f"INSERT INTO cameras (device, camera, stats_ts, {', '.join(_CAMERA_STATS)}) "
    f"VALUES (%(device)s, %(camera)s, %(ts)s, {', '.join(f'%({c})s' for c in _CAMERA_STATS)}) "
    "ON CONFLICT (device, camera) DO UPDATE SET stats_ts = EXCLUDED.stats_ts, "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _CAMERA_STATS)
    + " WHERE cameras.stats_ts IS NULL OR cameras.stats_ts < EXCLUDED.stats_ts"
)
UPSERT_CAMERA_EVENT = (
    "INSERT INTO cameras (device, camera, last_event_at) VALUES (%s, %s, %s) "
    "ON CONFLICT (device, camera) DO UPDATE SET last_event_at = "
    "GREATEST(cameras.last_event_at, EXCLUDED.last_event_at)"
)
SET_STATUS = "UPDATE devices SET status = %s, status_at = %s WHERE device = %s"
INSERT_REJECTED = (
    "INSERT INTO rejected_messages (topic, payload, error, received_at) VALUES (%s, %s, %s, %s)"
)


class CropFiles:
    """Crops as files: ``<root>/<device>/<YYYY-MM-DD>/<event_id>.jpg`` (the day of last_seen,
    UTC), written atomically and fsync'd before the transaction that names them commits. A
    provisional's file stays beside its final's until retention removes the day."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def relative_path(row: EventRow) -> str:
        day = row.params["last_seen"].astimezone(timezone.utc).strftime("%Y-%m-%d")
        return f"{row.device}/{day}/{row.event_id}.jpg"

    def write(self, rel: str, data: bytes) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".crop-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self, rel: str) -> bytes | None:
        path = (self.root / rel).resolve()
        if self.root.resolve() not in path.parents:
            return None  # a path from the database never leaves the crop directory
        try:
            return path.read_bytes()
        except OSError:
            return None

    def drop_days_before(self, cutoff: datetime) -> int:
        """Remove the day directories older than ``cutoff``; returns how many."""
        day = cutoff.astimezone(timezone.utc).strftime("%Y-%m-%d")
        removed = 0
        for device_dir in self.root.iterdir() if self.root.is_dir() else []:
            if not device_dir.is_dir():
                continue
            for d in device_dir.iterdir():
                if d.is_dir() and len(d.name) == 10 and d.name < day:
                    shutil.rmtree(d, ignore_errors=True)
                    removed += 1
        return removed


@dataclass
class WriteResult:
    events: int = 0  # event messages in the batch (after merging)
    alerts: int = 0
    stats: int = 0
    rejected: int = 0


def write_batch(
    conn: Any, merged: Merged, crops: CropMode = "database", files: CropFiles | None = None
) -> WriteResult:
    """Write one merged batch in one transaction (commits on return; raises on failure, with
    nothing of the batch stored except crop files, which the retry rewrites)."""
    from psycopg.types.json import Jsonb

    event_params: list[dict[str, Any]] = []
    crop_params: list[dict[str, Any]] = []
    for row in merged.events:
        params = dict(row.params)
        params["candidates"] = Jsonb(params["candidates"], dumps=lambda s: s)
        if row.crop is None or crops == "none":
            params["has_crop"] = False
        elif crops == "files":
            assert files is not None, "crops: files needs a CropFiles"
            rel = CropFiles.relative_path(row)
            files.write(rel, row.crop)
            params["crop_path"] = rel
        else:
            crop_params.append({"event_id": row.event_id, "jpeg": row.crop})
        event_params.append(params)

    with conn.transaction():
        with conn.cursor() as cur:
            if merged.devices:
                cur.executemany(TOUCH_DEVICE, [(d,) for d in sorted(merged.devices)])
            for status in merged.statuses.values():
                cur.execute(SET_STATUS, (status.status, status.received_at, status.device))
            if event_params:
                cur.executemany(UPSERT_EVENT, event_params)
            if crop_params:
                cur.executemany(UPSERT_CROP, crop_params)
            if crops == "database" and len(crop_params) < len(event_params):
                cur.execute(DROP_STALE_CROPS, ([r.event_id for r in merged.events],))
            if merged.alerts:
                cur.executemany(INSERT_ALERT, [a.params for a in merged.alerts])
            if merged.stats:
                cur.executemany(INSERT_STATS, [s.params for s in merged.stats])
                latest: dict[tuple[str, str], dict[str, Any]] = {}
                for st in merged.stats:
                    key = (st.device, st.camera)
                    if key not in latest or latest[key]["ts"] < st.params["ts"]:
                        latest[key] = st.params
                cur.executemany(UPSERT_CAMERA_STATS, [latest[k] for k in sorted(latest)])
            if merged.events:
                last: dict[tuple[str, str], datetime] = {}
                for ev in merged.events:
                    key = (ev.device, ev.params["camera"])
                    seen = ev.params["last_seen"]
                    last[key] = max(seen, last.get(key, seen))
                cur.executemany(UPSERT_CAMERA_EVENT, [(*k, last[k]) for k in sorted(last)])
            if merged.rejected:
                cur.executemany(
                    INSERT_REJECTED,
                    [(r.topic, r.payload, r.error, r.received_at) for r in merged.rejected],
                )
    return WriteResult(
        len(merged.events), len(merged.alerts), len(merged.stats), len(merged.rejected)
    )


@dataclass
class RetentionResult:
    events: int = 0
    alerts: int = 0
    stats: int = 0
    rejected: int = 0
    crop_days: int = 0


def _delete_older(conn: Any, table: str, column: str, cutoff: datetime, chunk: int) -> int:
    # In chunks: one huge DELETE would hold its locks and bloat the WAL in one go.
    key = "ctid"
    total = 0
    while True:
        with conn.transaction():
            cur = conn.execute(
                f"DELETE FROM {table} WHERE {key} IN "
                f"(SELECT {key} FROM {table} WHERE {column} < %s LIMIT %s)",
                (cutoff, chunk),
            )
            n = cur.rowcount or 0
        total += n
        if n < chunk:
            return total


def apply_retention(
    conn: Any,
    retention_days: float | None,
    stats_retention_days: float | None,
    files: CropFiles | None = None,
    now: datetime | None = None,
    chunk: int = 5000,
) -> RetentionResult:
    """Delete what is older than the retention periods (events by ``last_seen``, their crops
    with them; alerts; rejected messages; stats by ``ts``) and crop file days."""
    now = now or datetime.now(timezone.utc)
    res = RetentionResult()
    if retention_days is not None:
        cutoff = now - timedelta(days=retention_days)
        res.events = _delete_older(conn, "events", "last_seen", cutoff, chunk)
        res.alerts = _delete_older(conn, "alerts", "last_seen", cutoff, chunk)
        res.rejected = _delete_older(conn, "rejected_messages", "received_at", cutoff, chunk)
        if files is not None:
            res.crop_days = files.drop_days_before(cutoff)
    if stats_retention_days is not None:
        cutoff = now - timedelta(days=stats_retention_days)
        res.stats = _delete_older(conn, "camera_stats", "ts", cutoff, chunk)
    if res.events or res.alerts or res.stats or res.rejected or res.crop_days:
        log.info(
            "retention: deleted %d events, %d alerts, %d stats rows, %d rejected messages, "
            "%d crop day folders",
            res.events,
            res.alerts,
            res.stats,
            res.rejected,
            res.crop_days,
        )
    return res
