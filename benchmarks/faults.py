"""Fault-injection table: expected / delivered / duplicated / lost per fault, against a baseline.

    python benchmarks/faults.py [--outages 5,60] [--json OUT]

Runs the scenarios of tests/faults.py (the fault tests run their short forms) with real
mosquitto brokers on free loopback ports: a rendered 8 s clip through the pipeline in real time
with the broker SIGKILLed after the first event and restarted after each of ``--outages``
seconds, with and without broker persistence, and without a fault (baseline); a broker that
accepts TCP but never answers CONNECT; SIGKILL of ``platewatch run`` (shipped models, the demo
clip looped) while the broker is down and events are spooled, and while it delivers. The subscriber
is a persistent-session QoS 1 client; ``expected`` is every event the pipeline published (a JSON
Lines tap beside the MQTT sink), ``duplicated`` counts event ids received more than once.
Needs mosquitto on PATH (or /usr/sbin).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from faults import (  # noqa: E402
    TABLE_HEAD,
    Counts,
    run_broker_outage,
    run_sigkill_while_delivering,
    run_sigkill_while_spooled,
    run_silent_broker,
)
from support import Mosquitto  # noqa: E402

from edge.detect.models import default_models_dir  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--outages", default="5,60", help="broker down times in seconds (5,60)")
    ap.add_argument("--json", type=Path, default=None, metavar="OUT")
    args = ap.parse_args(argv)
    from training.synth.video import render_clip

    outages = [float(x) for x in args.outages.split(",") if x]
    models = default_models_dir()
    demo = REPO / "samples" / "demo.mp4"
    rows: list[Counts] = []
    brokers: list[Mosquitto] = []
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)

        def make_broker(
            *, persistent: bool = False, port: int | None = None, start: bool = True
        ) -> Mosquitto:
            b = Mosquitto(tmp / f"broker{len(brokers)}", port=port, persistent=persistent)
            brokers.append(b)
            if start:
                b.start()
            return b

        clip = tmp / "gate.mp4"
        truth = render_clip(clip, width=640, height=360, fps=25, seconds=8, n_vehicles=3, seed=11)
        try:
            for persistent in (False, True):
                for outage in [None, *outages]:
                    label = "baseline" if outage is None else f"broker killed {outage:g} s"
                    d = tmp / f"{label}-{persistent}".replace(" ", "_")
                    d.mkdir()
                    rows.append(
                        run_broker_outage(
                            clip,
                            truth,
                            d,
                            make_broker,
                            persistent=persistent,
                            outage_s=outage,
                            label=label,
                        )  # fmt: skip
                    )
                    print(rows[-1].row(), flush=True)
            for name, run in (
                ("silent", lambda d: run_silent_broker(d, make_broker, silent_s=10.0)),
                (
                    "spooled",
                    lambda d: run_sigkill_while_spooled(d, make_broker, models, demo, 5),
                ),
                (
                    "delivering",
                    lambda d: run_sigkill_while_delivering(d, make_broker, models, demo, 5),
                ),
            ):
                d = tmp / name
                d.mkdir()
                rows.append(run(d))
                print(rows[-1].row(), flush=True)
        finally:
            for b in brokers:
                b.kill()
    print("\n" + TABLE_HEAD)
    for r in rows:
        print(r.row())
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
    return 0 if all(r.lost == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
