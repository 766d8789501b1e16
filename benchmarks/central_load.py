"""Central collector under load: N simulated devices -> their brokers -> bridges -> the central
broker -> ``platewatch collect`` -> PostgreSQL, all real processes on this machine.

    python benchmarks/central_load.py                       # the default table (below)
    python benchmarks/central_load.py --devices 4 --batch 200 --rate 1200 --seconds 20
    python benchmarks/central_load.py --sweep-batch 20,100,200,500 --sweep-devices 1,4,8

Each simulated device is a mosquitto broker bridged to the central one exactly as
deploy/central/bridge.conf does it (QoS 1, kept sessions; no TLS: loopback) and a paho client
publishing final PlateEvents with a real JPEG crop of 5-15 kB on ``platewatch/<dev>/gate/events``
at ``--rate / --devices`` events per second each (``--rate 0``: as fast as they go: capacity).
The collector is ``platewatch collect`` as its own process; PostgreSQL runs with its durable
defaults (fsync, synchronous_commit on).

Per run it prints: offered rate, stored rows per second (the rows committed between the first
and the last commit, over that time), end-to-end latency p50/p95 (the event's ``last_seen``,
set when it is published, to the ``stored_at`` of its row: the start of the transaction that
stored it, a few milliseconds before its commit), lost (published and never stored) and
duplicated (rows beyond one per event id), the collector's CPU and the machine's CPU use.
Events are stamped with ``last_seen`` = publish time so latency needs no clock but this one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import numpy as np  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from support import Mosquitto, Postgres, wait_until  # noqa: E402

from edge.events.schema import PlateEvent, encode_crop  # noqa: E402

CROP_SHAPES = [(40, 170, 85), (48, 200, 80), (56, 220, 85), (64, 240, 80), (64, 256, 85),
               (72, 256, 90)]  # fmt: skip


def make_crops(n: int = 48) -> list[str]:
    """Real JPEGs of plate-crop size: textured noise compresses like a photo of a plate does
    not, so these sit at 4.5-14 kB (mean about 8 kB)."""
    rng = np.random.default_rng(13)
    out = []
    for i in range(n):
        h, w, q = CROP_SHAPES[i % len(CROP_SHAPES)]
        out.append(encode_crop(rng.integers(60, 200, (h, w, 3), dtype=np.uint8), 256, q))
    return out


def central_conf(broker: Mosquitto, inflight: int) -> None:
    """The centre's settings from deploy/central/mosquitto.conf that matter for load:
    persistence with a periodic save, no queue cap for the collector's session, an in-flight
    window above the collector's batch."""
    text = broker.conf_path.read_text().replace("persistence false\n", "")
    text += (
        f"persistence true\npersistence_location {broker.workdir}/\nautosave_interval 60\n"
        f"max_queued_messages 0\nmax_inflight_messages {inflight}\n"
    )
    broker.conf_path.write_text(text)


def device_conf(central_port: int, name: str, inflight: int) -> list[str]:
    return [
        "allow_anonymous true",
        "max_queued_messages 0",
        f"max_inflight_messages {inflight}",
        f"connection central-{name}",
        f"address 127.0.0.1:{central_port}",
        f"remote_clientid bridge-{name}",
        "cleansession false",
        "local_cleansession false",
        "topic platewatch/# out 1",
        "bridge_protocol_version mqttv311",
        "restart_timeout 1 2",
        "notifications false",
        "try_private true",
    ]


class Device:
    """One simulated device: its broker (bridged to the centre) and its publisher."""

    def __init__(self, root: Path, name: str, central_port: int, inflight: int) -> None:
        self.name = name
        self.broker = Mosquitto(root / name, listener_conf=device_conf(central_port, name,
                                                                       inflight))  # fmt: skip
        self.broker.start()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"pub-{name}"
        )
        self.client.max_inflight_messages_set(inflight)
        self.client.max_queued_messages_set(0)
        self.client.connect(self.broker.host, self.broker.port)
        self.client.loop_start()
        self.sent: list[str] = []

    def publish(self, crop: str, track: int) -> None:
        now = datetime.now(timezone.utc)
        e = PlateEvent(
            type="final", device=self.name, camera="gate", track_id=track,
            track_uuid=str(uuid.uuid4()), plate=f"AB{track % 100000:05d}",
            confidence=0.9, char_confidences=[0.9] * 7, first_seen=now, last_seen=now,
            first_frame=track, last_frame=track + 1, plate_box=[10, 10, 120, 40],
            crop_jpeg_b64=crop,
        )  # fmt: skip
        self.client.publish(f"platewatch/{self.name}/gate/events", e.to_bytes(), qos=1)
        self.sent.append(e.event_id)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.broker.kill()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    parts = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = parts[3] + parts[4]
    return float(sum(parts) - idle), float(sum(parts))


@dataclass
class Result:
    devices: int
    batch: int
    offered_per_s: float | None
    published: int
    stored: int
    stored_per_s: float
    p50_ms: float
    p95_ms: float
    lost: int
    duplicated: int
    collector_cpu_pct: float
    machine_cpu_pct: float
    crop_kb_mean: float


def run_one(
    pg: Postgres,
    root: Path,
    devices: int,
    batch: int,
    rate: float,
    seconds: float,
    crops: list[str],
    max_wait: float,
) -> Result:
    import psycopg

    db = f"load_{devices}_{batch}_{int(time.time() * 1000) % 10**8}"
    url = pg.create_database(db)
    run_dir = Path(tempfile.mkdtemp(dir=root, prefix=db))
    inflight = max(1000, 2 * batch)
    central = Mosquitto(run_dir / "central")
    central_conf(central, inflight)
    central.start()
    log = (run_dir / "collect.log").open("ab")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    collector = subprocess.Popen(
        [sys.executable, "-m", "edge", "collect", "--db", url, "--mqtt",
         f"127.0.0.1:{central.port}", "--batch-size", str(batch), "--max-wait", str(max_wait),
         "--retention-days", "3650"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
    )  # fmt: skip
    devs: list[Device] = []
    conn = None
    try:
        assert wait_until(
            lambda: b"collector subscribed" in (run_dir / "collect.log").read_bytes(), 60
        ), (run_dir / "collect.log").read_text()
        devs = [Device(run_dir, f"dev{i:02d}", central.port, inflight) for i in range(devices)]
        conn = psycopg.connect(url, autocommit=True)

        def count() -> int:
            assert conn is not None
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])

        # Warm-up: one event per device end to end (bridges up, statements prepared).
        for d in devs:
            d.publish(crops[0], 0)
        assert wait_until(lambda: count() >= devices, 60), "warm-up events never arrived"
        conn.execute("TRUNCATE events, crops, cameras, devices CASCADE")
        for d in devs:
            d.sent.clear()

        cpu0, busy0 = cpu_seconds(collector.pid), machine_busy()
        t0 = time.monotonic()
        per_dev = rate / devices if rate > 0 else 0.0

        def pump(d: Device, k: int) -> None:
            i = 0
            start = time.monotonic()
            while time.monotonic() - start < seconds:
                d.publish(crops[(i + k) % len(crops)], i + 1)
                i += 1
                if per_dev > 0:
                    ahead = start + i / per_dev - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
                elif i % 200 == 0:
                    time.sleep(0)  # let paho's thread send

        threads = [threading.Thread(target=pump, args=(d, k)) for k, d in enumerate(devs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        published = sum(len(d.sent) for d in devs)
        wait_until(lambda: count() >= published, 120, 0.5)
        time.sleep(1.0)  # a late duplicate would land now
        elapsed = time.monotonic() - t0
        cpu1, busy1 = cpu_seconds(collector.pid), machine_busy()
        stats = conn.execute(
            "SELECT count(*), count(DISTINCT event_id), "
            "extract(epoch FROM max(stored_at) - min(stored_at)), "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM stored_at - "
            "last_seen)), percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM "
            "stored_at - last_seen)) FROM events"
        ).fetchone()
        stored, distinct, span, p50, p95 = stats
        sent_ids = {e for d in devs for e in d.sent}
        got_ids = {r[0] for r in conn.execute("SELECT event_id::text FROM events").fetchall()}
        sizes = [len(c) * 3 / 4 / 1024 for c in crops]
        return Result(
            devices=devices,
            batch=batch,
            offered_per_s=rate if rate > 0 else None,
            published=published,
            stored=int(distinct),
            stored_per_s=round(int(stored) / max(float(span or 0), 1e-3), 1),
            p50_ms=round(float(p50 or 0) * 1000, 1),
            p95_ms=round(float(p95 or 0) * 1000, 1),
            lost=len(sent_ids - got_ids),
            duplicated=int(stored) - int(distinct),
            collector_cpu_pct=round(100 * (cpu1 - cpu0) / elapsed, 1),
            machine_cpu_pct=round(100 * (busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1), 1),
            crop_kb_mean=round(sum(sizes) / len(sizes), 1),
        )
    finally:
        if conn is not None:
            conn.close()
        for d in devs:
            d.close()
        collector.terminate()
        try:
            collector.wait(30)
        except subprocess.TimeoutExpired:
            collector.kill()
        log.close()
        central.kill()


HEAD = (
    "| devices | batch | offered/s | published | stored rows/s | p50 ms | p95 ms | lost | dup "
    "| collector CPU | machine CPU |\n|---|---|---|---|---|---|---|---|---|---|---|"
)


def row(r: Result) -> str:
    offered = "max" if r.offered_per_s is None else f"{r.offered_per_s:.0f}"
    return (
        f"| {r.devices} | {r.batch} | {offered} | {r.published} | {r.stored_per_s:.0f} | "
        f"{r.p50_ms:.0f} | {r.p95_ms:.0f} | {r.lost} | {r.duplicated} | "
        f"{r.collector_cpu_pct:.0f}% | {r.machine_cpu_pct:.0f}% |"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--devices", type=int, default=4)
    p.add_argument("--batch", type=int, default=200)
    p.add_argument("--rate", type=float, default=1200.0, help="events/s offered in total; 0: max")
    p.add_argument("--seconds", type=float, default=15.0, help="publishing time per run")
    p.add_argument("--max-wait", type=float, default=0.2, help="collector --max-wait")
    p.add_argument("--sweep-batch", help="comma list: one run per batch size (at --devices)")
    p.add_argument("--sweep-devices", help="comma list: one run per device count (at --batch)")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)

    crops = make_crops()
    print(f"crops: {len(crops)} JPEGs, {min(len(c) for c in crops) * 3 // 4 / 1024:.1f}-"
          f"{max(len(c) for c in crops) * 3 // 4 / 1024:.1f} kB; load before: "
          f"{os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    runs: list[tuple[int, int]] = [(args.devices, args.batch)]
    if args.sweep_batch or args.sweep_devices:
        runs = []
        for b in [int(x) for x in (args.sweep_batch or "").split(",") if x]:
            runs.append((args.devices, b))
        for d in [int(x) for x in (args.sweep_devices or "").split(",") if x]:
            if (d, args.batch) not in runs:
                runs.append((d, args.batch))
    root = Path(tempfile.mkdtemp(prefix="platewatch-load-"))
    pg = Postgres(fsync=True)
    results: list[Result] = []
    try:
        pg.start()
        print(HEAD, flush=True)
        for devices, batch in runs:
            r = run_one(pg, root, devices, batch, args.rate, args.seconds, crops, args.max_wait)
            results.append(r)
            print(row(r), flush=True)
    finally:
        pg.cleanup()
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    bad = [r for r in results if r.lost or r.duplicated]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
