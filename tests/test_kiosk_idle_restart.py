"""A session left alone is warned about, then cleared; a kiosk killed mid-session says so when it is back.

The restart is the real command (`selfcheckout kiosk run --config ...`) killed with SIGKILL, as a power
cut would stop it, and started again on the same state folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kiosk.config import example_with
from tests.fixtures.kiosk import KIOSK_VIEWPORT, KioskRig, kiosk_config_for, wait_for
from tests.fixtures.payments import MILK, PEN, free_port

pytestmark = [pytest.mark.standins, pytest.mark.browser]


@pytest.fixture
def kiosk_session_settings() -> dict[str, Any]:
    return {"idle_warning_s": 2.0, "idle_clear_s": 4.0}


def test_an_idle_session_is_warned_about_then_cleared(kiosk_rig: KioskRig) -> None:
    rig, page = kiosk_rig, kiosk_rig.page
    phone = rig.phone(hold=1000)
    rig.tap_and_lift(phone, "shopping")
    rig.scan_shown(PEN, 1)
    page.wait_for_selector("#idle")
    assert "Are you still there?" in page.inner_text("#idle")
    rig.shot("idle-warning")
    page.click("#idle button[data-action='still_here']")  # the shopper is still there
    page.wait_for_selector("#idle", state="detached")
    rig.scan_shown(MILK, 2)
    page.wait_for_selector("#idle")  # and now walks away
    rig.expect_state("attract")
    assert "cleared after 4 s without activity" in rig.expect_notice("idle_cleared")


def test_a_kiosk_killed_mid_session_says_so_when_it_is_back(
    phone_shop: Any, gate_side: Any, pcsc: Any, pty_pair: Any, chromium: Any, tmp_path: Path
) -> None:
    from drivers.virtual_card import VirtualCard
    from phone.terminal import Phone

    config = kiosk_config_for(tmp_path, phone_shop, gate_side, pty_pair)
    port = free_port()
    path = tmp_path / "kiosk.toml"
    path.write_text(
        example_with(
            kiosk={k: str(v) for k, v in vars(config.kiosk).items()},
            payments={"url": config.payments.url, "public_key_files": [str(gate_side.ps_public_key_file)]},
            scanner={"port_url": config.scanner.port_url, "debounce_ms": 0},
            reader={"name_pattern": config.reader.name_pattern, "exchange_timeout_ms": 2000},
            screen={"host": "127.0.0.1", "port": port},
        )
    )
    command = [sys.executable, "-m", "selfcheckout", "kiosk", "run", "--config", str(path)]

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, stderr=subprocess.PIPE)
        assert process.stderr is not None
        wait_for(lambda: b"screen on" in process.stderr.readline(), "the kiosk to listen")
        return process

    phone = Phone.init(tmp_path / "phone")
    phone.enrol(phone_shop.stack.url, "alice", "DE-1", token=phone_shop.stack.admin_token)
    phone_shop.stack.top_up("alice", 1000)
    phone.request_hold(1000)
    context = chromium.new_context(viewport=KIOSK_VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(15_000)  # generous: CI machines are shared
    process = start()
    try:
        page.goto(f"http://127.0.0.1:{port}/")
        with VirtualCard(phone.kiosk_card()):
            page.wait_for_selector(".screen[data-state='shopping']")
        pty_pair.write(PEN.encode() + b"\r")
        page.wait_for_selector("#lines tr.line")
        os.kill(process.pid, signal.SIGKILL)  # the power goes
        process.wait()
        process.stderr.close()  # type: ignore[union-attr]
        process = start()
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector(".screen[data-state='attract']")
        notice = page.wait_for_selector("#notice[data-code='restarted']")
        assert "Nothing was signed or charged" in notice.inner_text()
        if os.environ.get("KIOSK_SHOTS"):
            page.screenshot(path=f"{os.environ['KIOSK_SHOTS']}/restarted.png")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        process.stderr.close()  # type: ignore[union-attr]
        context.close()
