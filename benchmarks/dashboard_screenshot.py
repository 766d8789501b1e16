"""docs/dashboard.png taken during a real replay of samples/demo.mp4 (nothing synthetic).

    OMP_NUM_THREADS=1 python benchmarks/dashboard_screenshot.py [--out docs/dashboard.png]
        [--video samples/demo.mp4] [--camera garage-exit] [--sample-every 2]

Starts mosquitto (temp config, free loopback port), ``platewatch dashboard`` and
``platewatch replay VIDEO --mqtt ... --realtime`` as subprocesses, opens the page in headless
Debian Chromium (Playwright, ``executable_path``; no ``playwright install``) and, while the
replay runs, re-takes the screenshot each time the dashboard state changes. The file kept is the
last one taken while the runtime was still ``online`` with camera stats, i.e. the page right
before the replay ended (after it, the runtime's retained ``offline`` status marks every camera
offline). Everything shown (events, plate crops, camera stats) comes from the replay.
Needs: mosquitto, chromium, pip ``playwright``, the shipped models in models/.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [  # same as tests/integration/test_dashboard_browser.py
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(pred: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def get_state(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/state", timeout=2) as r:
        return json.loads(r.read())


def platewatch_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("platewatch")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "edge"]


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 5.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "dashboard.png")
    ap.add_argument("--video", type=Path, default=REPO / "samples" / "demo.mp4")
    ap.add_argument("--camera", default="garage-exit")
    ap.add_argument("--sample-every", type=int, default=2)
    ap.add_argument("--stats-interval", type=float, default=2.0)
    ap.add_argument("--width", type=int, default=1440)
    ap.add_argument("--height", type=int, default=700)  # full_page grows it
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("PLATEWATCH_CHROMIUM") or shutil.which("chromium")
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not chromium or not Path(mosquitto).exists():
        sys.exit("needs /usr/bin/chromium and mosquitto (apt-get install chromium mosquitto)")

    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        mport, hport = free_port(), free_port()
        conf = tmp / "mosquitto.conf"
        conf.write_text(
            f"listener {mport} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"user {getpass.getuser()}\n"
        )
        logs = {n: (tmp / f"{n}.log").open("wb") for n in ("mosquitto", "dashboard", "replay")}
        try:
            procs.append(
                subprocess.Popen(
                    [mosquitto, "-c", str(conf)], stdout=logs["mosquitto"], stderr=subprocess.STDOUT
                )
            )
            wait_for(lambda: port_open(mport), 10, "mosquitto")
            procs.append(subprocess.Popen(
                [*platewatch_cmd(), "dashboard", "--mqtt", f"127.0.0.1:{mport}",
                 "--port", str(hport)],
                stdout=logs["dashboard"], stderr=subprocess.STDOUT, env=env, cwd=REPO,
            ))  # fmt: skip
            wait_for(lambda: port_open(hport), 20, "the dashboard's HTTP port")
            shot = tmp / "shot.png"
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": args.width, "height": args.height},
                                        device_scale_factor=1)  # fmt: skip
                page.goto(f"http://127.0.0.1:{hport}/")
                page.wait_for_selector("body[data-ready='1']", timeout=15_000)
                replay = subprocess.Popen(
                    [*platewatch_cmd(), "replay", str(args.video), "--mqtt", f"127.0.0.1:{mport}",
                     "--realtime", "--sample-every", str(args.sample_every),
                     "--camera", args.camera, "--stats-interval", str(args.stats_interval),
                     "--no-progress", "--threads", "1", "--spool", str(tmp / "spool")],
                    stdout=logs["replay"], stderr=subprocess.STDOUT, env=env, cwd=REPO,
                )  # fmt: skip
                procs.append(replay)
                kept: dict[str, Any] | None = None
                last_key: tuple[Any, ...] | None = None
                deadline = time.monotonic() + 180
                while replay.poll() is None and time.monotonic() < deadline:
                    st = get_state(hport)
                    cams = {c["name"]: c for c in st["cameras"]}
                    cam = cams.get(args.camera)
                    live = st["status"] == "online" and cam is not None and cam["stats"]
                    key = (len(st["events"]), len(st["alerts"]),
                           cam["stats"].get("ts") if live else None)  # fmt: skip
                    if live and st["events"] and key != last_key:
                        # Let the page apply the same update and load the crops first.
                        page.wait_for_timeout(400)
                        page.wait_for_function(
                            "[...document.images].every(i => i.complete && i.naturalWidth > 0)",
                            timeout=5_000,
                        )
                        before = get_state(hport)
                        if before["status"] == "online":
                            page.screenshot(path=str(shot), full_page=True)
                            kept = before  # what the page showed (it may be newer than st)
                            last_key = key
                    time.sleep(0.3)
                browser.close()
            rc = replay.wait(60)
            end = get_state(hport)
        finally:
            for p in reversed(procs):
                stop(p)
            for f in logs.values():
                f.close()
        replay_log = (tmp / "replay.log").read_text(errors="replace")
        print(replay_log[-1500:], file=sys.stderr)
        if rc != 0:
            sys.exit(f"replay exited with {rc}")
        if kept is None:
            sys.exit("no screenshot: the replay produced no event while the runtime was online")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, args.out)

    def plates(s: dict[str, Any]) -> list[str]:
        return [f"{e.get('plate')}({e.get('type')})" for e in s["events"]]

    print(f"wrote {args.out}")
    print(f"screenshot: {len(kept['events'])} events {plates(kept)}; camera "
          f"{[c['health'] for c in kept['cameras']]}")  # fmt: skip
    print(f"after the replay: {len(end['events'])} events {plates(end)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
