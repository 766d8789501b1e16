"""Disk-backed FIFO of outgoing MQTT messages (store-and-forward).

Every event is appended here *before* it is handed to the network; a row is deleted only when the
broker acknowledges it (PUBACK). A crash, a broker outage or a restart therefore loses nothing:
the next ``MqttSink`` on the same directory sends what is left, oldest first.

SQLite in WAL mode with ``synchronous=FULL``: each append is one fsync'd transaction (events are
a few per vehicle, so the cost is irrelevant), and a half-written row can never be read back.
Rows carry a monotonically increasing ``seq`` (AUTOINCREMENT never reuses ids), which is the
delivery order.

Damage never blocks a restart. Each row carries a CRC32 of its topic and payload: a row that no
longer matches (a disk error, a copied-over file) is moved to the ``quarantine`` table, counted
(``damaged``) and logged, and the rest is sent. A file SQLite cannot open or that fails its
``quick_check`` is renamed aside (``spool.sqlite3.damaged-<time>``) after every row that can
still be read was copied into a fresh spool.

Bounds: ``max_entries`` and ``max_bytes`` (payload bytes). When an append would exceed them, the
oldest *low-priority* rows go first (provisional events and retained plate-state messages: a later
final event supersedes them); only when nothing low-priority is left are the oldest final events
dropped, each drop logged at ERROR. Stats are never spooled (the sink keeps only the latest).
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PRIORITY_LOW = 0  # provisional events, retained plate state: superseded by later messages
PRIORITY_HIGH = 1  # final events: dropped only when nothing low-priority is left


@dataclass(frozen=True)
class SpoolEntry:
    seq: int
    topic: str
    payload: bytes
    retain: bool
    priority: int


class SpoolError(RuntimeError):
    pass


def _crc(topic: str, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(topic.encode("utf-8")))


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS spool ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " topic TEXT NOT NULL,"
    " payload BLOB NOT NULL,"
    " retain INTEGER NOT NULL,"
    " priority INTEGER NOT NULL,"
    " created REAL NOT NULL,"
    " crc INTEGER)",
    "CREATE INDEX IF NOT EXISTS spool_priority ON spool(priority, seq)",
    "CREATE TABLE IF NOT EXISTS quarantine ("
    " seq INTEGER, topic TEXT, payload BLOB, reason TEXT NOT NULL, at REAL NOT NULL)",
)


class Spool:
    """A bounded, thread-safe, persistent FIFO of (topic, payload, retain) messages."""

    FILENAME = "spool.sqlite3"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_entries: int = 100_000,
        max_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"spool max_entries must be >= 1, got {max_entries}")
        if max_bytes < 1:
            raise ValueError(f"spool max_bytes must be >= 1, got {max_bytes}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / self.FILENAME
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.dropped_low = 0
        self.dropped_high = 0
        self.damaged = 0  # rows set aside because their checksum no longer matched
        self.damaged_file: Path | None = None  # an unreadable spool file renamed aside
        self._lock = threading.Lock()
        # One owner per spool: two senders on one directory would send every message twice.
        # flock is released by the kernel when the process dies, so a crash never leaves it held.
        self._lock_fh = (self.directory / "spool.lock").open("a")
        try:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._lock_fh.close()
            raise SpoolError(
                f"spool directory {self.directory} is in use by another sink or process"
            ) from exc
        try:
            try:
                self._db = self._open()
            except sqlite3.DatabaseError as exc:
                salvaged = self._set_aside(exc)
                self._db = self._open()
                self._restore(salvaged)
            row = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM spool"
            ).fetchone()
            last = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM spool").fetchone()
        except sqlite3.Error as exc:
            self._lock_fh.close()
            raise SpoolError(f"cannot open spool {self.path}: {exc}") from exc
        self._count, self._bytes = int(row[0]), int(row[1])
        self.last_seq = int(last[0])  # highest seq ever appended (in this file's live rows)
        if self._count:
            log.info("spool %s holds %d undelivered message(s)", self.path, self._count)

    def _open(self) -> sqlite3.Connection:
        # check_same_thread=False: appends come from pipeline threads, acks from the sender;
        # self._lock serialises all access to the one connection.
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            ok = db.execute("PRAGMA quick_check").fetchone()
            if ok is None or ok[0] != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {ok[0] if ok else 'no answer'}")
            for statement in _SCHEMA:
                db.execute(statement)
            columns = {r[1] for r in db.execute("PRAGMA table_info(spool)")}
            if "crc" not in columns:  # a spool written before checksums: rows stay unchecked
                db.execute("ALTER TABLE spool ADD COLUMN crc INTEGER")
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _set_aside(self, exc: Exception) -> list[tuple]:
        """Rename an unusable spool file aside; return the rows that could still be read."""
        rows: list[tuple] = []
        try:
            old = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            try:
                cur = old.execute(
                    "SELECT seq, topic, payload, retain, priority, created FROM spool ORDER BY seq"
                )
                while True:
                    try:
                        row = cur.fetchone()
                    except sqlite3.DatabaseError:
                        break
                    if row is None:
                        break
                    rows.append(row)
            finally:
                old.close()
        except sqlite3.DatabaseError:
            pass  # nothing readable
        aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                src.rename(str(aside) + suffix)
        self.damaged_file = aside
        log.error(
            "spool %s could not be used (%s): renamed to %s; %d message(s) recovered from it",
            self.path,
            exc,
            aside,
            len(rows),
        )
        return rows

    def _restore(self, rows: list[tuple]) -> None:
        if not rows:
            return
        self._db.execute("BEGIN IMMEDIATE")
        for _seq, topic, payload, retain, priority, created in rows:
            self._db.execute(
                "INSERT INTO spool(topic, payload, retain, priority, created, crc) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (topic, payload, retain, priority, created, _crc(topic, bytes(payload))),
            )
        self._db.execute("COMMIT")

    def __len__(self) -> int:
        return self._count

    @property
    def size_bytes(self) -> int:
        """Sum of payload sizes of the queued messages."""
        return self._bytes

    def append(
        self, topic: str, payload: bytes, *, retain: bool = False, priority: int = PRIORITY_HIGH
    ) -> int:
        """Durably enqueue one message; returns its seq. Evicts per the bounds first."""
        return self.append_many([(topic, payload, retain, priority)])[0]

    def append_many(self, messages: list[tuple[str, bytes, bool, int]]) -> list[int]:
        """Enqueue messages atomically (all or none) in the given order; returns their seqs."""
        if not messages:
            return []
        size = sum(len(m[1]) for m in messages)
        if size > self.max_bytes or len(messages) > self.max_entries:
            raise SpoolError(
                f"message of {size} bytes / {len(messages)} rows exceeds the spool bounds "
                f"(max_bytes={self.max_bytes}, max_entries={self.max_entries})"
            )
        now = time.time()
        with self._lock:
            self._make_room(len(messages), size)
            seqs = []
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for topic, payload, retain, priority in messages:
                    cur = self._db.execute(
                        "INSERT INTO spool(topic, payload, retain, priority, created, crc) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (topic, payload, int(retain), int(priority), now, _crc(topic, payload)),
                    )
                    seqs.append(int(cur.lastrowid or 0))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise SpoolError(f"spool {self.path}: append failed: {exc}") from exc
            self._count += len(messages)
            self._bytes += size
            self.last_seq = seqs[-1]
            return seqs

    def _make_room(self, rows: int, size: int) -> None:
        """Evict oldest low-priority rows, then oldest high-priority rows, until the new fit."""
        for priority in (PRIORITY_LOW, PRIORITY_HIGH):
            while self._count + rows > self.max_entries or self._bytes + size > self.max_bytes:
                victim = self._db.execute(
                    "SELECT seq, topic, LENGTH(payload) FROM spool WHERE priority = ? "
                    "ORDER BY seq LIMIT 1",
                    (priority,),
                ).fetchone()
                if victim is None:
                    break
                self._db.execute("DELETE FROM spool WHERE seq = ?", (victim[0],))
                self._count -= 1
                self._bytes -= int(victim[2])
                if priority == PRIORITY_LOW:
                    self.dropped_low += 1
                    log.warning(
                        "spool full (%d rows, %d bytes): dropped oldest low-priority message "
                        "seq=%d topic=%s",
                        self._count,
                        self._bytes,
                        victim[0],
                        victim[1],
                    )
                else:
                    self.dropped_high += 1
                    log.error(
                        "SPOOL FULL: DROPPED FINAL EVENT seq=%d topic=%s (%d final events lost "
                        "so far; raise the spool bounds or fix the broker connection)",
                        victim[0],
                        victim[1],
                        self.dropped_high,
                    )

    def read_after(self, seq: int, limit: int) -> list[SpoolEntry]:
        """Up to ``limit`` entries with seq > ``seq``, oldest first; damaged rows (checksum
        mismatch) are moved to the quarantine table on the way and not returned."""
        out: list[SpoolEntry] = []
        with self._lock:
            while len(out) < limit:
                rows = self._db.execute(
                    "SELECT seq, topic, payload, retain, priority, crc FROM spool WHERE seq > ? "
                    "ORDER BY seq LIMIT ?",
                    (seq, limit - len(out)),
                ).fetchall()
                if not rows:
                    break
                for r in rows:
                    seq = int(r[0])
                    payload = bytes(r[2])
                    if r[5] is not None and int(r[5]) != _crc(r[1], payload):
                        self._quarantine(seq, r[1], payload, "checksum mismatch")
                        continue
                    out.append(SpoolEntry(seq, r[1], payload, bool(r[3]), int(r[4])))
        return out

    def _quarantine(self, seq: int, topic: str, payload: bytes, reason: str) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO quarantine(seq, topic, payload, reason, at) VALUES (?, ?, ?, ?, ?)",
                (seq, topic, payload, reason, time.time()),
            )
            self._db.execute("DELETE FROM spool WHERE seq = ?", (seq,))
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            log.error("spool %s: cannot set aside damaged row seq=%d: %s", self.path, seq, exc)
            return
        self._count -= 1
        self._bytes -= len(payload)
        self.damaged += 1
        log.error(
            "spool %s: message seq=%d (%s) is damaged (%s): set aside in the quarantine table, "
            "%d so far",
            self.path,
            seq,
            topic,
            reason,
            self.damaged,
        )

    def ack(self, seqs: list[int]) -> None:
        """Delete delivered entries (unknown seqs, e.g. already evicted, are ignored)."""
        if not seqs:
            return
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                removed = 0
                freed = 0
                for seq in seqs:
                    row = self._db.execute(
                        "SELECT LENGTH(payload) FROM spool WHERE seq = ?", (seq,)
                    ).fetchone()
                    if row is None:
                        continue
                    self._db.execute("DELETE FROM spool WHERE seq = ?", (seq,))
                    removed += 1
                    freed += int(row[0])
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                # Not fatal: the entry is re-sent later (at-least-once), consumers dedupe.
                log.error("spool %s: ack failed: %s", self.path, exc)
                return
            self._count -= removed
            self._bytes -= freed

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error as exc:
                log.error("spool %s: close failed: %s", self.path, exc)
            finally:
                if not self._lock_fh.closed:
                    self._lock_fh.close()
