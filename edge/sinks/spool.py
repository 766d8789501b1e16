"""Disk-backed FIFO of outgoing MQTT messages (store-and-forward).

Every event is appended here *before* it is handed to the network; a row is deleted only when the
broker acknowledges it (PUBACK). A crash, a broker outage or a restart therefore loses nothing:
the next ``MqttSink`` on the same directory sends what is left, oldest first.

SQLite in WAL mode with ``synchronous=FULL``: each append is one fsync'd transaction (events are
a few per vehicle, so the cost is irrelevant), and a half-written row can never be read back.
Rows carry a monotonically increasing ``seq`` (AUTOINCREMENT never reuses ids), which is the
delivery order.

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
            # check_same_thread=False: appends come from pipeline threads, acks from the sender;
            # self._lock serialises all access to the one connection.
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=10.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS spool ("
                " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                " topic TEXT NOT NULL,"
                " payload BLOB NOT NULL,"
                " retain INTEGER NOT NULL,"
                " priority INTEGER NOT NULL,"
                " created REAL NOT NULL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS spool_priority ON spool(priority, seq)")
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
                        "INSERT INTO spool(topic, payload, retain, priority, created) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (topic, payload, int(retain), int(priority), now),
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
        """Up to ``limit`` entries with seq > ``seq``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, topic, payload, retain, priority FROM spool WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [SpoolEntry(int(r[0]), r[1], bytes(r[2]), bool(r[3]), int(r[4])) for r in rows]

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
