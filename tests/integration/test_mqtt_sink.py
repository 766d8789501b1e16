"""MqttSink and Spool against a real mosquitto broker on loopback (see conftest.py).

Consumers that must not miss messages published while they reconnect use a persistent session
(clean_session=False) on a broker with persistence on; the broker is stopped with SIGTERM when
the test only needs it *down* (a clean stop saves the session), and SIGKILLed when the crash
itself is under test.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from support import DEVICE, free_port, wait_until

from edge.events.schema import CameraStats, PlateEvent, utc_now
from edge.sinks.mqtt import MqttSettings, MqttSink
from edge.sinks.spool import PRIORITY_HIGH, PRIORITY_LOW, Spool, SpoolError

REPO = Path(__file__).resolve().parents[2]


def event(i: int, kind: str = "final", camera: str = "gate") -> PlateEvent:
    now = utc_now()
    plate = f"AB{i:04d}"
    return PlateEvent(
        type=kind,
        camera=camera,
        track_id=i,
        plate=plate,
        confidence=0.9,
        char_confidences=[0.9] * len(plate),
        first_seen=now - timedelta(seconds=2),
        last_seen=now,
        first_frame=i,
        last_frame=i + 10,
        plate_box=[10, 20, 110, 50],
        vehicle_box=[0, 0, 300, 200],
    )


def stats(camera: str = "gate", fps: float = 25.0) -> CameraStats:
    return CameraStats(
        camera=camera,
        online=True,
        fps_in=fps,
        fps_analysed=8.0,
        frames_dropped=0,
        frames_corrupt=0,
        reconnects=0,
        queue_depth=0,
    )


def make_sink(broker, spool_dir: Path, **kw: object) -> MqttSink:  # type: ignore[no-untyped-def]
    return MqttSink(
        host=broker.host,
        port=broker.port,
        spool_dir=spool_dir,
        reconnect_min_s=0.2,
        reconnect_max_s=1.0,
        **kw,
    )


def ids_on(consumer, topic: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [json.loads(m.payload)["event_id"] for m in consumer.on(topic)]


def wait_connected(sink: MqttSink, timeout: float = 5.0) -> None:
    assert wait_until(lambda: sink.connected, timeout), "sink did not connect"


# ----------------------------------------------------------------------- topics and payloads


def test_topics_qos_retain_and_schema(mosquitto, mqtt_consumer, validate_message, tmp_path):  # type: ignore[no-untyped-def]
    live = mqtt_consumer(mosquitto, ["platewatch/#"])
    sink = make_sink(mosquitto, tmp_path / "spool")
    wait_connected(sink)
    sent = [
        event(1, "provisional"),
        event(1, "final"),
        event(2, "final", camera="lane2"),
        event(3, "provisional", camera="lane2"),
    ]
    for e in sent:
        sink.publish_event(e)
    sink.publish_stats(stats("gate"))
    assert sink.flush(5)
    assert live.wait_for(lambda ms: len([m for m in ms if m.topic.endswith("/stats")]) >= 1, 5)

    assert ids_on(live, f"platewatch/{DEVICE}/gate/events") == [sent[0].event_id, sent[1].event_id]
    assert ids_on(live, f"platewatch/{DEVICE}/lane2/events") == [sent[2].event_id, sent[3].event_id]
    # Retained plate topic gets only final events, with the same object as on events.
    assert ids_on(live, f"platewatch/{DEVICE}/gate/plate") == [sent[1].event_id]
    assert ids_on(live, f"platewatch/{DEVICE}/lane2/plate") == [sent[2].event_id]
    for m in live.messages:
        assert m.qos == 1, m.topic
        if m.topic.endswith(("/events", "/plate")):
            validate_message(json.loads(m.payload), "plate_event.schema.json")
        elif m.topic.endswith("/stats"):
            validate_message(json.loads(m.payload), "camera_stats.schema.json")
    # The sink names itself in what it sends: the event as given, with its device id.
    stamped = sent[1].model_copy(update={"device": DEVICE})
    assert live.on(f"platewatch/{DEVICE}/gate/plate")[0].payload == stamped.to_bytes()
    assert {json.loads(m.payload)["device"] for m in live.messages if m.topic.endswith(
        ("/events", "/plate", "/stats"))} == {DEVICE}  # fmt: skip
    assert [m.payload for m in live.on(f"platewatch/{DEVICE}/status")] == [b"online"]

    # A late subscriber sees the retained state: status online and the last final plate.
    late = mqtt_consumer(mosquitto, [f"platewatch/{DEVICE}/status", "platewatch/+/+/plate"])
    assert late.wait_for(lambda ms: len(ms) >= 3, 5)
    assert all(m.retain for m in late.messages)
    assert [m.payload for m in late.on(f"platewatch/{DEVICE}/status")] == [b"online"]
    assert ids_on(late, f"platewatch/{DEVICE}/lane2/plate") == [sent[2].event_id]
    assert sink.pending() == 0

    sink.close(2)
    assert late.wait_for(
        lambda ms: (
            [m.payload for m in ms if m.topic == f"platewatch/{DEVICE}/status"]
            == [b"online", b"offline"]
        ),
        5,
    )


def test_topic_prefix_is_configurable(mosquitto, mqtt_consumer, tmp_path):  # type: ignore[no-untyped-def]
    consumer = mqtt_consumer(mosquitto, ["site1/pw/#"])
    settings = MqttSettings(
        host=mosquitto.host,
        port=mosquitto.port,
        topic_prefix="site1/pw",
        spool_dir=tmp_path / "spool",
    )
    sink = MqttSink(settings)
    e = event(5)
    sink.publish_event(e)
    assert sink.flush(5)
    assert consumer.wait_for(lambda ms: len(ms) >= 3, 5)
    assert {m.topic for m in consumer.messages} == {
        f"site1/pw/{DEVICE}/status",
        f"site1/pw/{DEVICE}/gate/events",
        f"site1/pw/{DEVICE}/gate/plate",
    }
    sink.close()
    with pytest.raises(ValueError, match="topic_prefix"):
        MqttSettings(topic_prefix="a/#")


SINK_SCRIPT = """
import sys, time
from edge.events.schema import PlateEvent, utc_now
from edge.sinks.mqtt import MqttSink
port, spool, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
sink = MqttSink(host="127.0.0.1", port=port, spool_dir=spool, client_id="crashy",
                reconnect_min_s=0.2, reconnect_max_s=1.0)
for i in range(n):
    now = utc_now()
    sink.publish_event(PlateEvent(type="final", camera="gate", track_id=i, plate="ZZ%04d" % i,
        confidence=0.9, char_confidences=[0.9] * 6, first_seen=now, last_seen=now,
        first_frame=i, last_frame=i, plate_box=[0, 0, 10, 10]))
if n == 0:
    while not sink.connected:
        time.sleep(0.01)
print("ready", flush=True)
time.sleep(60)
"""


def spawn_sink(port: int, spool: Path, n: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SINK_SCRIPT, str(port), str(spool), str(n)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def wait_line(proc: subprocess.Popen[str], text: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"sink process exited (rc={proc.poll()}) before {text!r}")
        if line.strip() == text:
            return
    raise AssertionError(f"no {text!r} from sink process")


def test_last_will_offline_when_process_dies(mosquitto, mqtt_consumer, tmp_path):  # type: ignore[no-untyped-def]
    consumer = mqtt_consumer(mosquitto, [f"platewatch/{DEVICE}/status"])
    proc = spawn_sink(mosquitto.port, tmp_path / "spool", 0)
    try:
        wait_line(proc, "ready")
        assert consumer.wait_for(lambda ms: [m.payload for m in ms] == [b"online"], 5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        assert consumer.wait_for(lambda ms: [m.payload for m in ms] == [b"online", b"offline"], 5)
    finally:
        proc.kill()
        proc.wait(5)
    late = mqtt_consumer(mosquitto, [f"platewatch/{DEVICE}/status"])
    assert late.wait_for(lambda ms: len(ms) == 1, 5)
    assert late.messages[0].payload == b"offline" and late.messages[0].retain


# ----------------------------------------------------------------------- durability


def persistent_consumer(factory, mqtt_consumer, topics):  # type: ignore[no-untyped-def]
    broker = factory(persistent=True)
    consumer = mqtt_consumer(broker, topics, client_id="durable-consumer", clean=False)
    return broker, consumer


def test_broker_down_at_start_then_all_delivered_in_order(  # type: ignore[no-untyped-def]
    mosquitto_factory, mqtt_consumer, tmp_path
):
    broker, consumer = persistent_consumer(
        mosquitto_factory, mqtt_consumer, ["platewatch/+/+/events"]
    )
    broker.kill(signal.SIGTERM)  # clean stop: the consumer's session is saved
    sink = make_sink(broker, tmp_path / "spool")
    sent = [event(i, "final" if i % 3 == 0 else "provisional") for i in range(30)]
    for e in sent:
        sink.publish_event(e)
    time.sleep(0.3)
    assert not sink.connected
    assert sink.pending() == 30 + 10  # 30 events + 10 retained plate messages (finals)
    broker.start()
    assert sink.flush(10), f"{sink.pending()} still spooled"
    assert consumer.wait_for(lambda ms: len(ms) >= 30, 10)
    assert ids_on(consumer, f"platewatch/{DEVICE}/gate/events") == [e.event_id for e in sent]
    sink.close()


def test_broker_killed_mid_stream_no_loss_in_order(  # type: ignore[no-untyped-def]
    mosquitto_factory, mqtt_consumer, tmp_path
):
    broker, consumer = persistent_consumer(
        mosquitto_factory, mqtt_consumer, ["platewatch/+/+/events"]
    )
    sink = make_sink(broker, tmp_path / "spool")
    wait_connected(sink)
    n = 300
    sent = [event(i) for i in range(n)]
    half = threading.Event()

    def produce() -> None:
        for i, e in enumerate(sent):
            sink.publish_event(e)
            if i == n // 3:
                half.set()
            time.sleep(0.003)

    producer = threading.Thread(target=produce)
    producer.start()
    assert half.wait(10)
    broker.kill()  # SIGKILL mid-stream: no goodbye, in-flight PUBACKs lost
    time.sleep(0.5)
    assert not sink.connected
    broker.start()
    producer.join(20)
    assert sink.flush(10), f"{sink.pending()} still spooled"
    assert consumer.wait_for(
        lambda ms: len({json.loads(m.payload)["event_id"] for m in ms}) >= n, 10
    )
    msgs = consumer.on(f"platewatch/{DEVICE}/gate/events")
    got = [json.loads(m.payload)["event_id"] for m in msgs]
    assert list(dict.fromkeys(got)) == [e.event_id for e in sent]  # nothing lost, in order
    # At-least-once: a copy can repeat only if its PUBACK was lost in the crash, i.e. it was
    # in flight (sink -> broker, at most max_inflight) or unacked by the consumer (redelivered
    # by the restored session, flagged DUP). Consumers drop these by event_id.
    redelivered = sum(m.dup for m in msgs)
    extra = len(got) - len(set(got))
    print(f"deliveries={len(got)} unique={len(set(got))} extra={extra} dup_flag={redelivered}")
    assert extra <= sink.settings.max_inflight + redelivered
    assert sink.reconnects >= 1
    sink.close()


def test_acknowledged_events_are_never_resent(mosquitto_factory, mqtt_consumer, tmp_path):  # type: ignore[no-untyped-def]
    broker, consumer = persistent_consumer(
        mosquitto_factory, mqtt_consumer, ["platewatch/+/+/events"]
    )
    sink = make_sink(broker, tmp_path / "spool")
    first = [event(i) for i in range(20)]
    for e in first:
        sink.publish_event(e)
    assert sink.flush(5) and sink.pending() == 0  # all acknowledged
    assert consumer.wait_for(lambda ms: len(ms) >= 20, 5)
    time.sleep(0.2)  # let the broker save the consumer's acks before the crash
    broker.kill()
    broker.start()
    assert wait_until(lambda: sink.reconnects >= 1 and sink.connected, 5)
    last = event(99)
    sink.publish_event(last)
    assert sink.flush(5)
    assert consumer.wait_for(lambda ms: len(ms) >= 21, 5)
    time.sleep(0.3)
    got = ids_on(consumer, f"platewatch/{DEVICE}/gate/events")
    assert got == [e.event_id for e in [*first, last]]
    sink.close()


def test_process_restart_sends_what_is_left(mosquitto, mqtt_consumer, tmp_path):  # type: ignore[no-untyped-def]
    consumer = mqtt_consumer(mosquitto, ["platewatch/+/+/events"])
    spool_dir = tmp_path / "spool"
    dead_port = free_port()  # nothing listens: everything stays in the spool
    proc = spawn_sink(dead_port, spool_dir, 12)
    try:
        wait_line(proc, "ready")
        # The spool is owned by the running process.
        with pytest.raises(SpoolError, match="in use"):
            make_sink(mosquitto, spool_dir)
        proc.send_signal(signal.SIGKILL)  # crash with 12 events spooled
        proc.wait(5)
    finally:
        proc.kill()
        proc.wait(5)
    sink = make_sink(mosquitto, spool_dir)
    assert sink.flush(10)
    assert consumer.wait_for(lambda ms: len(ms) >= 12, 5)
    plates = [json.loads(m.payload)["plate"] for m in consumer.messages]
    assert plates == [f"ZZ{i:04d}" for i in range(12)]
    assert sink.pending() == 0
    sink.close()


def test_stats_not_spooled_latest_only(mosquitto_factory, mqtt_consumer, tmp_path):  # type: ignore[no-untyped-def]
    broker, consumer = persistent_consumer(
        mosquitto_factory, mqtt_consumer, ["platewatch/+/+/stats"]
    )
    broker.kill(signal.SIGTERM)
    sink = make_sink(broker, tmp_path / "spool")
    for fps in (10.0, 11.0, 12.0):
        sink.publish_stats(stats("gate", fps))
    sink.publish_stats(stats("lane2", 5.0))
    assert sink.pending() == 0
    broker.start()
    wait_connected(sink)
    assert consumer.wait_for(lambda ms: len(ms) >= 2, 5)
    time.sleep(0.3)
    gate = [json.loads(m.payload)["fps_in"] for m in consumer.on(f"platewatch/{DEVICE}/gate/stats")]
    assert gate == [12.0]
    assert len(consumer.on(f"platewatch/{DEVICE}/lane2/stats")) == 1
    sink.close()


def test_close_is_bounded_when_broker_is_down(tmp_path: Path) -> None:
    sink = MqttSink(
        host="127.0.0.1",
        port=free_port(),
        spool_dir=tmp_path / "spool",
        reconnect_min_s=0.2,
        reconnect_max_s=1.0,
    )
    sink.publish_event(event(1))
    t0 = time.monotonic()
    sink.close(timeout=1.0)
    assert time.monotonic() - t0 < 1.6
    with pytest.raises(RuntimeError, match="closed"):
        sink.publish_event(event(2))
    reopened = Spool(tmp_path / "spool")  # the event is still there for the next start
    assert len(reopened) == 2
    reopened.close()


# ----------------------------------------------------------------------- spool unit tests


def test_spool_fifo_ack_and_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    seqs = [spool.append(f"t/{i}", f"p{i}".encode()) for i in range(5)]
    assert seqs == sorted(seqs) and len(spool) == 5
    assert [e.topic for e in spool.read_after(0, 3)] == ["t/0", "t/1", "t/2"]
    assert [e.topic for e in spool.read_after(seqs[2], 10)] == ["t/3", "t/4"]
    spool.ack([seqs[0], seqs[1], 999_999])  # unknown seq ignored
    assert len(spool) == 3 and spool.size_bytes == 6
    spool.close()
    again = Spool(tmp_path)
    assert [e.payload for e in again.read_after(0, 10)] == [b"p2", b"p3", b"p4"]
    # seq keeps increasing after a reopen (AUTOINCREMENT), so order survives restarts.
    assert again.append("t/5", b"p5") > seqs[-1]
    again.close()


def test_spool_bound_drops_low_priority_first(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    spool = Spool(tmp_path, max_entries=6)
    for i in range(4):
        spool.append("final", f"f{i}".encode(), priority=PRIORITY_HIGH)
        spool.append("prov", f"p{i}".encode(), priority=PRIORITY_LOW)
    # 8 appended into 6 slots: the two oldest provisional messages went, every final stayed.
    payloads = [e.payload for e in spool.read_after(0, 100)]
    assert payloads == [b"f0", b"f1", b"f2", b"p2", b"f3", b"p3"]
    assert spool.dropped_low == 2 and spool.dropped_high == 0
    with caplog.at_level(logging.ERROR, logger="edge.sinks.spool"):
        for i in range(4, 8):
            spool.append("final", f"f{i}".encode(), priority=PRIORITY_HIGH)
    payloads = [e.payload for e in spool.read_after(0, 100)]
    assert payloads == [b"f2", b"f3", b"f4", b"f5", b"f6", b"f7"]
    assert spool.dropped_low == 4 and spool.dropped_high == 2
    assert "DROPPED FINAL EVENT" in caplog.text
    spool.close()


def test_spool_byte_bound(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=100)
    for i in range(10):
        spool.append("t", bytes([i]) * 30)
    assert spool.size_bytes <= 100 and len(spool) == 3
    assert [e.payload[0] for e in spool.read_after(0, 10)] == [7, 8, 9]
    with pytest.raises(SpoolError, match="exceeds"):
        spool.append("t", b"x" * 101)
    spool.close()


def test_spool_full_sink_keeps_finals(mosquitto, tmp_path):  # type: ignore[no-untyped-def]
    mosquitto.kill()
    sink = make_sink(mosquitto, tmp_path / "spool", spool_max_entries=10)
    for i in range(10):
        sink.publish_event(event(i, "provisional"))
    finals = [event(100 + i) for i in range(4)]
    for e in finals:
        sink.publish_event(e)  # 2 rows each (events + retained plate)
    rows = sink.spool.read_after(0, 100)
    kept_finals = [
        json.loads(r.payload)["event_id"]
        for r in rows
        if r.topic.endswith("/events") and json.loads(r.payload)["type"] == "final"
    ]
    assert kept_finals == [e.event_id for e in finals]
    assert len(rows) == 10
    sink.close(0.5)


# ----------------------------------------------------------------------- TLS and credentials


def test_tls_and_password(secure_broker, mqtt_consumer, tmp_path):  # type: ignore[no-untyped-def]
    # Plain listener (the fixture's port) for the test consumer; TLS listener for the sink.
    broker, tls_port, certs = secure_broker
    consumer = mqtt_consumer(broker, ["platewatch/#"], username="cam", password="s3cret")
    sink = MqttSink(
        host="127.0.0.1",
        port=tls_port,
        username="cam",
        password="s3cret",
        tls_ca_certs=str(certs["ca"]),
        spool_dir=tmp_path / "spool",
        reconnect_min_s=0.2,
        reconnect_max_s=1.0,
    )
    assert sink.settings.use_tls
    e = event(1)
    sink.publish_event(e)
    assert sink.flush(5)
    assert consumer.wait_for(lambda ms: len(ms) >= 3, 5)
    assert ids_on(consumer, f"platewatch/{DEVICE}/gate/events") == [e.event_id]
    sink.close()

    # Wrong password: refused, never connected, the event waits in the spool.
    bad = MqttSink(
        host="127.0.0.1",
        port=tls_port,
        username="cam",
        password="nope",
        tls_ca_certs=str(certs["ca"]),
        spool_dir=tmp_path / "spool2",
        reconnect_min_s=0.2,
        reconnect_max_s=1.0,
    )
    bad.publish_event(event(2))
    time.sleep(0.8)
    assert not bad.connected and bad.pending() == 2
    bad.close(0.5)
    with pytest.raises(ValueError, match="tls.ca\n.*file not found"):
        MqttSettings(tls_ca_certs=str(tmp_path / "missing.pem"))
