"""``platewatch replay`` / ``run`` / ``check-config`` / ``demo`` end to end on a small clip.

The CLI runs use the stand-in ONNX models (tests/standin_models.py), so they check the plumbing
(JSON Lines file, annotated video, summary, exit codes) with real ONNX Runtime inference;
`replay_file` with the truth-based OracleEngine checks that the events in the file are right.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import pytest
from doubles import OracleEngine
from standin_models import make_detector, make_reader
from support import DEVICE

from edge.app.replay import camera_name_for, replay_file
from edge.cli import main as cli_main
from edge.cli.common import parse_host_port
from edge.sinks.jsonl import JsonlSink


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    video = pytest.importorskip("training.synth.video")
    path = tmp_path_factory.mktemp("replay") / "tiny clip.mp4"
    truth = video.render_clip(path, width=480, height=272, fps=25, seconds=4, n_vehicles=2, seed=3)
    return path, truth


@pytest.fixture(scope="module")
def standin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("models")
    # a vehicle and a plate inside it, in 64x64 letterbox pixels
    make_detector(d / "detector.onnx", [(8, 20, 56, 50, 0, 0.9), (24, 40, 40, 46, 1, 0.8)])
    make_reader(d / "reader.onnx", "AB123CD")
    return d


def _frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_replay_cli_writes_events_and_annotated_video(
    tiny_clip, standin_dir, tmp_path, validate_message, capsys
) -> None:  # type: ignore[no-untyped-def]
    clip, truth = tiny_clip
    events, annotated = tmp_path / "out" / "events.jsonl", tmp_path / "ann.mp4"
    events.parent.mkdir()
    events.write_text("stale line from an earlier run\n")
    rc = cli_main(
        [
            "replay",
            str(clip),
            "--models",
            str(standin_dir),
            "--events",
            str(events),
            "--annotate",
            str(annotated),
            "--sample-every",
            "2",
            "--no-progress",
        ]
    )
    assert rc == 0
    lines = events.read_text().splitlines()
    objs = [json.loads(line) for line in lines]  # the stale line is gone: a fresh file
    assert [o["type"] for o in objs] == ["provisional", "final"]  # one static stand-in plate
    for o in objs:
        validate_message(o, "plate_event.schema.json")
        assert o["camera"] == "tiny_clip" and o["plate"] == "AB123CD"
        assert o["crop_jpeg_b64"]
    assert _frames(annotated) == truth.frame_count == _frames(clip)
    err = capsys.readouterr().err
    assert f"{truth.frame_count} frames of {truth.frame_count}" in err
    assert "1 final, 1 provisional" in err


def test_replay_file_events_match_truth(tiny_clip, tmp_path) -> None:  # type: ignore[no-untyped-def]
    clip, truth = tiny_clip
    out = tmp_path / "events.jsonl"
    result = replay_file(
        clip,
        OracleEngine(truth, error_rate=0.3),
        [JsonlSink(out)],
        camera="gate",
        progress=False,
        install_signals=False,
        strict=True,
    )
    assert result.summary.frames == truth.frame_count and not result.interrupted
    finals = [json.loads(x) for x in out.read_text().splitlines()]
    finals = [o for o in finals if o["type"] == "final"]
    assert sorted(o["plate"] for o in finals) == sorted(v.text for v in truth.vehicles)
    for o in finals:  # frame numbers and video time are the file's
        assert 0 <= o["first_frame"] <= o["last_frame"] < truth.frame_count
        assert o["video_time_s"] <= truth.frame_count / truth.fps


def test_run_and_check_config(tiny_clip, standin_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    clip, _ = tiny_clip
    cfg = tmp_path / "cameras.yaml"
    cfg.write_text(
        "cameras:\n"
        f"  - name: a\n    source: '{clip}'\n    sample_every: 3\n"
        f"  - name: b\n    source: '{clip}'\n    motion_gate: true\n"
        "models:\n"
        f"  detector: {standin_dir}/detector.onnx\n  reader: {standin_dir}/reader.onnx\n"
        "sinks:\n  jsonl: out/events.jsonl\n"
    )
    assert cli_main(["check-config", str(cfg)]) == 0
    assert cli_main(["run", "--config", str(cfg), "--log-level", "WARNING"]) == 0
    objs = [json.loads(x) for x in (tmp_path / "out" / "events.jsonl").read_text().splitlines()]
    # two cameras, one shared model: each ended with its own final
    assert sorted(o["camera"] for o in objs if o["type"] == "final") == ["a", "b"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras:\n  - name: a\n    sorce: x\n")
    assert cli_main(["run", "--config", str(bad)]) == 2


def test_demo_with_video_and_no_broker(tiny_clip, standin_dir, capsys) -> None:  # type: ignore[no-untyped-def]
    clip, _ = tiny_clip
    rc = cli_main(
        [
            "demo",
            "--video",
            str(clip),
            "--models",
            str(standin_dir),
            "--no-broker",
            "--no-progress",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out.splitlines()
    assert [json.loads(x)["type"] for x in out] == ["provisional", "final"]


def test_demo_publishes_to_embedded_broker(tiny_clip, standin_dir, capsys) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("amqtt")
    from edge.app.broker import free_port

    port = free_port()
    rc = cli_main(
        [
            "demo",
            "--video",
            str(clip_path(tiny_clip)),
            "--models",
            str(standin_dir),
            "--port",
            str(port),
            "--no-progress",
        ]
    )
    assert rc == 0
    captured = capsys.readouterr()
    assert f"mosquitto_sub -h 127.0.0.1 -p {port} -t 'platewatch/#' -v" in captured.err
    assert "embedded MQTT broker" in captured.err


def clip_path(tiny_clip: tuple[Path, object]) -> Path:
    return tiny_clip[0]


def test_helpers() -> None:
    assert camera_name_for("/x/my clip (1).mp4") == "my_clip_1"
    assert camera_name_for("/x/__.mp4") == "replay"
    assert parse_host_port("broker:1884") == ("broker", 1884)
    assert parse_host_port("10.0.0.2") == ("10.0.0.2", 1883)
    assert parse_host_port("[::1]:8883") == ("::1", 8883)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_host_port("host:99999")


def test_demo_publishes_to_given_broker(tiny_clip, standin_dir, mosquitto, mqtt_consumer) -> None:  # type: ignore[no-untyped-def]
    consumer = mqtt_consumer(mosquitto, ["platewatch/#"])
    rc = cli_main(
        [
            "demo",
            "--video",
            str(clip_path(tiny_clip)),
            "--models",
            str(standin_dir),
            "--mqtt",
            f"{mosquitto.host}:{mosquitto.port}",
            "--no-progress",
        ]
    )
    assert rc == 0
    plate = f"platewatch/{DEVICE}/demo/plate"
    assert consumer.wait_for(lambda ms: any(m.topic == plate for m in ms), 5)
    types = [json.loads(m.payload)["type"] for m in consumer.on(f"platewatch/{DEVICE}/demo/events")]
    assert types == ["provisional", "final"]


def _replay_cfg(tmp_path: Path, standin_dir: Path, extra: str) -> Path:
    cfg = tmp_path / "cameras.yaml"
    cfg.write_text(
        "cameras:\n  - name: gate\n    source: rtsp://cam/1\n"
        "models:\n"
        f"  detector: {standin_dir}/detector.onnx\n  reader: {standin_dir}/reader.onnx\n" + extra
    )
    return cfg


def test_replay_config_applies_every_rule_of_the_config(  # type: ignore[no-untyped-def]
    tiny_clip, standin_dir, tmp_path, monkeypatch
) -> None:
    """replay --config builds its pipeline like run does: privacy, history, watchlists and
    zones of the file all apply (they were silently ignored when replay assembled its own)."""
    clip, _ = tiny_clip
    monkeypatch.setenv("PW_REPLAY_KEY", "replay-test-key-0123")
    # privacy on, the stand-in plate on no list: no clear plate in the events, the history or
    # the annotated video's overlay
    cfg = _replay_cfg(
        tmp_path,
        standin_dir,
        "privacy: {enabled: true, key_env: PW_REPLAY_KEY}\n"
        f"history: {{path: {tmp_path / 'h.sqlite3'}}}\n",
    )
    events = tmp_path / "ev.jsonl"
    args = ["replay", str(clip), "--config", str(cfg), "--events", str(events), "--no-progress"]
    assert cli_main(args) == 0
    text = events.read_text()
    assert "AB123CD" not in text and '"plate_hashed":true' in text
    from edge.history.store import HistoryStore

    with HistoryStore(tmp_path / "h.sqlite3", read_only=True) as store:  # replay fills history
        rows = store.search(limit=10)
        assert rows and all(r.plate_hashed and "AB123CD" not in r.plate for r in rows)
    # a deny watchlist: the plate stays readable and the events carry the match
    cfg = _replay_cfg(
        tmp_path, standin_dir, "watchlists:\n  - {name: stolen, kind: deny, entries: [AB123CD]}\n"
    )
    assert cli_main(args[:3] + [str(cfg)] + args[4:]) == 0
    finals = [json.loads(x) for x in events.read_text().splitlines()]
    assert finals and all(o["watchlist"]["name"] == "stolen" for o in finals)
    # zones: a required zone the plate never enters means no event at all
    cfg = _replay_cfg(
        tmp_path,
        standin_dir,
        "",
    )
    cfg.write_text(
        cfg.read_text().replace(
            "source: rtsp://cam/1\n",
            "source: rtsp://cam/1\n    geometry:\n      zones:\n"
            "        - {name: far, points: [[0, 0], [5, 0], [5, 5]]}\n"
            "      require_zones: [far]\n",
        )
    )
    assert cli_main(args[:3] + [str(cfg)] + args[4:]) == 0
    assert events.read_text() == ""


def test_replay_refuses_a_config_when_whose_camera_is_unclear(  # type: ignore[no-untyped-def]
    tiny_clip, standin_dir, tmp_path, capsys
) -> None:
    clip, _ = tiny_clip
    cfg = _replay_cfg(tmp_path, standin_dir, "")
    cfg.write_text(
        cfg.read_text().replace("cameras:\n", "cameras:\n  - {name: other, source: 0}\n")
    )
    assert cli_main(["replay", str(clip), "--config", str(cfg), "--no-progress"]) == 2
    assert "--camera NAME" in capsys.readouterr().err
    events = tmp_path / "ev.jsonl"
    rc = cli_main(
        ["replay", str(clip), "--config", str(cfg), "--camera", "gate", "--events", str(events),
         "--no-progress"]
    )  # fmt: skip
    assert rc == 0 and all(json.loads(x)["camera"] == "gate" for x in events.read_text().split())


def test_annotated_video_hides_unlisted_plates_under_privacy(  # type: ignore[no-untyped-def]
    tiny_clip, standin_dir, tmp_path, monkeypatch
) -> None:
    from edge.app.annotate import draw_overlays

    drawn: list[str] = []
    real = draw_overlays

    def spy(image, overlays, header=None):  # type: ignore[no-untyped-def]
        drawn.extend(o.plate for o in overlays if o.plate)
        return real(image, overlays, header)

    monkeypatch.setattr("edge.app.annotate.draw_overlays", spy)
    monkeypatch.setenv("PW_REPLAY_KEY", "replay-test-key-0123")
    clip, _ = tiny_clip
    cfg = _replay_cfg(tmp_path, standin_dir, "privacy: {enabled: true, key_env: PW_REPLAY_KEY}\n")
    args = ["replay", str(clip), "--config", str(cfg), "--annotate", str(tmp_path / "a.mp4")]
    assert cli_main([*args, "--no-progress", "--events", str(tmp_path / "e.jsonl")]) == 0
    assert drawn and not any("AB123CD" in p for p in drawn)
    assert all(p.startswith("#") for p in drawn)


@pytest.mark.parametrize("content", [b"", b"hello, not a video\n", "cut"])
def test_unusable_videos_exit_non_zero(  # type: ignore[no-untyped-def]
    content, standin_dir, tmp_path, capsys
) -> None:
    bad = tmp_path / "bad.mp4"
    if content == "cut":  # the first 2 MB of the demo clip: no index, nothing decodable
        repo = Path(__file__).resolve().parents[2]
        bad.write_bytes((repo / "samples" / "demo.mp4").read_bytes()[:2_000_000])
    else:
        bad.write_bytes(content)  # type: ignore[arg-type]
    rc = cli_main(["replay", str(bad), "--models", str(standin_dir), "--no-progress"])
    assert rc == 1
    assert "no frame could be read from" in capsys.readouterr().err


def test_run_whose_only_camera_cannot_work_exits_non_zero(  # type: ignore[no-untyped-def]
    standin_dir, tmp_path, capfd
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "cameras:\n  - name: a\n    source: missing.mp4\n"
        f"models:\n  detector: {standin_dir}/detector.onnx\n  reader: {standin_dir}/reader.onnx\n"
    )
    assert cli_main(["check-config", str(cfg)]) == 0
    assert "warning: file not found here" in capfd.readouterr().out
    assert cli_main(["run", "--config", str(cfg)]) == 1
    err = capfd.readouterr().err
    assert "camera a delivered no frame: video file not found" in err
    # every log line once (the CLI's console handler and run's own used to both print it)
    assert err.count("camera a delivered no frame") == 1


def test_replay_waits_for_the_spool_and_says_what_is_left(  # type: ignore[no-untyped-def]
    tiny_clip, standin_dir, tmp_path, capsys
) -> None:
    from support import free_port

    clip, _ = tiny_clip
    port = free_port()  # nobody listens: every event stays spooled
    rc = cli_main(
        ["replay", str(clip), "--models", str(standin_dir), "--mqtt", f"127.0.0.1:{port}",
         "--spool", str(tmp_path / "spool"), "--drain-timeout", "0.5", "--no-progress"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and "not delivered within --drain-timeout 0.5 s" in err
    assert "MQTT cannot connect to 127.0.0.1" in err  # the refusal, with its reason, once
    assert err.count("MQTT cannot connect") == 1


def test_data_commands_fail_with_a_message(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    labels = tmp_path / "labels"
    labels.mkdir()
    img = labels / "a.jpg"
    cv2.imwrite(str(img), __import__("numpy").zeros((40, 80, 3), "uint8"))
    (labels / "a.xml").write_text(
        "<annotation><filename>a.jpg</filename><size><width>80</width><height>40</height>"
        "</size><object><name>plate</name><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>40</xmax>"
        "<ymax>20</ymax></bndbox></object></annotation>"
    )
    out = tmp_path / "yolo"
    assert cli_main(["import-labels", str(labels), "--to-yolo", str(out)]) == 0
    assert cli_main(["import-labels", str(labels), "--to-yolo", str(out)]) == 2
    assert "is not empty: choose another output folder, or --overwrite" in capsys.readouterr().err
    readme = Path(__file__).resolve().parents[2] / "README.md"
    assert cli_main(["extract-frames", str(readme), str(tmp_path / "frames")]) == 2
    assert "platewatch extract-frames: error:" in capsys.readouterr().err
