"""Fuzzy plate search on the central database: the pg_trgm index against none, measured.

    python benchmarks/central_search.py [--rows 500000] [--repeat 20]

Fills a throwaway PostgreSQL (the collector's migrations) with ``--rows`` final events of
random 7-character plates over 30 days and 20 cameras (one INSERT ... SELECT: no crops, search
never reads them), then times ``PgHistory.search`` (edge.central.pg_history, what ``platewatch
history`` and the dashboard call) for exact, distance-1, distance-2 and glob queries, with the
trigram index of migration 002 and with it dropped (the same query plans PostgreSQL would use
on a database without pg_trgm). Prints the median milliseconds per query and the rows found.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from support import Postgres  # noqa: E402

FILL = """
INSERT INTO events (event_id, track_key, schema_version, type, device, camera, track_id, plate,
    plate_fold, plate_len, plate_hashed, confidence, char_confidences, candidates, first_seen,
    last_seen, first_frame, last_frame, plate_box, zones, received_at)
SELECT gen_random_uuid(), 't' || g, '1.0', 'final', 'dev' || (g %% 5), 'cam' || (g %% 20), g, p, p,
    7, false, 0.9, ARRAY[0.9,0.9,0.9,0.9,0.9,0.9,0.9]::real[], '[]'::jsonb,
    now() - (g %% 2592000) * interval '1 second', now() - (g %% 2592000) * interval '1 second',
    g, g, ARRAY[1,1,20,10], ARRAY[]::text[], now()
FROM (SELECT g, translate(upper(substr(md5(g::text), 1, 7)), 'OI', '01') AS p
      FROM generate_series(1, %s) g) s
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args(argv)
    import psycopg

    from edge.central.migrate import apply_migrations
    from edge.central.pg_history import PgHistory

    pg = Postgres(fsync=True)
    try:
        pg.start()
        url = pg.create_database("search")
        with psycopg.connect(url) as conn:
            apply_migrations(conn)
            t0 = time.perf_counter()
            with conn.transaction():
                conn.execute(FILL, (args.rows,))
            conn.execute("ANALYZE events")
            fill_s = time.perf_counter() - t0
            probe = conn.execute("SELECT plate FROM events WHERE id = %s", (args.rows // 2,))
            plate = probe.fetchone()[0]
        print(f"{args.rows} rows in {fill_s:.1f} s (with the indexes); probe plate {plate}")
        near = plate[:3] + ("X" if plate[3] != "X" else "Y") + plate[4:]  # one substitution
        queries = [
            ("exact", {"plate": plate, "fuzzy": False}),
            ("distance 1", {"plate": near, "max_distance": 1}),
            ("distance 2", {"plate": near, "max_distance": 2}),
            ("glob AB*", {"plate": plate[:3] + "*"}),
            ("distance 1, one camera, 7 days", {"plate": near, "camera": "cam3", "since": "7d"}),
        ]
        print("| query | with pg_trgm: ms (rows) | without: ms (rows) |\n|---|---|---|")
        results: dict[str, list[str]] = {}
        for label in ("with", "without"):
            if label == "without":
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("DROP INDEX events_plate_fold_trgm")
            hist = PgHistory(url)
            try:
                for name, q in queries:
                    hist.search(**q)  # warm the cache and the plan
                    times = []
                    for _ in range(args.repeat):
                        t = time.perf_counter()
                        found = hist.search(**q)
                        times.append((time.perf_counter() - t) * 1000)
                    results.setdefault(name, []).append(
                        f"{statistics.median(times):.1f} ({len(found)})"
                    )
            finally:
                hist.close()
        for name, cells in results.items():
            print(f"| {name} | {cells[0]} | {cells[1]} |")
    finally:
        pg.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
