"""The technician panel under a lane's real load: the status page rendered with 10,000 decisions in the
database (`panel.status_render.p99`, over HTTP from waitress), and a lane event reaching an open page in
Chromium through the server-sent events (`panel.event_to_browser.p99`).

The 10,000 decisions are copies of real ones (a pass, a denial), spread over the last hour so that every
chart of the status page draws from all of them.
"""

from __future__ import annotations

import os
import re
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests
from gpiozero.pins.mock import MockFactory
from playwright.sync_api import sync_playwright

from bench.stats import latency_metrics
from gate.lane import LaneState
from gate.panel import Accounts, PanelServer, create_app
from tests.fixtures.lane import LaneRig, running_lane
from tests.fixtures.panel import CHROMIUM, CHROMIUM_ARGS, QUICK_HASH, browser_login
from tests.test_panel import tap_deny, tap_pass

DECISIONS = 10_000
RENDERS = 100
EVENTS = 40
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def _fill(rig: LaneRig, folder: Path) -> None:
    """DECISIONS decisions in the database: copies of a real pass and a real denial over the last hour."""
    tap_pass(rig)
    tap_deny(rig)
    now = time.time()
    with sqlite3.connect(folder / "gate.db") as db:
        have = db.execute("SELECT count(*) FROM events").fetchone()[0]
        columns = (
            "gate, verdict, codes, reasons, timings, hold, shopper, total, currency, attendant, presentation"
        )
        for i in range(DECISIONS - have):
            db.execute(
                f"INSERT INTO events (at, list_id, {columns}) SELECT ?, randomblob(16), {columns}"
                " FROM events WHERE id = ?",
                [now - 3600 + i * 3600 / DECISIONS, 1 + i % 2],
            )
        db.execute(
            "INSERT INTO lane_events (at, kind, detail, data) SELECT at, kind, detail, data FROM lane_events"
            " WHERE kind = 'transition'"
        )


def _login(session: requests.Session, url: str, name: str, secret: str) -> None:
    page = session.get(url + "/login", timeout=10).text
    token = _TOKEN.search(page)
    assert token is not None
    answer = session.post(
        url + "/login", data={"csrf_token": token.group(1), "name": name, "secret": secret}, timeout=10
    )
    answer.raise_for_status()


def _status_renders(url: str) -> list[float]:
    with requests.Session() as session:
        session.trust_env = False
        _login(session, url, "tess", "correct horse 1")
        samples = []
        for _ in range(RENDERS):
            t0 = time.perf_counter()
            answer = session.get(url + "/", timeout=10)
            samples.append(time.perf_counter() - t0)
            assert answer.status_code == 200 and 'id="charts"' in answer.text
    return samples


def _events_to_browser(rig: LaneRig, url: str) -> list[float]:
    """Maintenance on, off: each transition until the open page shows the new state (the page's clock)."""
    samples = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        browser_login(page, url, "tess", "correct horse 1")
        time.sleep(0.5)  # the event stream open
        for i in range(EVENTS):
            expected = "maintenance" if i % 2 == 0 else "idle"
            page.evaluate(
                """expected => {
                    window.__seen = null;
                    const look = () => {
                        const el = document.getElementById("lane-state");
                        if (el && el.textContent === expected && window.__seen === null) {
                            window.__seen = Date.now();
                        }
                    };
                    new MutationObserver(look).observe(document.body, {subtree: true, childList: true});
                }""",
                expected,
            )
            t0 = time.time() * 1000
            rig.lane.maintenance("open" if expected == "maintenance" else None, "bench")
            deadline = time.monotonic() + 10
            while (seen := page.evaluate("window.__seen")) is None:  # the page's own clock says when
                assert time.monotonic() < deadline, "the page did not show the change"
                time.sleep(0.005)
            samples.append((seen - t0) / 1000)
        browser.close()
    return samples


def run() -> Iterator[dict]:
    with tempfile.TemporaryDirectory(prefix="bench-panel-") as tmp:
        folder = Path(tmp)
        with (
            running_lane(folder, MockFactory()) as rig,
            Accounts(folder / "panel.db", hasher=QUICK_HASH) as accounts,
        ):
            accounts.add("tess", "technician", "correct horse 1")
            _fill(rig, folder)
            rig.wait_state(LaneState.IDLE)  # the denial shown
            app = create_app(rig.service, secret_key=os.urandom(32), accounts=accounts)
            with PanelServer(app, "127.0.0.1", 0) as server:
                yield from latency_metrics("panel.status_render", _status_renders(server.url))
                yield from latency_metrics("panel.event_to_browser", _events_to_browser(rig, server.url))
