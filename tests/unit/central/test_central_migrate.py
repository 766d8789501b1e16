"""Schema migrations, the pure part: file names, order, gaps, checksums (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.central.migrate import (
    MIGRATIONS_DIR,
    Migration,
    MigrationError,
    load_migrations,
    pending,
)


def write(d: Path, files: dict[str, str]) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (d / name).write_text(sql)
    return d


def test_shipped_migrations_are_numbered_from_one_without_gaps() -> None:
    migs = load_migrations(MIGRATIONS_DIR)
    assert [m.version for m in migs] == list(range(1, len(migs) + 1))
    assert migs[0].filename == "001_init.sql"
    assert "CREATE TABLE events" in migs[0].sql
    assert any("pg_trgm" in m.sql for m in migs)


def test_order_is_numeric_not_alphabetical(tmp_path: Path) -> None:
    # "0010" sorts before "002" as text; versions are numbers.
    names = {f"{i:03d}_m{i}.sql": f"-- {i}" for i in range(1, 10)}
    names["0010_ten.sql"] = "-- 10"
    migs = load_migrations(write(tmp_path, names))
    assert [m.version for m in migs] == list(range(1, 11))
    assert migs[-1].name == "ten"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"001_init.sql": "", "003_late.sql": ""}, "migration 002 is missing"),
        ({"002_first.sql": ""}, "migration 001 is missing"),
        ({"001_a.sql": "", "001_b.sql": ""}, "same version 1"),
        ({"001_init.sql": "", "2_bad-name.sql": ""}, "named NNN_lower_case_name.sql"),
        ({"init.sql": ""}, "named NNN_lower_case_name.sql"),
    ],
)
def test_bad_file_sets_are_refused_with_the_reason(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    with pytest.raises(MigrationError, match=message):
        load_migrations(write(tmp_path, files))


def test_pending_skips_applied_and_refuses_rewritten_history() -> None:
    a, b, c = Migration(1, "a", "SELECT 1"), Migration(2, "b", "SELECT 2"), Migration(3, "c", "")
    assert pending([a, b, c], {}) == [a, b, c]
    assert pending([a, b, c], {1: a.checksum, 2: b.checksum}) == [c]
    assert pending([a, b], {1: a.checksum, 2: b.checksum}) == []
    changed = Migration(2, "b", "SELECT 2 -- edited")
    with pytest.raises(MigrationError, match="002_b.sql changed after it was applied"):
        pending([a, changed, c], {1: a.checksum, 2: b.checksum})
    with pytest.raises(MigrationError, match="set up by a newer version"):
        pending([a], {1: a.checksum, 2: b.checksum})


def test_checksum_follows_the_text() -> None:
    assert Migration(1, "a", "x").checksum == Migration(1, "b", "x").checksum
    assert Migration(1, "a", "x").checksum != Migration(1, "a", "x ").checksum
