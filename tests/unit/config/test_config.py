"""Configuration: the example loads; every error names the field and its YAML line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from edge.capture.sources import SourceKind
from edge.cli.check_config import check_config, main
from edge.config.loader import ConfigError, load_config, parse_config, substitute_env
from edge.config.schema import AppConfig
from edge.vote.config import VotingConfig

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "cameras.yaml"


def write(tmp_path: Path, text: str, name: str = "cameras.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return p


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_config(path)
    return e.value.errors


def test_example_config_loads(monkeypatch) -> None:
    monkeypatch.delenv("MQTT_HOST", raising=False)
    cfg = load_config(EXAMPLE)
    assert isinstance(cfg, AppConfig) and len(cfg.cameras) >= 2
    names = [c.name for c in cfg.cameras]
    assert len(set(names)) == len(names)
    entrance = cfg.camera("entrance")
    assert entrance.kind is SourceKind.STREAM and entrance.is_live
    assert entrance.reconnect.max_s >= entrance.reconnect.initial_s
    assert cfg.mqtt is not None and cfg.mqtt.host == "localhost"  # ${MQTT_HOST:-localhost}
    # relative paths are resolved against the YAML file's folder, not the cwd
    assert cfg.models.detector == REPO / "models" / "detector.onnx"
    assert cfg.models.backend_for(cfg.models.detector) == "onnxruntime"
    assert cfg.cameras[0].kind is SourceKind.FILE
    assert Path(str(cfg.cameras[0].source)).is_absolute()


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "cameras: [{name: cam1, source: 0}]\n"))
    cam = cfg.cameras[0]
    assert cam.kind is SourceKind.USB and cam.sample_every == 1 and cam.queue_size >= 1
    assert cfg.mqtt is None and cfg.sinks.jsonl is None
    assert cfg.models.detector.name == "detector.onnx" and cfg.models.threads == 1


def test_missing_field_names_field_and_line(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
        cameras:
          - name: gate
            source: a.mp4
          - name: door
            fps: 10
        """,
    )
    errs = errors_of(p)
    assert errs == [f"{p}:4: cameras[1].source: field required"]


def test_wrong_type_names_field_and_line(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
        cameras:
          - name: gate
            source: a.mp4
        mqtt:
          host: broker
          port: not-a-port
        """,
    )
    (err,) = errors_of(p)
    assert err.startswith(f"{p}:6: mqtt.port: ") and "integer" in err


def test_unknown_key_is_an_error_with_suggestion(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
        cameras:
          - name: gate
            source: a.mp4
            sample_evry: 3
        """,
    )
    (err,) = errors_of(p)
    hint = "unknown key 'sample_evry' (did you mean 'sample_every'?)"
    assert err == f"{p}:4: cameras[0].sample_evry: {hint}"


def test_unknown_top_level_key_lists_valid_keys(tmp_path: Path) -> None:
    p = write(tmp_path, "cameras: [{name: a, source: 0}]\nfoo: 1\n")
    (err,) = errors_of(p)
    assert err.startswith(f"{p}:2: foo: unknown key 'foo'") and "cameras" in err


def test_several_errors_are_all_reported_in_line_order(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
        cameras:
          - name: "bad/name"
            source: [1, 2]
            reconnect: {initial_s: 5, max_s: 1}
        models:
          detector: model.bin
        voting:
          patterns: ['[A-Z']
        """,
    )
    errs = errors_of(p)
    lines = [int(e.split(":")[1]) for e in errs]
    assert lines == sorted(lines)
    joined = "\n".join(errs)
    assert f"{p}:2: cameras[0].name:" in joined
    assert f"{p}:3: cameras[0].source: must be a path, URL" in joined
    assert f"{p}:4: cameras[0].reconnect: max_s" in joined
    assert f"{p}:6: models.detector: unknown model file type '.bin'" in joined
    assert f"{p}:8: voting.patterns[0]: " in joined


def test_env_substitution(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PW_TEST_PASSWORD", "s3cret")
    monkeypatch.setenv("PW_TEST_CAM", "rtsp://10.0.0.5/live")
    monkeypatch.delenv("PW_TEST_UNSET", raising=False)
    p = write(
        tmp_path,
        """
        cameras:
          - name: gate
            source: ${PW_TEST_CAM}
        mqtt:
          host: ${PW_TEST_UNSET:-broker.local}
          username: edge
          password: ${PW_TEST_PASSWORD}
          topic_prefix: "$${literal}"
        """,
    )
    cfg = load_config(p)
    assert cfg.cameras[0].source == "rtsp://10.0.0.5/live"
    assert cfg.cameras[0].kind is SourceKind.STREAM
    assert cfg.mqtt is not None and cfg.mqtt.host == "broker.local"
    assert cfg.mqtt.password is not None and cfg.mqtt.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(cfg.mqtt)  # SecretStr keeps it out of logs
    assert cfg.mqtt.topic_prefix == "${literal}"


def test_unset_env_variable_is_reported_with_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("PW_TEST_UNSET", raising=False)
    p = write(
        tmp_path,
        """
        cameras: [{name: a, source: 0}]
        mqtt:
          username: u
          password: ${PW_TEST_UNSET}
        """,
    )
    (err,) = errors_of(p)
    assert err.startswith(f"{p}:4: mqtt.password: environment variable PW_TEST_UNSET is not set")


def test_substitute_env_unit() -> None:
    env = {"A": "1"}
    assert substitute_env("x${A}y${B:-2}z", env) == "x1y2z"
    assert substitute_env("$${A}", env) == "${A}"
    with pytest.raises(KeyError):
        substitute_env("${B}", env)


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    p = write(tmp_path, "cameras:\n  - name: a\n    source: [unclosed\n")
    (err,) = errors_of(p)
    assert err.startswith(f"{p}:") and "YAML syntax error" in err


def test_duplicate_keys_and_camera_names(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
        cameras:
          - name: a
            source: 0
            source: 1
          - name: a
            source: 2
        """,
    )
    joined = "\n".join(errors_of(p))
    assert f"{p}:4: cameras[0].source: duplicate key" in joined
    # reported at the duplicate's own line, naming the first one
    assert f"{p}:5: cameras[1].name: duplicate camera name 'a' (also cameras[0])" in joined


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    assert "empty configuration" in errors_of(write(tmp_path, "# nothing\n"))[0]
    assert "top level must be a mapping" in errors_of(write(tmp_path, "- a\n- b\n", "l.yaml"))[0]


def test_tls_and_backend_rules(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("x")
    text = "cameras: [{name: a, source: 0}]\nmqtt:\n  tls: {cert: c.pem}\n"
    with pytest.raises(ConfigError) as e:
        parse_config(text, "x.yaml", base_dir=tmp_path)
    assert e.value.errors == [
        "x.yaml:3: mqtt.tls: cert and key must be given together (client certificate)"
    ]
    # a certificate file that does not exist is a config error with its line, not a crash
    text = "cameras: [{name: a, source: 0}]\nmqtt:\n  tls:\n    ca: missing.pem\n"
    with pytest.raises(ConfigError) as e:
        parse_config(text, "x.yaml", base_dir=tmp_path)
    assert e.value.errors == [f"x.yaml:4: mqtt.tls.ca: file not found: {tmp_path / 'missing.pem'}"]
    cfg = parse_config(
        "cameras: [{name: a, source: 0}]\nmodels: {detector: d.engine, reader: r.pt}\n"
    )
    assert cfg.models.backend_for(cfg.models.detector) == "tensorrt"
    assert cfg.models.backend_for(cfg.models.reader) == "ultralytics"


def test_models_backend_and_device_are_checked_and_used(tmp_path: Path) -> None:
    # .trt is a TensorRT engine like .engine/.plan: accepted here AND by the loader
    from edge.detect.backends import BACKEND_OF_SUFFIX

    cfg = parse_config(
        "cameras: [{name: a, source: 0}]\nmodels: {detector: d.trt, reader: r.trt}\n"
    )
    assert cfg.models.backend_for(cfg.models.detector) == BACKEND_OF_SUFFIX[".trt"] == "tensorrt"
    text = (
        "cameras: [{name: a, source: 0}]\n"
        "models:\n  backend: tensorrt\n  detector: d.onnx\n  reader: r.engine\n"
    )
    with pytest.raises(ConfigError) as e:
        parse_config(text, "x.yaml")
    assert e.value.errors[0].startswith("x.yaml:2: models: backend 'tensorrt' cannot open the ")
    (tmp_path / "m.onnx").mkdir()
    with pytest.raises(ConfigError) as e:
        parse_config("cameras: [{name: a, source: 0}]\nmodels: {detector: m.onnx}\n", "x.yaml",
                     base_dir=tmp_path)  # fmt: skip
    assert "is a folder, not a model file" in e.value.errors[0]
    cfg = parse_config("cameras: [{name: a, source: 0}]\nmodels: {device: cpu, threads: 2}\n")
    assert (cfg.models.device, cfg.models.threads) == ("cpu", 2)


def test_tracker_and_motion_gate_are_settable(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
        cameras: [{name: a, source: 0, motion_gate: true}]
        tracking:
          link_overlap: 0.7
          plate: {max_age: 12, min_hits: 3, high_threshold: 0.3, new_track_threshold: 0.4}
        motion: {pixel_threshold: 30, max_idle_s: 5}
        """,
    )
    cfg = load_config(p)
    assert cfg.tracking.plate.max_age == 12 and cfg.tracking.link_overlap == 0.7
    assert cfg.tracking.vehicle.high_threshold == 0.4  # the vehicle defaults are kept
    assert (cfg.motion.pixel_threshold, cfg.motion.max_idle_s) == (30, 5)
    bad = write(tmp_path, "cameras: [{name: a, source: 0}]\nmotion: {blur: 4}\n", "b.yaml")
    assert errors_of(bad) == [f"{bad}:2: motion.blur: must be odd (a Gaussian kernel size)"]


def test_check_config_command(tmp_path: Path, capsys) -> None:
    assert main(["check-config", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK: {EXAMPLE}") and "entrance" in out
    assert "***" in out  # camera URL password redacted in the summary
    bad = write(tmp_path, "cameras:\n  - name: a\n")
    assert check_config(str(bad)) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: cameras[0].source: field required" in err


def test_sections_are_the_stages_own_settings(tmp_path: Path) -> None:
    from edge.sinks.mqtt import MqttSettings
    from edge.track.config import TrackingConfig
    from edge.vote.formats import PlateFormats

    cfg = parse_config("cameras: [{name: a, source: 0}]\n")
    # one model per section, defined by its stage: nothing to convert, no mirrored defaults
    assert type(cfg.voting) is VotingConfig and cfg.voting == VotingConfig()
    assert type(cfg.tracking) is TrackingConfig and cfg.tracking == TrackingConfig()
    assert isinstance(cfg.voting.plate_formats(), PlateFormats)
    with pytest.raises(ValueError, match="frozen"):
        cfg.voting.final_min_reads = 5  # type: ignore[misc]

    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    p = write(
        tmp_path,
        """
        cameras: [{name: a, source: 0}]
        mqtt:
          host: broker
          port: 8883
          username: u
          password: pw
          keepalive: 20
          tls: {ca: ca.pem}
        voting:
          final_min_confidence: 0.7
          patterns:
            - '[A-Z]{2}[0-9]{4}'
            - {name: uk, pattern: '[A-Z]{2}[0-9]{2}[A-Z]{3}', region: gb}
        """,
    )
    cfg = load_config(p)
    assert cfg.voting.final_min_confidence == 0.7
    fmts = cfg.voting.plate_formats()
    assert fmts.names == ["[A-Z]{2}[0-9]{4}", "uk"] and fmts.match("AB12CDE") == "uk"
    s = cfg.mqtt
    assert isinstance(s, MqttSettings)
    assert (s.host, s.port, s.password.get_secret_value(), s.keepalive_s) == (
        "broker",
        8883,
        "pw",
        20,
    )
    assert s.use_tls and s.tls.ca == ca  # relative to the YAML file


def test_unknown_region_is_a_config_error(tmp_path: Path) -> None:
    p = write(tmp_path, "cameras: [{name: a, source: 0}]\nvoting:\n  regions: [atlantis]\n")
    (err,) = errors_of(p)
    assert err.startswith(f"{p}:3: voting.regions: ") and "atlantis" in err


def test_formats_repair_only_for_a_chosen_region() -> None:
    # With no region chosen every shipped format labels reads but none repairs them: the
    # Californian 0FMU202 is one swap from a German pattern.
    anywhere = VotingConfig().plate_formats()
    assert anywhere.repair("0FMU202", [0.5] * 7) == ("0FMU202", "us-generic")
    assert anywhere.match("VGATO194") == "de"
    german = VotingConfig(regions=["de"]).plate_formats()
    assert german.repair("VGAT0194", [0.5] * 8) == ("VGATO194", "de")


def test_check_config_catches_what_run_would_trip_on(tmp_path: Path, monkeypatch) -> None:
    """Each of these passed check-config and then failed or looped at run time."""
    monkeypatch.delenv("PLATEWATCH_PRIVACY_KEY", raising=False)
    cases = {
        "cameras:\n  - name: a\n    source: rtsp//host/cam\n": (
            3,
            "cameras[0].source: 'rtsp//host/cam' looks like a URL with a mistyped '://'",
        ),
        "cameras:\n  - name: a\n    source: rtsp://host:99999/cam\n": (
            3,
            "cameras[0].source: 'rtsp://host:99999/cam': the port is not 1-65535",
        ),
        "cameras: [{name: a, source: 0}]\nmqtt:\n  host: mqtt://127.0.0.1:1883\n": (
            3,
            "mqtt.host: 'mqtt://127.0.0.1:1883' is a URL",
        ),
        "cameras: [{name: a, source: 0}]\nprivacy:\n  enabled: true\n": (
            2,
            "privacy: enabled without a key: set the environment variable PLATEWATCH_PRIVACY_KEY",
        ),
    }
    for text, (line, message) in cases.items():
        p = write(tmp_path, text, "c.yaml")
        (err,) = errors_of(p)
        assert err.startswith(f"{p}:{line}: {message}"), err
    monkeypatch.setenv("PLATEWATCH_PRIVACY_KEY", "k")  # the key in the environment: fine
    load_config(write(tmp_path, "cameras: [{name: a, source: 0}]\nprivacy: {enabled: true}\n"))


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    p = tmp_path / "b.yaml"
    p.write_bytes(b"cameras:\n  - name: \xff\xfe\x00\n")
    (err,) = errors_of(p)
    assert err.startswith(f"{p}:2: not UTF-8 text")
    assert check_config(str(p)) == 2
