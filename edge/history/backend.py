"""One reading interface over both history stores, so ``platewatch history`` and the dashboard
work the same on a device and at the centre.

- a SQLite file on a device: edge.history.store.HistoryStore (standard library sqlite3),
- a ``postgresql://`` URL at the centre: edge.central.pg_history.PgHistory (psycopg 3; why
  psycopg and not SQLAlchemy Core: edge.central.writer).

Both answer ``search`` with the same filters and the same fuzzy semantics (the O/0-I/1 fold, an
edit distance, globs, keyed hashes; the same ranking), return the same ``HistoryRecord`` (so
``write_csv`` exports either) and list their cameras with ``cameras()``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from edge.history.store import HistoryRecord


@dataclass
class CameraStatus:
    """One camera as a store knows it: its device, the latest stats (the centre stores them;
    a device's SQLite history has none) and when its latest event was seen."""

    device: str | None
    camera: str | None  # None: a device that has said its status but sent nothing else yet
    device_status: str | None = None  # online / offline (the device's retained status)
    device_status_at: str | None = None
    stats: dict[str, Any] | None = None
    stats_ts: str | None = None
    last_event_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class HistoryReader(Protocol):
    def search(
        self,
        plate: str | None = None,
        fuzzy: bool = True,
        max_distance: int = 1,
        camera: str | None = None,
        since: str | datetime | float | None = None,
        until: str | datetime | float | None = None,
        watchlist: str | None = None,
        limit: int | None = 100,
        fold: bool = True,
        privacy_key: str | bytes | None = None,
        device: str | None = None,
    ) -> list[HistoryRecord]: ...

    def get(self, event_id: str) -> HistoryRecord | None: ...

    def get_crop(self, event_id: str) -> bytes | None: ...

    def count(self) -> int: ...

    def cameras(self) -> list[CameraStatus]: ...

    def close(self) -> None: ...


def open_history(target: str | Path, *, crop_dir: str | Path | None = None) -> HistoryReader:
    """A read-only history: ``postgresql://...`` (the centre; ``crop_dir`` when its crops are
    files) or a SQLite file path (a device). A bad URL raises ValueError naming the problem; a
    missing file FileNotFoundError."""
    from edge.central.config import is_database_url

    text = str(target)
    if is_database_url(text):
        from edge.central import require_psycopg

        require_psycopg()
        from edge.central.pg_history import PgHistory

        return PgHistory(text, crop_dir=crop_dir)
    if "://" in text:
        raise ValueError(
            f"{text.split('://', 1)[0]}:// is not a history store: give a SQLite file path or a "
            "postgresql://USER:PASSWORD@HOST/DBNAME URL"
        )
    from edge.history.store import HistoryStore

    return HistoryStore(text, read_only=True)
