"""Money at the edge: amounts are integers in minor units everywhere; text exists only on the screen.

`parse_amount` turns what the shopper typed ("25", "25.5", "25,50") into minor units without ever passing
through a float, and `format_amount` turns minor units back into text for display.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from phone.errors import AmountError

# ISO 4217 minor-unit exponents that are not 2; every other currency has cents.
_EXPONENTS = {
    "BHD": 3, "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0, "JOD": 3, "JPY": 0, "KMF": 0,
    "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0, "RWF": 0, "TND": 3, "UGX": 0, "UYI": 0, "VND": 0,
    "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}  # fmt: skip
_AMOUNT_TEXT = re.compile(r"[0-9]{1,12}([.,][0-9]{1,3})?")


def exponent(currency: str) -> int:
    """How many decimal digits the currency's minor unit has (2 for EUR: 1 EUR = 100 cents)."""
    return _EXPONENTS.get(currency, 2)


def parse_amount(text: str, currency: str) -> int:
    """Read an amount the shopper typed in major units ("25.50") as minor units (2550)."""
    cleaned = text.strip()
    if not _AMOUNT_TEXT.fullmatch(cleaned):
        raise AmountError(f"{text!r} is not an amount such as 25 or 25.50")
    try:
        value = Decimal(cleaned.replace(",", "."))
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only decimals
        raise AmountError(f"{text!r} is not an amount") from exc
    minor = value.scaleb(exponent(currency))
    if minor != minor.to_integral_value():
        raise AmountError(f"{text!r} has more decimals than {currency} has ({exponent(currency)})")
    if minor <= 0:
        raise AmountError(f"{text!r}: the amount must be more than zero")
    return int(minor)


def format_amount(minor: int, currency: str) -> str:
    """Minor units as text for a screen: 2550, 'EUR' -> '25.50 EUR'."""
    digits = exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**digits)
    text = f"{whole}.{frac:0{digits}d}" if digits else str(whole)
    return f"{sign}{text} {currency}"
