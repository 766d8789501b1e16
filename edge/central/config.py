"""Settings of the central collector (``platewatch collect``): the YAML file it may take and the
options that override it. Written once here, like every stage's settings (edge.settings).

    database:          where and how rows are stored (PostgreSQL URL, crops, retention)
    mqtt:              the central broker (edge.sinks.mqtt.MqttSettings: host, TLS, password)
    batch_size, max_wait_s, retry_min_s, retry_max_s: the writer's batching and back-off
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.settings import ConfigPath, Settings
from edge.sinks.mqtt import MqttSettings

COLLECTOR_CLIENT_ID = "platewatch-collector"
_SCHEMES = ("postgresql://", "postgres://")


class DatabaseUrlError(ValueError):
    """A database URL that cannot be used; the message says what is wrong with it."""


def check_database_url(url: str) -> str:
    """``url`` if it is a usable PostgreSQL URL, else DatabaseUrlError naming the problem
    (never echoing a password)."""
    text = url.strip()
    if not text:
        raise DatabaseUrlError("database URL is empty")
    if not text.startswith(_SCHEMES):
        scheme = text.split("://", 1)[0] + "://" if "://" in text else None
        what = f"scheme {scheme!r}" if scheme else "no scheme"
        raise DatabaseUrlError(
            f"{redact_url(text)!r} is not a PostgreSQL URL ({what}): write "
            "postgresql://USER:PASSWORD@HOST:5432/DBNAME"
        )
    from psycopg import conninfo

    try:
        parts = conninfo.conninfo_to_dict(text)
    except Exception as exc:  # psycopg.ProgrammingError: libpq's own words
        raise DatabaseUrlError(f"{redact_url(text)!r}: {str(exc).strip()}") from exc
    for port in str(parts.get("port") or "").split(","):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise DatabaseUrlError(f"{redact_url(text)!r}: port {port!r} is not a port number")
    if not parts.get("dbname"):
        raise DatabaseUrlError(
            f"{redact_url(text)!r} names no database: end it with /DBNAME "
            "(postgresql://USER@HOST:5432/platewatch)"
        )
    return text


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for logs and error messages)."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}://{creds}@{host}"


def is_database_url(target: str) -> bool:
    """True for ``postgresql://`` / ``postgres://`` targets (else a SQLite file path)."""
    return target.strip().startswith(_SCHEMES)


class DatabaseSettings(Settings):
    url: str = Field(
        description="PostgreSQL URL, postgresql://USER:PASSWORD@HOST:5432/DBNAME "
        "(prefer ${PGPASSWORD} in YAML)"
    )
    connect_timeout_s: float = Field(5.0, gt=0, description="give up one connection attempt after")
    crops: Literal["database", "files", "none"] = Field(
        "database",
        description="where plate crops go: 'database' (bytea, one backup), 'files' (under "
        "crop_dir, smaller database) or 'none'",
    )
    crop_dir: ConfigPath | None = Field(None, description="crop files' root (crops: files)")
    retention_days: float | None = Field(
        365.0, gt=0, description="delete events, alerts and crops older than this (null: keep)"
    )
    stats_retention_days: float | None = Field(
        30.0, gt=0, description="delete camera stats older than this (null: keep)"
    )
    retention_interval_s: float = Field(3600.0, gt=0, description="how often retention runs")

    @field_validator("url")
    @classmethod
    def _url_ok(cls, value: str) -> str:
        return check_database_url(value)

    @model_validator(mode="after")
    def _crop_dir_needed(self) -> DatabaseSettings:
        if self.crops == "files" and self.crop_dir is None:
            raise ValueError("crops: files needs crop_dir (the directory the crops are written to)")
        return self


class CollectorConfig(Settings):
    """The whole collector configuration (``platewatch collect --config FILE``)."""

    database: DatabaseSettings
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    batch_size: int = Field(
        200,
        ge=1,
        le=10_000,
        description="rows per transaction at most; keep it <= the broker's max_inflight_messages "
        "(a batch waits for messages the broker holds back until earlier ones are acknowledged)",
    )
    max_wait_s: float = Field(
        0.2, gt=0, le=60, description="a batch is written at the latest this long after its first"
    )
    retry_min_s: float = Field(0.5, gt=0, description="first wait after a failed write")
    retry_max_s: float = Field(30.0, gt=0, description="longest wait between write attempts")

    @model_validator(mode="after")
    def _retry_order(self) -> CollectorConfig:
        if self.retry_max_s < self.retry_min_s:
            raise ValueError("retry_max_s must be >= retry_min_s")
        return self

    @property
    def client_id(self) -> str:
        """The fixed MQTT client id of the persistent session (``mqtt.client_id`` or
        ``platewatch-collector``): the broker keeps the session's queue under this name."""
        return self.mqtt.client_id or COLLECTOR_CLIENT_ID
