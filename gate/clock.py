"""Whether the system clock is synchronised, asked of the kernel the way systemd's timedatectl asks it.

A lane judges vouchers' expiry and lists' age by the wall clock. A Raspberry Pi has no battery-backed
clock: booted without a network it starts at the last time saved to disk, hours or days behind. The kernel
knows whether a time service disciplines the clock: adjtimex(2) reports the maximum error it vouches for,
and systemd (ntp_synced(), behind `timedatectl`'s NTPSynchronized) calls a clock with a maximum error of
16 s or more unsynchronised. We read the same number with the same rule, with no daemon to ask, so the
answer is the same in a container, in CI and on a Pi without systemd-timedated.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass

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
