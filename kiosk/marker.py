"""The one thing the kiosk writes to disk: a marker that a shopper's session is open.

A session is a draft, not money, so after a power cut there is nothing to recover; but the shopper who
was scanning deserves to be told why the screen is empty. The marker holds the session id only, and is
written atomically (temporary file, fsync, rename) so a cut never leaves half of it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

NAME = "session-open"


class SessionMarker:
    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / NAME

    def write(self, session_id: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(session_id.hex().encode())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def pending(self) -> bool:
        return self.path.exists()

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
