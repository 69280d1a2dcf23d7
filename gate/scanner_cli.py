"""`selfcheckout gate scanner-test`: try the lane's scanner before an attendant needs it.

Opens the scanner the config's [scanner] section names, with the same driver and settings as `gate run`,
and prints each scan decoded as the audit will read it (list code, symbology, an embedded weight or price,
the product in the lane's catalog), and each thing the port does (connected, unplugged, back, a garbled
line). Run it with the lane stopped: a serial port has one reader.
"""

from __future__ import annotations

import dataclasses
import queue
import signal
import threading
import time
from pathlib import Path

import click

from drivers.scanner import BarcodeScanner, Scan, ScannerNotice
from gate import config as lane_config
from gate.barcodes import BarcodeError, layouts_by_prefix, parse_scan, resolve
from gate.errors import ConfigError
from gate.money import format_amount
from gate.protocol.documents import line_total
from gate.store import GateStore


@click.command("scanner-test")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The lane config file (TOML) with a [scanner] section.",
)
@click.option("--count", type=click.IntRange(1), help="Stop after this many scans (default: until Ctrl-C).")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), help="Stop after this long.")
def scanner_test_command(config_path: Path, count: int | None, seconds: float | None) -> None:
    """Print each scan of the lane's scanner decoded, and what its port does, until Ctrl-C."""
    cfg = lane_config.load(config_path, check_key_files=False)
    if cfg.scanner is None:
        raise ConfigError(f"{config_path}: no [scanner] section: this lane has no scanner to try")
    events: queue.Queue[Scan | ScannerNotice] = queue.Queue()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    deadline = None if seconds is None else time.monotonic() + seconds
    layouts = layouts_by_prefix(cfg.barcodes.gs1)
    scans = 0
    with (
        GateStore(cfg.lane.database) as store,
        BarcodeScanner(**dataclasses.asdict(cfg.scanner), on_scan=events.put, on_notice=events.put),
    ):
        click.echo(f"scanner on {cfg.scanner.port_url}: scan something (Ctrl-C to stop)", err=True)
        while not stop.is_set() and (count is None or scans < count):
            if deadline is not None and time.monotonic() >= deadline:
                break
            try:
                event = events.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(event, ScannerNotice):
                click.echo(f"scanner {event.kind}: {event.detail}")
                continue
            scans += 1
            click.echo(_decoded(event, store, layouts, cfg.lane.currency))
    click.echo(f"{scans} scan(s)", err=True)


def _decoded(scan: Scan, store: GateStore, layouts: dict, currency: str) -> str:
    """One scan as the audit reads it: code, symbology, embedded value, the catalog's product and price."""
    shown = f"{scan.code}  {scan.symbology_name or 'no symbology id'}"
    try:
        code = parse_scan((scan.symbology or "") + scan.code).code
        r = resolve(code, layouts)
    except BarcodeError as exc:
        return f"{shown}  not a product code: {exc}"
    product = store.products([r.key], now=time.time(), grace_s=0, currency=currency).get(r.key)
    parts = [shown, f"list code {code}"]
    if r.measure is not None:
        unit = "g" if r.measure.kind == "weight" else currency
        value = f"{r.measure.value} g" if unit == "g" else format_amount(r.measure.value, currency)
        parts.append(f"{r.measure.kind} code: item {r.measure.item}, {value}")
    if product is None:
        parts.append("not in this lane's catalog")
        return "  ".join(parts)
    price = product.current_price()
    parts.append(product.name)
    if price is None:
        parts.append(f"no price in {currency}")
    elif r.measure is not None and r.measure.kind == "weight":
        parts.append(
            f"{format_amount(price, currency)}/kg"
            f" -> {format_amount(line_total(1, price, r.measure.value), currency)}"
        )
    elif r.measure is None:
        parts.append(format_amount(price, currency))
    return "  ".join(parts)
