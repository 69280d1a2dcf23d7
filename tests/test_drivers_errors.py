"""One root, families that are also the builtin they resemble, each with a one-line docstring."""

from __future__ import annotations

import inspect

import pytest

from drivers import errors
from drivers.errors import ApduStatusError, DriverError, PcscError

CLASSES = [c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_error_has_the_root_and_a_one_line_docstring(cls: type) -> None:
    assert issubclass(cls, DriverError)
    assert cls.__doc__ and "\n" not in cls.__doc__.strip()


@pytest.mark.parametrize(
    ("name", "builtin"),
    [
        ("InvalidArgument", ValueError),
        ("DeviceClosed", RuntimeError),
        ("DeviceUnavailable", ConnectionError),
        ("PcscError", ConnectionError),
        ("PhoneLost", ConnectionError),
        ("ExchangeTimeout", TimeoutError),
        ("ApduError", ValueError),
        ("MalformedResponse", ValueError),
        ("ApduStatusError", ValueError),
    ],
)
def test_families_are_the_builtin_they_resemble(name: str, builtin: type) -> None:
    assert issubclass(getattr(errors, name), builtin)


def test_hardware_codes_are_kept_and_said() -> None:
    pcsc = PcscError("SCardConnect", -2146434969, "Card is unpowered.")
    assert pcsc.hresult == 0x80100067
    assert str(pcsc) == "SCardConnect failed: Card is unpowered. (0x80100067)"
    status = ApduStatusError(0x6A, 0x82, "application not found")
    assert (status.sw1, status.sw2, status.sw) == (0x6A, 0x82, 0x6A82)
    assert "6A 82" in str(status)
