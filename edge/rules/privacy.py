"""Privacy mode for EU sites: keyed plate hashes and retention periods.

With ``privacy.enabled`` a plate that is on no watchlist is published and stored only as
``keyed_hash(plate, key)``: HMAC-SHA256 of the normalised plate, hex, first 16 characters
(64 bits: collisions are negligible for a site's traffic, and the value fits PlateEvent.plate).
A keyed hash, unlike a plain hash, cannot be reversed by hashing every possible plate without
the key; with the key, an operator can still answer "was AB123CD here?" (hash the query).
Hashed events carry no per-character confidences, no candidates (they would leak the text) and
no crop (the image shows the plate).

Config::

    privacy:
      enabled: true
      key_env: PLATEWATCH_PRIVACY_KEY   # where the key comes from (or `key:`; env wins if set)
      crop_retention_days: 2            # stored crops are deleted after this
      history_retention_days: 30        # history rows are deleted after this
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping

from pydantic import Field, SecretStr, model_validator

from edge.events.schema import PlateEvent
from edge.rules.watchlist import Match, normalize_plate
from edge.settings import Settings

HASH_HEX_CHARS = 16
DEFAULT_KEY_ENV = "PLATEWATCH_PRIVACY_KEY"


class PrivacyError(ValueError):
    """Privacy mode is misconfigured (e.g. enabled without a key)."""


class PrivacyConfig(Settings):
    enabled: bool = Field(False, description="hash plates that are on no watchlist")
    key: SecretStr | None = Field(None, description="HMAC key (prefer key_env)")
    key_env: str = Field(DEFAULT_KEY_ENV, description="environment variable holding the key")
    crop_retention_days: float | None = Field(
        None, gt=0, description="delete stored crops after this many days (null: keep)"
    )
    history_retention_days: float | None = Field(
        None, gt=0, description="delete history rows after this many days (null: keep)"
    )

    @model_validator(mode="after")
    def _has_a_key(self) -> PrivacyConfig:
        # Checked with the configuration (check-config, start-up), not when the first unlisted
        # plate arrives: a privacy mode that cannot hash must refuse to start.
        if self.enabled and not (os.environ.get(self.key_env) or self.key):
            raise ValueError(
                f"enabled without a key: set the environment variable {self.key_env} "
                "(or privacy.key)"
            )
        return self


def keyed_hash(plate: str, key: str | bytes) -> str:
    """HMAC-SHA256 of the normalised plate under ``key``, hex, truncated to 16 characters.

    Normalising first means ``"ab-123 cd"`` and ``"AB123CD"`` hash alike.
    """
    key_bytes = key.encode("utf-8") if isinstance(key, str) else key
    if not key_bytes:
        raise PrivacyError("keyed_hash: the key is empty")
    norm = normalize_plate(plate)
    if not norm:
        raise ValueError(f"keyed_hash: plate {plate!r} has no letters or digits")
    digest = hmac.new(key_bytes, norm.encode("utf-8"), hashlib.sha256).hexdigest()
    return digest[:HASH_HEX_CHARS]


def resolve_key(config: PrivacyConfig, env: Mapping[str, str] | None = None) -> bytes | None:
    """The HMAC key: env var ``config.key_env`` if set, else ``config.key``; None if disabled.

    Raises PrivacyError naming both sources when privacy is enabled and neither is set.
    """
    if not config.enabled:
        return None
    env = os.environ if env is None else env
    value = env.get(config.key_env) or (config.key.get_secret_value() if config.key else None)
    if not value:
        raise PrivacyError(
            f"privacy.enabled is true but no key: set the environment variable "
            f"{config.key_env} or privacy.key"
        )
    if len(value) < 16:
        raise PrivacyError(
            f"privacy key from {config.key_env}/privacy.key is {len(value)} characters; use at "
            "least 16 random characters (e.g. `openssl rand -hex 32`)"
        )
    return value.encode("utf-8")


def anonymize_event(event: PlateEvent, key: str | bytes) -> PlateEvent:
    """A copy of ``event`` with its plate replaced by the keyed hash, leaking fields cleared."""
    if event.plate_hashed:
        return event
    data = event.model_dump()
    data.update(
        plate=keyed_hash(event.plate, key),
        plate_hashed=True,
        char_confidences=[],
        candidates=[],
        crop_jpeg_b64=None,
    )
    return PlateEvent.model_validate(data)


def apply_privacy(event: PlateEvent, match: Match | None, key: bytes | None) -> PlateEvent:
    """Hash the plate if privacy is on (``key`` not None) and the plate is on no list."""
    if key is None or match is not None:
        return event
    return anonymize_event(event, key)
