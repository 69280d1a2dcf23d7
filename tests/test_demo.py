"""`make demo` runs in the suite: the scripted store's timeline and its summary, as a person reads them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.fixtures.panel import browser_login, new_page


def demo(folder: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "selfcheckout", "demo", "--state", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    return done.stdout


def verdicts(out: str) -> list[tuple[str, str, str, set[str]]]:
    """(gate, whose phone, verdict, reason codes) of every tap, in order."""
    found = re.findall(r"(gate-0\d) +([\w-]+)'s phone: (\w+)(?:: (.*?))? \(nfc_read", out)
    return [
        (gate, who, verdict, set(re.findall(r"\(([a-z_]+)\)", reasons)))
        for gate, who, verdict, reasons in found
    ]


def test_demo_runs_every_scenario_and_its_summary_balances(tmp_path: Path) -> None:
    out = demo(tmp_path / "store")
    assert "nats-server (JetStream) at nats://127.0.0.1:" in out
    assert verdicts(out) == [
        ("gate-01", "alice", "PASS", set()),
        ("gate-01", "mallory", "DENY", {"list_signature", "price_mismatch"}),
        ("gate-01", "bob", "DENY", {"over_guarantee"}),
        ("gate-01", "carol", "PASS", set()),
        ("gate-02", "dave", "PASS", set()),
        ("gate-01", "frank", "PASS", set()),
        ("gate-02", "frank-clone", "DENY", {"list_used"}),  # the payment system is down meanwhile
        ("gate-01", "erin", "EMERGENCY", set()),
        ("gate-01", "grace", "PASS", set()),  # her list was built at the kiosk
    ]
    assert re.search(r"replayed presentation: DENY: .*answer_wrong_nonce", out)
    assert "DENY: The total is more than your hold. Remove something or ask for a larger hold." in out
    assert "bob       phone refuses to sign: the total 5.67 EUR is over the hold of 5.00 EUR" in out
    assert re.search(r"3 charge\(s\) waiting in the lanes' outboxes \(10\.04 EUR\)", out)
    notices = re.findall(
        r"(\w+) +deduction notice verified: ([\d.]+) EUR = ([\d.]+) EUR stored value \+ ([\d.]+) EUR bank",
        out,
    )
    assert [n[0] for n in notices] == ["alice", "carol", "dave", "grace"]
    for _, total, stored, bank in notices:
        assert round(float(stored) * 100) + round(float(bank) * 100) == round(float(total) * 100)
    # The kiosk shopper: the first tap reads the hold, each scan is a line, the finishing tap is signed.
    kiosk = out[out.index("== 8. At the kiosk") : out.index("== Summary")]
    assert "kiosk     grace taps the phone: hold 20.00 EUR read and shown" in kiosk
    scans = re.findall(r"kiosk     scan (\d+): (.+?) +total ([\d.]+) EUR of 20.00 EUR", kiosk)
    assert [(code, total) for code, _, total in scans] == [
        ("8712345678906", "1.19"), ("4006381333931", "2.48"),
        ("2100231004124", "9.03"), ("8712345678906", "10.22"),
    ]  # fmt: skip
    assert scans[-1][1] == "Milk 1 l x2 2.38 EUR"
    assert (
        "grace     phone shows the kiosk's list "
        "(2 x Milk 1 l, 1 x Stabilo pen, 1 x Gouda (per kg): 10.22 EUR)" in kiosk
    )
    assert "kiosk     grace's signed list verified (10.22 EUR): walk to the exit" in kiosk
    summary = out[out.index("== Summary") :]
    rows = {
        m[0].strip(): m[1:] for m in re.findall(r"^  (.+?)\s{2,}(\d*)\s+([\d.]+ EUR|yes|NO)?$", summary, re.M)
    }
    assert rows["passes at the gates"] == ("5", "31.78 EUR")
    assert rows["charges at the payment system"] == ("5", "31.78 EUR")
    assert rows["charges settled"] == ("5", "31.78 EUR")
    assert rows["unforwarded at the gates"][0] == "0"
    assert "balanced                       yes\n" in summary
    assert summary.rstrip().endswith(
        "  price_mismatch: A price has changed. Refresh the catalog, scan the item again and confirm."
    )
    store = tmp_path / "store"
    assert (store / "gate-01" / "gate.db").exists() and (store / "gate-02" / "gate.db").exists()
    assert (store / "payments.db").exists()


@pytest.mark.browser
def test_demo_serve_keeps_the_store_running_with_the_lanes_panel(
    tmp_path: Path, chromium: Any, console_errors: list[str]
) -> None:
    demo = subprocess.Popen(
        [sys.executable, "-m", "selfcheckout", "demo", "--serve", "--state", str(tmp_path / "store")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},  # SIGABRT prints where every thread is
    )
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            found = re.match(
                r"== The lane's panel: (http://127\.0\.0\.1:\d+)/  \(log in as demo, secret (\S+)\)", line
            )
            if found:
                break
        else:
            raise AssertionError("the demo printed no panel address")
        url, secret = found.groups()
        assert "The store keeps running" in demo.stdout.readline()
        page = new_page(chromium, console_errors)
        browser_login(page, url, "demo", secret)
        expect(page.locator("#lane-state")).to_have_text("idle")
        page.goto(url + "/decisions?reason=over_guarantee")
        expect(page.locator("#decisions li[data-code=over_guarantee]")).to_contain_text(
            "The total is more than your hold."
        )
        page.context.close()
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            demo.send_signal(signal.SIGABRT)
            raise AssertionError(
                "Ctrl-C did not stop the demo in 30 s:\n" + demo.stdout.read()[-20000:]
            ) from None
        assert demo.returncode == 0, demo.stdout.read()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        if demo.stdout is not None:
            demo.stdout.close()


def test_without_nats_server_the_demo_says_so_and_the_lanes_share_passes_in_process(tmp_path: Path) -> None:
    path = [p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "nats-server").exists()]
    out = demo(tmp_path / "store", {**os.environ, "PATH": os.pathsep.join(path)})
    assert "nats-server is not installed" in out and "in-process bus instead" in out
    assert ("gate-02", "frank-clone", "DENY", {"list_used"}) in verdicts(out)
    assert "balanced                       yes\n" in out
