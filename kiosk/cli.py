"""`selfcheckout kiosk ...`: the kiosk service, as systemd runs it (systemd/selfcheckout-kiosk.service)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
from pathlib import Path

import click

from gate.notify import Notifier
from kiosk import config as kiosk_config
from kiosk.service import KioskService

_CONFIG = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The kiosk's TOML config (config/kiosk.example.toml documents every key).",
)


@click.group("kiosk")
def kiosk_group() -> None:
    """The self-checkout kiosk: the screen, the scanner and the reader next to the exit."""


@kiosk_group.command("run")
@_CONFIG
@click.option("--verbose", is_flag=True, help="Log every tap and scan.")
def run_command(config_path: Path, verbose: bool) -> None:
    """Run the kiosk until SIGTERM: the screen on [screen] host:port, the scanner, the phone reader.

    Under systemd (Type=notify) it sends READY=1 once the screen listens, and WATCHDOG=1 while the tap and
    watch threads are alive.
    """
    try:  # pyscard is the nfc extra: every other command works without it
        from drivers.nfc_pcsc import PhoneReader
    except ModuleNotFoundError as exc:
        if exc.name != "smartcard":
            raise
        raise click.ClickException(
            "pyscard is not installed, so the kiosk cannot talk to the NFC reader: install the nfc extra "
            "(pip install '.[nfc]' in the checkout, or `make test` once, which builds it)"
        ) from exc
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    cfg = kiosk_config.load(config_path)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with (
        Notifier() as notifier,
        PhoneReader(cfg.reader.name_pattern, exchange_timeout_ms=cfg.reader.exchange_timeout_ms) as reader,
        KioskService(cfg, reader=reader) as service,
    ):
        click.echo(f"kiosk {cfg.kiosk.kiosk_id} screen on {service.url}", err=True)
        notifier.ready(f"kiosk {cfg.kiosk.kiosk_id} on {service.url}")
        while not stop.wait(1.0):
            if service.alive():
                notifier.watchdog()
        notifier.stopping()


# Chromium as a kiosk screen: full screen, no first-run or crash bubbles, no pinch or swipe navigation, no
# translate prompt, no network but the kiosk's own page; the page itself never reloads.
CHROMIUM_FLAGS = (
    "--kiosk",
    "--no-first-run",
    "--noerrdialogs",
    "--disable-infobars",
    "--disable-translate",
    "--disable-features=Translate,TouchpadOverscrollHistoryNavigation",
    "--overscroll-history-navigation=0",
    "--disable-pinch",
    "--disable-session-crashed-bubble",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--ozone-platform=wayland",
)


def screen_command(url: str, *, cage: str = "cage", chromium: str = "chromium", profile: str) -> list[str]:
    """cage (a Wayland compositor that shows one application full screen) running Chromium on the URL."""
    return [cage, "-d", "--", chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url]


@kiosk_group.command("screen")
@_CONFIG
@click.option(
    "--profile",
    default=lambda: os.environ.get("STATE_DIRECTORY", "/var/lib/selfcheckout-screen"),
    help="Chromium's profile folder. Default: systemd's STATE_DIRECTORY.",
)
@click.option("--print", "print_only", is_flag=True, help="Print the command instead of running it.")
def screen_command_cli(config_path: Path, profile: str, print_only: bool) -> None:
    """Show the kiosk's screen: Chromium in kiosk mode on [screen] host:port, under the cage compositor."""
    cfg = kiosk_config.load(config_path)
    url = f"http://{cfg.screen.host}:{cfg.screen.port}/"
    command = screen_command(url, profile=profile)
    if print_only:
        click.echo(" ".join(command))
        return
    for program in command[:1] + command[3:4]:
        if shutil.which(program) is None:
            raise click.ClickException(f"{program} is not installed: apt-get install cage chromium")
    os.execvp(command[0], command)
