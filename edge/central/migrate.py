"""The central database's schema as numbered SQL files, applied in order, each exactly once.

``edge/central/migrations/NNN_name.sql`` (``001_init.sql``, ``002_plate_trigrams.sql``, ...):
plain SQL a DBA can read and run by hand. ``apply_migrations`` creates ``schema_migrations``
on first start, then runs every file whose version is not recorded there, in version order,
each in its own transaction together with its record (a failing file leaves nothing half
applied). A PostgreSQL advisory lock serialises two collectors starting at once. A recorded
migration whose file has changed since (checksum) is an error: history is never rewritten,
changes go in a new file.

Pure parts (file names, order, checksums) are separate from the database parts so they can be
tested without a server.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")
_LOCK_ID = 0x706C617465  # "plate": the advisory lock every collector takes while migrating


class MigrationError(RuntimeError):
    """Migration files that cannot be applied as they are (the message says why)."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    @property
    def filename(self) -> str:
        return f"{self.version:03d}_{self.name}.sql"


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every ``NNN_name.sql`` of ``directory`` in version order. A ``.sql`` file with another
    name, two files with one version or a gap in the numbering is a MigrationError."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if m is None:
            raise MigrationError(
                f"{path.name}: migration files are named NNN_lower_case_name.sql (001_init.sql)"
            )
        version = int(m.group(1))
        if version in found:
            raise MigrationError(
                f"{path.name} and {found[version].filename} have the same version {version}"
            )
        found[version] = Migration(version, m.group(2), path.read_text(encoding="utf-8"))
    ordered = [found[v] for v in sorted(found)]
    for expected, mig in enumerate(ordered, start=1):
        if mig.version != expected:
            raise MigrationError(
                f"migration {expected:03d} is missing (next is {mig.filename}): versions run "
                "1, 2, 3, ... without gaps"
            )
    return ordered


def pending(migrations: list[Migration], applied: dict[int, str]) -> list[Migration]:
    """The migrations still to apply, given ``applied`` (version -> checksum recorded). A
    recorded version whose file changed, or one with no file (a database newer than this
    code), is a MigrationError."""
    by_version = {m.version: m for m in migrations}
    for version, checksum in sorted(applied.items()):
        mig = by_version.get(version)
        if mig is None:
            raise MigrationError(
                f"the database has migration {version} applied, which this platewatch does not "
                "know: it was set up by a newer version"
            )
        if mig.checksum != checksum:
            raise MigrationError(
                f"{mig.filename} changed after it was applied (checksum differs): put schema "
                "changes in a new migration file instead"
            )
    return [m for m in migrations if m.version not in applied]


_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def applied_versions(conn: Any) -> dict[int, str]:
    """version -> checksum of the migrations recorded in ``schema_migrations``."""
    rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    return {int(v): str(c) for v, c in rows}


def apply_migrations(conn: Any, migrations: list[Migration] | None = None) -> list[Migration]:
    """Bring the database up to date; returns the migrations applied now (empty: it was).

    ``conn``: a psycopg connection (autocommit off). Each migration commits on its own.
    """
    migrations = load_migrations() if migrations is None else migrations
    with conn.transaction():
        conn.execute(_CREATE_TABLE)
    done: list[Migration] = []
    with conn.transaction():
        # Session-level would outlive a failure; the transaction lock dies with it.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        todo = pending(migrations, applied_versions(conn))
    for mig in todo:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            if mig.version in applied_versions(conn):  # another collector was quicker
                continue
            try:
                conn.execute(mig.sql)
            except Exception as exc:
                raise MigrationError(f"{mig.filename} failed: {exc}") from exc
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (mig.version, mig.name, mig.checksum),
            )
        log.info("database: applied migration %s", mig.filename)
        done.append(mig)
    return done
