"""The central collector: a persistent MQTT session in, batched PostgreSQL transactions out,
an acknowledgement only for what is committed.

Two threads. paho's network thread only queues what arrives (``Inbound``: topic, payload,
message id, and the *connection* it came on). The writer thread takes up to ``batch_size``
messages (or what arrived within ``max_wait_s`` of the first), maps them to rows
(edge.central.rows), writes them in one transaction (edge.central.writer) and then, and only
then, sends each message's PUBACK (paho ``manual_ack``). So:

- a collector killed at any point loses nothing: what it had not committed was not
  acknowledged, and the broker redelivers it to the same client id (clean session off, QoS 1);
  what it had committed but not acknowledged comes again and the upsert makes it a no-op;
- the database down: the batch is retried with exponential back-off (``retry_min_s`` ..
  ``retry_max_s``) on a fresh connection, nothing is acknowledged meanwhile, and the broker
  stops sending once its in-flight window is full (it queues the rest for this session);
- a PUBACK is only ever sent on the connection the message came on: after a reconnect the old
  message ids may name other messages, and the broker redelivers the old ones anyway.

A message that cannot be read (bad JSON, another schema) is stored in ``rejected_messages`` with
the reason, in the same transaction, and acknowledged: it can never block the queue nor vanish.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import paho.mqtt.client as mqtt

from edge.central.batching import Batcher
from edge.central.config import CollectorConfig, redact_url
from edge.central.migrate import apply_migrations
from edge.central.rows import Ignored, Rejected, Row, merge_batch, parse_message
from edge.central.writer import CropFiles, apply_retention, write_batch
from edge.events.topics import subscriptions
from edge.sinks.mqtt import make_client

log = logging.getLogger(__name__)

# What the collector subscribes to: every device's events, alerts, stats and status.
KINDS = ("events", "alerts", "stats")


@dataclass(frozen=True)
class Inbound:
    topic: str
    payload: bytes
    mid: int
    qos: int
    connection: int  # which MQTT connection it came on (acks go back on that one only)
    received_at: datetime
    received_mono: float


@dataclass
class CollectorCounters:
    received: int = 0
    committed: int = 0  # messages whose transaction committed
    acked: int = 0
    not_acked: int = 0  # committed, but their connection was gone: the broker redelivers them
    rejected: int = 0
    ignored: int = 0
    batches: int = 0
    write_failures: int = 0
    connections: int = 0


class DatabaseUnavailable(RuntimeError):
    pass


FATAL_HINTS = ("password authentication failed", "does not exist", "no pg_hba.conf entry")


def is_fatal_connect_error(exc: Exception) -> bool:
    """Errors no retry fixes (wrong password, unknown database or user): exit with them."""
    text = str(exc).lower()
    return any(h in text for h in FATAL_HINTS)


def connect_database(cfg: CollectorConfig) -> Any:
    import psycopg

    return psycopg.connect(
        cfg.database.url,
        connect_timeout=max(1, int(round(cfg.database.connect_timeout_s))),
        autocommit=False,
        application_name="platewatch-collect",
    )


class Collector:
    """``Collector(cfg).start()``; ``stop()`` commits and acknowledges what it holds, then
    disconnects. ``connect_db`` makes a database connection (tests may wrap it)."""

    def __init__(
        self,
        cfg: CollectorConfig,
        *,
        connect_db: Callable[[CollectorConfig], Any] = connect_database,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self._connect_db = connect_db
        self._clock = clock
        self.counters = CollectorCounters()
        self._inbox: queue.Queue[Inbound] = queue.Queue()
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._conn_lock = threading.Lock()
        self._connection = 0  # id of the current MQTT connection; 0: none
        self._db: Any = None
        self._down_since: float | None = None
        self._files = (
            CropFiles(cfg.database.crop_dir)
            if cfg.database.crops == "files" and cfg.database.crop_dir is not None
            else None
        )
        self._next_retention = 0.0
        self.client = self._make_client()
        self._writer = threading.Thread(target=self._run_writer, name="collector-writer")
        self.error: BaseException | None = None  # why the writer stopped, if not asked to
        self.subscribed = threading.Event()  # set at each SUBACK (the session is in place)

    # ------------------------------------------------------------------ MQTT side

    def _make_client(self) -> mqtt.Client:
        s = self.cfg.mqtt
        # MQTT 3.1.1 keeps the session with clean_session off; MQTT 5 with clean start off at
        # connect (and a session expiry), which paho takes in connect(), not here
        session = {} if s.protocol == "5" else {"clean_session": False}
        client = make_client(s, self.cfg.client_id, manual_ack=True, **session)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _on_subscribe(self, *_: Any) -> None:
        self.subscribed.set()
        log.info("collector subscribed to %s/# (every device)", self.cfg.mqtt.topic_prefix)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any):  # type: ignore[no-untyped-def]
        if rc.is_failure:
            log.error("central broker %s:%s refused the collector: %s", *self._where(), rc)
            return
        with self._conn_lock:
            self.counters.connections += 1
            self._connection = self.counters.connections
        present = bool(getattr(flags, "session_present", False))
        # Subscribing on every connect is harmless with a kept session and needed without one.
        client.subscribe([(t, 1) for t in subscriptions(self.cfg.mqtt.topic_prefix, KINDS)])
        log.info(
            "collector connected to %s:%s as %s (session %s)",
            *self._where(),
            self.cfg.client_id,
            "kept" if present else "new",
        )

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any):  # type: ignore[no-untyped-def]
        with self._conn_lock:
            self._connection = 0
        self.subscribed.clear()
        if not self._stop.is_set():
            log.warning("collector lost the broker %s:%s (%s); reconnecting", *self._where(), rc)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._conn_lock:
            conn = self._connection
        self.counters.received += 1
        self._inbox.put(
            Inbound(
                msg.topic,
                bytes(msg.payload),
                msg.mid,
                msg.qos,
                conn,
                datetime.now(timezone.utc),
                self._clock(),
            )
        )

    def _where(self) -> tuple[str, int]:
        return self.cfg.mqtt.host, self.cfg.mqtt.port

    def _ack(self, batch: list[Inbound]) -> None:
        with self._conn_lock:
            current = self._connection
        for m in batch:
            if m.qos == 0:
                continue
            if m.connection == current and current != 0:
                self.client.ack(m.mid, m.qos)
                self.counters.acked += 1
            else:
                self.counters.not_acked += 1

    # ------------------------------------------------------------------ lifecycle

    def prepare_database(self) -> None:
        """Connect (once; raises) and apply the migrations before anything is subscribed."""
        conn = self._connect_db(self.cfg)
        try:
            done = apply_migrations(conn)
            if done:
                log.info("database: %d migration(s) applied", len(done))
        finally:
            conn.close()

    def start(self) -> Collector:
        self._writer.start()
        s = self.cfg.mqtt
        if s.protocol == "5":
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            # MQTT 5: a kept session is clean start off plus a session expiry (0 would end the
            # session, and its queue, at the first disconnect).
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 0xFFFFFFFF
            self.client.connect_async(
                s.host, s.port, keepalive=s.keepalive_s, clean_start=False, properties=props
            )
        else:
            self.client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        self.client.loop_start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Commit and acknowledge what is held (while the database answers), then disconnect."""
        self._stop.set()
        self._writer.join(timeout)
        self.client.disconnect()
        self.client.loop_stop()
        self._close_db()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the writer has stopped (asked to, or on a fatal error: see ``error``)."""
        return self._stopped.wait(timeout)

    # ------------------------------------------------------------------ writer side

    def _close_db(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except Exception:  # a broken connection may fail to close; it is gone either way
                pass
            self._db = None

    def _database(self) -> Any:
        if self._db is None or self._db.closed:
            self._db = self._connect_db(self.cfg)
        return self._db

    def _run_writer(self) -> None:
        try:
            self._writer_loop()
        except BaseException as exc:  # never silent: the command reports it and exits non-zero
            self.error = exc
            log.exception("collector writer stopped")
        finally:
            self._stopped.set()

    def _writer_loop(self) -> None:
        batcher: Batcher[Inbound] = Batcher(self.cfg.batch_size, self.cfg.max_wait_s)
        while True:
            stopping = self._stop.is_set()
            timeout = batcher.time_left(self._clock())
            try:
                item = self._inbox.get(timeout=0.1 if timeout is None else max(0.0, timeout))
                batcher.add(item, item.received_mono)
                # Take whatever else is already here without waiting.
                while not batcher.full:
                    batcher.add(self._inbox.get_nowait(), self._clock())
            except queue.Empty:
                pass
            if batcher.due(self._clock()) or (stopping and len(batcher)):
                self._commit(batcher.take())
            elif stopping:
                return
            if not stopping:
                self._maybe_retention()

    def _commit(self, batch: list[Inbound]) -> None:
        """Write ``batch`` until it is committed (back-off while the database is away), then
        acknowledge it. Returns without acknowledging only when stopping with the database
        still away: the broker redelivers that batch to the next collector."""
        rows: list[Row] = [
            parse_message(self.cfg.mqtt.topic_prefix, m.topic, m.payload, m.received_at)
            for m in batch
        ]
        delay = self.cfg.retry_min_s
        while True:
            try:
                self._write(batch, rows)
                break
            except DatabaseUnavailable as exc:
                self.counters.write_failures += 1
                if self._down_since is None:
                    self._down_since = self._clock()
                    log.error(
                        "database %s unavailable (%s): holding %d message(s) unacknowledged, "
                        "retrying with back-off up to %.0f s",
                        redact_url(self.cfg.database.url),
                        exc,
                        len(batch),
                        self.cfg.retry_max_s,
                    )
                if self._stop.wait(delay) and self._stop.is_set():
                    # Asked to stop while waiting: one last try, then leave it to the broker.
                    try:
                        self._write(batch, rows)
                        break
                    except DatabaseUnavailable:
                        log.warning("stopping with %d message(s) not stored", len(batch))
                        return
                delay = min(delay * 2, self.cfg.retry_max_s)
        if self._down_since is not None:
            log.warning(
                "database back after %.1f s; writing resumed", self._clock() - self._down_since
            )
            self._down_since = None
        for r in rows:
            if isinstance(r, Rejected):
                self.counters.rejected += 1
                log.warning("rejected message on %s: %s", r.topic, r.error)
            elif isinstance(r, Ignored):
                self.counters.ignored += 1
                log.debug("ignored message on %s: %s", r.topic, r.reason)
        self.counters.committed += len(batch)
        self.counters.batches += 1
        self._ack(batch)

    def _write(self, batch: list[Inbound], rows: list[Row]) -> None:
        """One transaction for ``rows``; a row the database refuses as data (not as an outage)
        is stored in rejected_messages with the reason instead of blocking the batch."""
        import psycopg

        try:
            write_batch(self._database(), merge_batch(rows), self.cfg.database.crops, self._files)
        except psycopg.Error as exc:
            self._close_db()
            if not _is_data_error(exc):
                if is_fatal_connect_error(exc):
                    raise
                raise DatabaseUnavailable(_first_line(exc)) from exc
            # Data the database refuses (a constraint, a value out of range): find the row(s)
            # one by one and keep each refused one as a rejected message, payload and reason.
            log.warning("batch refused by the database (%s); writing it row by row", exc)
            for m, row in zip(batch, rows, strict=True):
                try:
                    self._write_rows([row])
                except psycopg.Error as one:
                    self._close_db()
                    if not _is_data_error(one):
                        raise DatabaseUnavailable(_first_line(one)) from one
                    reason = f"database refused it: {_first_line(one)}"
                    self._write_rows([Rejected(m.topic, m.payload, reason, m.received_at)])
        except OSError as exc:  # crop files: a full or unwritable disk is an outage too
            raise DatabaseUnavailable(f"crop files: {exc}") from exc

    def _write_rows(self, rows: list[Row]) -> None:
        write_batch(self._database(), merge_batch(rows), self.cfg.database.crops, self._files)

    def _maybe_retention(self) -> None:
        now = self._clock()
        if now < self._next_retention:
            return
        self._next_retention = now + self.cfg.database.retention_interval_s
        d = self.cfg.database
        if d.retention_days is None and d.stats_retention_days is None:
            return
        try:
            apply_retention(self._database(), d.retention_days, d.stats_retention_days, self._files)
        except Exception as exc:  # retention waits for the next round; storing goes on
            self._close_db()
            log.warning("retention failed (%s); next try in %.0f s", exc, d.retention_interval_s)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_data_error(exc: Exception) -> bool:
    """The database refused the data (a retry would fail the same way), as opposed to being
    unreachable, restarting or out of resources."""
    import psycopg

    return isinstance(exc, (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError))
