"""The kiosk's serial barcode scanner: scans as events, whatever the cable does.

The port is a pyserial URL (a device path, "loop://", "spy:///dev/ttyACM0") or an already-open serial
object, and the keyword names are ScannerSection's, so the lane passes its config through. A scanner
that is unplugged comes back by itself: the reader thread reopens the port with exponential backoff.

What the port does is told to ``on_notice`` as it happens (connected, lost, back, each bad line), so a
lane can record it; a failed reopen is told once per outage, not once per retry.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import serial

from drivers.errors import InvalidArgument
from drivers.scan_framing import ScanFramer

log = logging.getLogger(__name__)

# How long a read waits before the thread looks at its stop flag; data is returned as soon as it comes.
_READ_POLL_S = 0.1
_FIRST_BACKOFF_S = 0.05

SYMBOLOGY_NAMES = {
    "]E0": "EAN-13",
    "]E4": "EAN-8",
    "]C0": "Code 128",
    "]C1": "GS1-128",
    "]A0": "Code 39",
    "]I0": "ITF",
    "]e0": "GS1 DataBar",
    "]d2": "GS1 DataMatrix",
    "]Q1": "QR Code",
}


@dataclass(frozen=True)
class ScannerNotice:
    """Something the port did: ``kind`` is "connected", "reconnected", or an error kind of health()'s
    "errors" ("port-lost", "open-failed", "invalid-bytes", "too-long", ...)."""

    kind: str
    detail: str


@dataclass(frozen=True)
class Scan:
    """One barcode read; ``received_at`` is time.monotonic() when its terminator arrived."""

    code: str
    symbology: str | None  # the AIM identifier, such as "]E0", when the scanner sends one
    received_at: float

    @property
    def symbology_name(self) -> str | None:
        return SYMBOLOGY_NAMES.get(self.symbology or "", self.symbology)


class BarcodeScanner:
    """Reads scans on its own thread and hands each to ``on_scan``, or to the ``scans`` queue by default.

    The same code read again within ``debounce_ms`` of its last read is one scan (a scanner held over a
    barcode keeps reading it). The scanner owns the port: close() closes it.
    """

    def __init__(
        self,
        port_url: str | None = None,
        *,
        port: serial.SerialBase | None = None,
        baudrate: int = 9600,
        terminator: str = "CR",
        aim_prefix: bool = False,
        debounce_ms: int = 800,
        max_line: int = 64,
        reconnect_max_s: float = 5.0,
        on_scan: Callable[[Scan], None] | None = None,
        on_notice: Callable[[ScannerNotice], None] | None = None,
    ) -> None:
        if (port_url is None) == (port is None):
            raise InvalidArgument("give the scanner either port_url or an open serial port, not both")
        if debounce_ms < 0 or reconnect_max_s <= 0 or baudrate <= 0:
            raise InvalidArgument("debounce_ms must be >= 0, reconnect_max_s and baudrate > 0")
        self._url = port_url
        self._port = port
        self._baudrate = baudrate
        self._debounce_s = debounce_ms / 1000
        self._backoff_max_s = reconnect_max_s
        self._framer = ScanFramer(
            terminator=terminator,
            aim_prefix=aim_prefix,
            max_line=max_line,
            on_line=self._line,
            on_reject=self._error,
        )
        self.scans: queue.Queue[Scan] = queue.Queue()
        self._on_scan = on_scan or self.scans.put
        self._on_notice = on_notice
        self.port_name = port_url if port_url is not None else str(getattr(port, "port", None) or port)
        self._last_code: str | None = None
        self._last_seen = 0.0
        self._connected = False
        self._counts = {"scans": 0, "duplicates": 0, "disconnects": 0, "reconnects": 0}
        self._errors: dict[str, int] = {}
        self._last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"scanner:{self.port_name}", daemon=True)
        self._thread.start()

    def __enter__(self) -> BarcodeScanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def health(self) -> dict[str, Any]:
        return {
            "connected": self._connected,
            "port": self.port_name,
            **self._counts,
            "errors": dict(self._errors),
            "last_error": self._last_error,
        }

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        if self._port is not None:
            self._port.close()
        self._connected = False

    def _run(self) -> None:
        backoff = _FIRST_BACKOFF_S
        opened_before = False
        while not self._stop.is_set():
            if not self._connected:
                try:
                    self._open()
                except (serial.SerialException, OSError, ValueError) as exc:
                    # Only the first failure of a series is worth a warning; the count keeps the rest.
                    first = backoff == _FIRST_BACKOFF_S
                    self._error(
                        "open-failed",
                        f"cannot open {self.port_name}: {exc}",
                        logging.WARNING if first else logging.DEBUG,
                        notify=first,
                    )
                    if self._stop.wait(backoff):
                        return
                    backoff = min(backoff * 2, self._backoff_max_s)
                    continue
                backoff = _FIRST_BACKOFF_S
                self._connected = True
                if opened_before:
                    self._counts["reconnects"] += 1
                    log.info("scanner port %s is back", self.port_name)
                    self._notify("reconnected", f"{self.port_name} is back")
                else:
                    self._notify("connected", f"{self.port_name} open")
                opened_before = True
            assert self._port is not None
            try:
                data = self._port.read(self._port.in_waiting or 1)
            except (serial.SerialException, OSError) as exc:
                self._lost(exc)
                continue
            if data:
                self._framer.data_received(data)

    def _open(self) -> None:
        if self._url is not None:
            if self._port is not None:
                self._port.close()
            self._port = serial.serial_for_url(self._url, baudrate=self._baudrate, timeout=_READ_POLL_S)
            return
        assert self._port is not None
        if not self._port.is_open:
            self._port.open()
        self._port.timeout = _READ_POLL_S

    def _lost(self, exc: Exception) -> None:
        self._connected = False
        self._counts["disconnects"] += 1
        self._framer.connection_lost()
        self._error("port-lost", f"{self.port_name}: {exc}")
        assert self._port is not None
        # The device is gone; closing our file descriptor is all that is left to do, and may fail too.
        with contextlib.suppress(serial.SerialException, OSError):
            self._port.close()

    def _line(self, code: str, symbology: str | None) -> None:
        now = time.monotonic()
        if code == self._last_code and now - self._last_seen < self._debounce_s:
            self._last_seen = now
            self._counts["duplicates"] += 1
            log.debug("repeated read of %s within the debounce window", code)
            return
        self._last_code, self._last_seen = code, now
        self._counts["scans"] += 1
        try:
            self._on_scan(Scan(code, symbology, now))
        except Exception as exc:
            log.exception("scan callback failed for %s", code)
            self._error("callback-failed", f"scan callback failed for {code}: {exc!r}")

    def _error(self, kind: str, detail: str, level: int = logging.WARNING, *, notify: bool = True) -> None:
        self._errors[kind] = self._errors.get(kind, 0) + 1
        self._last_error = f"{kind}: {detail}"
        log.log(level, "scanner %s", self._last_error)
        if notify:
            self._notify(kind, detail)

    def _notify(self, kind: str, detail: str) -> None:
        if self._on_notice is None:
            return
        try:
            self._on_notice(ScannerNotice(kind, detail))
        except Exception:  # the listener's bug must not stop the scanner's thread
            log.exception("scanner notice callback failed for %s", kind)
