"""Operator rules wired into the runtime: zones, direction, watchlists, alerts, privacy, history,
Home Assistant discovery.

The analyzer-level tests feed `CameraAnalyzer` frame by frame (no threads) and deliver its
decisions with `Delivery`, as the pipeline does. The end-to-end test runs `build_pipeline` (the
assembly path of ``platewatch run``) on a YAML configuration with a scripted engine and a fake file
source
(five cars, each a vehicle box with its plate moving through the frame) against a real mosquitto
broker, and checks what arrives on the broker and in the SQLite history.
"""

from __future__ import annotations

import json
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from support import DEVICE

from edge.analysis.analyzer import CameraAnalyzer
from edge.app.assembly import build_pipeline
from edge.app.delivery import Delivery
from edge.capture.sources import SourceRead
from edge.config.loader import parse_config
from edge.detect.alpr import build_result
from edge.events.config import EventsConfig
from edge.history.store import HistoryStore
from edge.integrations.homeassistant import discovery_messages
from edge.rules.privacy import keyed_hash
from edge.rules.watchlist import Watchlists
from edge.rules.zones import CameraGeometryConfig
from edge.sinks.mqtt import MqttSink
from edge.types import Frame, FrameResult, TextRead
from edge.vote.config import VotingConfig

W, H = 640, 360
FPS = 25.0
PRIVACY_KEY = "0123456789abcdef-test-key"


# ----------------------------------------------------------------------------- a scripted scene


@dataclass(frozen=True)
class Car:
    text: str
    start: int  # first frame
    frames: int  # frames in view
    x: float  # left edge of the vehicle box
    y_bottom: float  # bottom of the vehicle box at the first frame
    dy: float  # pixels per frame (positive: down, towards the camera)

    def vehicle_box(self, i: int) -> tuple[float, float, float, float]:
        yb = self.y_bottom + self.dy * (i - self.start)
        return (self.x, yb - 90.0, self.x + 120.0, yb)

    def plate_box(self, i: int) -> tuple[float, float, float, float]:
        x1, _, _, yb = self.vehicle_box(i)
        return (x1 + 30.0, yb - 30.0, x1 + 90.0, yb - 10.0)

    def visible(self, i: int) -> bool:
        return self.start <= i < self.start + self.frames


class ScriptedEngine:
    """Inference from the scene: each visible car's vehicle box and its plate read."""

    def __init__(self, cars: list[Car]) -> None:
        self.cars = cars

    def infer(self, frame: Frame) -> FrameResult:
        vehicles, plates = [], []
        for car in self.cars:
            if car.visible(frame.index):
                vehicles.append((car.vehicle_box(frame.index), 0.9))
                read = TextRead(car.text, 0.95, (0.95,) * len(car.text))
                plates.append((car.plate_box(frame.index), 0.8, read))
        return build_result(frame.image, vehicles, plates)


class SceneSource:
    """A fake video file of ``n`` grey frames at 25 fps (the engine draws nothing from it)."""

    is_live = False
    n = 400

    def __init__(self, cfg: object) -> None:
        self.i = 0
        self.image = np.full((H, W, 3), 90, np.uint8)

    def open(self) -> None:
        pass

    @property
    def fps(self) -> float:
        return FPS

    def read(self) -> SourceRead:
        if self.i >= self.n:
            return SourceRead("eof")
        self.i += 1
        return SourceRead("ok", self.image, self.i - 1, (self.i - 1) / FPS)

    def close(self) -> None:
        pass


# Direction line y=180 across the frame; inside (the property) is below it. The gate lane is the
# middle of the frame; the right strip (x > 560) is a footpath nobody cares about.
GEOMETRY_YAML = """
    geometry:
      zones:
        - {name: gate_lane, points: [[100, 0], [540, 0], [540, 360], [100, 360]]}
      require_zones: [gate_lane]
      direction_line:
        points: [[0, 180], [640, 180]]
        inside_point: [320, 300]
"""

# One car at a time, 80 frames apart: more than the tracker's max_age (30 frames), so a new car
# never continues the previous car's lost track.
CARS = [
    Car("AB123CD", 0, 40, 200, 100, 6.0),  # resident, drives in: entry, allow alert
    Car("GOV123", 80, 40, 300, 340, -6.0),  # deny regex, drives out: exit, deny alert
    Car("AB128CD", 160, 40, 200, 100, 6.0),  # resident with one misread: distance 1
    Car("ZZ999ZZ", 240, 40, 250, 100, 6.0),  # on no list: hashed under privacy
    Car("QQ111QQ", 320, 40, 560, 100, 6.0),  # on the footpath: outside require_zones
]


# ----------------------------------------------------------------------------- analyzer level


IMAGE = np.full((H, W, 3), 90, np.uint8)


def _fa(i: int, cars: list[Car]) -> tuple[Frame, FrameResult]:
    frame = Frame("cam", i, 1_700_000_000.0 + i / FPS, IMAGE, False, i / FPS)
    return frame, ScriptedEngine(cars).infer(frame)


def _run_analyzer(
    an: CameraAnalyzer, cars: list[Car], frames: int, watchlists: Watchlists | None = None
) -> list:
    """The analyzer's decisions, delivered as the pipeline does: the published events."""
    out: list = []
    delivery = Delivery(out.append, events=an.events, watchlists=watchlists)
    for i in range(frames):
        for d in an.update(*_fa(i, cars)):
            delivery.deliver(an, d)
    for d in an.finish():
        delivery.deliver(an, d)
    return [e for e in out if e.__class__.__name__ == "PlateEvent"]


def _geometry(text: str) -> CameraGeometryConfig:
    import yaml

    return CameraGeometryConfig.model_validate(yaml.safe_load(textwrap.dedent(text))["geometry"])


def test_vehicle_crossing_the_line_is_entry_or_exit() -> None:
    cars = CARS[:2]
    an = CameraAnalyzer(
        "cam",
        voting=VotingConfig(reappear_window_s=1),
        geometry=_geometry(GEOMETRY_YAML),
    )
    events = _run_analyzer(an, cars, 160)
    finals = {e.plate: e for e in events if e.type == "final"}
    assert set(finals) == {"AB123CD", "GOV123"}
    assert finals["AB123CD"].direction == "entry"
    assert finals["GOV123"].direction == "exit"
    assert finals["AB123CD"].zones == ["gate_lane"]
    # a provisional is published while the car is still on the far side: direction not known
    prov = [e for e in events if e.type == "provisional" and e.plate == "AB123CD"]
    assert prov and prov[0].direction == "unknown" and prov[0].zones == ["gate_lane"]
    # per-track geometry state is released when tracks end (a months-long run must not grow)
    assert an.geometry is not None and an.geometry.active_tracks == 0


def test_car_that_stops_before_the_line_has_unknown_direction() -> None:
    car = Car("AB123CD", 0, 40, 200, 60, 2.0)  # bottom 60 -> 140: never reaches y=180
    an = CameraAnalyzer("cam", geometry=_geometry(GEOMETRY_YAML))
    finals = [e for e in _run_analyzer(an, [car], 60) if e.type == "final"]
    assert [(e.plate, e.direction) for e in finals] == [("AB123CD", "unknown")]


def test_require_zones_drops_events_outside() -> None:
    # side by side: one on the footpath, one in the gate lane
    cars = [Car("QQ111QQ", 0, 40, 560, 100, 6.0), Car("AB123CD", 0, 40, 200, 100, 6.0)]
    an = CameraAnalyzer("cam", geometry=_geometry(GEOMETRY_YAML))
    events = _run_analyzer(an, cars, 60)
    assert {e.plate for e in events} == {"AB123CD"}  # nothing at all for the footpath car
    assert an.counters.outside_zones >= 1  # its final (and provisional) were dropped
    # without require_zones the same car is reported, with no zone passed
    open_geo = _geometry(GEOMETRY_YAML.replace("require_zones: [gate_lane]", "require_zones: []"))
    an2 = CameraAnalyzer("cam", geometry=open_geo)
    finals = {e.plate: e for e in _run_analyzer(an2, cars, 60) if e.type == "final"}
    assert finals["QQ111QQ"].zones == [] and finals["AB123CD"].zones == ["gate_lane"]


def test_normalized_zones_use_the_frame_size() -> None:
    geo = _geometry(
        """
        geometry:
          normalized: true
          zones:
            - {name: lane, points: [[0.15, 0], [0.85, 0], [0.85, 1], [0.15, 1]]}
          require_zones: [lane]
        """
    )
    an = CameraAnalyzer("cam", geometry=geo)
    finals = [e for e in _run_analyzer(an, CARS[:1], 60) if e.type == "final"]
    assert [(e.plate, e.zones) for e in finals] == [("AB123CD", ["lane"])]


def test_watchlist_match_on_provisional_and_final() -> None:
    wl = Watchlists(
        [{"name": "residents", "kind": "allow", "max_distance": 1, "entries": ["AB123CD"]}]
    )
    an = CameraAnalyzer("cam", events=EventsConfig(crop=False))
    events = _run_analyzer(an, [Car("AB128CD", 0, 40, 200, 100, 6.0)], 60, watchlists=wl)
    assert [e.type for e in events] == ["provisional", "final"]
    for e in events:
        assert e.watchlist is not None
        assert (e.watchlist.name, e.watchlist.kind, e.watchlist.entry, e.watchlist.distance) == (
            "residents",
            "allow",
            "AB123CD",
            1,
        )
    assert events[0].direction is None and events[0].zones == []  # no geometry configured


# ----------------------------------------------------------------------------- end to end


def _config(tmp_path: Path, broker_port: int, provisional: bool = True) -> str:
    return (
        textwrap.dedent(
            """
        cameras:
          - name: gate
            source: clip.mp4
            type: file
        """
        )
        + textwrap.indent(textwrap.dedent(GEOMETRY_YAML), "    ")
        + textwrap.dedent(
            f"""
        mqtt:
          host: 127.0.0.1
          port: {broker_port}
          spool_dir: {tmp_path / "spool"}
          stats_interval_s: 0.5
        voting:
          reappear_window_s: 1
        events:
          provisional: {str(provisional).lower()}
        watchlists:
          - name: residents
            kind: allow
            max_distance: 1
            refire: per_event
            refire_after_s: 30
            entries: [AB123CD]
          - name: stolen
            kind: deny
            max_distance: 0
            refire: interval
            refire_after_s: 60
            entries: ["re:^GOV[0-9]{{3}}$"]
        privacy:
          enabled: true
          key_env: PW_TEST_PRIVACY_KEY
        history:
          path: {tmp_path / "history.sqlite3"}
        homeassistant:
          enabled: true
          discovery_prefix: homeassistant
        """
        )
    )


def test_end_to_end_alerts_privacy_history_and_discovery(  # type: ignore[no-untyped-def]
    tmp_path, monkeypatch, mosquitto, mqtt_consumer, validate_message
) -> None:
    monkeypatch.setenv("PW_TEST_PRIVACY_KEY", PRIVACY_KEY)
    cfg = parse_config(_config(tmp_path, mosquitto.port), base_dir=tmp_path)
    consumer = mqtt_consumer(mosquitto, ["platewatch/#"])
    pipe = build_pipeline(cfg, engine=ScriptedEngine(CARS), source_factory=SceneSource, strict=True)
    summary = pipe.run()
    assert pipe.error is None

    def finals_in(ms: list) -> int:  # (wait_for holds the consumer's lock: no .on() here)
        return sum(
            m.topic == f"platewatch/{DEVICE}/gate/events"
            and json.loads(m.payload)["type"] == "final"
            for m in ms
        )

    def events_on_broker() -> list[dict]:
        return [json.loads(m.payload) for m in consumer.on(f"platewatch/{DEVICE}/gate/events")]

    assert consumer.wait_for(lambda ms: finals_in(ms) >= 4, 10.0), events_on_broker()
    time.sleep(0.3)  # anything late (a duplicate would show now)
    events = events_on_broker()
    for e in events:
        validate_message(e, "plate_event.schema.json")
    finals = [e for e in events if e["type"] == "final"]
    hashed_zz = keyed_hash("ZZ999ZZ", PRIVACY_KEY)
    by_plate = {e["plate"]: e for e in finals}
    # the footpath car (outside require_zones) produced nothing; four finals, one per car
    assert sorted(by_plate) == sorted(["AB123CD", "GOV123", "AB128CD", hashed_zz])
    assert not any("QQ111QQ" in m.payload.decode() for m in consumer.messages)
    assert summary.cameras[0].outside_zones >= 1

    # watchlist fields on the events; direction and zones from the geometry
    ab = by_plate["AB123CD"]
    assert ab["watchlist"] == {
        "name": "residents",
        "kind": "allow",
        "entry": "AB123CD",
        "distance": 0,
        "description": None,
    }
    assert ab["direction"] == "entry" and ab["zones"] == ["gate_lane"]
    assert by_plate["AB128CD"]["watchlist"]["distance"] == 1
    gov = by_plate["GOV123"]
    assert gov["watchlist"]["kind"] == "deny" and gov["watchlist"]["entry"] == "re:^GOV[0-9]{3}$"
    assert gov["direction"] == "exit"

    # privacy: the unlisted plate is a keyed hash without crop, candidates or confidences;
    # listed plates stay readable (a gate must know who it opens for)
    zz = by_plate[hashed_zz]
    assert zz["plate_hashed"] is True and zz["watchlist"] is None
    assert zz["crop_jpeg_b64"] is None and zz["candidates"] == [] and zz["char_confidences"] == []
    assert not any("ZZ999ZZ" in m.payload.decode() for m in consumer.messages)
    assert ab["plate_hashed"] is False and ab["crop_jpeg_b64"]

    # alerts: one per car on a list, fired by the confident provisional (the final of the same
    # track does not fire again), QoS 1 and not retained
    alerts = consumer.on(f"platewatch/{DEVICE}/gate/alerts")
    assert all(m.qos == 1 and not m.retain for m in alerts)
    payloads = [json.loads(m.payload) for m in alerts]
    for p in payloads:
        validate_message(p, "plate_event.schema.json")
    assert sorted(p["plate"] for p in payloads) == ["AB123CD", "AB128CD", "GOV123"]
    assert all(p["type"] == "provisional" for p in payloads)
    assert {p["plate"]: p["watchlist"]["kind"] for p in payloads} == {
        "AB123CD": "allow",
        "AB128CD": "allow",
        "GOV123": "deny",
    }
    assert summary.cameras[0].alerts == 3 and summary.cameras[0].hashed >= 1

    # history: every published final, after privacy (the hashed plate is stored hashed)
    with HistoryStore(tmp_path / "history.sqlite3", read_only=True) as store:
        rows = store.search(limit=100)
        assert sorted(r.plate for r in rows) == sorted(by_plate)
        stored = {r.plate: r for r in rows}
        assert stored["AB123CD"].direction == "entry"
        assert stored["AB123CD"].watchlist == "residents" and stored["AB123CD"].has_crop
        assert stored[hashed_zz].plate_hashed and not stored[hashed_zz].has_crop
        assert {r.event_id for r in rows} == {e["event_id"] for e in finals}

    # Home Assistant discovery: retained on the broker after the runtime connected (a client
    # subscribing later still gets every config message, flagged retained)
    late = mqtt_consumer(mosquitto, ["homeassistant/#"])
    expected = {t for t, _, _ in discovery_messages(["gate"])}
    assert late.wait_for(lambda ms: {m.topic for m in ms} >= expected, 5.0)
    assert all(m.retain for m in late.messages)
    plate_cfg = json.loads(late.on("homeassistant/sensor/platewatch_gate/plate/config")[0].payload)
    assert plate_cfg["state_topic"] == f"platewatch/{DEVICE}/gate/plate"


def test_alerts_fire_on_finals_when_provisionals_are_off(  # type: ignore[no-untyped-def]
    tmp_path, monkeypatch, mosquitto, mqtt_consumer
) -> None:
    monkeypatch.setenv("PW_TEST_PRIVACY_KEY", PRIVACY_KEY)
    cfg = parse_config(_config(tmp_path, mosquitto.port, provisional=False), base_dir=tmp_path)
    consumer = mqtt_consumer(mosquitto, [f"platewatch/{DEVICE}/gate/alerts"])
    pipe = build_pipeline(
        cfg, engine=ScriptedEngine(CARS[:2]), source_factory=SceneSource, strict=True
    )
    pipe.run()
    assert consumer.wait_for(lambda ms: len(ms) >= 2, 10.0)
    time.sleep(0.3)
    payloads = [json.loads(m.payload) for m in consumer.messages]
    assert sorted((p["plate"], p["type"]) for p in payloads) == [
        ("AB123CD", "final"),
        ("GOV123", "final"),
    ]


def test_privacy_without_a_key_refuses_to_start(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from edge.config.loader import ConfigError
    from edge.rules.privacy import PrivacyConfig, PrivacyError, resolve_key

    monkeypatch.delenv("PW_TEST_PRIVACY_KEY", raising=False)
    # the configuration itself is refused, with the line of the privacy section
    with pytest.raises(ConfigError, match="privacy: enabled without a key.*PW_TEST_PRIVACY_KEY"):
        parse_config(_config(tmp_path, 1883), base_dir=tmp_path)
    # and a key that disappears after the config was read still stops the start
    monkeypatch.setenv("PW_TEST_PRIVACY_KEY", "k")
    cfg = PrivacyConfig(enabled=True, key_env="PW_TEST_PRIVACY_KEY")
    monkeypatch.delenv("PW_TEST_PRIVACY_KEY")
    with pytest.raises(PrivacyError, match="PW_TEST_PRIVACY_KEY"):
        resolve_key(cfg)


def test_discovery_is_republished_on_every_connect(  # type: ignore[no-untyped-def]
    tmp_path, mosquitto, mqtt_consumer
) -> None:
    """A broker restarted without persistence forgets retained messages: the sink publishes the
    discovery again when it reconnects, so Home Assistant finds the entities again."""
    msgs = discovery_messages(["gate", "exit"])
    sink = MqttSink(
        host=mosquitto.host,
        port=mosquitto.port,
        spool_dir=tmp_path / "spool",
        reconnect_min_s=0.2,
        reconnect_max_s=0.5,
        discovery=msgs,
    )
    try:
        first = mqtt_consumer(mosquitto, ["homeassistant/#"])
        assert first.wait_for(lambda ms: len(ms) >= len(msgs), 5.0)
        assert sink.connections == 1
        mosquitto.restart()  # persistence off: every retained message is gone
        deadline = time.monotonic() + 10
        while sink.connections < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sink.connections >= 2
        time.sleep(0.3)
        late = mqtt_consumer(mosquitto, ["homeassistant/#"])
        assert late.wait_for(lambda ms: {m.topic for m in ms} == {t for t, _, _ in msgs}, 5.0)
        assert all(m.retain for m in late.messages)
    finally:
        sink.close(1.0)


# ----------------------------------------------------------------------------- configuration


def test_example_config_has_the_operator_sections(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from edge.config.loader import load_config
    from edge.config.schema import REPO_ROOT

    monkeypatch.delenv("MQTT_HOST", raising=False)
    cfg = load_config(REPO_ROOT / "examples" / "cameras.yaml")
    assert [w.name for w in cfg.watchlists] == ["residents", "stolen"]
    assert Watchlists(cfg.watchlists).match("AB123CO") is not None  # fuzzy + O/0 folding
    geo = cfg.camera("entrance").geometry
    assert geo is not None and geo.require_zones and geo.direction_line is not None
    assert cfg.history is not None and cfg.history.path == REPO_ROOT / "runs" / "history.sqlite3"
    assert cfg.privacy.enabled is False and cfg.homeassistant.discovery_prefix == "homeassistant"
    assert cfg.watchdog.enabled and cfg.watchdog.capture_stall_s > 0


def test_operator_config_errors_name_field_and_line(tmp_path: Path) -> None:
    from edge.config.loader import ConfigError

    text = textwrap.dedent(
        """
        cameras:
          - name: gate
            source: rtsp://cam/1
            geometry:
              zones:
                - {name: lane, points: [[0, 0], [10, 0], [10, 10]]}
              require_zones: [lanes]
        watchlists:
          - name: a
            kind: maybe
            entries: ["re:(["]
        privacy:
          enabeld: true
        history:
          max_rows: 0
        homeassistant:
          enabled: true
        """
    ).lstrip("\n")
    with pytest.raises(ConfigError) as e:
        parse_config(text, file="cams.yaml")
    errors = e.value.errors
    assert (
        "cams.yaml:4: cameras[0].geometry: require_zones names unknown zone(s) ['lanes']"
        in (errors[0])
    )
    assert any(x.startswith("cams.yaml:10: watchlists[0].kind:") for x in errors)
    assert any(x.startswith("cams.yaml:11: watchlists[0].entries[0]:") for x in errors)
    assert any(
        "cams.yaml:13: privacy.enabeld: unknown key" in x and "'enabled'" in x for x in errors
    )
    assert any(x.startswith("cams.yaml:15: history.max_rows:") for x in errors)
    # cross-section rule (reported once the sections themselves are valid)
    ok = (
        text.split("watchlists:")[0].replace("[lanes]", "[lane]")
        + "homeassistant:\n  enabled: true\n"
    )
    with pytest.raises(ConfigError) as e2:
        parse_config(ok, file="cams.yaml")
    assert e2.value.errors == [
        "cams.yaml:9: homeassistant.enabled: Home Assistant discovery is published over MQTT: "
        "add an 'mqtt:' section"
    ]
