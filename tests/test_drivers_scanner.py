"""The barcode scanner through a socat pty pair (and loop://): terminators, AIM prefixes, torn lines,
garbage, over-long lines, double reads, and an unplug with the next good scan delivered."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
import serial

from drivers.errors import InvalidArgument
from drivers.scanner import BarcodeScanner, Scan, ScannerNotice
from gate.config import ScannerSection
from tests.fixtures.standins import PtyPair

EAN13 = "4006381333931"


def wait_until(condition: Callable[[], bool], timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def scans(scanner: BarcodeScanner, count: int) -> list[Scan]:
    got = [scanner.scans.get(timeout=2.0) for _ in range(count)]
    with pytest.raises(queue.Empty):  # and nothing more
        scanner.scans.get(timeout=0.1)
    return got


def codes(scanner: BarcodeScanner, count: int) -> list[str]:
    return [scan.code for scan in scans(scanner, count)]


@pytest.fixture
def make_scanner(pty_pair: PtyPair) -> Iterator[Callable[..., BarcodeScanner]]:
    made: list[BarcodeScanner] = []

    def make(**settings: object) -> BarcodeScanner:
        scanner = BarcodeScanner(str(pty_pair.device), **{"reconnect_max_s": 0.2, **settings})
        made.append(scanner)
        # pyserial flushes input on open: a line written before the driver opened the port is not a scan.
        wait_until(lambda: scanner.health()["connected"])
        return scanner

    yield make
    for scanner in made:
        scanner.close()


@pytest.mark.parametrize(("terminator", "ending"), [("CR", b"\r"), ("LF", b"\n"), ("CRLF", b"\r\n")])
def test_each_terminator(
    make_scanner: Callable[..., BarcodeScanner], pty_pair: PtyPair, terminator: str, ending: bytes
) -> None:
    scanner = make_scanner(terminator=terminator)
    before = time.monotonic()
    pty_pair.write(EAN13.encode() + ending + b"96385074" + ending)
    first, second = scans(scanner, 2)
    assert (first.code, first.symbology, second.code) == (EAN13, None, "96385074")
    assert before <= first.received_at <= second.received_at <= time.monotonic()
    assert scanner.health()["errors"] == {}


def test_aim_prefixes_are_stripped_and_reported(
    make_scanner: Callable[..., BarcodeScanner], pty_pair: PtyPair
) -> None:
    scanner = make_scanner(aim_prefix=True)
    gs1 = "0104006381333931\x1d10LOT7"
    pty_pair.write(f"]E0{EAN13}\r]E496385074\r]C1{gs1}\r".encode())
    got = scans(scanner, 3)
    assert [(s.code, s.symbology, s.symbology_name) for s in got] == [
        (EAN13, "]E0", "EAN-13"),
        ("96385074", "]E4", "EAN-8"),
        (gs1, "]C1", "GS1-128"),
    ]
    pty_pair.write(f"{EAN13}\r]E0\r]X9123\r".encode())  # no prefix; a prefix without a code
    assert codes(scanner, 1) == ["123"]
    assert scanner.health()["errors"] == {"missing-aim-prefix": 2}


@pytest.mark.parametrize("terminator", ["CR", "CRLF"])
def test_a_line_torn_across_reads_is_reassembled(
    make_scanner: Callable[..., BarcodeScanner], pty_pair: PtyPair, terminator: str
) -> None:
    scanner = make_scanner(terminator=terminator)
    pty_pair.write(EAN13[:5].encode())
    time.sleep(0.05)
    pty_pair.write(EAN13[5:].encode() + b"\r")
    time.sleep(0.05)
    if terminator == "CRLF":
        pty_pair.write(b"\n")
    assert codes(scanner, 1) == [EAN13]
    assert scanner.health()["errors"] == {}


def test_garbage_and_non_ascii_lines_are_counted_and_skipped(
    make_scanner: Callable[..., BarcodeScanner], pty_pair: PtyPair
) -> None:
    scanner = make_scanner()
    pty_pair.write(b"\xff\xfe\x00\x01junk\r" + "Café".encode() + b"\r\x1b[2J\r" + EAN13.encode() + b"\r")
    assert codes(scanner, 1) == [EAN13]
    health = scanner.health()
    assert health["errors"] == {"invalid-bytes": 3}
    assert "0x1B" in health["last_error"]


def test_over_long_lines_are_dropped_up_to_their_terminator(
    make_scanner: Callable[..., BarcodeScanner], pty_pair: PtyPair
) -> None:
    scanner = make_scanner(max_line=16, terminator="CRLF")
    pty_pair.write(b"A" * 40 + b"\r\n" + EAN13.encode() + b"\r\n")  # in one read
    assert codes(scanner, 1) == [EAN13]
    pty_pair.write(b"B" * 12)  # over several reads, cut inside the CRLF
    time.sleep(0.03)
    pty_pair.write(b"B" * 12 + b"\r")
    time.sleep(0.03)
    pty_pair.write(b"\n96385074\r\n")
    assert codes(scanner, 1) == ["96385074"]
    pty_pair.write(b"X" * 16 + b"\r\n")  # exactly max_line is fine
    assert codes(scanner, 1) == ["X" * 16]
    assert scanner.health()["errors"] == {"too-long": 2}


def test_double_reads_within_the_debounce_window_are_one_scan(
    make_scanner: Callable[..., BarcodeScanner], pty_pair: PtyPair
) -> None:
    scanner = make_scanner(debounce_ms=300)
    for _ in range(3):  # a scanner held over the barcode: each read restarts the window
        pty_pair.write(EAN13.encode() + b"\r")
        time.sleep(0.15)
    pty_pair.write(b"96385074\r" + EAN13.encode() + b"\r")  # another code in between: a new scan
    assert codes(scanner, 3) == [EAN13, "96385074", EAN13]
    time.sleep(0.35)
    pty_pair.write(EAN13.encode() + b"\r")  # outside the window: the shopper scans a second can
    assert codes(scanner, 1) == [EAN13]
    health = scanner.health()
    assert (health["scans"], health["duplicates"]) == (4, 2)


def test_unplug_and_replug_delivers_the_next_good_scan(
    make_scanner: Callable[..., BarcodeScanner], pty_pair: PtyPair
) -> None:
    scanner = make_scanner()
    pty_pair.write(EAN13.encode() + b"\r12345")  # a line cut by the unplug
    assert codes(scanner, 1) == [EAN13]
    pty_pair.kill()
    wait_until(lambda: not scanner.health()["connected"])
    # several reopen attempts fail while unplugged
    wait_until(lambda: scanner.health()["errors"].get("open-failed", 0) >= 2)
    pty_pair.start()
    wait_until(lambda: scanner.health()["connected"])
    pty_pair.write(b"96385074\r")
    assert codes(scanner, 1) == ["96385074"]  # not "1234596385074"
    health = scanner.health()
    assert (health["disconnects"], health["reconnects"]) == (1, 1)
    assert health["errors"]["port-lost"] == 1
    assert health["errors"]["partial-line-lost"] == 1
    assert health["errors"]["open-failed"] >= 2


def test_a_port_that_appears_later(tmp_path: Path) -> None:
    late = PtyPair(tmp_path, "late")
    with BarcodeScanner(str(late.device), reconnect_max_s=0.1) as scanner:
        wait_until(lambda: scanner.health()["errors"].get("open-failed", 0) >= 2)
        assert scanner.health()["connected"] is False
        late.start()
        try:
            wait_until(lambda: scanner.health()["connected"])
            late.write(EAN13.encode() + b"\r")
            assert codes(scanner, 1) == [EAN13]
            assert scanner.health()["reconnects"] == 0  # the first open is not a reconnect
        finally:
            late.stop()


def test_loop_url_with_an_open_port_and_a_callback() -> None:
    port = serial.serial_for_url("loop://", timeout=0.1)
    got: list[Scan] = []

    def on_scan(scan: Scan) -> None:
        if scan.code == "boom":
            raise RuntimeError("lane bug")
        got.append(scan)

    with BarcodeScanner(port=port, on_scan=on_scan) as scanner:
        port.write(b"boom\r" + EAN13.encode() + b"\r")
        wait_until(lambda: len(got) == 1)
        assert got[0].code == EAN13
        assert scanner.health()["errors"] == {"callback-failed": 1}
        assert scanner.health()["port"] == "loop://"
    assert not port.is_open  # the scanner owns the port it was given
    scanner.close()


def test_the_config_section_passes_through(pty_pair: PtyPair) -> None:
    section = ScannerSection(port_url=str(pty_pair.device), terminator="LF", aim_prefix=True)
    with BarcodeScanner(**asdict(section)) as scanner:
        wait_until(lambda: scanner.health()["connected"])
        pty_pair.write(b"]E0" + EAN13.encode() + b"\n")
        assert [(s.code, s.symbology) for s in scans(scanner, 1)] == [(EAN13, "]E0")]


def test_bad_settings() -> None:
    with pytest.raises(InvalidArgument, match="either"):
        BarcodeScanner("loop://", port=serial.serial_for_url("loop://"))
    with pytest.raises(InvalidArgument, match="terminator"):
        BarcodeScanner("loop://", terminator="TAB")
    with pytest.raises(InvalidArgument, match="max_line"):
        BarcodeScanner("loop://", max_line=0)


def test_notices_tell_each_thing_the_port_did_once(pty_pair: PtyPair) -> None:
    notices: list[ScannerNotice] = []
    with BarcodeScanner(str(pty_pair.device), reconnect_max_s=0.1, on_notice=notices.append) as scanner:
        wait_until(lambda: scanner.health()["connected"])
        pty_pair.write(b"\xff\xfejunk\r")
        wait_until(lambda: len(notices) == 2)
        pty_pair.kill()
        wait_until(lambda: not scanner.health()["connected"])
        time.sleep(
            0.3
        )  # several reopen attempts while unplugged (on a busy machine the pty number may be reused)
        pty_pair.start()
        wait_until(lambda: scanner.health()["reconnects"] == 1)
        failed_opens = scanner.health()["errors"].get("open-failed", 0)
    kinds = [n.kind for n in notices]
    assert kinds[:3] == ["connected", "invalid-bytes", "port-lost"] and kinds[-1] == "reconnected"
    assert kinds[3:-1] == (["open-failed"] if failed_opens else [])  # told once per outage, not per retry
    assert "0xFF" in notices[1].detail and str(pty_pair.device) in notices[-1].detail
