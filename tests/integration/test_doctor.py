"""``platewatch doctor`` on this CPU machine (real broker, real refused camera, no TensorRT) and
with injected probes for what only exists on a Jetson."""

from __future__ import annotations

import argparse
import json
import types
from pathlib import Path

import pytest
from standin_models import make_detector, make_reader
from support import Mosquitto, free_port

from edge.cli.doctor import (
    CheckResult,
    Probes,
    add_parser,
    check_engines,
    check_gpu,
    check_tensorrt,
    exit_code,
    format_report,
    run_checks,
)
from edge.trt.build import ensure_engine, make_plan
from edge.trt.cache import DeviceInfo, StaticDeviceInfo

ORIN = DeviceInfo("10.3.0", "Orin", "8.7")


def _models(tmp_path: Path) -> Path:
    d = tmp_path / "models"
    d.mkdir(exist_ok=True)
    make_detector(d / "detector.onnx", [])
    make_reader(d / "reader.onnx")
    return d


def _config(tmp_path: Path, broker_port: int, camera_port: int, extra: str = "") -> Path:
    models = _models(tmp_path)
    cfg = tmp_path / "cameras.yaml"
    cfg.write_text(f"""
cameras:
  - name: entry
    source: rtsp://127.0.0.1:{camera_port}/stream
  - name: spare
    source: rtsp://127.0.0.1:{camera_port}/other
    enabled: false
models:
  detector: {models}/detector.onnx
  reader: {models}/reader.onnx
mqtt:
  host: 127.0.0.1
  port: {broker_port}
  spool_dir: {tmp_path}/spool
  spool_max_mb: 1
{extra}""")
    return cfg


def _by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


def test_doctor_on_this_machine(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """The acceptance case: broker OK, refused camera FAIL in plain words, TensorRT WARN."""
    cfg = _config(tmp_path, mosquitto.port, free_port())
    results = run_checks(cfg, probes=Probes(camera_timeout_s=2, mqtt_timeout_s=3))
    r = _by_name(results)
    assert r["config"].status == "OK"
    assert r["mqtt"].status == "OK", r["mqtt"]
    assert f"127.0.0.1:{mosquitto.port} accepted an MQTT connection" in r["mqtt"].message
    cam = r["camera:entry"]
    assert cam.status == "FAIL"
    assert cam.message.startswith("cannot read stream 'rtsp://127.0.0.1:")
    assert "firewall" in cam.advice
    assert "camera:spare" not in r and "spare" in r["cameras"].message  # disabled: skipped
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert r["tensorrt"].status == "WARN" and "not installed" in r["tensorrt"].message
    assert r["model:detector"].status == r["model:reader"].status == "OK"
    assert r["disk"].status == "OK" and "spool" in r["disk"].message
    assert r["engines"].status == "OK"  # ONNX models: no engines needed
    assert exit_code(results) == 1
    report = format_report(results)
    assert "FAIL  camera:entry" in report and "NOT ready" in report


def test_doctor_cli_exit_code_and_json(
    tmp_path: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path, mosquitto.port, free_port())
    # Only the disabled camera: nothing can FAIL on this machine, so exit code 0.
    text = cfg.read_text().replace("  - name: entry\n", "  - name: entry\n    enabled: false\n")
    cfg.write_text(text)
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["doctor", "--config", str(cfg), "--json", "--timeout", "2"])
    rc = args.func(args)
    data = json.loads(capsys.readouterr().out)
    assert {d["status"] for d in data} <= {"OK", "WARN"} and rc == 0
    assert {"name": "mqtt", "status": "OK"}.items() <= next(
        d for d in data if d["name"] == "mqtt"
    ).items()


def test_doctor_broker_down_and_bad_auth(tmp_path: Path, mosquitto_factory) -> None:  # type: ignore[no-untyped-def]
    cfg = _config(tmp_path, free_port(), free_port())
    r = _by_name(run_checks(cfg, probes=Probes(camera_timeout_s=1, mqtt_timeout_s=2)))
    assert r["mqtt"].status == "FAIL" and "connection refused" in r["mqtt"].message
    assert "broker running" in r["mqtt"].advice
    # A broker that wants a password: TCP works, MQTT CONNECT is refused -> plain reason.
    pw = tmp_path / "passwd"
    pw.write_text("someone:$7$101$aaaaaaaaaaaaaaaa$" + "A" * 86 + "==\n")
    broker = mosquitto_factory(listener_conf=["allow_anonymous false", f"password_file {pw}"])
    cfg2 = _config(tmp_path, broker.port, free_port())
    r = _by_name(run_checks(cfg2, probes=Probes(camera_timeout_s=1, mqtt_timeout_s=3)))
    assert r["mqtt"].status == "FAIL" and "refused the connection" in r["mqtt"].message
    assert "username/password" in r["mqtt"].advice


def test_invalid_config_is_one_fail_and_checks_continue(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("cameras:\n  - name: a\n    sourc: x\n")
    results = run_checks(cfg, models_dir=_models(tmp_path))
    r = _by_name(results)
    assert r["config"].status == "FAIL" and "sourc" in r["config"].message
    assert "python" in r and "disk" in r and exit_code(results) == 1


def test_jetson_gpu_probe() -> None:
    files = {"/proc/device-tree/model": "NVIDIA Jetson Orin Nano Developer Kit"}
    p = Probes(
        read_text=lambda path: files.get(str(path)),
        which=lambda n: "/usr/bin/tegrastats" if n == "tegrastats" else None,
    )
    r = check_gpu(p)
    assert (
        r.status == "OK" and "Jetson Orin Nano" in r.message and "tegrastats present" in r.message
    )
    p = Probes(
        read_text=lambda path: None,
        which=lambda n: "/usr/bin/nvidia-smi",
        run=lambda cmd, t: (0, "NVIDIA H200, 570.86"),
    )
    assert check_gpu(p).message == "NVIDIA GPU: NVIDIA H200, 570.86"
    p = Probes(
        read_text=lambda path: None,
        which=lambda n: "/usr/bin/nvidia-smi",
        run=lambda cmd, t: (9, ""),
    )
    assert check_gpu(p).status == "FAIL"


def _fake_import(version: str | None):  # type: ignore[no-untyped-def]
    def imp(name: str) -> object:
        if name == "tensorrt" and version is not None:
            return types.SimpleNamespace(__version__=version)
        raise ImportError(name)

    return imp


def test_tensorrt_versions_and_engine_configs(tmp_path: Path) -> None:
    assert check_tensorrt(Probes(import_module=_fake_import("10.3.0")), None).status == "OK"
    old = check_tensorrt(Probes(import_module=_fake_import("8.5.2")), None)
    assert old.status == "FAIL" and "TensorRT 10" in old.message
    cfg = types.SimpleNamespace(
        models=types.SimpleNamespace(detector=Path("d.engine"), reader=Path("r.onnx"))
    )
    missing = check_tensorrt(Probes(import_module=_fake_import(None)), cfg)
    assert missing.status == "FAIL" and "d.engine" in missing.message


class _Builder:
    def __call__(self, plan) -> bytes:  # type: ignore[no-untyped-def]
        return b"engine " + plan.model.encode()


def test_engines_checked_against_device_and_model(tmp_path: Path) -> None:
    models = _models(tmp_path)
    for model in ("detector", "reader"):
        ensure_engine(
            make_plan(model, models / f"{model}.onnx"),
            models / "engines",
            StaticDeviceInfo(ORIN),
            _Builder(),
        )
    ok = check_engines(Probes(device=StaticDeviceInfo(ORIN)), None, models, None)
    assert ok.status == "OK" and "detector-fp16.engine" in ok.message
    other = check_engines(
        Probes(device=StaticDeviceInfo(DeviceInfo("10.7.0", "Orin", "8.7"))), None, models, None
    )
    assert other.status == "FAIL" and "TensorRT version differs (10.3.0 -> 10.7.0)" in other.message
    assert "build-engines" in other.advice
    make_reader(models / "reader.onnx", "NEW1")  # a new export replaces the ONNX
    changed = check_engines(Probes(device=StaticDeviceInfo(ORIN)), None, models, None)
    assert changed.status == "FAIL" and "reader.onnx changed" in changed.message
    assert "detector-fp16.engine" not in changed.message  # only the stale one is listed


def test_model_hash_mismatch_warns(tmp_path: Path) -> None:
    models = _models(tmp_path)
    meta = json.loads((models / "reader.json").read_text())
    meta["onnx_sha256"] = "0" * 64
    (models / "reader.json").write_text(json.dumps(meta))
    r = _by_name(run_checks(None, models_dir=models))
    assert r["model:reader"].status == "WARN" and "differs" in r["model:reader"].message
    assert r["model:detector"].status == "OK"


def test_a_crashing_probe_fails_only_its_check(tmp_path: Path) -> None:
    def boom(path: Path) -> str:
        raise RuntimeError("probe exploded")

    results = run_checks(None, models_dir=_models(tmp_path), probes=Probes(read_text=boom))
    r = _by_name(results)
    assert r["python"].status == "FAIL" and "probe exploded" in r["python"].message
    assert "mqtt" in r and "disk" in r


def test_report_format() -> None:
    results = [CheckResult("a", "OK", "fine"), CheckResult("bb", "WARN", "hmm", "do x")]
    text = format_report(results)
    assert text.splitlines()[:3] == ["OK    a   fine", "WARN  bb  hmm", "          -> do x"]
    assert text.endswith("1 OK, 1 WARN, 0 FAIL: ready, with warnings") and exit_code(results) == 0


def test_doctor_is_registered_in_the_cli() -> None:
    src = (Path(__file__).resolve().parents[2] / "edge" / "cli" / "__init__.py").read_text()
    assert (
        '("doctor", "edge.cli.doctor")' in src
        and '("build-engines", "edge.cli.build_engines")' in src
    )
