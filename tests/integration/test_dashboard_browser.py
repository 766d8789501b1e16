"""The dashboard page in a real headless Chromium (driven by Playwright) against real mosquitto.

Needs the Debian package ``chromium`` (/usr/bin/chromium) and the pip package ``playwright``;
``playwright install`` is NOT needed (it would download a browser): the system Chromium is
launched through ``executable_path``. Without them the test is skipped, unless
``PLATEWATCH_REQUIRE_BROWSER=1`` (set in CI) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # script mode (the docs screenshot): test helpers live in tests/
    sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).parent)]

import pytest  # noqa: E402
from support import Mosquitto  # noqa: E402
from test_dashboard import (  # noqa: E402
    ALLOW,
    DENY,
    Publisher,
    make_event,
    make_stats,
    running_dashboard,
)


def _tall_crop_b64() -> str:
    import base64

    import cv2
    import numpy as np

    img = np.full((78, 137, 3), 200, np.uint8)
    cv2.rectangle(img, (0, 0), (136, 77), (0, 0, 255), 3)  # a red frame: clipping would cut it
    return base64.b64encode(cv2.imencode(".jpg", img)[1].tobytes()).decode()


CHROMIUM = (
    os.environ.get("PLATEWATCH_CHROMIUM")
    or shutil.which("chromium")
    or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

try:
    from playwright.sync_api import Page, sync_playwright
    from playwright.sync_api import expect as pw_expect
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None  # type: ignore[assignment]


def _require_browser() -> None:
    missing = []
    if sync_playwright is None:
        missing.append("pip install playwright")
    if CHROMIUM is None:
        missing.append("apt-get install -y chromium")
    if missing:
        msg = "browser test needs: " + "; ".join(missing) + " (no `playwright install`)"
        if os.environ.get("PLATEWATCH_REQUIRE_BROWSER") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture
def browser_page() -> Iterator[tuple[Page, list[str]]]:
    _require_browser()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        # The page must not try to reach anything but its own origin (offline control desk).
        page.on(
            "request",
            lambda r: (
                problems.append(f"external request {r.url}")
                if not r.url.startswith(("http://127.0.0.1:", "data:"))
                else None
            ),
        )
        try:
            yield page, problems
        finally:
            browser.close()


def _color(page: Page, selector: str, prop: str) -> tuple[int, ...]:
    value: str = page.eval_on_selector(selector, f"n => getComputedStyle(n).{prop}")
    return tuple(int(float(v)) for v in value[value.index("(") + 1 : -1].split(",")[:3])


def test_live_events_alerts_and_offline_in_browser(
    mosquitto: Mosquitto, browser_page: tuple[Page, list[str]]
) -> None:
    page, problems = browser_page
    expect: Any = pw_expect
    runtime = Publisher(mosquitto, will=True)  # carries the runtime's Last Will
    try:
        runtime.publish("status", b"online", retain=True)  # retained: seen by a later dashboard
        with running_dashboard(mosquitto) as (server, _):
            page.goto(server.url)
            expect(page.locator("body[data-ready='1']")).to_have_count(1, timeout=10_000)
            runtime.publish("gate/stats", make_stats().to_bytes())  # periodic, not retained
            gate = page.locator(".camera[data-camera='gate']")
            expect(gate).to_have_attribute("data-health", "online", timeout=10_000)
            expect(page.locator("#runtime-pill")).to_have_attribute("data-state", "up")
            expect(page.locator("#broker-pill")).to_have_attribute("data-state", "up")

            # 1. An event published on MQTT appears with its plate text and its crop image.
            ev = make_event("KA51MN4")
            runtime.event(ev)
            row = page.locator(f"li.event[data-event-id='{ev.event_id}']")
            expect(row.locator(".plate")).to_have_text("KA51MN4", timeout=10_000)
            img = row.locator(".crop img")
            expect(img).to_have_count(1)
            page.wait_for_function(
                "id => { const i = document.querySelector(`li[data-event-id='${id}'] img`);"
                " return i && i.complete && i.naturalWidth > 100; }",
                arg=ev.event_id,
                timeout=10_000,
            )
            expect(row).to_have_attribute("data-kind", "")
            expect(gate.locator(".last-plate")).to_have_text("KA51MN4")
            # 1b. A crop taller than its box (137x78 in 168x56) is fitted, not clipped.
            tall = make_event("TALL77", crop=False, track_id=9)
            tall = tall.model_copy(update={"crop_jpeg_b64": _tall_crop_b64()})
            runtime.event(tall)
            timg = f"li.event[data-event-id='{tall.event_id}'] .crop img"
            page.wait_for_function(
                "s => { const i = document.querySelector(s); return i && i.complete && "
                "i.naturalWidth > 0; }",
                arg=timg,
                timeout=10_000,
            )
            fit = page.eval_on_selector(
                timg,
                "i => { const b = i.parentElement.getBoundingClientRect(); "
                "const r = i.getBoundingClientRect(); return {fit: getComputedStyle(i).objectFit,"
                " inside: r.width <= b.width + 0.5 && r.height <= b.height + 0.5} }",
            )
            assert fit == {"fit": "contain", "inside": True}, fit

            # 2. A provisional reading is dimmed, then replaced by the final of its track.
            tu = str(uuid.uuid4())
            prov = make_event("MH12AB0", type="provisional", track_uuid=tu, track_id=2)
            runtime.event(prov)
            prow = page.locator(f"li.event[data-event-id='{prov.event_id}']")
            expect(prow).to_have_attribute("data-type", "provisional", timeout=10_000)
            assert float(prow.evaluate("n => getComputedStyle(n).opacity")) < 0.9
            final = make_event("MH12AB9", track_uuid=tu, track_id=2)
            runtime.event(final)
            expect(page.locator(f"li.event[data-event-id='{final.event_id}']")).to_have_count(
                1, timeout=10_000
            )
            expect(prow).to_have_count(0)
            expect(page.locator("li.event .plate")).to_have_text(["MH12AB9", "TALL77", "KA51MN4"])

            # 3. A deny-list hit is highlighted red, an allow-list hit green; the runtime's
            #    alert on <prefix>/<camera>/alerts marks the event and lands in the alert list.
            deny = make_event("XY987ZZ", watchlist=DENY, track_id=3)
            runtime.event(deny)
            drow = f"li.event[data-event-id='{deny.event_id}']"
            expect(page.locator(drow)).to_have_attribute("data-kind", "deny", timeout=10_000)
            r, g, b = _color(page, drow, "borderLeftColor")
            assert r > 200 and g < 120 and b < 120, (r, g, b)
            runtime.event(deny, kind="alerts")
            expect(page.locator(drow)).to_have_attribute("data-alert", "1", timeout=10_000)
            expect(page.locator(f"{drow} .badge.deny")).to_have_text("deny · stolen")
            alert_item = page.locator(f"#alerts li[data-event-id='{deny.event_id}']")
            expect(alert_item).to_have_attribute("data-kind", "deny", timeout=10_000)
            expect(alert_item.locator(".plate")).to_have_text("XY987ZZ")
            allow = make_event("AB123CD", watchlist=ALLOW, track_id=4)
            runtime.event(allow)
            arow = f"li.event[data-event-id='{allow.event_id}']"
            expect(page.locator(arow)).to_have_attribute("data-kind", "allow", timeout=10_000)
            r, g, b = _color(page, arow, "borderLeftColor")
            assert g > 150 and r < 120, (r, g, b)

            # 4. A second camera whose source is down shows offline from its own stats.
            runtime.publish(
                "yard/stats",
                make_stats("yard", online=False, last_error="rtsp: timeout").to_bytes(),
            )
            yard = page.locator(".camera[data-camera='yard']")
            expect(yard).to_have_attribute("data-health", "offline", timeout=10_000)
            expect(yard.locator(".camera-error")).to_have_text("rtsp: timeout")

            # 5. The runtime dies without saying goodbye: the broker publishes its Last Will
            #    ('offline' on <prefix>/status) and every camera shows offline.
            runtime.client.loop_stop()
            sock = runtime.client.socket()
            assert sock is not None
            sock.close()
            expect(gate).to_have_attribute("data-health", "offline", timeout=10_000)
            expect(gate.locator(".health")).to_have_text("offline")
            expect(page.locator("#runtime-pill")).to_have_attribute("data-state", "down")

            # A reload rebuilds the same page from /api/stream's snapshot.
            page.reload()
            expect(page.locator("body[data-ready='1']")).to_have_count(1, timeout=10_000)
            expect(page.locator("li.event .plate")).to_have_text(
                ["AB123CD", "XY987ZZ", "MH12AB9", "TALL77", "KA51MN4"]
            )
            expect(gate).to_have_attribute("data-health", "offline")
    finally:
        runtime.stop()
    assert problems == []


# ---------------------------------------------------------------------------------------------
# docs/dashboard_features.png:
#     python tests/integration/test_dashboard_browser.py docs/dashboard_features.png
#
# The page during a replay of samples/demo.mp4: the plate crops of camera "garage-exit" are cut
# from the clip's frames at its ground-truth plate boxes (what the runtime sends for that clip),
# camera "gate-in" gets plates from training.synth.generate_plate (TrueType fonts only), and a
# history database feeds the search panel. Needs mosquitto, chromium, playwright, training extras.


def _demo_clip_crops() -> list[tuple[str, str, str]]:
    """(plate text, region, base64 JPEG crop) for each vehicle of samples/demo.mp4."""
    import cv2

    from edge.config.schema import REPO_ROOT
    from edge.events.schema import encode_crop
    from training.synth.video import ClipTruth

    truth = ClipTruth.load(REPO_ROOT / "samples" / "demo.truth.json")
    cap = cv2.VideoCapture(str(REPO_ROOT / "samples" / "demo.mp4"))
    out = []
    for v in truth.vehicles:
        # The frame where the fully visible, undegraded plate is largest: the runtime's best read.
        best = max(
            (f for f in range(v.first_full, v.last_full + 1)
             if f in v.frames and v.frames[f].plate_box and not v.frames[f].degraded),
            key=lambda f: (lambda b: (b[2] - b[0]) * (b[3] - b[1]))(v.frames[f].plate_box),
        )  # fmt: skip
        cap.set(cv2.CAP_PROP_POS_FRAMES, best)
        ok, frame = cap.read()
        assert ok, f"cannot read frame {best} of samples/demo.mp4"
        x1, y1, x2, y2 = (int(round(c)) for c in v.frames[best].plate_box)
        mx, my = int((x2 - x1) * 0.12) + 2, int((y2 - y1) * 0.2) + 2
        crop = frame[max(0, y1 - my) : y2 + my, max(0, x1 - mx) : x2 + mx]
        out.append((v.text, v.region, encode_crop(crop)))
    cap.release()
    return out


def _synth_crops(n: int, seed: int = 11) -> list[tuple[str, str]]:
    import numpy as np

    from edge.events.schema import encode_crop
    from training.synth.plates import generate_plate
    from training.synth.video import ttf_only_glyphs

    rng = np.random.default_rng(seed)
    out = []
    with ttf_only_glyphs():
        for style in ["eu_de", "eu_fr", "us_ca", "uk_rear", "eu_it", "us_ny"][:n]:
            try:
                p = generate_plate(rng, style, degrade=True, strength=0.35, height=56)
            except ValueError:
                p = generate_plate(rng, None, degrade=True, strength=0.35, height=56)
            out.append((p.text, encode_crop(p.image)))
    return out


def make_screenshot(out_path: str) -> None:
    import tempfile
    import time
    from datetime import datetime, timedelta, timezone
    from pathlib import Path

    from support import Mosquitto, wait_until  # noqa: F811 - script mode

    from edge.events.schema import WatchlistHit
    from edge.history.store import HistoryStore

    now = datetime.now(timezone.utc)
    demo = _demo_clip_crops()
    synth = _synth_crops(4)
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp) / "broker")
        broker.start()
        db = Path(tmp) / "history.sqlite3"
        stolen = WatchlistHit(
            name="stolen-vehicles",
            kind="deny",
            entry=demo[2][0],
            distance=0,
            description="reported stolen 2025-04-28",
        )
        staff = WatchlistHit(
            name="staff", kind="allow", entry=demo[4][0], distance=0, description="staff parking"
        )
        with HistoryStore(db) as hist:
            # Earlier visits, so a search finds something.
            for i, (text, _region, b64) in enumerate(demo):
                for days in (1, 3):
                    hist.add(make_event(text, camera="garage-exit", crop=False,
                                        crop_jpeg_b64=b64, track_id=100 + i * 10 + days,
                                        when=now - timedelta(days=days, minutes=17 * i),
                                        watchlist=stolen if i == 2 else None,
                                        direction="exit", zones=["ramp", "barrier"]))  # fmt: skip
        store = HistoryStore(db, read_only=True)
        runtime = Publisher(broker, will=True)
        runtime.publish("status", b"online", retain=True)
        try:
            with running_dashboard(broker, history=store) as (server, _):
                runtime.publish("garage-exit/stats", make_stats(
                    "garage-exit", fps_in=25.0, fps_analysed=12.5, frames_dropped=3,
                    latency_ms_p50=41.0, latency_ms_p95=88.0, reconnects=0, queue_depth=1,
                ).to_bytes())  # fmt: skip
                runtime.publish("gate-in/stats", make_stats(
                    "gate-in", fps_in=15.0, fps_analysed=7.5, frames_dropped=0,
                    latency_ms_p50=55.0, latency_ms_p95=121.0, reconnects=2, queue_depth=0,
                ).to_bytes())  # fmt: skip
                runtime.publish("loading-bay/stats", make_stats(
                    "loading-bay", online=False, fps_in=0.0, fps_analysed=0.0, frames_dropped=0,
                    latency_ms_p50=None, latency_ms_p95=None, reconnects=7, queue_depth=0,
                    last_error="rtsp://10.0.4.21/stream1: connection timed out (retrying in 8 s)",
                ).to_bytes())  # fmt: skip
                t = now - timedelta(minutes=8)
                synth_iter = iter(synth)
                for i, (text, region, b64) in enumerate(demo):
                    t += timedelta(seconds=38 + 11 * i)
                    wl = stolen if i == 2 else staff if i == 4 else None
                    ev = make_event(
                        text, camera="garage-exit", crop=False, crop_jpeg_b64=b64, track_id=i + 1,
                        when=t, watchlist=wl, region=region, direction="exit",
                        zones=["ramp", "barrier"], confidence=[0.97, 0.93, 0.95, 0.88, 0.96,
                                                               0.91][i],
                    )  # fmt: skip
                    runtime.event(ev)
                    if wl is not None:  # the runtime's alert: the same event on .../alerts
                        runtime.event(ev, kind="alerts")
                    if i % 2 == 1:
                        s = next(synth_iter, None)
                        if s is not None:
                            runtime.event(make_event(
                                s[0], camera="gate-in", crop=False, crop_jpeg_b64=s[1],
                                track_id=50 + i, when=t + timedelta(seconds=9),
                                direction="entry", zones=["lane-1"], confidence=0.9,
                            ))  # fmt: skip
                    time.sleep(0.05)
                s = next(synth_iter, None)
                if s is not None:  # a car still in view: provisional reading
                    runtime.event(make_event(
                        s[0], camera="gate-in", type="provisional", crop=False,
                        crop_jpeg_b64=s[1], track_id=99, when=now, direction=None,
                        zones=["lane-1"], confidence=0.74,
                    ))  # fmt: skip
                assert wait_until(lambda: len(server.state.snapshot()["events"]) >= 9, 5)

                with sync_playwright() as pw:
                    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                    page = browser.new_page(viewport={"width": 1440, "height": 1100},
                                            device_scale_factor=1)  # fmt: skip
                    page.goto(server.url)
                    page.wait_for_selector("body[data-ready='1']")
                    page.fill("#q-plate", demo[2][0][:-1] + "8")  # a misread: fuzzy still finds
                    page.select_option("#q-since", "7d")
                    page.click("#search button")
                    page.wait_for_selector("#results li")
                    page.wait_for_function(
                        "[...document.images].every(i => i.complete && i.naturalWidth > 0)"
                    )
                    page.screenshot(path=out_path, full_page=True)
                    browser.close()
        finally:
            runtime.stop()
            store.close()
            broker.kill()
    print(f"wrote {out_path}")


if __name__ == "__main__":
    import sys

    make_screenshot(sys.argv[1] if len(sys.argv) > 1 else "docs/dashboard_features.png")


def test_page_stream_and_crops_work_behind_the_token(  # type: ignore[no-untyped-def]
    mosquitto: Mosquitto, browser_page
) -> None:
    from edge.dashboard.security import Access
    from edge.dashboard.server import DashboardServer, DashboardState, MqttFeed
    from edge.sinks.mqtt import MqttSettings

    page, problems = browser_page
    expect: Any = pw_expect
    state = DashboardState("platewatch")
    feed = MqttFeed(state, MqttSettings(host=mosquitto.host, port=mosquitto.port)).start()
    server = DashboardServer(
        state, "127.0.0.1", 0, access=Access.make("127.0.0.1", token="page-token-1")
    ).start()
    runtime = Publisher(mosquitto)
    try:
        assert page.goto(server.url).status == 401  # type: ignore[union-attr]
        page.goto(server.url + "?token=page-token-1")  # sets the cookie, redirects to /
        assert page.url == server.url
        expect(page.locator("body[data-ready='1']")).to_have_count(1, timeout=10_000)
        ev = make_event("TOK123")
        runtime.event(ev)
        row = page.locator(f"li.event[data-event-id='{ev.event_id}']")
        expect(row.locator(".plate")).to_have_text("TOK123", timeout=10_000)  # SSE got through
        page.wait_for_function(
            "id => { const i = document.querySelector(`li[data-event-id='${id}'] img`);"
            " return i && i.complete && i.naturalWidth > 100; }",
            arg=ev.event_id,
            timeout=10_000,
        )  # the crop image too
    finally:
        runtime.stop()
        server.stop()
        feed.stop()
    # the first, refused load logs a 401; nothing else may fail
    assert [p for p in problems if "401" not in p] == []
