"""Static checks of deploy/jetson: the files parse and agree with the code they drive.
(Building the image and running the service need a Jetson; see deploy/jetson/README.md.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from edge.capture.sources import SourceKind
from edge.config.loader import load_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "jetson"


def test_example_config_is_valid_and_matches_the_builders(monkeypatch: pytest.MonkeyPatch) -> None:
    from edge.capture.gstreamer import VideoSource, csi_pipeline, rtsp_pipeline

    monkeypatch.delenv("ENTRY_RTSP_URL", raising=False)
    cfg = load_config(DEPLOY / "cameras.parking.yaml")
    entry, exit_ = cfg.camera("entry"), cfg.camera("exit")
    assert entry.kind is exit_.kind is SourceKind.GSTREAMER
    url = "rtsp://admin:admin@192.168.1.64:554/Streaming/Channels/101"
    # The hand-written pipelines are exactly what edge.capture.gstreamer builds.
    assert entry.source == rtsp_pipeline(VideoSource("rtsp", url))
    assert exit_.source == csi_pipeline(VideoSource("csi", "", sensor_id=0))
    assert str(cfg.models.detector) == "/var/lib/platewatch/engines/detector-fp16.engine"
    assert cfg.models.backend_for(cfg.models.reader) == "tensorrt"
    monkeypatch.setenv("PLATEWATCH_PRECISION", "int8")
    assert load_config(DEPLOY / "cameras.parking.yaml").models.reader.name == "reader-int8.engine"


def test_compose_file() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    pw, broker = compose["services"]["platewatch"], compose["services"]["mosquitto"]
    assert pw["runtime"] == "nvidia" and pw["restart"] == broker["restart"] == "unless-stopped"
    assert broker["image"].startswith("eclipse-mosquitto:2")
    mounts = " ".join(pw["volumes"])
    for path in (
        "/var/lib/platewatch/engines",
        "/var/lib/platewatch/spool",
        "/var/log/platewatch",
        "/tmp/argus_socket",
        "/etc/platewatch/cameras.yaml",
    ):
        assert path in mounts
    assert any(d.startswith("/dev/video") for d in pw["devices"])
    assert pw["environment"]["MQTT_HOST"] == "mosquitto"


def test_dockerfile_uses_jetpack_base_and_no_pip_opencv() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^ARG L4T_JETPACK=nvcr\.io/nvidia/l4t-jetpack:r36\.", text, re.M)
    assert "FROM ${L4T_JETPACK}" in text
    pip_lines = [ln for ln in text.splitlines() if "pip install" in ln]
    assert pip_lines and not any("opencv" in ln for ln in pip_lines)
    assert "--no-deps" in text and "python3-opencv" in text and "GStreamer" in text


def test_systemd_unit() -> None:
    text = (DEPLOY / "platewatch.service").read_text()
    for line in (
        "Type=notify",
        "Restart=on-failure",
        "WatchdogSec=60",
        "NotifyAccess=main",
        "ExecStartPre=/opt/platewatch/venv/bin/platewatch build-engines",
        "ExecStart=/opt/platewatch/venv/bin/platewatch run --config",
    ):
        assert line in text
    if shutil.which("systemd-analyze"):
        out = subprocess.run(
            ["systemd-analyze", "verify", str(DEPLOY / "platewatch.service")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        # The only acceptable complaint on a dev machine: the venv does not exist here.
        problems = [
            ln
            for ln in (out.stdout + out.stderr).splitlines()
            if ln.strip() and "is not executable" not in ln
        ]
        assert not problems, problems


def test_install_script_syntax_and_dry_run() -> None:
    script = DEPLOY / "install.sh"
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
    out = subprocess.run(
        ["bash", str(script), "--dry-run", "--precision", "int8"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "python3 -m venv --system-site-packages /opt/platewatch/venv" in out.stdout
    assert "build-engines --cache-dir /var/lib/platewatch/engines --precision int8" in out.stdout
    assert "pip install --no-deps" in out.stdout
    bad = subprocess.run(
        ["bash", str(script), "--dry-run", "--precision", "int4"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2


def test_entrypoint_syntax() -> None:
    subprocess.run(["sh", "-n", str(DEPLOY / "entrypoint.sh")], check=True, timeout=30)
