"""What the shopper types as an amount, read as integer minor units (display is gate.money's).

`parse_amount` turns "25", "25.5" or "25,50" into minor units without ever passing through a float.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from gate.money import exponent
from phone.errors import AmountError

_AMOUNT_TEXT = re.compile(r"[0-9]{1,12}([.,][0-9]{1,3})?")


def parse_amount(text: str, currency: str) -> int:
    """Read an amount the shopper typed in major units ("25.50") as minor units (2550)."""
    cleaned = text.strip()
    if not _AMOUNT_TEXT.fullmatch(cleaned):
        raise AmountError(f"{text!r} is not an amount such as 25 or 25.50")
    try:
        value = Decimal(cleaned.replace(",", "."))
    except InvalidOperation as exc:  # the pattern admits only decimals; kept for a changed pattern
        raise AmountError(f"{text!r} is not an amount") from exc
    minor = value.scaleb(exponent(currency))
    if minor != minor.to_integral_value():
        raise AmountError(f"{text!r} has more decimals than {currency} has ({exponent(currency)})")
    if minor <= 0:
        raise AmountError(f"{text!r}: the amount must be more than zero")
    return int(minor)
