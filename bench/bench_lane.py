"""The lane as a shopper meets it, through pcscd + vpcd: tap-to-open and tap-to-deny latency.

Tap-to-open runs from the phone placed on the reader to the relay pin changing, tap-to-deny to the red
light. Through pcscd + vpcd it includes pcscd noticing the card, which it does by polling vpcd every 0.4 s
(stand-ins.md), so the same lane is also measured on the in-process transport, and `select_to_open` gives
the lane's own share: NFC read, verify, durable commit, actuate. Lists have 30 items, against a
100k-product catalog, with the durable commit (synchronous=FULL) on a file database.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory

from bench.bench_catalog import synthetic_catalog
from bench.stats import latency_metrics, metric
from drivers.nfc_inprocess import InProcessReader
from drivers.virtual_card import VirtualCard
from gate import config as lane_config
from gate.lane import ReaderLike
from gate.protocol.keys import SigningKey, TrustedKeys, write_public_key, write_secret_key
from gate.protocol.parties import issue_voucher, item, new_id, sign_list
from gate.service import LaneService, open_lane
from gate.store import GateStore
from phone.card import ExitCard
from selfcheckout.demo import lane_config_text
from tests.fixtures.standins import VPCD_READER, Pcscd

TAPS = 300
DENIALS = 60
ITEMS = 30


def _wait(ready: Callable[[], bool], timeout_s: float, poll_s: float = 0.0002) -> float:
    """Busy-wait (0.2 ms) until ready; the perf_counter time it became so."""
    deadline = time.perf_counter() + timeout_s
    while not ready():
        if time.perf_counter() > deadline:
            raise TimeoutError("the lane did not react in time")
        time.sleep(poll_s)
    return time.perf_counter()


class Bench:
    def __init__(self, folder: Path) -> None:
        self.ps = SigningKey.generate()
        self.gate_key = SigningKey.generate()
        self.shopper = SigningKey.generate()
        write_secret_key(folder / "gate.key", self.gate_key)
        write_public_key(folder / "ps.pub", self.ps.public_key)
        (folder / "lane.toml").write_text(
            lane_config_text(
                database=folder / "gate.db",
                gate_key=folder / "gate.key",
                ps_key=folder / "ps.pub",
                ps_url="http://127.0.0.1:9",
                reader={"name_pattern": VPCD_READER},
                timings={"close_after_passage_ms": 0, "denied_display_ms": 0},
                offline={"max_count": 100_000, "max_amount": 1_000_000_000},
            )
        )
        self.config = lane_config.load(folder / "lane.toml")
        catalog = synthetic_catalog()
        with GateStore(self.config.lane.database) as store:
            store.import_catalog(catalog)
        self.items = [item(p.code, p.price) for p in catalog[:: len(catalog) // ITEMS][:ITEMS]]
        self.trusted_gates = {self.config.lane.gate_id: TrustedKeys([self.gate_key.public_key])}

    def card(self, *, total_over_hold: bool = False) -> ExitCard:
        now = int(time.time())
        total = sum(i.line_total for i in self.items)
        hold = new_id()
        voucher = issue_voucher(
            self.ps,
            hold=hold,
            shopper="bench",
            shopper_key=self.shopper.public_key,
            store=self.config.lane.store_id,
            currency=self.config.lane.currency,
            stored_value=0,
            bank=total - 1 if total_over_hold else total,
            issued=now - 60,
            expires=now + 3600,
        )
        signed = sign_list(
            self.shopper,
            list_id=new_id(),
            hold=hold,
            store=self.config.lane.store_id,
            currency=self.config.lane.currency,
            created=now - 30,
            items=self.items,
        )
        return ExitCard(self.shopper, voucher, signed, self.trusted_gates)


def run() -> Iterator[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bench = Bench(folder)
        with InProcessReader() as reader:
            yield from _latencies(bench, "lane.inprocess", reader, InProcessPhones(reader))
        daemon = Pcscd(folder)
        try:
            daemon.start()
            yield from _latencies(bench, "lane.pcsc", None, VpcdPhones())
            yield from _process_memory(bench)
        finally:
            daemon.close()


class InProcessPhones:
    """Phones placed on the in-process reader: the lane's own path, no pcscd polling in front of it."""

    def __init__(self, reader: InProcessReader) -> None:
        self.reader = reader

    def place(self, card: ExitCard) -> None:
        self.reader.place(card)

    def lift(self, service: LaneService) -> None:
        self.reader.lift()


class VpcdPhones:
    """Phones on vpcd; pcscd notices a card by polling vpcd (up to 0.4 s), which tap-to-open includes."""

    def __init__(self) -> None:
        self.card: VirtualCard | None = None

    def place(self, card: ExitCard) -> None:
        self.card = VirtualCard(card)
        self.card.insert()

    def lift(self, service: LaneService) -> None:
        assert self.card is not None
        self.card.remove()
        # The next shopper's phone comes after the reader saw this one leave, as at a real gate.
        _wait(lambda: not service.reader.health()["phone_present"], 5.0, 0.005)


def _latencies(bench: Bench, name: str, reader: ReaderLike | None, phones: Any) -> Iterator[dict]:
    pins = MockFactory()
    with open_lane(bench.config, reader=reader, pin_factory=pins, forward=False) as service:
        lane = service.lane
        relay = pins.pin(bench.config.gpio.relay_pin)
        red = pins.pin(bench.config.gpio.red_pin)
        beam = pins.pin(bench.config.gpio.beam_pin)
        locked_level = relay.state
        stop = threading.Event()
        thread = threading.Thread(target=lane.run, args=(stop, 0.05), daemon=True)
        thread.start()
        try:
            to_open, detect_to_open, to_deny = [], [], []
            for i in range(TAPS + DENIALS):
                deny = i >= TAPS
                card = bench.card(total_over_hold=deny)
                t0 = time.perf_counter()
                phones.place(card)
                if deny:
                    to_deny.append(_wait(lambda: red.state == 1, 5.0) - t0)
                else:
                    to_open.append(_wait(lambda: relay.state != locked_level, 5.0) - t0)
                card.wait(5.0)
                phones.lift(service)
                receipt = card.receipt.encode() if card.receipt else b""
                _wait(
                    lambda r=receipt: lane.last_outcome is not None and lane.last_outcome.receipt == r,
                    5.0,
                    0.001,
                )
                if not deny:
                    steps = lane.last_outcome.timings
                    detect_to_open.append(sum(steps[k] for k in ("nfc_read", "verify", "commit", "actuate")))
                    beam.drive_high()  # one shopper through: held past the input debounce (20 ms)
                    time.sleep(0.03)
                    beam.drive_low()
                _wait(
                    lambda: lane.state == "idle" and relay.state == locked_level and red.state == 0,
                    5.0,
                    0.001,
                )
        finally:
            stop.set()
            thread.join(5)
    yield from latency_metrics(f"{name}.tap_to_open_30_items", to_open)
    yield from latency_metrics(f"{name}.tap_to_deny_30_items", to_deny)
    yield from latency_metrics(f"{name}.select_to_open_30_items", detect_to_open)
    yield metric(f"{name}.taps_measured", len(to_open) + len(to_deny), "taps")


def _process_memory(bench: Bench, taps: int = 50) -> Iterator[dict]:
    """Peak RSS (VmHWM) of `selfcheckout gate run` after it served taps, read before it is stopped."""
    lane = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "selfcheckout",
            "gate",
            "run",
            "--config",
            str(bench.config.source),
            "--mock-gpio",
            "--no-forward",
            "--no-panel",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        served = 0
        for _ in range(taps):
            card = bench.card()
            with VirtualCard(card):
                served += card.wait(10.0)
        if lane.poll() is not None:
            raise RuntimeError(f"gate run exited with {lane.returncode} during the memory run")
        status = Path(f"/proc/{lane.pid}/status").read_text()
        peak_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    finally:
        stop_lane(lane)
    yield metric("lane.process_peak_rss", peak_kib / 1024, "MiB")
    yield metric("lane.process_taps_served", served, "taps")


def stop_lane(lane: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as systemd stops the lane; SIGKILL if it has not stopped within 10 s."""
    lane.terminate()
    try:
        lane.wait(10)
    except subprocess.TimeoutExpired:
        lane.kill()
        lane.wait()
