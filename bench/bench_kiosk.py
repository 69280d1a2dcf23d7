"""The kiosk as a shopper meets it: `selfcheckout kiosk run` with its screen in Chromium, a socat pty as its
scanner, pcscd + vpcd as its reader, and its catalog from the real payment system's feed.

- `kiosk.scan_to_screen`: from a scan line written to the pty to that line in the page's DOM (the page
  stamps each screen it receives with the wall clock; both sides read the same system clock). Every scan is
  a new product, so the screen grows to SCANS lines.
- `kiosk.tap_to_signed`: from the phone placed on the reader for the finishing tap to the kiosk showing
  "walk to the exit", i.e. after it verified the signed list. It includes pcscd noticing the card (it polls
  vpcd every 0.4 s); the phone confirms as soon as the proposal is on its screen.
- `kiosk.process_peak_rss`: VmHWM of the kiosk process after all of it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.stats import latency_metrics, metric
from drivers.virtual_card import VirtualCard
from gate.barcodes import check_digit
from gate.protocol.keys import write_public_key
from kiosk.config import example_with
from phone.terminal import Phone
from tests.fixtures.payments import free_port, start_stack
from tests.fixtures.standins import VPCD_READER, Pcscd, PtyPair

SCANS = 200
SESSIONS = 20
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
STAMP_SCREENS = """() => {
  window.__screens = [];
  new MutationObserver(() => {
    const s = document.querySelector('.screen');
    window.__screens.push([s.dataset.state, document.querySelectorAll('#lines tr.line').length,
                           performance.timeOrigin + performance.now()]);
  }).observe(document.getElementById('screen'), {childList: true, subtree: true});
}"""


def _products(count: int) -> list[dict[str, Any]]:
    codes = [f"40{i:010d}" for i in range(1, count + 1)]
    return [
        {
            "code": c + check_digit(c),
            "name": f"Product {i}",
            "category": "grocery",
            "unit": "each",
            "price": 100,
        }
        for i, c in enumerate(codes, 1)
    ]


def _wait(page: Any, condition: str, timeout_ms: int = 20_000) -> Any:
    return page.wait_for_function(condition, timeout=timeout_ms, polling=5).json_value()


def _stamp_of(seen: int, condition: str) -> str:
    """A page function: the stamp of the first screen after the `seen` first that meets the condition."""
    found = f"window.__screens.slice({seen}).find(x => {condition})"
    return f"() => {{ const s = {found}; return s ? s[2] : null; }}"


def _tap(card: Any, page: Any, state: str, seen: int) -> float:
    """Place the phone until the screen reaches `state`; the browser's stamp of that screen (epoch s)."""
    with VirtualCard(card):
        stamp = _wait(page, _stamp_of(seen, f"x[0] === '{state}'"))
    return stamp / 1000


def run() -> Iterator[dict]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-kiosk-") as tmp:
        folder = Path(tmp)
        stack = start_stack(folder / "ps")
        daemon = Pcscd(folder)
        pair = PtyPair(folder)
        kiosk: subprocess.Popen[bytes] | None = None
        try:
            products = _products(SCANS)
            stack.admin(
                "POST",
                "/v1/catalog/prices",
                json={"items": [{**p, "valid_from": stack.now() - 60} for p in products]},
            )
            write_public_key(folder / "ps.pub", stack.key.public_key)
            daemon.start()
            pair.start()
            port = free_port()
            config = folder / "kiosk.toml"
            config.write_text(
                example_with(
                    kiosk={
                        "store_id": stack.store_id,
                        "currency": stack.currency,
                        "state_dir": str(folder / "k"),
                    },
                    payments={"url": stack.url, "public_key_files": [str(folder / "ps.pub")]},
                    scanner={"port_url": str(pair.device), "debounce_ms": 0},
                    reader={"name_pattern": VPCD_READER},
                    screen={"port": port},
                    session={"done_display_s": 60.0},
                )
            )
            kiosk = subprocess.Popen(
                [sys.executable, "-m", "selfcheckout", "kiosk", "run", "--config", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            assert kiosk.stderr is not None
            if b"screen on" not in kiosk.stderr.readline():
                raise RuntimeError("kiosk run did not start")
            phone = Phone.init(folder / "phone")
            phone.enrol(stack.url, "alice", "DE-1", token=stack.admin_token)
            stack.top_up("alice", 1_000_000)
            phone.request_hold(1_000_000)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"http://127.0.0.1:{port}/")
                page.evaluate(STAMP_SCREENS)
                yield from _scan_to_screen(page, pair, phone, products)
                yield from _tap_to_signed(page, pair, phone, products)
                browser.close()
            status = Path(f"/proc/{kiosk.pid}/status").read_text()
            peak_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
            yield metric("kiosk.process_peak_rss", peak_kib / 1024, "MiB")
        finally:
            if kiosk is not None:
                kiosk.terminate()
                kiosk.wait(10)
                if kiosk.stderr is not None:
                    kiosk.stderr.close()
            pair.stop()
            daemon.close()
            stack.close()


def _scan_to_screen(page: Any, pair: PtyPair, phone: Phone, products: list[dict[str, Any]]) -> Iterator[dict]:
    _tap(phone.kiosk_card(), page, "shopping", 0)
    samples = []
    for i, product in enumerate(products, 1):
        seen = page.evaluate("window.__screens.length")
        started = time.time()
        pair.write(product["code"].encode() + b"\r")
        shown = _wait(page, _stamp_of(seen, f"x[1] === {i}"))
        samples.append(shown / 1000 - started)
    yield from latency_metrics("kiosk.scan_to_screen", samples)
    yield metric("kiosk.scan_to_screen.samples", len(samples), "scans")


def _tap_to_signed(page: Any, pair: PtyPair, phone: Phone, products: list[dict[str, Any]]) -> Iterator[dict]:
    page.click("button.cancel")  # the long list of the scan run is dropped
    page.wait_for_selector(".screen[data-state='attract']")
    samples = []
    for n in range(SESSIONS):
        _tap(phone.kiosk_card(), page, "shopping", page.evaluate("window.__screens.length"))
        for i, product in enumerate(products[:3], 1):
            seen = page.evaluate("window.__screens.length")
            pair.write(product["code"].encode() + b"\r")
            _wait(page, f"() => window.__screens.slice({seen}).some(x => x[1] === {i})")
        card = phone.kiosk_card()

        def confirm(card: Any = card) -> None:
            if card.shown.wait(20):
                card.confirm(card.proposal.hash())

        confirmer = threading.Thread(target=confirm, name=f"shopper-{n}")
        confirmer.start()
        seen = page.evaluate("window.__screens.length")
        started = time.time()
        signed_at = _tap(card, page, "done", seen)
        confirmer.join()
        samples.append(signed_at - started)
    yield from latency_metrics("kiosk.tap_to_signed", samples)
    yield metric("kiosk.tap_to_signed.samples", len(samples), "taps")
