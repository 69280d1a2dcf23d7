"""Whether the lane's database can take the next durable record, watched from the lane loop.

A pass is given only once its record is on disk, so a lane whose storage fails (the disk full, I/O errors,
the filesystem remounted read-only) cannot let anyone out: it goes to FAULT (red light, a plain reason in
its health data) and stops pinging the systemd watchdog, so the service is restarted and a technician is
called, instead of denying shoppers one slow tap after another. The kernel tells a read-only or full
filesystem at no cost (statvfs, every loop turn); an I/O error shows only when a write meets it, so the
lane also reports every StorageFault its writes raise. Once the filesystem looks sound again, a probe write
every PROBE_EVERY_S decides whether the fault is over.
"""

from __future__ import annotations

import os
from pathlib import Path

PROBE_EVERY_S = 2.0
MIN_FREE_BYTES = 256 * 1024  # below this a pass's transaction (and its WAL growth) may not fit


class StorageWatch:
    """The filesystem under one database file; `problem()` says what is wrong with it, or None."""

    def __init__(self, database: str | os.PathLike[str], *, min_free_bytes: int = MIN_FREE_BYTES) -> None:
        self.folder = Path(database).parent
        self.min_free_bytes = min_free_bytes
        self._last_probe = float("-inf")

    def problem(self) -> str | None:
        try:
            vfs = os.statvfs(self.folder)
        except OSError as exc:
            return f"the database folder {self.folder} cannot be read: {exc.strerror or exc}"
        if vfs.f_flag & os.ST_RDONLY:
            return f"the filesystem of {self.folder} is read-only"
        free = vfs.f_bavail * vfs.f_frsize
        if free < self.min_free_bytes:
            return f"the disk of {self.folder} is full ({free // 1024} KiB free)"
        return None

    def probe_due(self, now: float) -> bool:
        """At most one probe write every PROBE_EVERY_S: each is a durable commit."""
        if now - self._last_probe < PROBE_EVERY_S:
            return False
        self._last_probe = now
        return True


class NoWatch:
    """For an in-memory store: nothing under it to watch."""

    def problem(self) -> str | None:
        return None

    def probe_due(self, now: float) -> bool:
        return True


WatchLike = StorageWatch | NoWatch
__all__ = ["MIN_FREE_BYTES", "NoWatch", "StorageWatch", "WatchLike"]
