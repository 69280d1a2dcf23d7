"""The phone package's exceptions: one root, so the command line (and an app) can catch all we raise.

Errors from the protocol layer (gate.errors.DecodeError, SignatureError) never leave the phone bare: a
document that fails a check becomes a `Refused` naming which document and why, with the cause chained.
"""

from __future__ import annotations


class PhoneError(Exception):
    """Root of every error raised by the phone package."""


class StateError(PhoneError, RuntimeError):
    """The state folder is missing a step (no key, not enrolled, no hold, no list) or is unreadable."""


class Refused(PhoneError, ValueError):
    """An answer from the payment system or a gate failed a check and was refused; nothing was stored."""


class PaymentSystemError(PhoneError, ConnectionError):
    """The payment system could not be reached, or answered with an HTTP error (`status`, `code`)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class ScanError(PhoneError, ValueError):
    """A scanned code is not a valid barcode, or names nothing in the store's catalog."""


class AmountError(PhoneError, ValueError):
    """An amount typed by the shopper is not a positive sum in the currency's minor units."""
