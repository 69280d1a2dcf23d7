"""The kiosk package's exceptions: one root, so the command line can catch everything the kiosk raises."""

from __future__ import annotations


class KioskError(Exception):
    """Root of every error raised by the kiosk package."""


class CatalogUnavailable(KioskError, ConnectionError):
    """The store's signed catalog could not be fetched or did not verify; the kiosk keeps what it has."""


class TapProblem(KioskError):
    """A tap did not give what the kiosk needs; `code` picks the screen's sentence (kiosk/texts.py)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
