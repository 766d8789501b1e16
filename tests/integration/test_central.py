"""The central collector with real servers: PostgreSQL (initdb'd per test), two mosquitto
brokers bridged edge -> centre through a link that can be cut, the real MQTT sink on the
"device" and ``platewatch collect`` as a real process that is SIGKILLed mid-stream.

Without PostgreSQL's binaries these tests skip, unless PLATEWATCH_REQUIRE_POSTGRES=1 (CI).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import LinkProxy, Mosquitto, Postgres, wait_until

from edge.events.schema import CameraStats, PlateEvent, WatchlistHit, encode_crop

psycopg = pytest.importorskip("psycopg", reason="psycopg not installed")

REPO = Path(__file__).resolve().parents[2]
CENTRAL_CONF = ["allow_anonymous true", "max_queued_messages 0", "max_inflight_messages 200"]
T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)


def crop_b64(seed: int) -> str:
    """A plate-sized crop of realistic JPEG size (noise keeps it around 8-12 kB)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(60, 200, (64, 240, 3), dtype=np.uint8)
    return encode_crop(img, max_width=240, quality=80)


def make_event(i: int, kind: str = "final", **kw: Any) -> PlateEvent:
    fields: dict[str, Any] = dict(
        type=kind, camera="gate", track_id=i, track_uuid=str(uuid.UUID(int=i + 1)),
        plate=f"AB{i:04d}C", confidence=0.9, char_confidences=[0.9] * 7,
        first_seen=T0 + timedelta(seconds=i),
        last_seen=T0 + timedelta(seconds=i, milliseconds=800),
        first_frame=i, last_frame=i + 1, plate_box=[1, 1, 20, 10],
    )  # fmt: skip
    fields.update(kw)
    return PlateEvent(**fields)


def bridge_conf(link_port: int, client_id: str) -> list[str]:
    """A device broker bridged to the centre (deploy/central/bridge.conf without TLS): a kept
    session on both sides, so messages queue on the device while the link is down."""
    return [
        "allow_anonymous true",
        "max_queued_messages 0",
        "max_inflight_messages 200",
        "connection central",
        f"address 127.0.0.1:{link_port}",
        f"remote_clientid {client_id}",
        "cleansession false",
        "local_cleansession false",
        "topic platewatch/# out 1",
        "bridge_protocol_version mqttv311",
        "restart_timeout 1 2",
        "keepalive_interval 5",
        "notifications false",
        "try_private true",
    ]


@pytest.fixture
def central_broker(mosquitto_factory: Callable[..., Mosquitto]) -> Mosquitto:
    return mosquitto_factory(persistent=True, listener_conf=CENTRAL_CONF)


def finals_in(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM events WHERE type = 'final'").fetchone()[0])


def rows(url: str, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute(sql, args).fetchall())


class CollectProcess:
    """``platewatch collect`` as a child process (its own interpreter: a SIGKILL is a crash)."""

    def __init__(self, url: str, broker: Mosquitto, log: Path, *extra: str) -> None:
        self.cmd = [
            sys.executable,
            "-m",
            "edge",
            "collect",
            "--db",
            url,
            "--mqtt",
            f"{broker.host}:{broker.port}",
            "--batch-size",
            "50",
            "--max-wait",
            "0.1",
            *extra,
        ]
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> CollectProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO
            )
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(20)

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def collect_processes() -> Iterator[list[CollectProcess]]:
    procs: list[CollectProcess] = []
    yield procs
    for p in procs:
        p.kill()


def test_every_final_once_through_collector_crash_db_restart_and_link_loss(  # type: ignore[no-untyped-def]
    postgres: Postgres,
    central_broker: Mosquitto,
    mosquitto_factory,
    collect_processes: list[CollectProcess],
    tmp_path: Path,
) -> None:
    from edge.sinks.mqtt import MqttSink

    url = postgres.create_database("central")
    link = LinkProxy(central_broker.port).start()
    edge = mosquitto_factory(persistent=True, listener_conf=bridge_conf(link.port, "dev1"))
    collector = CollectProcess(url, central_broker, tmp_path / "collect.log").start()
    collect_processes.append(collector)
    # The collector's session must exist before the first event reaches the centre.
    assert wait_until(lambda: "collector subscribed" in collector.text(), 30), collector.text()

    n = 360
    finals = [make_event(i, crop_jpeg_b64=crop_b64(i)) for i in range(n)]
    provisionals = {i: make_event(i, "provisional", plate=f"AB{i:04d}8") for i in range(0, n, 3)}
    alert_ids = []
    sink = MqttSink(host=edge.host, port=edge.port, spool_dir=tmp_path / "spool", device="dev1")
    done = threading.Event()

    def publish() -> None:
        for i, final in enumerate(finals):
            if i in provisionals:
                sink.publish_event(provisionals[i])
            sink.publish_event(final)
            if i % 30 == 0:
                hit = WatchlistHit(name="stolen", kind="deny", entry=final.plate, distance=0)
                alert = final.model_copy(update={"watchlist": hit})
                from edge.events.alerts import Alert
                from edge.rules.watchlist import Match

                sink.publish_alert(Alert(alert, Match("stolen", "deny", final.plate, 0)))
                alert_ids.append(final.event_id)
            if i % 60 == 0:
                sink.publish_stats(
                    CameraStats(
                        camera="gate",
                        online=True,
                        fps_in=25,
                        fps_analysed=8,
                        frames_dropped=0,
                        frames_corrupt=0,
                        reconnects=0,
                        queue_depth=0,
                    )
                )
            time.sleep(0.02)
        done.set()

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    try:
        # 1. The collector is SIGKILLed mid-stream and started again (same client id).
        assert wait_until(lambda: finals_in(url) >= 40, 60, 0.2), collector.text()
        collector.kill()
        time.sleep(1.0)
        collector.start()
        # 2. PostgreSQL crashes (immediate shutdown) and comes back 2 s later.
        assert wait_until(lambda: finals_in(url) >= 120, 60, 0.2), collector.text()
        postgres.kill()
        time.sleep(2.0)
        postgres.start()
        # 3. The link between the device's broker and the centre is down for 4 s.
        assert wait_until(lambda: finals_in(url) >= 200, 60, 0.2), collector.text()
        link.cut()
        time.sleep(4.0)
        link.restore()
        assert done.wait(60)
        assert sink.flush(30), "the device's sink could not hand everything to its broker"
        assert wait_until(lambda: finals_in(url) >= n, 90, 0.3), (
            f"{finals_in(url)} of {n} finals stored\n{collector.text()[-3000:]}"
        )
        time.sleep(1.0)  # anything still in flight (a duplicate would land now)
    finally:
        sink.close()
        link.close()

    # Every final exactly once, its provisional replaced, its crop with it.
    got = rows(url, "SELECT event_id::text, type, device, camera, plate, has_crop FROM events")
    assert len(got) == n, f"{len(got)} rows for {n} tracks"
    assert {r[0] for r in got} == {e.event_id for e in finals}
    assert {r[1] for r in got} == {"final"} and {(r[2], r[3]) for r in got} == {("dev1", "gate")}
    assert all(r[5] for r in got)
    crops = rows(url, "SELECT e.plate, c.jpeg FROM crops c JOIN events e ON e.id = c.event_row")
    assert len(crops) == n
    by_plate = {f.plate: f for f in finals}
    import base64

    assert all(bytes(j) == base64.b64decode(by_plate[p].crop_jpeg_b64 or "") for p, j in crops)
    assert {r[0] for r in rows(url, "SELECT event_id::text FROM alerts")} == set(alert_ids)
    assert rows(url, "SELECT count(*) FROM rejected_messages") == [(0,)]
    assert rows(url, "SELECT count(*) FROM camera_stats WHERE device = 'dev1'")[0][0] >= 1
    # The device said goodbye (the sink's explicit offline on close), and it reached the centre.
    assert wait_until(
        lambda: rows(url, "SELECT status FROM devices WHERE device = 'dev1'") == [("offline",)], 10
    )
    # The faults really happened to the collector: it saw the database go and come back, and its
    # second start found the session the broker had kept for it.
    log = collector.text()
    assert "unavailable" in log and "database back after" in log, log[-3000:]
    assert "(session kept)" in log, log[-3000:]
    assert collector.stop() == 0


# ---------------------------------------------------------------------------- in-process


def start_collector(url: str, broker: Mosquitto, **kw: Any) -> Any:
    from edge.central.collector import Collector
    from edge.central.config import CollectorConfig

    data: dict[str, Any] = {
        "database": {"url": url, **kw.pop("database", {})},
        "mqtt": {
            "host": broker.host,
            "port": broker.port,
            "reconnect_max_s": 1.0,
            **kw.pop("mqtt", {}),
        },
        "batch_size": 20,
        "max_wait_s": 0.05,
        "retry_min_s": 0.2,
        "retry_max_s": 1.0,
        **kw,
    }
    collector = Collector(CollectorConfig.model_validate(data))
    collector.prepare_database()
    collector.start()
    # Its session must exist before anything is published (the broker keeps messages for a
    # session, not for a client that has never subscribed).
    assert collector.subscribed.wait(10)
    return collector


class RawPublisher:
    """Publishes exact payloads on exact topics (QoS 1) to the central broker."""

    def __init__(self, broker: Mosquitto) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_redelivery_final_over_provisional_and_rejected_messages(  # type: ignore[no-untyped-def]
    postgres: Postgres, central_broker: Mosquitto
) -> None:
    url = postgres.create_database("c2")
    collector = start_collector(url, central_broker)
    pub = RawPublisher(central_broker)
    try:
        ev = "platewatch/jet-7/gate/events"
        a = make_event(1, device="jet-7", crop_jpeg_b64=crop_b64(1))
        pub.send(ev, a.to_bytes())
        pub.send(ev, a.to_bytes())  # a redelivered copy: one row
        tu = str(uuid.uuid4())
        prov = make_event(
            2,
            "provisional",
            device="jet-7",
            track_uuid=tu,
            plate="CD0002X",
            crop_jpeg_b64=crop_b64(2),
        )
        final = make_event(2, device="jet-7", track_uuid=tu, plate="CD0002Y")
        pub.send(ev, prov.to_bytes())
        assert wait_until(lambda: len(rows(url, "SELECT 1 FROM events")) == 2, 10)
        pub.send(ev, final.to_bytes())  # replaces the provisional, in another batch
        pub.send(ev, prov.to_bytes())  # a late provisional changes nothing
        pub.send(ev, b"{not json")
        pub.send(ev, make_event(3, device="someone-else").to_bytes())  # disagrees with topic
        pub.send("platewatch/jet-7/status", b"offline", retain=True)
        assert wait_until(lambda: len(rows(url, "SELECT 1 FROM rejected_messages")) == 2, 10)
        assert wait_until(
            lambda: rows(url, "SELECT status FROM devices WHERE device='jet-7'") == [("offline",)],
            10,
        )
        time.sleep(0.5)
        got = rows(url, "SELECT event_id::text, type, plate, has_crop FROM events ORDER BY id")
        assert got == [
            (a.event_id, "final", a.plate, True),
            (final.event_id, "final", "CD0002Y", False),
        ]
        # The provisional's crop went with it: the final brought none.
        assert rows(url, "SELECT event_id::text FROM crops") == [(a.event_id,)]
        rejected = rows(url, "SELECT topic, payload, error FROM rejected_messages ORDER BY id")
        assert rejected[0][0] == ev and bytes(rejected[0][1]) == b"{not json"
        assert "json" in rejected[0][2].lower()
        assert "payload says device 'someone-else'" in rejected[1][2]
        assert collector.counters.rejected == 2
        assert collector.counters.acked == collector.counters.committed
    finally:
        pub.close()
        collector.stop()


def test_database_down_nothing_acknowledged_nothing_lost(  # type: ignore[no-untyped-def]
    postgres: Postgres, central_broker: Mosquitto
) -> None:
    """While PostgreSQL is down the collector holds its batch unacknowledged; the broker keeps
    the rest queued for the session; all of it is stored once the database is back."""
    url = postgres.create_database("c3")
    collector = start_collector(url, central_broker)
    pub = RawPublisher(central_broker)
    try:
        postgres.kill()
        events = [make_event(i, device="jet-1") for i in range(60)]
        for e in events:
            pub.send("platewatch/jet-1/gate/events", e.to_bytes())
        assert wait_until(lambda: collector.counters.write_failures >= 2, 10)
        assert collector.counters.acked == 0 and collector.counters.committed == 0
        postgres.start()
        assert wait_until(lambda: finals_in(url) == 60, 20)
        assert wait_until(lambda: collector.counters.acked == 60, 5)
    finally:
        pub.close()
        collector.stop()
    assert {r[0] for r in rows(url, "SELECT event_id::text FROM events")} == {
        e.event_id for e in events
    }


def test_crop_files_and_retention(postgres: Postgres, central_broker: Mosquitto, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from edge.central.pg_history import PgHistory
    from edge.central.writer import CropFiles, apply_retention

    url = postgres.create_database("c4")
    crops = tmp_path / "crops"
    collector = start_collector(
        url, central_broker, database={"crops": "files", "crop_dir": str(crops)}
    )
    pub = RawPublisher(central_broker)
    old = make_event(
        1,
        device="jet-1",
        crop_jpeg_b64=crop_b64(1),
        first_seen=T0 - timedelta(days=40),
        last_seen=T0 - timedelta(days=40),
    )
    new = make_event(2, device="jet-1", crop_jpeg_b64=crop_b64(2))
    try:
        for e in (old, new):
            pub.send("platewatch/jet-1/gate/events", e.to_bytes())
        assert wait_until(lambda: finals_in(url) == 2, 10)
    finally:
        pub.close()
        collector.stop()
    assert rows(url, "SELECT count(*) FROM crops") == [(0,)]  # not in the database
    paths = dict(rows(url, "SELECT event_id::text, crop_path FROM events"))
    import base64

    assert (crops / paths[new.event_id]).read_bytes() == base64.b64decode(new.crop_jpeg_b64 or "")
    with PgHistory(url, crop_dir=crops) as hist:
        assert hist.get_crop(new.event_id) == base64.b64decode(new.crop_jpeg_b64 or "")
    with psycopg.connect(url) as conn:
        res = apply_retention(conn, 30, 30, CropFiles(crops))
    assert (res.events, res.crop_days) == (1, 1)
    assert [r[0] for r in rows(url, "SELECT event_id::text FROM events")] == [new.event_id]
    assert not (crops / paths[old.event_id]).exists()
    assert (crops / paths[new.event_id]).exists()


# ---------------------------------------------------------------------------- one query layer


def test_search_and_csv_are_the_same_on_sqlite_and_postgresql(postgres: Postgres, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from edge.central.migrate import apply_migrations
    from edge.central.pg_history import PgHistory
    from edge.central.rows import merge_batch, parse_message
    from edge.central.writer import write_batch
    from edge.history.store import HistoryStore, write_csv

    url = postgres.create_database("c5")
    plates = ["AB123CD", "AB123CO", "A8123CD", "XY999ZZ", "AB12CD", "OO11II", "0011II", "AB123"]
    events = []
    for i, plate in enumerate(plates * 3):
        cam = "gate" if i % 2 else "yard"
        events.append(
            make_event(
                i,
                device="jet-1",
                plate=plate,
                camera=cam,
                char_confidences=[0.9] * len(plate),
                watchlist=WatchlistHit(name="vip", kind="allow", entry=plate, distance=0)
                if i % 5 == 0
                else None,
            )
        )
    sqlite = HistoryStore(tmp_path / "h.sqlite3", retention_days=None, max_rows=None, max_mb=None)
    parsed = []
    for e in events:
        sqlite.add(e)
        parsed.append(
            parse_message(
                "platewatch",
                f"platewatch/jet-1/{e.camera}/events",
                e.to_bytes(),
                datetime.now(timezone.utc),
            )
        )
    with psycopg.connect(url) as conn:
        apply_migrations(conn)
        write_batch(conn, merge_batch(parsed))
    pg = PgHistory(url)
    queries: list[dict[str, Any]] = [
        {"plate": "AB123CD"},
        {"plate": "AB123CD", "max_distance": 2},
        {"plate": "ab 123 cd", "fuzzy": False},
        {"plate": "AB*"},
        {"plate": "?B12*"},
        {"plate": "OOIIII"},
        {"plate": "0011II", "fold": False},
        {"camera": "gate"},
        {"watchlist": "*"},
        {"watchlist": "vip", "limit": 3},
        {"plate": "AB123CD", "camera": "yard", "limit": 2},
        {"device": "jet-1", "limit": 5},
        {"device": "nobody"},
        {
            "since": (T0 + timedelta(seconds=10)).isoformat(),
            "until": (T0 + timedelta(seconds=15)).isoformat(),
        },
    ]
    try:
        for q in queries:
            a, b = sqlite.search(**q), pg.search(**q)
            assert [(r.event_id, r.distance) for r in a] == [(r.event_id, r.distance) for r in b], q
        assert pg.count() == sqlite.count() == len(events)
        # CSV: the same columns and the same cells, but the row ids (each store its own).
        out_a, out_b = io.StringIO(), io.StringIO()
        write_csv(sqlite.search(plate="AB123CD", max_distance=2), out_a)
        write_csv(pg.search(plate="AB123CD", max_distance=2), out_b)
        ra, rb = (
            list(csv.DictReader(io.StringIO(out_a.getvalue()))),
            list(csv.DictReader(io.StringIO(out_b.getvalue()))),
        )
        assert ra == rb and len(ra) > 3 and ra[0]["device"] == "jet-1"
        with pytest.raises(ValueError, match="no letters or digits"):
            pg.search(plate="--")
    finally:
        pg.close()
        sqlite.close()


def test_history_and_collect_commands_on_postgresql(postgres: Postgres, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from edge.central.rows import merge_batch, parse_message
    from edge.central.writer import write_batch

    url = postgres.create_database("c6")
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "edge", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=60,
        )

    r = cli("collect", "--db", url, "--migrate-only")
    assert r.returncode == 0, r.stderr
    assert "up to date" in r.stderr
    e = make_event(5, device="jet-3", plate="KL5555M", crop_jpeg_b64=crop_b64(5))
    stats = CameraStats(
        device="jet-3",
        camera="gate",
        online=True,
        fps_in=25,
        fps_analysed=8.3,
        frames_dropped=0,
        frames_corrupt=0,
        reconnects=0,
        queue_depth=0,
    )
    now = datetime.now(timezone.utc)
    with psycopg.connect(url) as conn:
        write_batch(
            conn,
            merge_batch(
                [
                    parse_message("platewatch", "platewatch/jet-3/gate/events", e.to_bytes(), now),
                    parse_message(
                        "platewatch", "platewatch/jet-3/gate/stats", stats.to_bytes(), now
                    ),
                    parse_message("platewatch", "platewatch/jet-3/status", b"online", now),
                ]
            ),
        )
    r = cli("history", "search", "--db", url, "--plate", "KL5S55M", "--csv", "-")
    assert r.returncode == 0, r.stderr
    [row] = list(csv.DictReader(io.StringIO(r.stdout)))
    assert (row["event_id"], row["device"], row["distance"]) == (e.event_id, "jet-3", "1")
    r = cli("history", "search", "--db", url, "--device", "jet-3", "--json")
    assert json.loads(r.stdout)["plate"] == "KL5555M"
    r = cli("history", "cameras", "--db", url)
    assert r.returncode == 0 and "jet-3" in r.stdout and "online" in r.stdout, r.stdout
    r = cli("history", "crop", e.event_id, "--db", url, "--out", str(tmp_path / "c.jpg"))
    assert r.returncode == 0 and (tmp_path / "c.jpg").read_bytes()[:3] == b"\xff\xd8\xff"

    # Bad input: clear words, non-zero exits.
    r = cli("collect", "--db", "mysql://u:pw@h/db")
    assert r.returncode == 2 and "not a PostgreSQL URL" in r.stderr and ":pw@" not in r.stderr
    r = cli("collect", "--db", postgres.url("no_such_db"), "--migrate-only")
    assert r.returncode == 1 and 'database "no_such_db" does not exist' in r.stderr
    r = cli("collect")
    assert r.returncode == 2 and "no database given" in r.stderr
    r = cli("history", "search", "--db", "mysql://h/db")
    assert r.returncode == 2 and "not a history store" in r.stderr
    r = cli("history", "search", "--db", postgres.url("no_such_db"))
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_dashboard_lists_every_device_and_camera_with_health(postgres: Postgres) -> None:
    import http.client

    from edge.central.migrate import apply_migrations
    from edge.central.pg_history import PgHistory
    from edge.central.rows import merge_batch, parse_message
    from edge.central.writer import write_batch
    from edge.dashboard.server import DashboardServer, DashboardState

    url = postgres.create_database("c7")
    now = datetime.now(timezone.utc)
    msgs = []
    for dev, cam, online, age_s in (
        ("jet-1", "gate", True, 5),
        ("jet-1", "yard", False, 5),
        ("jet-2", "lane", True, 600),
    ):
        s = CameraStats(
            device=dev,
            camera=cam,
            ts=now - timedelta(seconds=age_s),
            online=online,
            fps_in=25,
            fps_analysed=8,
            frames_dropped=0,
            frames_corrupt=0,
            reconnects=0,
            queue_depth=0,
        )
        msgs.append(parse_message("platewatch", f"platewatch/{dev}/{cam}/stats", s.to_bytes(), now))
    msgs.append(parse_message("platewatch", "platewatch/jet-3/status", b"offline", now))
    e = make_event(9, device="jet-2", camera="lane", plate="QQ9999Q", crop_jpeg_b64=crop_b64(9))
    msgs.append(parse_message("platewatch", "platewatch/jet-2/lane/events", e.to_bytes(), now))
    with psycopg.connect(url) as conn:
        apply_migrations(conn)
        write_batch(conn, merge_batch(msgs))
    history = PgHistory(url)
    server = DashboardServer(DashboardState(history_enabled=True), port=0, history=history).start()
    try:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=5)

        def get(path: str) -> tuple[int, bytes]:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()

        status, body = get("/api/devices")
        assert status == 200
        cams = {c["name"]: c for c in json.loads(body)["cameras"]}
        assert set(cams) == {"jet-1/gate", "jet-1/yard", "jet-2/lane", "jet-3/"}
        assert cams["jet-1/gate"]["health"] == "online"
        assert cams["jet-1/yard"]["health"] == "offline"  # its own stats say so
        assert cams["jet-2/lane"]["health"] == "no data"  # last stats 10 minutes old
        assert cams["jet-2/lane"]["last_event_at"] is not None
        assert cams["jet-3/"]["health"] == "offline"  # a device that only said its status
        status, body = get("/api/history?plate=QQ9999Q&camera=jet-2/lane")
        assert status == 200
        [hit] = json.loads(body)["results"]
        assert hit["device"] == "jet-2" and hit["crop_url"] == f"/api/crop/{e.event_id}"
        status, body = get(hit["crop_url"])
        assert status == 200 and body[:3] == b"\xff\xd8\xff"
        status, body = get("/api/history?plate=QQ9999Q&camera=jet-1/lane")
        assert json.loads(body)["count"] == 0
    finally:
        server.stop()
        history.close()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_session_kept_while_the_collector_is_away(  # type: ignore[no-untyped-def]
    postgres: Postgres, central_broker: Mosquitto, protocol: str
) -> None:
    """What arrives while no collector runs waits in its session (MQTT 3.1.1 clean session off,
    MQTT 5 clean start off with a session expiry) and is stored by the next one."""
    url = postgres.create_database("c8")
    first = start_collector(url, central_broker, mqtt={"host": central_broker.host,
                                                       "port": central_broker.port,
                                                       "protocol": protocol})  # fmt: skip
    first.stop()
    pub = RawPublisher(central_broker)
    events = [make_event(i, device="jet-5") for i in range(5)]
    try:
        for e in events:
            pub.send("platewatch/jet-5/gate/events", e.to_bytes())
    finally:
        pub.close()
    second = start_collector(url, central_broker, mqtt={"host": central_broker.host,
                                                        "port": central_broker.port,
                                                        "protocol": protocol})  # fmt: skip
    try:
        assert wait_until(lambda: finals_in(url) == 5, 10)
    finally:
        second.stop()
