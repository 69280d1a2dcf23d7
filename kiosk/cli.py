"""`selfcheckout kiosk ...`: the kiosk service, as systemd runs it (systemd/selfcheckout-kiosk.service)."""

from __future__ import annotations

import logging
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
