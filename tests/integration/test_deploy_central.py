"""deploy/central: the shipped files work as shipped, with only their CHANGE values and paths
replaced: a device broker with bridge.conf reaches a central broker with mosquitto.conf and acl
over TLS with a password, queues while the centre is down, and may write only its own subtree;
collector.yaml is a valid collector configuration; the compose file names the four services."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from support import Mosquitto, free_port, make_certs

REPO = Path(__file__).resolve().parents[2]
CENTRAL = REPO / "deploy" / "central"


def test_collector_yaml_and_compose_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("psycopg", reason="psycopg not installed")
    from edge.central.config import CollectorConfig
    from edge.config.loader import load_settings

    monkeypatch.setenv("POSTGRES_PASSWORD", "pg-secret")
    monkeypatch.setenv("COLLECTOR_MQTT_PASSWORD", "mq-secret")
    cfg = load_settings(CENTRAL / "collector.yaml", CollectorConfig)
    assert cfg.database.url == "postgresql://platewatch:pg-secret@postgres:5432/platewatch"
    assert cfg.mqtt.password is not None and cfg.mqtt.password.get_secret_value() == "mq-secret"
    assert cfg.client_id == "platewatch-collector" and cfg.mqtt.host == "mosquitto"
    compose = yaml.safe_load((CENTRAL / "docker-compose.yml").read_text())
    assert set(compose["services"]) == {"mosquitto", "postgres", "collector", "dashboard"}
    assert compose["services"]["collector"]["command"][:2] == ["collect", "--config"]
    for mount in compose["services"]["mosquitto"]["volumes"]:
        src = mount.split(":")[0]
        if src.startswith("./") and src not in ("./passwd", "./certs"):  # made at set-up
            assert (CENTRAL / src).exists(), src


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    if not shutil.which("openssl") or not shutil.which("mosquitto_passwd"):
        pytest.skip("needs openssl and mosquitto_passwd")
    certs = make_certs(tmp_path / "certs", server_name="localhost")
    pw = tmp_path / "passwd"
    for i, (user, secret) in enumerate((("jetson-gate-01", "bridge-pw"), ("collector", "col-pw"))):
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(pw), user,
                        secret], check=True, capture_output=True, timeout=20)  # fmt: skip
    os.chmod(pw, 0o644)
    return {**certs, "passwd": pw}


def central_broker(tmp_path: Path, pki: dict[str, Path]) -> tuple[Mosquitto, int]:
    broker = Mosquitto(tmp_path / "central")
    tls_port = free_port()
    text = (CENTRAL / "mosquitto.conf").read_text()
    for a, b in (
        ("listener 8883", f"listener {tls_port}"),
        ("listener 1883", f"listener {broker.port} 127.0.0.1"),
        ("/mosquitto/config/certs/ca.pem", str(pki["ca"])),
        ("/mosquitto/config/certs/server.pem", str(pki["cert"])),
        ("/mosquitto/config/certs/server.key", str(pki["key"])),
        ("/mosquitto/config/passwd", str(pki["passwd"])),
        ("/mosquitto/config/acl", str(CENTRAL / "acl")),
        ("/mosquitto/data/", f"{broker.workdir}/"),
        ("log_dest stdout", "log_dest stderr"),
    ):
        assert a in text, a
        text = text.replace(a, b)
    broker.conf_path.write_text(text + f"user {os.environ.get('USER') or 'root'}\n")
    return broker, tls_port


def device_broker(tmp_path: Path, pki: dict[str, Path], tls_port: int) -> Mosquitto:
    broker = Mosquitto(tmp_path / "device")
    text = (CENTRAL / "bridge.conf").read_text()
    for a, b in (
        ("address central.example.net:8883", f"address localhost:{tls_port}"),
        ("remote_password CHANGE-ME", "remote_password bridge-pw"),
        ("/mosquitto/config/certs/central-ca.pem", str(pki["ca"])),
        ("restart_timeout 2 60", "restart_timeout 1 2"),  # the test's patience, not the file's
    ):
        assert a in text, a
        text = text.replace(a, b)
    head = broker.conf_path.read_text()  # its listener, anonymous local clients, user
    broker.conf_path.write_text(head + text)
    return broker


def test_bridge_tls_password_acl_and_queue_while_the_centre_is_down(  # type: ignore[no-untyped-def]
    tmp_path: Path, pki: dict[str, Path], mqtt_consumer
) -> None:
    import getpass

    os.environ.setdefault("USER", getpass.getuser())
    central, tls_port = central_broker(tmp_path, pki)
    central.start()
    device = device_broker(tmp_path, pki, tls_port)
    device.start()
    try:
        seen = mqtt_consumer(central, ["platewatch/#"], username="collector", password="col-pw",
                             client_id="collector-test", clean=False)  # fmt: skip
        local = mqtt_consumer(device, ["platewatch/#"])
        import paho.mqtt.publish as publish

        def send(topic: str, body: bytes) -> None:
            publish.single(topic, body, qos=1, hostname=device.host, port=device.port)

        own, other = "platewatch/jetson-gate-01/gate/events", "platewatch/intruder/gate/events"
        deadline = time.monotonic() + 20
        while not seen.on(own) and time.monotonic() < deadline:  # the bridge connects
            send(own, b"hello")
            time.sleep(0.5)
        assert seen.on(own), central.log_text()[-2000:] + device.log_text()[-2000:]
        send(other, b"spoofed")
        assert local.wait_for(lambda ms: any(m.topic == other for m in ms), 5)
        time.sleep(1.0)
        assert seen.on(other) == []  # the ACL: a device writes only under its own id

        # The centre goes down; the device's broker queues for the bridge and sends it all once
        # the centre is back (its session and the collector's kept by its persistence).
        seen.stop()
        central.kill()
        for i in range(5):
            send(own, f"queued-{i}".encode())
        central.start()
        again = mqtt_consumer(central, ["platewatch/#"], username="collector", password="col-pw",
                              client_id="collector-test", clean=False)  # fmt: skip
        want = {f"queued-{i}".encode() for i in range(5)}
        assert again.wait_for(lambda ms: want <= {m.payload for m in ms}, 30), device.log_text()[
            -2000:
        ]
    finally:
        device.kill()
        central.kill()
