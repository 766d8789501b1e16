"""Local searchable history: every FINAL event and its best crop in one SQLite file (WAL).

Storage choice: crops are JPEG BLOBs in their own table (``crops``), not files on disk.
- One file to back up, move or delete; a row and its crop are written in one transaction, so
  there are never orphan files or rows pointing at missing files after a crash or a prune.
- Plate crops are small (5-15 kB at 256 px); SQLite reads and writes blobs of that size faster
  than the filesystem opens separate files, and retention is one DELETE instead of unlink loops.
- A separate table keeps the ``events`` rows narrow, so searches never page through image bytes.
- The file is created with ``auto_vacuum=INCREMENTAL`` so space freed by pruning is returned to
  the OS (``PRAGMA incremental_vacuum``) and the size bound holds on disk, not only logically.

Bounds, enforced on open, every ``prune_every`` adds and by ``prune()``: ``retention_days``
(rows, by last_seen), ``crop_retention_days`` (crops only: the row stays searchable),
``max_rows`` and ``max_mb`` (used database pages; oldest rows go first).

Fuzzy search: literal plates are compared on the normalised, O/0-I/1-folded text. SQL keeps only
rows whose length is within ``max_distance`` of the query and that contain at least one of the
query's ``max_distance + 1`` pieces (pigeonhole: each edit breaks at most one piece, so a plate
within the distance keeps one intact; no false negatives); the survivors get a banded Levenshtein
in Python. Ranking: distance, then newest first.

Thread-safe: one connection guarded by a lock (the runtime's event thread calls ``add``; other
threads may search). Other processes (``platewatch history``) open their own connection; WAL lets
them read while the runtime writes.
"""

from __future__ import annotations

import base64
import binascii
import csv
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pydantic import Field

if TYPE_CHECKING:
    from edge.history.backend import CameraStatus

from edge.events.schema import PlateEvent, format_utc
from edge.history import query as Q
from edge.rules.privacy import PrivacyConfig
from edge.rules.watchlist import fold_confusables, normalize_plate
from edge.settings import ConfigPath, Settings

log = logging.getLogger(__name__)

DAY_S = 86400.0
SCHEMA_VERSION = 2  # 2: events.device (added to version-1 files on open)

CSV_COLUMNS = [
    "event_id",
    "last_seen",
    "first_seen",
    "device",
    "camera",
    "plate",
    "plate_hashed",
    "distance",
    "confidence",
    "direction",
    "zones",
    "watchlist",
    "watchlist_kind",
    "watchlist_entry",
    "watchlist_distance",
    "region",
    "format",
    "track_id",
    "track_uuid",
    "has_crop",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    track_uuid TEXT,
    device TEXT,
    camera TEXT NOT NULL,
    track_id INTEGER NOT NULL,
    plate TEXT NOT NULL,
    plate_fold TEXT NOT NULL,
    plate_len INTEGER NOT NULL,
    plate_hashed INTEGER NOT NULL,
    confidence REAL NOT NULL,
    region TEXT,
    format TEXT,
    direction TEXT,
    zones TEXT NOT NULL,
    watchlist TEXT,
    watchlist_kind TEXT,
    watchlist_entry TEXT,
    watchlist_distance INTEGER,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    ts REAL NOT NULL,
    video_time_s REAL,
    vehicle_box TEXT,
    plate_box TEXT NOT NULL,
    candidates TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE INDEX IF NOT EXISTS events_camera_ts ON events (camera, ts);
CREATE INDEX IF NOT EXISTS events_plate_fold ON events (plate_fold);
CREATE INDEX IF NOT EXISTS events_watchlist_ts ON events (watchlist, ts);
CREATE TABLE IF NOT EXISTS crops (
    id INTEGER PRIMARY KEY,  -- = events.id
    ts REAL NOT NULL,
    jpeg BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS crops_ts ON crops (ts);
"""


def default_history_path() -> Path:
    """``$XDG_STATE_HOME/platewatch/history.sqlite3`` (``~/.local/state/...``), like the spool."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "platewatch" / "history.sqlite3"


class HistoryConfig(Settings):
    enabled: bool = Field(True, description="false: keep the section, store nothing")
    path: ConfigPath = Field(default_factory=default_history_path, description="SQLite file")
    max_rows: int | None = Field(1_000_000, ge=1, description="keep at most this many events")
    max_mb: float | None = Field(2048.0, gt=0, description="keep the database under this size")
    retention_days: float | None = Field(90.0, gt=0, description="delete events older than this")
    crop_retention_days: float | None = Field(
        None, gt=0, description="delete crops older than this (null: with their event)"
    )
    store_crops: bool = Field(True, description="store the best plate crop of each event")


def parse_time(value: str | datetime | float | None, now: float | None = None) -> float | None:
    """Seconds since the epoch from ISO 8601 (naive = UTC), a datetime, epoch seconds, or a
    relative age like ``30m``, ``12h``, ``7d`` (that long before ``now``)."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    text = value.strip()
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY_S, "w": 7 * DAY_S}
    if len(text) > 1 and text[-1].lower() in units:
        try:
            amount = float(text[:-1])
        except ValueError:
            pass
        else:
            return (time.time() if now is None else now) - amount * units[text[-1].lower()]
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ValueError(
            f"bad time {value!r}: use ISO 8601 (2025-05-01T12:00:00Z) or an age like 12h, 7d"
        ) from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


@dataclass
class HistoryRecord:
    """One stored final event (no crop bytes: ``HistoryStore.get_crop(event_id)``)."""

    id: int
    event_id: str
    camera: str
    plate: str
    plate_hashed: bool
    confidence: float
    first_seen: str
    last_seen: str
    ts: float
    track_id: int
    track_uuid: str | None = None
    region: str | None = None
    format: str | None = None
    direction: str | None = None
    zones: list[str] = field(default_factory=list)
    watchlist: str | None = None
    watchlist_kind: str | None = None
    watchlist_entry: str | None = None
    watchlist_distance: int | None = None
    video_time_s: float | None = None
    vehicle_box: list[int] | None = None
    plate_box: list[int] | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    has_crop: bool = False
    distance: int | None = None  # fuzzy search distance to the query (None: no plate query)
    device: str | None = None  # the producing device (None: events from before device ids)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def csv_row(self) -> list[Any]:
        d = self.to_dict()
        d["zones"] = ";".join(self.zones)
        d["plate_hashed"] = int(self.plate_hashed)
        d["has_crop"] = int(self.has_crop)
        return ["" if d[c] is None else d[c] for c in CSV_COLUMNS]


@dataclass(frozen=True)
class PruneResult:
    rows_deleted: int
    crops_deleted: int
    size_bytes: int


_SELECT = (
    "SELECT e.id, e.event_id, e.camera, e.plate, e.plate_hashed, e.confidence, e.first_seen, "
    "e.last_seen, e.ts, e.track_id, e.track_uuid, e.region, e.format, e.direction, e.zones, "
    "e.watchlist, e.watchlist_kind, e.watchlist_entry, e.watchlist_distance, e.video_time_s, "
    "e.vehicle_box, e.plate_box, e.candidates, "
    "EXISTS(SELECT 1 FROM crops c WHERE c.id = e.id) AS has_crop, e.device FROM events e"
)
# A version-1 file opened read-only (no ALTER possible) has no device column.
_SELECT_V1 = _SELECT.replace(", e.device FROM", ", NULL AS device FROM")


def _record(row: Sequence[Any], distance: int | None = None) -> HistoryRecord:
    return HistoryRecord(
        id=row[0],
        event_id=row[1],
        camera=row[2],
        plate=row[3],
        plate_hashed=bool(row[4]),
        confidence=row[5],
        first_seen=row[6],
        last_seen=row[7],
        ts=row[8],
        track_id=row[9],
        track_uuid=row[10],
        region=row[11],
        format=row[12],
        direction=row[13],
        zones=json.loads(row[14]),
        watchlist=row[15],
        watchlist_kind=row[16],
        watchlist_entry=row[17],
        watchlist_distance=row[18],
        video_time_s=row[19],
        vehicle_box=json.loads(row[20]) if row[20] else None,
        plate_box=json.loads(row[21]) if row[21] else None,
        candidates=json.loads(row[22]),
        has_crop=bool(row[23]),
        distance=distance,
        device=row[24],
    )


# SQLite's spelling of the shared search plan (edge.history.query)
SQLITE = Q.Dialect(
    mark="?",
    ts="e.ts",
    not_hashed="e.plate_hashed = 0",
    hashed="e.plate_hashed = 1",
    time_arg=float,
    glob=lambda pattern: ("e.plate GLOB ?", pattern),
    contains=lambda col, piece: (f"instr({col}, ?) > 0", piece),
)


class HistoryStore:
    """SQLite history of final events. See the module docstring for the storage and bounds."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_rows: int | None = None,
        max_mb: float | None = None,
        retention_days: float | None = None,
        crop_retention_days: float | None = None,
        store_crops: bool = True,
        prune_every: int = 200,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.max_rows = max_rows
        self.max_bytes = int(max_mb * 1024 * 1024) if max_mb is not None else None
        self.retention_days = retention_days
        self.crop_retention_days = crop_retention_days
        self.store_crops = store_crops
        self.prune_every = max(1, prune_every)
        self._lock = threading.Lock()
        self._adds_since_prune = 0
        if read_only:
            if not self.path.is_file():
                raise FileNotFoundError(
                    f"history database not found: {self.path} (`platewatch run` or `replay` "
                    "creates it when the configuration has a `history:` section; "
                    "examples/cameras.yaml writes runs/history.sqlite3)"
                )
            uri = f"file:{self.path.resolve()}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._has_device = self._device_column()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=10.0)
        # Must precede the first table; a no-op on an existing file created by this module.
        self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL: a power cut may lose the last commits but never corrupts the file.
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._db:
            self._db.executescript(_SCHEMA)
            if not self._device_column():  # a version-1 file
                self._db.execute("ALTER TABLE events ADD COLUMN device TEXT")
            self._db.execute(
                "CREATE INDEX IF NOT EXISTS events_device_camera_ts ON events (device, camera, ts)"
            )
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        self._has_device = True
        self.prune()

    def _device_column(self) -> bool:
        cols = {r[1] for r in self._db.execute("PRAGMA table_info(events)")}
        return "device" in cols

    @property
    def _select(self) -> str:
        return _SELECT if self._has_device else _SELECT_V1

    @classmethod
    def from_config(
        cls, config: HistoryConfig, privacy: PrivacyConfig | None = None
    ) -> HistoryStore:
        """Open per config; privacy retention periods (when enabled) tighten the history's own."""

        def tighter(a: float | None, b: float | None) -> float | None:
            return b if a is None else a if b is None else min(a, b)

        rows_days, crop_days = config.retention_days, config.crop_retention_days
        if privacy is not None and privacy.enabled:
            rows_days = tighter(rows_days, privacy.history_retention_days)
            crop_days = tighter(crop_days, privacy.crop_retention_days)
        return cls(
            config.path,
            max_rows=config.max_rows,
            max_mb=config.max_mb,
            retention_days=rows_days,
            crop_retention_days=crop_days,
            store_crops=config.store_crops,
        )

    # ---------------------------------------------------------------------------- writing

    def add(self, event: PlateEvent, crop_jpeg: bytes | None = None) -> bool:
        """Store a FINAL event (and its crop); False for provisional events and duplicates.

        ``crop_jpeg`` defaults to the event's own ``crop_jpeg_b64``. Hashed (privacy) events are
        stored without a crop: the image would show the plate the hash hides.
        """
        if event.type != "final":
            return False
        if crop_jpeg is None and event.crop_jpeg_b64:
            try:
                crop_jpeg = base64.b64decode(event.crop_jpeg_b64, validate=True)
            except (binascii.Error, ValueError):
                log.warning(
                    "event %s: crop_jpeg_b64 is not base64; stored without crop", event.event_id
                )
        if event.plate_hashed or not self.store_crops:
            crop_jpeg = None
        plate = event.plate if event.plate_hashed else normalize_plate(event.plate) or event.plate
        fold = plate if event.plate_hashed else fold_confusables(plate)
        wl = event.watchlist
        ts = event.last_seen.timestamp()
        row = (
            event.event_id,
            event.track_uuid,
            event.device,
            event.camera,
            event.track_id,
            plate,
            fold,
            len(fold),
            int(event.plate_hashed),
            event.confidence,
            event.region,
            event.format,
            event.direction,
            json.dumps(event.zones),
            wl.name if wl else None,
            wl.kind if wl else None,
            wl.entry if wl else None,
            wl.distance if wl else None,
            format_utc(event.first_seen),
            format_utc(event.last_seen),
            ts,
            event.video_time_s,
            json.dumps(event.vehicle_box) if event.vehicle_box is not None else None,
            json.dumps(event.plate_box),
            json.dumps([c.model_dump() for c in event.candidates]),
        )
        with self._lock:
            with self._db:
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO events (event_id, track_uuid, device, camera, track_id, "
                    "plate, "
                    "plate_fold, plate_len, plate_hashed, confidence, region, format, direction, "
                    "zones, watchlist, watchlist_kind, watchlist_entry, watchlist_distance, "
                    "first_seen, last_seen, ts, video_time_s, vehicle_box, plate_box, candidates) "
                    "VALUES (" + ",".join("?" * 25) + ")",
                    row,
                )
                if cur.rowcount == 0:
                    return False
                if crop_jpeg:
                    self._db.execute(
                        "INSERT INTO crops (id, ts, jpeg) VALUES (?, ?, ?)",
                        (cur.lastrowid, ts, sqlite3.Binary(crop_jpeg)),
                    )
            self._adds_since_prune += 1
            due = self._adds_since_prune >= self.prune_every
        if due:
            self.prune()
        return True

    def size_bytes(self) -> int:
        """Bytes of database pages in use (excludes free pages awaiting incremental vacuum)."""
        with self._lock:
            return self._size_locked()

    def _size_locked(self) -> int:
        page_size = self._db.execute("PRAGMA page_size").fetchone()[0]
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * page_size)

    def _delete_oldest_locked(self, n: int) -> int:
        ids = "SELECT id FROM events ORDER BY ts, id LIMIT ?"
        with self._db:
            self._db.execute(f"DELETE FROM crops WHERE id IN ({ids})", (n,))
            return self._db.execute(f"DELETE FROM events WHERE id IN ({ids})", (n,)).rowcount

    def prune(self, now: float | None = None) -> PruneResult:
        """Apply retention (by age) and size bounds now; ``now`` in epoch seconds for tests."""
        now = time.time() if now is None else now
        rows = crops = 0
        with self._lock:
            self._adds_since_prune = 0
            with self._db:
                if self.retention_days is not None:
                    cutoff = now - self.retention_days * DAY_S
                    crops += self._db.execute(
                        "DELETE FROM crops WHERE id IN (SELECT id FROM events WHERE ts < ?)",
                        (cutoff,),
                    ).rowcount
                    rows += self._db.execute("DELETE FROM events WHERE ts < ?", (cutoff,)).rowcount
                if self.crop_retention_days is not None:
                    cutoff = now - self.crop_retention_days * DAY_S
                    crops += self._db.execute("DELETE FROM crops WHERE ts < ?", (cutoff,)).rowcount
            if self.max_rows is not None:
                count = self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
                if count > self.max_rows:
                    rows += self._delete_oldest_locked(count - self.max_rows)
            if self.max_bytes is not None:
                # Delete in estimated chunks down to 90% of the cap (hysteresis: not every add).
                for _ in range(20):
                    size = self._size_locked()
                    if size <= self.max_bytes:
                        break
                    count = self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
                    if count == 0:
                        break
                    per_row = max(1.0, size / count)
                    n = max(1, int((size - 0.9 * self.max_bytes) / per_row) + 1)
                    rows += self._delete_oldest_locked(min(n, count))
            if rows or crops:
                self._db.execute("PRAGMA incremental_vacuum").fetchall()
            size = self._size_locked()
        if rows or crops:
            log.info("history: pruned %d events and %d crops (%d bytes in use)", rows, crops, size)
        return PruneResult(rows, crops, size)

    # ---------------------------------------------------------------------------- reading

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def crop_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM crops").fetchone()[0])

    def cameras(self) -> list[CameraStatus]:
        """Every (device, camera) with events here and its latest event's time (a device's
        history keeps no stats: those are live, on MQTT)."""
        from edge.history.backend import CameraStatus

        dev = "e.device" if self._has_device else "NULL"
        with self._lock:
            rows = self._db.execute(
                f"SELECT {dev}, e.camera, MAX(e.ts) FROM events e GROUP BY {dev}, e.camera "
                "ORDER BY 1, 2"
            ).fetchall()
        return [
            CameraStatus(
                device=d,
                camera=c,
                last_event_at=format_utc(datetime.fromtimestamp(ts, tz=timezone.utc)),
            )
            for d, c, ts in rows
        ]

    def get_crop(self, event_id: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT c.jpeg FROM crops c JOIN events e ON e.id = c.id WHERE e.event_id = ?",
                (event_id,),
            ).fetchone()
        return bytes(row[0]) if row else None

    def get(self, event_id: str) -> HistoryRecord | None:
        with self._lock:
            row = self._db.execute(self._select + " WHERE e.event_id = ?", (event_id,)).fetchone()
        return _record(row) if row else None

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
        """Events matching all given filters; with ``plate``, best match first, else newest first.

        ``plate``: literal (fuzzy within ``max_distance`` when ``fuzzy``; compared O/0-I/1-folded
        when ``fold``) or a glob with ``*``/``?`` (``AB*``). ``since``/``until``: ISO 8601,
        epoch seconds, datetime or an age (``12h``). ``watchlist``: list name, or ``*`` for any
        match. ``privacy_key``: also find events stored as the query's keyed hash. ``device``:
        only that device's events.
        """
        Q.check_args(max_distance, limit)
        where, args = Q.filters(
            SQLITE, device=device, camera=camera, since=parse_time(since),
            until=parse_time(until), watchlist=watchlist, has_device=self._has_device,
        )  # fmt: skip
        order = " ORDER BY e.ts DESC, e.id DESC" + (f" LIMIT {int(limit)}" if limit else "")

        if plate is None:
            sql = self._select + (" WHERE " + " AND ".join(where) if where else "") + order
            with self._lock:
                return [_record(r) for r in self._db.execute(sql, args)]

        pq = Q.plate_query(plate, privacy_key)
        if pq.glob:
            match, arg = SQLITE.glob(pq.text)
            sql = self._select + " WHERE " + " AND ".join([*where, SQLITE.not_hashed, match])
            with self._lock:
                return [_record(r, None) for r in self._db.execute(sql + order, [*args, arg])]

        probe, col = Q.probe_of(pq, fold)
        d = max_distance if fuzzy else 0
        scored: list[tuple[int, float, int]] = []  # (distance, -ts, id)
        with self._lock:
            if d == 0:
                cond = [SQLITE.not_hashed, f"{col} = ?"]
                rows = self._db.execute(
                    "SELECT e.id, e.ts FROM events e WHERE " + " AND ".join(where + cond),
                    [*args, probe],
                ).fetchall()
                scored = [(0, -ts, rid) for rid, ts in rows]
            else:
                cond, cargs = Q.fuzzy_conditions(SQLITE, col, probe, d)
                rows = self._db.execute(
                    f"SELECT e.id, e.ts, {col} FROM events e WHERE " + " AND ".join(where + cond),
                    [*args, *cargs],
                ).fetchall()
                scored = Q.rank(rows, probe, d)
            if pq.hashed is not None:
                rows = self._db.execute(
                    "SELECT e.id, e.ts FROM events e WHERE "
                    + " AND ".join(where + [SQLITE.hashed, "e.plate = ?"]),
                    [*args, pq.hashed],
                ).fetchall()
                scored += [(0, -ts, rid) for rid, ts in rows]
            scored.sort()
            if limit is not None:
                scored = scored[:limit]
            if not scored:
                return []
            dist_by_id = {rid: dist for dist, _, rid in scored}
            ids = list(dist_by_id)
            fetched: dict[int, Sequence[Any]] = {}
            for i in range(0, len(ids), 500):  # SQLite's bound-parameter limit
                chunk = ids[i : i + 500]
                q = self._select + f" WHERE e.id IN ({','.join('?' * len(chunk))})"
                for r in self._db.execute(q, chunk):
                    fetched[r[0]] = r
        return [_record(fetched[rid], dist_by_id[rid]) for rid in ids if rid in fetched]

    # ---------------------------------------------------------------------------- misc

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error:
                log.exception("history: closing %s failed", self.path)

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_csv(records: Iterable[HistoryRecord], out: TextIO) -> int:
    """Write records as CSV with ``CSV_COLUMNS`` (header first); returns the row count."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    n = 0
    for rec in records:
        writer.writerow(rec.csv_row())
        n += 1
    return n
