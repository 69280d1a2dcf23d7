"""Barcodes as the lane sees them: EAN-13, EAN-8, UPC-A, UPC-E, and GS1 price- and weight-embedded codes.

Three forms of one code matter here (docs/protocol.md, "Codes in a list"):

- what the scanner sends: perhaps an AIM symbology identifier (`]E0`, `]E4`, `]C1` ...) and the digits;
- the **list code**: the digits as printed, except that UPC-E is expanded to its UPC-A, so an 8-digit list
  code always means EAN-8 (`parse_scan` gives it);
- the **catalog key**: one spelling per trade item, so a UPC-A and its EAN-13 spelling (a leading 0) find the
  same product: GTIN-13 for 12- and 13-digit codes (and 14-digit ones that start with 0), EAN-8 as 8 digits,
  other GTIN-14 as 14 (`catalog_key`).

A GS1 restricted-circulation code (EAN-13 with prefix 20-29, layout from `[[barcodes.gs1]]`) embeds a price or
a weight. Its catalog key is the *base code*: the same code with the value (and its price check digit) set
to zeros and the check digit recomputed, so that one catalog row serves every label of that item.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from gate.errors import GateError


class BarcodeError(GateError, ValueError):
    """A scan or code is not a valid EAN/UPC/GTIN, or its embedded value does not match its check digit."""


class Layout(Protocol):
    """The shape of config.Gs1Layout: a prefix and where its item reference and value sit."""

    prefix: str
    kind: str
    item_digits: int
    value_digits: int
    value_check_digit: bool


# AIM ISO/IEC 15424 symbology identifier: ']' + code character + modifier character.
_AIM = re.compile(r"\](?P<sym>[A-Za-z][0-9A-Za-z])")
_DIGITS = re.compile(r"[0-9]+")
GTIN_LENGTHS = (8, 12, 13, 14)


def check_digit(body: str) -> str:
    """The GS1 mod-10 check digit of body (weights 3, 1, 3 ... from the right): EAN, UPC, GTIN, GLN."""
    if not body or not body.isascii() or not body.isdecimal():
        raise BarcodeError(f"{body!r} is not a string of digits")
    raw = body.encode()
    threes, ones = raw[-1::-2], raw[-2::-2]  # from the right: weight 3, 1, 3, 1 ...
    total = 3 * (sum(threes) - 48 * len(threes)) + sum(ones) - 48 * len(ones)
    return str(-total % 10)


def has_valid_check_digit(code: str) -> bool:
    """True for a GTIN-8, -12, -13 or -14 whose last digit is its check digit."""
    return (
        len(code) in GTIN_LENGTHS
        and code.isascii()
        and code.isdecimal()
        and check_digit(code[:-1]) == code[-1]
    )


def expand_upce(code: str) -> str:
    """The UPC-A (12 digits) that an 8-digit UPC-E (number system 0 or 1, six digits, check) stands for."""
    if len(code) != 8 or not code.isascii() or not code.isdecimal():
        raise BarcodeError(f"{code!r} is not an 8-digit UPC-E")
    ns, d, check = code[0], code[1:7], code[7]
    if ns not in "01":
        raise BarcodeError(f"UPC-E {code}: number system {ns} is not 0 or 1")
    last = d[5]
    if last in "012":
        body = f"{ns}{d[0:2]}{last}0000{d[2:5]}"
    elif last == "3":
        body = f"{ns}{d[0:3]}00000{d[3:5]}"
    elif last == "4":
        body = f"{ns}{d[0:4]}00000{d[4]}"
    else:
        body = f"{ns}{d[0:5]}0000{last}"
    if check_digit(body) != check:
        raise BarcodeError(f"UPC-E {code}: check digit {check} should be {check_digit(body)}")
    return body + check


@dataclass(frozen=True)
class Scan:
    """One scanner read, cleaned up: the list code and the symbology it was read as (None if not sent)."""

    code: str
    symbology: str | None


def parse_scan(raw: str | bytes) -> Scan:
    """Turn what a scanner sent into a list code: strip the AIM prefix, check the digits, expand UPC-E.

    Without an AIM prefix an 8-digit code is taken as EAN-8 (UPC-E and EAN-8 cannot be told apart by
    their digits alone); with `]E0` it is UPC-E, with `]E4` EAN-8. A GS1-128 / DataBar / DataMatrix / QR
    read carrying application identifier 01 (`]C1`, `]e0`, `]d2`, `]Q3`) gives the GTIN in it.
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise BarcodeError(f"scan holds a non-ASCII byte at {exc.start}") from exc
    text = raw.strip()
    symbology = None
    m = _AIM.match(text)
    if m:
        symbology = "]" + m["sym"]
        text = text[m.end() :]
    if symbology in ("]C1", "]e0", "]d2", "]Q3"):
        if not (text.startswith("01") and len(text) >= 16 and text[2:16].isdecimal()):
            raise BarcodeError(f"{symbology} read {text[:40]!r} does not start with a GTIN (AI 01)")
        text = _shorten_gtin14(text[2:16])
    elif symbology == "]E3" and len(text) in (15, 18):  # EAN-13 with a 2- or 5-digit add-on
        text = text[:13]
    if not _DIGITS.fullmatch(text):
        raise BarcodeError(f"scan {text[:40]!r} is not all digits")
    if len(text) == 8 and symbology == "]E0":
        return Scan(expand_upce(text), symbology)
    if len(text) not in GTIN_LENGTHS:
        raise BarcodeError(f"scan {text} has {len(text)} digits, not 8, 12, 13 or 14")
    if not has_valid_check_digit(text):
        raise BarcodeError(f"scan {text}: check digit {text[-1]} should be {check_digit(text[:-1])}")
    return Scan(text, symbology)


def _shorten_gtin14(gtin14: str) -> str:
    """GTIN-14 with leading zeros padded onto a shorter GTIN, as the shorter one (the spelling scanned)."""
    if gtin14.startswith("000000"):
        return gtin14[6:]
    if gtin14.startswith("0"):
        return gtin14[1:]
    return gtin14


def catalog_key(code: str) -> str:
    """The one spelling of a list code under which the catalog files the product.

    12 digits (UPC-A) -> 13 with a leading 0; 14 digits starting with 0 -> 13; 8 and 13 stay.
    Raises BarcodeError for anything that is not a GTIN with a correct check digit.
    """
    if not has_valid_check_digit(code):
        if len(code) in GTIN_LENGTHS and code.isascii() and code.isdecimal():
            raise BarcodeError(f"{code}: check digit {code[-1]} should be {check_digit(code[:-1])}")
        raise BarcodeError(f"{code[:40]!r} is not an EAN-8, UPC-A, EAN-13 or GTIN-14")
    if len(code) == 12:
        return "0" + code
    if len(code) == 14 and code[0] == "0":
        return code[1:]
    return code


# GS1 General Specifications 7.9.2-7.9.4: the price/weight check digit inside a 4- or 5-digit value.
_W2M = (0, 2, 4, 6, 8, 9, 1, 3, 5, 7)  # 2-: units digit of 2d minus its tens digit
_W3 = (0, 3, 6, 9, 2, 5, 8, 1, 4, 7)  # 3: units digit of 3d
_W5P = (0, 5, 1, 6, 2, 7, 3, 8, 4, 9)  # 5+: units plus tens digit of 5d
_W5M = (0, 5, 9, 4, 8, 3, 7, 2, 6, 1)  # 5-: units minus tens digit of 5d


def price_check_digit(value: str) -> str:
    """The check digit GS1 puts before a 4- or 5-digit embedded price or weight."""
    if not value.isascii() or not value.isdecimal() or len(value) not in (4, 5):
        raise BarcodeError(f"a price check digit needs 4 or 5 digits, not {value!r}")
    d = [ord(c) - 48 for c in value]
    if len(d) == 4:
        return str((_W2M[d[0]] + _W2M[d[1]] + _W3[d[2]] + _W5M[d[3]]) * 3 % 10)
    total = _W5P[d[0]] + _W2M[d[1]] + _W5M[d[2]] + _W5P[d[3]] + _W2M[d[4]]
    return str(_W5M.index((10 - total % 10) % 10))


@dataclass(frozen=True)
class VariableMeasure:
    """A price- or weight-embedded code taken apart: item reference, value, and the catalog base code."""

    code: str
    kind: str  # "price" (value in minor units) or "weight" (value in grams)
    item: str
    value: int
    base_code: str


def layouts_by_prefix(layouts: Iterable[Layout] | Mapping[str, Layout]) -> dict[str, Layout]:
    if isinstance(layouts, Mapping):
        return dict(layouts)
    return {layout.prefix: layout for layout in layouts}


def _check_layout(layout: Layout) -> None:
    pcd = 1 if layout.value_check_digit else 0
    if 2 + layout.item_digits + pcd + layout.value_digits + 1 != 13:
        raise BarcodeError(f"GS1 layout {layout.prefix}: digits do not add up to an EAN-13")
    if layout.value_check_digit and layout.value_digits not in (4, 5):
        raise BarcodeError(f"GS1 layout {layout.prefix}: a price check digit needs a 4- or 5-digit value")


def variable_measure(code: str, layouts: Mapping[str, Layout]) -> VariableMeasure | None:
    """Take apart a 13-digit code whose prefix has a GS1 layout; None if it has none (an ordinary code).

    Raises BarcodeError when the code's check digit or its embedded price check digit is wrong.
    """
    if len(code) != 13 or code[:2] not in layouts:
        return None
    layout = layouts[code[:2]]
    _check_layout(layout)
    if not has_valid_check_digit(code):
        raise BarcodeError(f"{code}: check digit {code[-1]} should be {check_digit(code[:-1])}")
    item_end = 2 + layout.item_digits
    value_start = item_end + (1 if layout.value_check_digit else 0)
    value = code[value_start:12]
    if layout.value_check_digit and code[item_end] != price_check_digit(value):
        raise BarcodeError(f"{code}: price check digit {code[item_end]} should be {price_check_digit(value)}")
    return VariableMeasure(
        code=code,
        kind=layout.kind,
        item=code[2:item_end],
        value=int(value),
        base_code=variable_code(layout, code[2:item_end], 0),
    )


def variable_code(layout: Layout, item: str, value: int) -> str:
    """The EAN-13 a scale prints for this item and value (value 0 gives the catalog base code)."""
    _check_layout(layout)
    if len(item) != layout.item_digits or not item.isdecimal():
        raise BarcodeError(f"item reference {item!r} is not {layout.item_digits} digits")
    if not 0 <= value < 10**layout.value_digits:
        raise BarcodeError(f"value {value} does not fit {layout.value_digits} digits")
    digits = f"{value:0{layout.value_digits}d}"
    pcd = price_check_digit(digits) if layout.value_check_digit else ""
    body = f"{layout.prefix}{item}{pcd}{digits}"
    return body + check_digit(body)


@dataclass(frozen=True)
class Resolved:
    """A list code resolved for the catalog: the key to look up, and the embedded value if any."""

    key: str
    measure: VariableMeasure | None = None


def resolve(code: str, layouts: Mapping[str, Layout]) -> Resolved:
    """The catalog key of a list code, taking GS1 variable-measure codes apart; BarcodeError if invalid."""
    measure = variable_measure(code, layouts)
    if measure is not None:
        return Resolved(measure.base_code, measure)
    return Resolved(catalog_key(code))
