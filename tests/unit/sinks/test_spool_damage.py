"""A damaged spool never blocks a restart: bad rows are set aside and counted, an unreadable
file is renamed aside with what could be saved, and a SIGKILL mid-write leaves nothing torn."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from edge.sinks.spool import Spool


def test_a_row_whose_checksum_fails_is_quarantined(tmp_path: Path) -> None:
    s = Spool(tmp_path)
    seqs = [s.append(f"t/{i}", f"payload {i}".encode()) for i in range(5)]
    s.close()
    db = sqlite3.connect(tmp_path / Spool.FILENAME)
    db.execute("UPDATE spool SET payload = ? WHERE seq = ?", (b"bit rot", seqs[2]))
    db.commit()
    db.close()
    s = Spool(tmp_path)
    got = s.read_after(0, 10)
    assert [e.seq for e in got] == [seqs[0], seqs[1], seqs[3], seqs[4]]
    assert s.damaged == 1 and len(s) == 4
    q = s._db.execute("SELECT seq, reason FROM quarantine").fetchall()
    assert q == [(seqs[2], "checksum mismatch")]
    s.close()


def test_an_unreadable_file_is_set_aside_and_a_fresh_spool_starts(tmp_path: Path) -> None:
    s = Spool(tmp_path)
    s.append("t", b"x")
    s.close()
    (tmp_path / Spool.FILENAME).write_bytes(b"this is not a database" * 100)
    s = Spool(tmp_path)  # used to raise SpoolError: the service could not start
    assert s.damaged_file is not None and s.damaged_file.exists() and len(s) == 0
    s.append("t", b"after")
    assert [e.payload for e in s.read_after(0, 5)] == [b"after"]
    s.close()


WRITER = """
import sys
from edge.sinks.spool import Spool
s = Spool(sys.argv[1])
print("ready", flush=True)
i = 0
while True:
    s.append_many([(f"t/{i}", b"%d" % i * 300, False, 1), (f"t/{i}/plate", b"x", True, 0)])
    i += 1
"""


def test_sigkill_while_writing_leaves_a_readable_consistent_spool(tmp_path: Path) -> None:
    for delay in (0.2, 0.5, 0.9):
        d = tmp_path / f"k{delay}"
        p = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(d)], stdout=subprocess.PIPE, text=True
        )
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        s = Spool(d)  # opens: no torn row, no lock left behind (flock dies with the process)
        rows = s.read_after(0, 100_000)
        assert s.damaged == 0 and s.damaged_file is None and len(rows) == len(s) > 0
        # append_many is atomic: events come with their plate message, never half of a pair
        assert len(rows) % 2 == 0
        assert all(r.payload == (b"%d" % int(r.topic.split("/")[1])) * 300 for r in rows[::2])
        s.close()
