"""Shared pytest fixtures (the helpers behind them live in support.py).

``mosquitto``          a running broker on a free 127.0.0.1 port (persistence off), stopped at
                       teardown. ``.kill()``, ``.start()``, ``.restart()`` keep the SAME port.
``mosquitto_factory``  make brokers with options (``persistent=True``, ``start=False``).
``mqtt_consumer``      factory of ``MqttConsumer`` (subscribed paho client collecting messages).
``validate_message``   schema-file check of one message.

Tests under ``tests/integration/`` are marked ``slow``; ``pytest tests/unit`` is the fast subset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import (
    Mosquitto,
    MqttConsumer,
    _require_mosquitto,
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
