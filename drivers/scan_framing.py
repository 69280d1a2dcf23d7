"""Scan lines out of the bytes a serial barcode scanner sends, in the shape of pyserial's LineReader.

A scanner's line can arrive in any number of reads, and a port can deliver noise: every bad line is
reported with a reason and skipped, and framing picks up again at the next terminator.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from drivers.errors import InvalidArgument

TERMINATORS = {"CR": b"\r", "LF": b"\n", "CRLF": b"\r\n"}

# ISO/IEC 15424 symbology identifier: "]", a symbology letter, a modifier character ("]E0" is EAN-13).
_AIM = re.compile(rb"\][A-Za-z][0-9A-Za-z]")
# Printable ASCII, and GS (0x1D), which GS1 scanners send for FNC1 between variable-length fields.
_ALLOWED = frozenset(range(0x20, 0x7F)) | {0x1D}


class ScanFramer:
    """Bytes in through data_received(), (code, symbology) out to on_line, bad lines to on_reject."""

    def __init__(
        self,
        *,
        terminator: str,
        aim_prefix: bool,
        max_line: int,
        on_line: Callable[[str, str | None], None],
        on_reject: Callable[[str, str], None],
    ) -> None:
        if terminator not in TERMINATORS:
            raise InvalidArgument(f"terminator {terminator!r}: expected one of {', '.join(TERMINATORS)}")
        if max_line <= 0:
            raise InvalidArgument(f"max_line {max_line!r}: expected a length > 0")
        self._terminator = TERMINATORS[terminator]
        self._aim_prefix = aim_prefix
        self._max_line = max_line
        self._on_line = on_line
        self._on_reject = on_reject
        self._buffer = bytearray()
        self._skipping = False  # inside an over-long line: drop bytes up to its terminator

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(self._terminator)) >= 0:
            line = bytes(self._buffer[:end])
            del self._buffer[: end + len(self._terminator)]
            if self._skipping:
                self._skipping = False
            else:
                self._line(line)
        # A CRLF may be cut between reads, so a "\r" at the end is not yet part of the line.
        keep = len(self._terminator) - 1
        if self._skipping:
            del self._buffer[: len(self._buffer) - keep]
        elif len(self._buffer) > self._max_line + keep:
            self._on_reject("too-long", f"line over {self._max_line} bytes: {bytes(self._buffer[:24])!r}...")
            self._skipping = True
            del self._buffer[: len(self._buffer) - keep]

    def connection_lost(self) -> None:
        """The port went away: a half-received line can never be completed, so it is reported and dropped."""
        if self._buffer and not self._skipping:
            self._on_reject("partial-line-lost", f"{bytes(self._buffer)!r} cut by the port going away")
        self._buffer.clear()
        self._skipping = False

    def _line(self, line: bytes) -> None:
        if not line:
            return
        if len(line) > self._max_line:
            self._on_reject("too-long", f"line of {len(line)} bytes, over {self._max_line}: {line[:24]!r}...")
            return
        for i, byte in enumerate(line):
            if byte not in _ALLOWED:
                self._on_reject("invalid-bytes", f"byte 0x{byte:02X} at {i} in {line[:32]!r}")
                return
        symbology = None
        if self._aim_prefix:
            if not _AIM.match(line) or len(line) == 3:
                self._on_reject("missing-aim-prefix", f"{line[:32]!r} does not start with ]Xm and a code")
                return
            symbology, line = line[:3].decode("ascii"), line[3:]
        self._on_line(line.decode("ascii"), symbology)
