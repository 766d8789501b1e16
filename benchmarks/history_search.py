"""Search speed of the SQLite history: exact and fuzzy plate search over many stored events.

    python benchmarks/history_search.py [--rows 100000]

Prints the best of 3 runs per query (fuzzy search is the trigram/length-bucket path of
edge.history.store).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from edge.events.schema import format_utc
from edge.history.store import HistoryStore

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def run(tmp_path: Path, n: int) -> None:
    rng = random.Random(7)
    letters, digits = "ABCDEFGHJKLMNPRSTUVWXYZ", "0123456789"
    s = HistoryStore(tmp_path / "big.sqlite3", prune_every=10**9)
    rows = []
    t0 = NOW.timestamp() - n
    for i in range(n):
        plate = "".join(rng.choice(letters) for _ in range(2)) + "".join(
            rng.choice(digits) for _ in range(3)
        ) + "".join(rng.choice(letters) for _ in range(rng.choice((1, 2))))  # fmt: skip
        ts = format_utc(datetime.fromtimestamp(t0 + i, tz=timezone.utc))
        rows.append((f"00000000-0000-4000-8000-{i:012d}", f"cam{i % 4}", i, plate, plate,
                     len(plate), 0, 0.9, "[]", ts, ts, t0 + i, "[0,0,1,1]", "[]"))  # fmt: skip
    with s._db:  # bulk load (add() validates one event at a time: slow for a benchmark)
        s._db.executemany(
            "INSERT INTO events (event_id, camera, track_id, plate, plate_fold, plate_len, "
            "plate_hashed, confidence, zones, first_seen, last_seen, ts, plate_box, candidates) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
    target = rows[n // 2][3]
    timings = {}
    for label, kwargs in [
        ("exact", dict(fuzzy=False)),
        ("fuzzy d=1", dict(max_distance=1)),
        ("fuzzy d=2", dict(max_distance=2)),
        ("fuzzy d=1 camera", dict(max_distance=1, camera="cam1")),
    ]:
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            res = s.search(plate=target, **kwargs)  # type: ignore[arg-type]
            best = min(best, time.perf_counter() - t)
        timings[label] = best
        if label != "fuzzy d=1 camera":
            assert any(r.plate == target and r.distance == 0 for r in res)
    t = time.perf_counter()
    s.search(since=NOW - timedelta(hours=1), limit=100)
    timings["time range (no plate)"] = time.perf_counter() - t
    print(f"history search on {n} rows (best of 3):")
    for label, sec in timings.items():
        print(f"  {label:22s} {sec * 1000:7.1f} ms")
    s.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        run(Path(tmp), args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
