"""The drivers' exceptions: one root, families that are also the builtin they resemble.

A caller that only wants to stay alive catches DriverError; one that can act on the cause catches the
family (or the builtin: a ``PhoneLost`` is a ``ConnectionError``, an ``ExchangeTimeout`` a ``TimeoutError``).
Hardware errors keep the device's own code and say it.
"""

from __future__ import annotations


class DriverError(Exception):
    """Root of every error raised by the drivers package."""


class InvalidArgument(DriverError, ValueError):
    """A driver was given a setting or an argument outside what it accepts."""


class DeviceClosed(DriverError, RuntimeError):
    """A driver was used after close()."""


class DeviceUnavailable(DriverError, ConnectionError):
    """A device, or the service in front of it, cannot be reached right now."""


class PcscError(DeviceUnavailable):
    """The PC/SC service refused a call; ``hresult`` is its SCARD_* code."""

    def __init__(self, call: str, hresult: int, message: str) -> None:
        super().__init__(f"{call} failed: {message} (0x{hresult & 0xFFFFFFFF:08X})")
        self.call = call
        self.hresult = hresult & 0xFFFFFFFF


class PhoneError(DriverError):
    """Talking to the phone over NFC went wrong."""


class PhoneLost(PhoneError, ConnectionAbortedError):
    """The phone left the field, or the link to it broke, mid-session: the session is over."""


class ExchangeTimeout(PhoneError, TimeoutError):
    """The phone did not answer within the exchange timeout: the session is over."""


class ApduError(PhoneError, ValueError):
    """An APDU was refused: the phone's status word, or a response we cannot parse."""


class MalformedResponse(ApduError):
    """The phone answered with bytes that are not a response APDU of this transport."""


class ApduStatusError(ApduError):
    """The phone answered with a status word other than 90 00; ``sw1`` and ``sw2`` keep it."""

    def __init__(self, sw1: int, sw2: int, meaning: str) -> None:
        super().__init__(f"phone answered SW {sw1:02X} {sw2:02X} ({meaning})")
        self.sw1 = sw1
        self.sw2 = sw2

    @property
    def sw(self) -> int:
        return self.sw1 << 8 | self.sw2


class CardStatus(DriverError):
    """Raised by a card-side handler to answer a command with this status word instead of data."""

    def __init__(self, sw: int, why: str = "") -> None:
        if not 0x6000 <= sw <= 0x9FFF or sw >> 8 == 0x60:
            raise InvalidArgument(f"0x{sw:04X} is not an ISO 7816-4 status word")
        super().__init__(f"SW {sw:04X}" + (f": {why}" if why else ""))
        self.sw = sw
