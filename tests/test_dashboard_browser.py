"""The dashboard page in a real headless Chromium (driven by Playwright) against real mosquitto.

Needs the Debian package ``chromium`` (/usr/bin/chromium) and the pip package ``playwright``;
``playwright install`` is NOT needed (it would download a browser): the system Chromium is
launched through ``executable_path``. Without them the test is skipped, unless
``PLATEWATCH_REQUIRE_BROWSER=1`` (set in CI) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Mosquitto
from test_dashboard import (
    ALLOW,
    DENY,
    Publisher,
    make_event,
    make_stats,
    running_dashboard,
)

CHROMIUM = os.environ.get("PLATEWATCH_CHROMIUM") or shutil.which("chromium") or (
    "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
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
            lambda r: problems.append(f"external request {r.url}")
            if not r.url.startswith(("http://127.0.0.1:", "data:"))
            else None,
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
            expect(page.locator("li.event .plate")).to_have_text(["MH12AB9", "KA51MN4"])

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
            runtime.publish("yard/stats", make_stats("yard", online=False,
                                                     last_error="rtsp: timeout").to_bytes())
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
                ["AB123CD", "XY987ZZ", "MH12AB9", "KA51MN4"]
            )
            expect(gate).to_have_attribute("data-health", "offline")
    finally:
        runtime.stop()
    assert problems == []
