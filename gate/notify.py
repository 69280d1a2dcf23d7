"""sd_notify without a systemd library: READY=1, STATUS= and WATCHDOG=1 datagrams to NOTIFY_SOCKET.

The watchdog ping is only sent by the lane loop itself at the end of a turn, so a loop stuck in a reader
call stops the pings and systemd restarts the service (the gate's hardware falls to its safe state).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping


class Notifier:
    """Talks to systemd when started by it (NOTIFY_SOCKET set); does nothing otherwise."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]
        self._address = address
        usec = env.get("WATCHDOG_USEC", "")
        self.watchdog_interval_s = int(usec) / 2_000_000 if usec.isdigit() and int(usec) > 0 else None
        self._last_ping = 0.0
        self._sock: socket.socket | None = None
        if address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def send(self, *lines: str) -> bool:
        if self._sock is None:
            return False
        try:
            # Never block the lane for systemd: a message that does not fit now is dropped.
            self._sock.sendto("\n".join(lines).encode(), socket.MSG_DONTWAIT, self._address)
        except OSError:
            return False
        return True

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def watchdog(self, now: float | None = None) -> None:
        """Ping every quarter of the watchdog period at most, so that with a loop turn's delay added a ping
        still lands twice per period (sd_watchdog_enabled(3)); call it from the loop it vouches for."""
        if self.watchdog_interval_s is None:
            return
        now = time.monotonic() if now is None else now
        if now - self._last_ping >= self.watchdog_interval_s / 2:
            self._last_ping = now
            self.send("WATCHDOG=1")
