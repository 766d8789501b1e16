"""History store: add/dedupe, retention by age and size, fuzzy search ranking, CSV, CLI, speed."""

from __future__ import annotations

import csv
import io
import random
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from edge.cli import main as cli_main
from edge.events.schema import PlateEvent, WatchlistHit, encode_crop, format_utc
from edge.history.query import pieces as _pieces
from edge.history.store import (
    CSV_COLUMNS,
    HistoryConfig,
    HistoryStore,
    parse_time,
    write_csv,
)
from edge.rules.privacy import PrivacyConfig, anonymize_event
from edge.rules.watchlist import levenshtein

NOW = datetime(2025, 5, 10, 12, 0, 0, tzinfo=timezone.utc)


def ev(plate: str, at: datetime = NOW, camera: str = "gate", **kw: object) -> PlateEvent:
    fields: dict[str, object] = dict(
        type="final", camera=camera, track_id=1, plate=plate, confidence=0.9,
        char_confidences=[0.9] * len(plate), first_seen=at - timedelta(seconds=3), last_seen=at,
        first_frame=0, last_frame=30, plate_box=[10, 10, 90, 30],
    )  # fmt: skip
    fields.update(kw)
    return PlateEvent(**fields)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    s = HistoryStore(tmp_path / "h.sqlite3")
    yield s  # type: ignore[misc]
    s.close()


def test_only_final_events_and_no_duplicates(store: HistoryStore) -> None:
    e = ev("AB123CD")
    assert store.add(e)
    assert not store.add(e)  # redelivered: same event_id
    assert not store.add(ev("AB123CD", type="provisional"))
    assert store.count() == 1
    rec = store.get(e.event_id)
    assert rec is not None and rec.plate == "AB123CD" and rec.last_seen == format_utc(NOW)


def test_crop_from_argument_or_event_and_not_for_hashed(store: HistoryStore) -> None:
    crop = np.random.default_rng(0).integers(0, 255, (30, 120, 3), dtype=np.uint8)
    e1 = ev("AB123CD", crop_jpeg_b64=encode_crop(crop))
    assert store.add(e1)
    got = store.get_crop(e1.event_id)
    assert got is not None and got[:2] == b"\xff\xd8"  # JPEG SOI
    e2 = ev("ZZ111ZZ")
    store.add(e2, b"\xff\xd8jpegbytes")
    assert store.get_crop(e2.event_id) == b"\xff\xd8jpegbytes"
    e3 = anonymize_event(ev("QQ222QQ", crop_jpeg_b64=encode_crop(crop)), "k" * 20)
    store.add(e3, b"\xff\xd8should-not-be-kept")
    assert store.get_crop(e3.event_id) is None
    assert store.crop_count() == 2


def test_retention_by_age_rows_and_crops(tmp_path: Path) -> None:
    s = HistoryStore(tmp_path / "h.sqlite3", retention_days=30, crop_retention_days=2)
    old = ev("OLD111", at=NOW - timedelta(days=40))
    mid = ev("MID222", at=NOW - timedelta(days=5))
    new = ev("NEW333", at=NOW - timedelta(hours=1))
    for e in (old, mid, new):
        s.add(e, b"\xff\xd8x")
    res = s.prune(now=NOW.timestamp())
    assert res.rows_deleted == 1 and res.crops_deleted == 2  # old row+crop, mid's crop
    assert s.get(old.event_id) is None
    assert s.get(mid.event_id) is not None and s.get_crop(mid.event_id) is None
    assert s.get_crop(new.event_id) == b"\xff\xd8x"
    s.close()


def test_bounded_by_rows_deletes_oldest(tmp_path: Path) -> None:
    s = HistoryStore(tmp_path / "h.sqlite3", max_rows=10, prune_every=5)
    events = [ev(f"AB{i:04d}", at=NOW + timedelta(seconds=i)) for i in range(33)]
    for e in events:
        s.add(e)
    s.prune()
    assert s.count() == 10
    kept = {r.plate for r in s.search(limit=None)}
    assert kept == {e.plate for e in events[-10:]}
    s.close()


def test_bounded_by_size(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    s = HistoryStore(path, max_mb=1.0, prune_every=10)
    blob = bytes(random.Random(1).getrandbits(8) for _ in range(20_000))  # 20 kB "crop"
    events = [ev(f"SZ{i:04d}", at=NOW + timedelta(seconds=i)) for i in range(150)]  # ~3 MB
    for e in events:
        s.add(e, blob)
    res = s.prune()
    assert res.size_bytes <= 1024 * 1024
    assert 20 < s.count() < 60  # ~1 MB / 20 kB, minus hysteresis
    newest = s.search(limit=1)[0]
    assert newest.plate == events[-1].plate  # the oldest went first
    s.close()
    # Space is returned to the file system (incremental vacuum), not just marked free.
    assert path.stat().st_size < 2.5 * 1024 * 1024


def test_fuzzy_search_ranking(store: HistoryStore) -> None:
    store.add(ev("AB123CD", at=NOW - timedelta(hours=2)))
    store.add(ev("AB123CD", at=NOW - timedelta(hours=1)))
    store.add(ev("AB128CD", at=NOW))
    store.add(ev("AB12CD", at=NOW))  # deletion: distance 1
    store.add(ev("XB128CD", at=NOW))  # distance 2
    store.add(ev("AB0123", at=NOW))  # unrelated
    res = store.search(plate="AB123CD")
    assert [(r.plate, r.distance) for r in res] == [
        ("AB123CD", 0), ("AB123CD", 0), ("AB128CD", 1), ("AB12CD", 1)
    ]  # fmt: skip
    assert res[0].ts > res[1].ts  # newest first among equals
    assert [r.plate for r in store.search(plate="AB123CD", max_distance=2)][-1] == "XB128CD"
    assert {r.plate for r in store.search(plate="AB123CD", fuzzy=False)} == {"AB123CD"}


def test_search_folds_o0_and_filters(store: HistoryStore) -> None:
    hit = WatchlistHit(name="vip", kind="allow", entry="AB0123", distance=0)
    store.add(ev("AB0123", camera="gate", watchlist=hit, at=NOW - timedelta(days=2)))
    store.add(ev("AB0123", camera="exit", at=NOW))
    assert len(store.search(plate="ABO123", fuzzy=False)) == 2  # O folded to 0
    assert store.search(plate="ABO123", fuzzy=False, fold=False) == []
    assert [r.camera for r in store.search(plate="AB0123", camera="exit")] == ["exit"]
    assert [r.camera for r in store.search(watchlist="vip")] == ["gate"]
    assert [r.camera for r in store.search(watchlist="*")] == ["gate"]
    since = NOW - timedelta(days=1)
    assert [r.camera for r in store.search(plate="AB0123", since=since)] == ["exit"]
    assert [r.camera for r in store.search(until=format_utc(since))] == ["gate"]
    assert [r.plate for r in store.search(plate="AB*")] == ["AB0123", "AB0123"]


def test_privacy_hashed_rows_found_with_the_key(store: HistoryStore) -> None:
    key = "s3cret-key-0123456789"
    store.add(anonymize_event(ev("PR1234"), key))
    assert store.search(plate="PR1234") == []
    found = store.search(plate="PR1234", privacy_key=key)
    assert len(found) == 1 and found[0].plate_hashed and found[0].distance == 0


def test_pigeonhole_prefilter_has_no_false_negatives() -> None:
    rng = random.Random(3)
    alphabet = "AB12"
    for _ in range(2000):
        q = "".join(rng.choice(alphabet) for _ in range(rng.randint(2, 8)))
        t = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9)))
        for d in (1, 2):
            if len(q) < d + 1 or levenshtein(q, t) > d:
                continue
            assert any(p in t for p in _pieces(q, d + 1)), (q, t, d)


def test_csv_export_columns(store: HistoryStore) -> None:
    hit = WatchlistHit(name="vip", kind="allow", entry="AB123CD", distance=0)
    store.add(ev("AB123CD", watchlist=hit, zones=["lane", "gate"], direction="entry"), b"\xff")
    buf = io.StringIO()
    assert write_csv(store.search(plate="AB123CD"), buf) == 1
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert list(rows[0]) == CSV_COLUMNS
    r = rows[0]
    assert (r["plate"], r["distance"], r["watchlist"], r["zones"], r["direction"]) == (
        "AB123CD", "0", "vip", "lane;gate", "entry"
    )  # fmt: skip
    assert r["has_crop"] == "1" and r["plate_hashed"] == "0"


def test_concurrent_writers(store: HistoryStore) -> None:
    def write(k: int) -> None:
        for i in range(50):
            store.add(ev(f"T{k}X{i:03d}"))

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count() == 200


def test_parse_time() -> None:
    assert parse_time("2025-05-10T12:00:00Z") == NOW.timestamp()
    assert parse_time("2025-05-10T12:00:00") == NOW.timestamp()  # naive = UTC
    assert parse_time("2025-05-10T14:00:00+02:00") == NOW.timestamp()
    assert parse_time("2h", now=1000.0 + 7200) == 1000.0
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time("yesterday")


def test_from_config_takes_tighter_privacy_retention(tmp_path: Path) -> None:
    cfg = HistoryConfig(path=tmp_path / "h.db", retention_days=90)
    priv = PrivacyConfig(
        enabled=True, key="k" * 20, history_retention_days=30, crop_retention_days=1
    )
    s = HistoryStore.from_config(cfg, priv)
    assert (s.retention_days, s.crop_retention_days) == (30, 1)
    s.close()


def test_cli_search_and_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "h.sqlite3"
    with HistoryStore(db) as s:
        s.add(ev("AB123CD", camera="gate"))
        s.add(ev("AB128CD", camera="yard"))
    assert cli_main(["history", "search", "--plate", "ab-123cd", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "AB123CD" in out and "AB128CD" in out
    out_csv = tmp_path / "out.csv"
    rc = cli_main(["history", "search", "--plate", "AB123CD", "--camera", "yard", "--db", str(db),
                   "--csv", str(out_csv)])  # fmt: skip
    assert rc == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert [(r["camera"], r["plate"], r["distance"]) for r in rows] == [("yard", "AB128CD", "1")]
    assert cli_main(["history", "search", "--since", "nonsense", "--db", str(db)]) == 2
    assert cli_main(["history", "search", "--db", str(tmp_path / "missing.db")]) == 2
