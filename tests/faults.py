"""Fault scenarios with real servers, shared by the fault tests (tests/integration/test_faults.py,
short forms) and the fault benchmark (benchmarks/faults.py, the long forms and the table).

Each scenario returns `Counts`: what the pipeline published (``expected``, from a JSON Lines tap
that sees every event before MQTT does), what a subscriber got (``delivered``, distinct event
ids), how many came more than once (``duplicated``, QoS 1 redeliveries with the same event_id),
and ``lost``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support import DEVICE, Mosquitto, MqttConsumer, free_port, wait_until

REPO = Path(__file__).resolve().parents[1]
RTSP_SERVER = Path(__file__).resolve().parent / "servers" / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"


@dataclass
class Counts:
    scenario: str
    expected: int
    delivered: int
    duplicated: int
    lost: int
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def of(
        scenario: str, expected_ids: list[str], received_ids: list[str], notes: str = ""
    ) -> Counts:
        exp = set(expected_ids)
        got = [i for i in received_ids if i in exp]
        return Counts(
            scenario,
            len(exp),
            len(set(got)),
            len(got) - len(set(got)),
            len(exp - set(got)),
            notes,
        )

    def row(self) -> str:
        return (
            f"| {self.scenario} | {self.expected} | {self.delivered} | {self.duplicated} | "
            f"{self.lost} | {self.notes} |"
        )


TABLE_HEAD = (
    "| scenario | expected | delivered | duplicated | lost | notes |\n|---|---|---|---|---|---|"
)


def event_ids(consumer: MqttConsumer, topic: str = f"platewatch/{DEVICE}/gate/events") -> list[str]:
    return [json.loads(m.payload)["event_id"] for m in consumer.on(topic)]


def jsonl_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(x)["event_id"] for x in path.read_text().splitlines() if x.strip()]


# ----------------------------------------------------------------------------- brokers


def run_broker_outage(
    clip: Path,
    truth: object,
    tmp: Path,
    make_broker: Callable[..., Mosquitto],
    *,
    persistent: bool,
    outage_s: float | None,
    label: str,
) -> Counts:
    """The clip in real time through the pipeline; the broker is SIGKILLed once the first event
    went through and started again ``outage_s`` later (None: no fault, the baseline)."""
    from doubles import OracleEngine

    from edge.app.assembly import build_pipeline
    from edge.config.schema import AppConfig, CameraConfig
    from edge.sinks.base import MultiSink
    from edge.sinks.jsonl import JsonlSink
    from edge.sinks.mqtt import MqttSink

    broker = make_broker(persistent=persistent)
    consumer = MqttConsumer(broker, ["platewatch/+/+/events"], clean=False)
    consumer.client.reconnect_delay_set(0.1, 0.2)  # back before the sink (see below)
    consumer.start()
    tap = tmp / f"{label}.jsonl"
    # The sink reconnects more slowly than the consumer: a broker that forgot its sessions
    # (persistence off) only delivers to subscribers connected when a message arrives.
    sink = MqttSink(
        host=broker.host,
        port=broker.port,
        spool_dir=tmp / f"{label}-spool",
        reconnect_min_s=1.0,
        reconnect_max_s=2.0,
    )
    cfg = AppConfig(
        cameras=[CameraConfig(name="gate", source=str(clip), realtime=True, sample_every=2)]
    )
    pipe = build_pipeline(
        cfg,
        engine=OracleEngine(truth, error_rate=0.2),
        sink=MultiSink([JsonlSink(tap), sink]),
        stats_interval_s=1.0,
        strict=True,
    )
    pipe.start()
    try:
        if outage_s is not None:
            assert consumer.wait_for(lambda ms: len(ms) >= 1, 60), "no event before the outage"
            broker.kill()
            time.sleep(outage_s)
            broker.start()
        assert pipe.wait(timeout=(outage_s or 0) + 120), "the clip did not end"
    finally:
        summary = pipe.stop(drain_s=30.0)
    expected = jsonl_ids(tap)
    wait_until(lambda: set(expected) <= set(event_ids(consumer)), 15)
    time.sleep(0.5)  # a late duplicate would show now
    consumer.stop()
    notes = "baseline" if outage_s is None else f"broker down {outage_s:g} s"
    notes += ", persistence on" if persistent else ", persistence off"
    c = Counts.of(label, expected, event_ids(consumer), notes)
    c.extra["undelivered_at_stop"] = summary.undelivered
    c.extra["finals"] = sorted(
        json.loads(x)["plate"]
        for x in tap.read_text().splitlines()
        if x.strip() and json.loads(x)["type"] == "final"
    )
    return c


class SilentBroker:
    """Accepts TCP and never answers CONNECT for ``silent_s`` seconds; after that it forwards
    every new connection to a real broker (a hung broker that recovers)."""

    def __init__(self, target: Mosquitto, silent_s: float) -> None:
        self.target = target
        self.port = free_port()
        self.until = time.monotonic() + silent_s
        self.accepted = 0
        self._sock = socket.create_server(("127.0.0.1", self.port))
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.accepted += 1
            if time.monotonic() < self.until:
                self._held.append(conn)  # read nothing, answer nothing
                continue
            upstream = socket.create_connection((self.target.host, self.target.port))
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        for c in self._held:
            c.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass


def run_silent_broker(tmp: Path, make_broker: Callable[..., Mosquitto], silent_s: float) -> Counts:
    """Events published while the broker accepts TCP but never answers CONNECT wait in the
    spool; when it answers again they are delivered once."""
    from edge.sinks.mqtt import MqttSink

    broker = make_broker()
    consumer = MqttConsumer(broker, ["platewatch/+/+/events"]).start()
    silent = SilentBroker(broker, silent_s)
    sink = MqttSink(
        host="127.0.0.1",
        port=silent.port,
        spool_dir=tmp / "silent-spool",
        keepalive_s=5,  # paho gives up on a CONNECT with no CONNACK after about this long
        reconnect_min_s=0.5,
        reconnect_max_s=1.0,
    )
    events = [sample_event(i) for i in range(10)]
    for e in events:
        sink.publish_event(e)
    try:
        assert not sink.flush(min(2.0, silent_s / 2)), "delivered through a silent broker?"
        ok = sink.flush(silent_s + 30)
    finally:
        sink.close(2.0)
        silent.close()
    wait_until(lambda: len(event_ids(consumer)) >= len(events), 5)
    consumer.stop()
    c = Counts.of(
        "silent broker",
        [e.event_id for e in events],
        event_ids(consumer),
        f"TCP accepted, CONNECT unanswered for {silent_s:g} s; flushed={ok}, "
        f"{silent.accepted} connection attempts",
    )
    return c


def sample_event(i: int) -> Any:
    """A final event for camera gate, track i (for the sink-level scenarios)."""
    from datetime import datetime, timezone

    from edge.events.schema import PlateEvent

    now = datetime.now(timezone.utc)
    return PlateEvent(
        type="final",
        camera="gate",
        track_id=i,
        plate=f"AB{i:03d}CD",
        confidence=0.9,
        char_confidences=[0.9] * 7,
        first_seen=now,
        last_seen=now,
        first_frame=0,
        last_frame=1,
        plate_box=[1, 1, 20, 10],
    )


# ----------------------------------------------------------------------------- process crash


def run_config(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    """``platewatch run --config cfg`` as a real child process (its own Python, no mocks)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--config", str(cfg), "--log-level", "INFO"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
        cwd=REPO,
    )


def spool_rows(spool_dir: Path, topic_like: str = "%/events") -> list[str]:
    """Event ids waiting in a spool (read-only; the owner may be running or dead)."""
    db = spool_dir / "spool.sqlite3"
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        rows = con.execute(
            "SELECT payload FROM spool WHERE topic LIKE ? ORDER BY seq", (topic_like,)
        ).fetchall()
    except sqlite3.Error:
        return []
    finally:
        con.close()
    return [json.loads(bytes(r[0]))["event_id"] for r in rows]


def crash_config(tmp: Path, port: int, models: Path, clip: Path) -> Path:
    cfg = tmp / "run.yaml"
    cfg.write_text(
        "cameras:\n"
        f"  - {{name: gate, source: '{clip}', loop: true, sample_every: 2}}\n"
        f"models: {{detector: {models}/detector.onnx, reader: {models}/reader.onnx}}\n"
        "voting: {reappear_window_s: 0}\n"  # every loop of the clip makes new events
        f"mqtt: {{host: 127.0.0.1, port: {port}, spool_dir: {tmp / 'spool'}, "
        "reconnect_min_s: 0.2, reconnect_max_s: 0.5}\n"
        f"sinks: {{jsonl: {tmp / 'published.jsonl'}}}\n"
    )
    return cfg


def run_sigkill_while_spooled(
    tmp: Path, make_broker: Callable[..., Mosquitto], models: Path, clip: Path, min_spooled: int
) -> Counts:
    """SIGKILL of `platewatch run` while the broker is down and events wait in the spool; the
    restarted service (a sink on the same spool) delivers every one of them exactly once."""
    from edge.sinks.mqtt import MqttSink

    port = free_port()
    proc = run_config(crash_config(tmp, port, models, clip), tmp / "run.log")
    try:
        ok = wait_until(lambda: len(spool_rows(tmp / "spool")) >= min_spooled, 120, 0.2)
        assert ok, (tmp / "run.log").read_text()[-2000:]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    spooled = spool_rows(tmp / "spool")
    broker = make_broker(port=port)
    consumer = MqttConsumer(broker, ["platewatch/+/+/events"]).start()
    sink = MqttSink(host=broker.host, port=port, spool_dir=tmp / "spool")
    assert sink.flush(30), f"{sink.pending()} left"
    sink.close()
    wait_until(lambda: len(event_ids(consumer)) >= len(spooled), 10)
    time.sleep(0.3)
    consumer.stop()
    c = Counts.of(
        "SIGKILL of run, broker down",
        spooled,
        event_ids(consumer),
        f"{len(spooled)} events spooled at the kill, delivered by the restarted sink",
    )
    c.extra["published_before_kill"] = len(jsonl_ids(tmp / "published.jsonl"))
    return c


def run_sigkill_while_delivering(
    tmp: Path, make_broker: Callable[..., Mosquitto], models: Path, clip: Path, min_received: int
) -> Counts:
    """SIGKILL of `platewatch run` while it delivers to a live broker: after the restart nothing
    is lost; what was in flight at the kill may come once more, with its event_id."""
    from edge.sinks.mqtt import MqttSink

    broker = make_broker()
    consumer = MqttConsumer(broker, ["platewatch/+/+/events"]).start()
    proc = run_config(crash_config(tmp, broker.port, models, clip), tmp / "run.log")
    try:
        ok = consumer.wait_for(lambda ms: len(ms) >= min_received, 120)
        assert ok, (tmp / "run.log").read_text()[-2000:]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    unacked = len(spool_rows(tmp / "spool"))  # sent or not, no PUBACK had removed them
    sink = MqttSink(host=broker.host, port=broker.port, spool_dir=tmp / "spool")
    assert sink.flush(30)
    sink.close()
    published = jsonl_ids(tmp / "published.jsonl")
    wait_until(lambda: set(published) <= set(event_ids(consumer)), 10)
    time.sleep(0.3)
    consumer.stop()
    c = Counts.of(
        "SIGKILL of run, broker up",
        published,
        event_ids(consumer),
        f"{unacked} events unacknowledged at the kill (only those may repeat, same event_id)",
    )
    c.extra["unacked_at_kill"] = unacked
    return c


# ----------------------------------------------------------------------------- RTSP


class RtspServer:
    """gst-rtsp-server in a child process (tests/servers/rtsp_server.py); restartable on its
    port; ``freeze`` SIGSTOPs it (the connection stays open, no frames come)."""

    def __init__(self, port: int | None = None, fps: int = 25) -> None:
        self.port = port or free_port()
        self.fps = fps
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/live"

    def start(self) -> RtspServer:
        wait_until(lambda: not _port_open(self.port), 3.0)
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(RTSP_SERVER), str(self.port), "--fps", str(self.fps)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"RTSP server did not start: {line!r}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def rtsp_available() -> str | None:
    """Why the RTSP tests cannot run here, or None."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} (Debian's python3) not found"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0');"
         "from gi.repository import GstRtspServer, Gst; Gst.init(None);"
         "assert Gst.ElementFactory.find('x264enc') and Gst.ElementFactory.find('rtph264pay')"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if probe.returncode != 0:
        return (
            "RTSP tests need Debian's gir1.2-gst-rtsp-server-1.0 python3-gi "
            "gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly"
        )
    return None
