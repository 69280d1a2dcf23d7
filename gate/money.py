"""Money on a screen: amounts are integers in minor units everywhere, and become text only for display.

Shared by the technician panel, the reference phone and the demo, so that every screen shows an amount the
same way and none of them ever passes one through a float.
"""

from __future__ import annotations

# ISO 4217 minor-unit exponents that are not 2; every other currency has cents.
_EXPONENTS = {
    "BHD": 3, "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0, "JOD": 3, "JPY": 0, "KMF": 0,
    "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0, "RWF": 0, "TND": 3, "UGX": 0, "UYI": 0, "VND": 0,
    "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}  # fmt: skip


def exponent(currency: str) -> int:
    """How many decimal digits the currency's minor unit has (2 for EUR: 1 EUR = 100 cents)."""
    return _EXPONENTS.get(currency, 2)


def format_amount(minor: int, currency: str) -> str:
    """Minor units as text for a screen: 2550, 'EUR' -> '25.50 EUR'."""
    digits = exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**digits)
    text = f"{whole}.{frac:0{digits}d}" if digits else str(whole)
    return f"{sign}{text} {currency}"
