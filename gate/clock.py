"""Whether the system clock is synchronised, asked of the kernel the way systemd's timedatectl asks it.

A lane judges vouchers' expiry and lists' age by the wall clock. A Raspberry Pi has no battery-backed
clock: booted without a network it starts at the last time saved to disk, hours or days behind. The kernel
knows whether a time service disciplines the clock: adjtimex(2) reports the maximum error it vouches for,
and systemd (ntp_synced(), behind `timedatectl`'s NTPSynchronized) calls a clock with a maximum error of
16 s or more unsynchronised. We read the same number with the same rule, with no daemon to ask, so the
answer is the same in a container, in CI and on a Pi without systemd-timedated.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

UNSYNC_MAXERROR_US = 16_000_000  # the kernel's NTP_PHASE_LIMIT; systemd's ntp_synced() threshold


@dataclass(frozen=True)
class ClockStatus:
    """What the kernel says of the system clock."""

    synchronised: bool
    max_error_s: float | None  # the error bound the kernel vouches for (None: could not ask)
    detail: str


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """struct timex of <sys/timex.h> (the same layout on every Linux architecture, padding included)."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


def kernel_clock_status() -> ClockStatus:
    """Ask the kernel (adjtimex with no mode bits: a read, allowed to any user)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        timex = _Timex()
        state = libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError) as exc:
        return ClockStatus(False, None, f"cannot ask the kernel (adjtimex: {exc})")
    if state < 0:
        err = ctypes.get_errno()
        return ClockStatus(False, None, f"cannot ask the kernel (adjtimex: {os.strerror(err)})")
    max_error_s = timex.maxerror / 1_000_000
    # Like systemd, the maximum error alone decides: STA_UNSYNC may be set only to keep the RTC untouched.
    if timex.maxerror >= UNSYNC_MAXERROR_US:
        return ClockStatus(
            False,
            max_error_s,
            f"no time service has synchronised the clock (kernel maximum error {max_error_s:.0f} s)",
        )
    return ClockStatus(True, max_error_s, f"synchronised (kernel maximum error {max_error_s * 1000:.0f} ms)")


def boottime() -> float:
    """Seconds since boot, suspend included, never stepped (CLOCK_BOOTTIME)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def boot_id() -> str:
    """This boot's random id: an anchor taken in another boot means nothing now."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


class LaneClock:
    """The lane's time, with `policy.require_synced_clock` (docs/protocol.md, "The lane's clock").

    `now()` is the system clock while the kernel says it is synchronised; after that, the time of the last
    synchronisation seen in this boot plus CLOCK_BOOTTIME elapsed since. `trusted()` is False when no
    synchronisation was seen since boot: the lane then denies with `clock_unsynced`. The last
    synchronisation is kept in `anchor_file` (with the boot id), so a restarted lane keeps it.
    """

    SAVE_EVERY_S = 60.0

    def __init__(
        self,
        anchor_file: Path | None,
        *,
        status: Callable[[], ClockStatus] = kernel_clock_status,
        wall: Callable[[], float] = time.time,
        since_boot: Callable[[], float] = boottime,
        boot: Callable[[], str] = boot_id,
    ) -> None:
        self._file = anchor_file
        self._status = status
        self._wall = wall
        self._since_boot = since_boot
        self._boot = boot()
        self._anchor: tuple[float, float] | None = None  # (wall time, boot time) at the last sync seen
        self._saved_at = float("-inf")
        self._load()

    def now(self) -> float:
        if self._status().synchronised:
            wall, since_boot = self._wall(), self._since_boot()
            self._anchor = (wall, since_boot)
            if since_boot - self._saved_at >= self.SAVE_EVERY_S:
                self._save()
            return wall
        if self._anchor is None:
            return self._wall()  # judged, but trusted() says the verdict is clock_unsynced
        wall, since_boot = self._anchor
        return wall + (self._since_boot() - since_boot)

    def trusted(self) -> bool:
        return self._anchor is not None or self._status().synchronised

    def _load(self) -> None:
        if self._file is None:
            return
        try:
            data = json.loads(self._file.read_text())
            if data["boot"] == self._boot and self._boot:
                self._anchor = (float(data["wall"]), float(data["since_boot"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no anchor yet, another boot's, or a damaged file: wait for the next synchronisation

    def _save(self) -> None:
        if self._file is None or self._anchor is None:
            return
        self._saved_at = self._anchor[1]
        data = {"boot": self._boot, "wall": self._anchor[0], "since_boot": self._anchor[1]}
        partial = self._file.with_name(self._file.name + ".partial")
        with contextlib.suppress(OSError):  # a full disk is the storage watch's to report
            partial.write_text(json.dumps(data))
            os.replace(partial, self._file)
