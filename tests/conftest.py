"""Shared pytest fixtures (the helpers behind them live in support.py).

``mosquitto``          a running broker on a free 127.0.0.1 port (persistence off), stopped at
                       teardown. ``.kill()``, ``.start()``, ``.restart()`` keep the SAME port.
``mosquitto_factory``  make brokers with options (``persistent=True``, ``start=False``).
``mqtt_consumer``      factory of ``MqttConsumer`` (subscribed paho client collecting messages).
``validate_message``   schema-file check of one message.
``secure_broker``      a broker with a TLS listener and a password file: (broker, tls_port, certs).
``postgres``           a running throwaway PostgreSQL server (``support.Postgres``): ``.url(db)``,
                       ``.create_database(name)``, ``.kill()``/``.start()`` on the same port.

Tests under ``tests/integration/`` are marked ``slow``; ``pytest tests/unit`` is the fast subset.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import (
    Mosquitto,
    MqttConsumer,
    Postgres,
    _require_mosquitto,
    free_port,
    make_certs,
    require_postgres,
    validate_against_schema_file,
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    _require_mosquitto()
    brokers: list[Mosquitto] = []

    def make(
        *,
        persistent: bool = False,
        start: bool = True,
        port: int | None = None,
        listener_conf: list[str] | None = None,
    ) -> Mosquitto:
        broker = Mosquitto(
            tmp_path / f"broker{len(brokers)}",
            port=port,
            persistent=persistent,
            listener_conf=listener_conf,
        )
        brokers.append(broker)
        if start:
            broker.start()
        return broker

    yield make
    for broker in brokers:
        broker.kill()


@pytest.fixture
def mosquitto(mosquitto_factory: Callable[..., Mosquitto]) -> Mosquitto:
    return mosquitto_factory()


@pytest.fixture
def mqtt_consumer() -> Iterator[Callable[..., MqttConsumer]]:
    consumers: list[MqttConsumer] = []

    def make(broker: Mosquitto, topics: list[str], **kwargs: object) -> MqttConsumer:
        consumer = MqttConsumer(broker, topics, **kwargs)  # type: ignore[arg-type]
        consumers.append(consumer)
        return consumer.start()

    yield make
    for consumer in consumers:
        consumer.stop()


@pytest.fixture
def validate_message() -> Callable[[object, str], None]:
    """``validate_message(obj, "plate_event.schema.json")``: schema-file check of one message."""
    return validate_against_schema_file


@pytest.fixture
def secure_broker(mosquitto_factory, tmp_path):  # type: ignore[no-untyped-def]
    """A broker whose plain port (``broker.port``) and TLS port (``tls_port``, a throwaway CA's
    certificate for 127.0.0.1) both need user ``cam``, password ``s3cret``; yields
    ``(broker, tls_port, certs)``."""
    if not shutil.which("openssl") or not shutil.which("mosquitto_passwd"):
        pytest.skip("needs openssl and mosquitto_passwd")
    certs = make_certs(tmp_path / "certs")
    pwfile = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(pwfile), "cam", "s3cret"],
        check=True, capture_output=True, timeout=20,
    )  # fmt: skip
    os.chmod(pwfile, 0o644)
    tls_port = free_port()
    broker = mosquitto_factory(
        listener_conf=[
            "allow_anonymous false",
            f"password_file {pwfile}",
            f"listener {tls_port} 127.0.0.1",
            f"cafile {certs['ca']}",
            f"certfile {certs['cert']}",
            f"keyfile {certs['key']}",
        ]
    )
    return broker, tls_port, certs


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    """A started PostgreSQL server of its own (skipped without the binaries, failed with
    PLATEWATCH_REQUIRE_POSTGRES=1); removed with its data at teardown."""
    require_postgres()
    server = Postgres()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()
