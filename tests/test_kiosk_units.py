"""The kiosk's two systemd units: the service speaks sd_notify (READY=1 once its screen listens, WATCHDOG=1
while its threads run) and stops on SIGTERM; the screen unit runs Chromium in kiosk mode under cage on the
kiosk's own page. (Every unit's verification and hardening score is tests/test_systemd.py's.)"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import requests
from click.testing import CliRunner

from gate.protocol.keys import SigningKey, write_public_key
from kiosk.config import example_with
from selfcheckout.cli import main
from tests.fixtures.lane import ROOT, SELFCHECKOUT, NotifySocket
from tests.fixtures.payments import free_port


def kiosk_toml(folder: Path, port: int) -> Path:
    write_public_key(folder / "ps.pub", SigningKey.generate().public_key)  # nothing answers at its URL
    path = folder / "kiosk.toml"
    path.write_text(
        example_with(
            kiosk={"state_dir": str(folder / "state")},
            payments={"url": f"http://127.0.0.1:{free_port()}", "public_key_files": [str(folder / "ps.pub")]},
            scanner={"port_url": str(folder / "no-scanner-plugged-in")},
            reader={"name_pattern": "^No reader here$"},
            screen={"port": port},
        )
    )
    return path


def test_the_kiosk_service_is_ready_once_its_screen_listens_and_pings_the_watchdog(tmp_path: Path) -> None:
    """No scanner, no reader, no payment system: the kiosk still starts, shows its screen and says so."""
    port = free_port()
    config = kiosk_toml(tmp_path, port)
    listener = NotifySocket()
    env = {**os.environ, **listener.env(watchdog_usec=2_000_000)}
    kiosk = subprocess.Popen(
        [str(SELFCHECKOUT), "kiosk", "run", "--config", str(config)], env=env, stderr=subprocess.DEVNULL
    )
    try:
        ready = listener.wait_for(lambda line: line.startswith("STATUS="), 20, "READY=1 with a status")
        assert f"127.0.0.1:{port}" in ready and "READY=1" in listener.lines()
        listener.wait_for(lambda line: line == "WATCHDOG=1", 10, "a watchdog ping")
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200 and "Catalog unavailable" in page.text
        kiosk.send_signal(signal.SIGTERM)
        assert kiosk.wait(10) == 0
        assert "STOPPING=1" in listener.lines()
    finally:
        if kiosk.poll() is None:
            kiosk.kill()
            kiosk.wait()
        listener.close()


def test_the_screen_is_chromium_in_kiosk_mode_under_cage_on_the_kiosks_page(tmp_path: Path) -> None:
    port = free_port()
    result = CliRunner().invoke(
        main, ["kiosk", "screen", "--config", str(kiosk_toml(tmp_path, port)), "--profile", "/p", "--print"]
    )
    assert result.exit_code == 0, result.output
    words = result.output.split()
    assert words[:4] == ["cage", "-d", "--", "chromium"]
    assert "--kiosk" in words and "--user-data-dir=/p" in words and words[-1] == f"http://127.0.0.1:{port}/"
    unit = (ROOT / "systemd" / "selfcheckout-kiosk-screen.service").read_text()
    assert "ExecStart=/opt/selfcheckout/venv/bin/selfcheckout kiosk screen --config" in unit
    assert "IPAddressAllow=localhost\n" in unit and "PAMName=login" in unit
