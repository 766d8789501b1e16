"""Collector settings: database URLs refused with the reason (never echoing a password)."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

pytest.importorskip("psycopg", reason="psycopg not installed (pip install 'psycopg[binary]')")

from edge.central.config import (  # noqa: E402
    CollectorConfig,
    DatabaseUrlError,
    check_database_url,
    redact_url,
)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("mysql://u:pw@h/db", "not a PostgreSQL URL (scheme 'mysql://')"),
        ("db.example.com/platewatch", "no scheme"),
        ("postgresql://u@h:5432", "names no database"),
        ("postgresql://u@h:notaport/db", "port 'notaport' is not a port number"),
        ("postgresql://u@h:99999/db", "port '99999'"),
    ],
)
def test_bad_urls_name_the_problem(url: str, message: str) -> None:
    with pytest.raises(DatabaseUrlError, match=re.escape(message)) as info:
        check_database_url(url)
    assert "pw" not in str(info.value).replace("postgresql", "")


def test_good_urls_and_redaction() -> None:
    url = "postgresql://pw:s3cret@db:5432/platewatch?sslmode=require"
    assert check_database_url(url) == url
    assert check_database_url("postgres://db/platewatch") == "postgres://db/platewatch"
    assert redact_url(url) == "postgresql://pw:***@db:5432/platewatch?sslmode=require"
    assert redact_url("postgresql://db/x") == "postgresql://db/x"


def test_collector_config_rules() -> None:
    cfg = CollectorConfig.model_validate({"database": {"url": "postgresql://h/db"}})
    assert cfg.client_id == "platewatch-collector"
    assert cfg.batch_size == 200 and cfg.database.crops == "database"
    with pytest.raises(ValidationError, match="crops: files needs crop_dir"):
        CollectorConfig.model_validate({"database": {"url": "postgresql://h/db", "crops": "files"}})
    with pytest.raises(ValidationError, match="not a PostgreSQL URL"):
        CollectorConfig.model_validate({"database": {"url": "sqlite:///x.db"}})
    with pytest.raises(ValidationError, match="unknown|Extra inputs"):
        CollectorConfig.model_validate({"database": {"url": "postgresql://h/db"}, "batch": 1})
