"""The settings tables in docs/ are generated from the schema and must be up to date."""

from __future__ import annotations

import pytest

from edge.config import docs


def test_settings_tables_are_current(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLATEWATCH_MODELS", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    assert docs.stale() == [], "run: python -m edge.config.docs --write"


def test_every_section_key_is_documented() -> None:
    text = docs.render("mqtt") + docs.render("voting") + docs.render("cameras")
    for key in ("mqtt.keepalive_s", "mqtt.tls.ca", "mqtt.protocol", "mqtt.max_inflight"):
        assert f"`{key}`" in text
    assert "`voting.consensus.cluster_similarity`" in text and "`cameras[].decoder`" in text
    assert "|  |" not in text  # every key says what it means
