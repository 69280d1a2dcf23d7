"""Driver latencies on the stand-ins: an APDU round trip and a 2 KB exchange through pcscd + vpcd + the
virtual card (the goal is an APDU p50 of 1 ms or less), and a scan from pty write to event.

Starts its own pcscd and socat with the test fixtures' process classes (tests/fixtures/standins.py).
"""

from __future__ import annotations

import queue
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.stats import latency_metrics, metric
from drivers.nfc_inprocess import InProcessReader
from drivers.nfc_session import PhoneSession
from drivers.scanner import BarcodeScanner
from drivers.virtual_card import VirtualCard
from tests.fixtures.standins import Pcscd, PtyPair

ROUND_TRIPS = 1000
EXCHANGES_2K = 200
SCANS = 500
INS_ECHO = 0x10
SHORT = bytes(range(16))
TWO_K = bytes(i % 251 for i in range(2048))


class Echo:
    def handle(self, ins: int, p1: int, p2: int, data: bytes) -> bytes:
        return data


def _timed(session: PhoneSession, data: bytes, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        answer = session.exchange(INS_ECHO, data)
        samples.append(time.perf_counter() - started)
        if answer != data:
            raise AssertionError("echo came back different")
    return samples


def _nfc_metrics(name: str, session: PhoneSession) -> Iterator[dict]:
    _timed(session, SHORT, 50)  # warm up
    yield from latency_metrics(f"drivers.{name}.apdu_round_trip", _timed(session, SHORT, ROUND_TRIPS))
    # 2 KB each way: 9 chained commands and 7 GET RESPONSE after the first answer.
    yield from latency_metrics(f"drivers.{name}.exchange_2k", _timed(session, TWO_K, EXCHANGES_2K))


def _pcsc(folder: Path) -> Iterator[dict]:
    from drivers.nfc_pcsc import PhoneReader  # the nfc extra: pyscard

    daemon = Pcscd(folder)
    try:
        daemon.start()
        with VirtualCard(Echo()), PhoneReader("^Virtual PCD 00 00$") as reader:
            session = reader.wait_for_phone(5.0)
            if session is None:
                raise RuntimeError(f"the virtual card was not served: {reader.health()}")
            with session:
                yield from _nfc_metrics("pcsc", session)
    finally:
        daemon.close()


def _in_process() -> Iterator[dict]:
    with InProcessReader() as reader:
        reader.place(Echo())
        session = reader.wait_for_phone(1.0)
        assert session is not None
        with session:
            yield from _nfc_metrics("in_process", session)


def _scans(folder: Path) -> Iterator[dict]:
    pair = PtyPair(folder)
    pair.start()
    stamps: queue.Queue[float] = queue.Queue()
    try:
        with BarcodeScanner(
            str(pair.device), debounce_ms=0, on_scan=lambda _: stamps.put(time.perf_counter())
        ) as scanner:
            deadline = time.monotonic() + 5
            while not scanner.health()["connected"]:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"scanner did not open {pair.device}")
                time.sleep(0.005)
            samples = []
            for i in range(SCANS):
                line = f"{4006381333900 + i}\r".encode()  # 14 bytes, like an EAN-13 and its CR
                started = time.perf_counter()
                pair.write(line)
                samples.append(stamps.get(timeout=2.0) - started)
            yield from latency_metrics("drivers.scan_line_latency", samples)
            yield metric("drivers.scan_errors", sum(scanner.health()["errors"].values()), "count")
    finally:
        pair.stop()


def run() -> Iterator[dict]:
    with tempfile.TemporaryDirectory(prefix="bench-drivers-") as folder:
        yield from _scans(Path(folder))
        yield from _in_process()
        yield from _pcsc(Path(folder))
