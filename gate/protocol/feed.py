"""The feed: the payment system's signed answer to "what changed since version N?" (docs/protocol.md).

The payment system signs it; gates pull it (deny lists, holds consumed at other gates, prices) and so do
phones (prices, the store's GS1 barcode layouts, and the store's active gates with the keys that sign their
exit receipts). It is a protocol
document like the voucher, built on gate.protocol.documents.Document: the same signed envelope, the same
canonical encoding, verified with the same trusted payment-system keys.

The deny sets, the gate keys and the GS1 layouts are sent whole on every page (they replace what the asker
had: a revoked gate is simply no longer listed), consumed holds and prices are the changes after `since` up
to `version`.
A page holds at most what fits in one document; `version < latest` means "ask again from `version`". The
asker's random nonce is echoed inside the signature, so a recorded feed cannot be replayed to roll a deny
list back or to bring a revoked gate's key back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from gate.barcodes import Layout
from gate.errors import DecodeError
from gate.protocol.documents import (
    AMOUNT,
    CURRENCY,
    ID,
    NAME,
    NONCE,
    TIME,
    Document,
    Validator,
    _list_of,
    _one_of,
    _public_key,
    _text,
    _uint,
    _version,
)

MAX_DENY = 2000
MAX_CONSUMED = 4000
MAX_PRICES = 1000
MAX_GATES = 64  # one store's exit gates; the payment system refuses to enrol more active ones
MAX_GS1 = 10  # GS1 restricted-circulation prefixes 20-29: at most one layout each
VERSION_MAX = 2**62

CATEGORY = _text(re.compile(r"[a-z0-9][a-z0-9-]{0,39}"), "a category of lower-case letters, digits, '-'")
UNIT = _text(re.compile(r"[a-z]{1,8}"), "a unit such as 'each' or 'kg'")
# 1-80 code points, none of them a control character (C0, DEL, C1) or an invisible format or separator
# character that could reorder or hide what the shopper reads (bidi marks, embeddings, overrides and
# isolates, zero-width characters, line and paragraph separators, the byte order mark). An explicit set,
# not a Unicode category, so that every platform's Unicode version gives the same verdict.
NAME_REFUSED = (
    "\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
)
PRODUCT_NAME = _text(re.compile(f"[^{NAME_REFUSED}]{{1,80}}"), "a product name of 1-80 printable characters")
PRODUCT_CODE = _text(re.compile(r"[0-9]{1,14}"), "a product code of 1-14 digits")


@dataclass(frozen=True)
class PriceEntry(Document):
    """One price change: from `valid_from` on, `code` costs `price` minor units per `unit`."""

    TYPE = "price"
    FIELDS: ClassVar[dict[str, Validator]] = {
        "code": PRODUCT_CODE,
        "name": PRODUCT_NAME,
        "category": CATEGORY,
        "unit": UNIT,
        "price": AMOUNT,
        "currency": CURRENCY,
        "valid_from": TIME,
    }
    code: str
    name: str
    category: str
    unit: str
    price: int
    currency: str
    valid_from: int


@dataclass(frozen=True)
class GateKey(Document):
    """One active gate of the store and the public key it signs its exit receipts (and charges) with."""

    TYPE = "gate-key"
    FIELDS: ClassVar[dict[str, Validator]] = {"gate": NAME, "public_key": _public_key}
    gate: str
    public_key: bytes


@dataclass(frozen=True)
class Gs1Entry(Document):
    """One of the store's GS1 price- or weight-embedded barcode layouts (the lanes' [[barcodes.gs1]]).

    Signed in the feed so that a phone splits a scale's label exactly as the gates do: which prefix embeds
    a price or a weight, and where. `value_check_digit` is 0 or 1 (the protocol has no booleans)."""

    TYPE = "gs1-layout"
    FIELDS: ClassVar[dict[str, Validator]] = {
        "prefix": _text(re.compile(r"2[0-9]"), "a GS1 restricted-circulation prefix 20-29"),
        "kind": _one_of("price", "weight"),
        "item_digits": _uint(9, 1),
        "value_digits": _uint(6, 1),
        "value_check_digit": _uint(1),
    }
    prefix: str
    kind: str
    item_digits: int
    value_digits: int
    value_check_digit: int

    @classmethod
    def of(cls, layout: Layout) -> Gs1Entry:
        """The feed entry of a layout as a config holds it (gate.config.Gs1Layout, a bool check digit)."""
        return cls(
            prefix=layout.prefix,
            kind=layout.kind,
            item_digits=layout.item_digits,
            value_digits=layout.value_digits,
            value_check_digit=1 if layout.value_check_digit else 0,
        )

    def check(self, where: str) -> None:
        if 2 + self.item_digits + self.value_check_digit + self.value_digits + 1 != 13:
            raise DecodeError(
                f"{where}: prefix, item, price check digit, value and check digit are not 13 digits"
            )
        if self.value_check_digit and self.value_digits not in (4, 5):
            raise DecodeError(f"{where}: a price check digit goes with a 4- or 5-digit value")


@dataclass(frozen=True)
class GateFeed(Document):
    """Payment system -> gate and phone, signed: the changes since the asker's version, and the whole deny
    list and list of active gate keys."""

    TYPE = "gate-feed"
    FIELDS: ClassVar[dict[str, Validator]] = {
        "v": _version,
        "store": NAME,
        "nonce": NONCE,
        "since": _uint(VERSION_MAX),
        "version": _uint(VERSION_MAX),
        "latest": _uint(VERSION_MAX),
        "issued": TIME,
        "deny_holds": _list_of(ID, minimum=0, maximum=MAX_DENY),
        "deny_shoppers": _list_of(NAME, minimum=0, maximum=MAX_DENY),
        "consumed": _list_of(ID, minimum=0, maximum=MAX_CONSUMED),
        "prices": _list_of(PriceEntry.from_map, minimum=0, maximum=MAX_PRICES),
        "gates": _list_of(GateKey.from_map, minimum=0, maximum=MAX_GATES),
        "gs1": _list_of(Gs1Entry.from_map, minimum=0, maximum=MAX_GS1),
    }
    v: int
    store: str
    nonce: bytes
    since: int
    version: int
    latest: int
    issued: int
    deny_holds: tuple[bytes, ...]
    deny_shoppers: tuple[str, ...]
    consumed: tuple[bytes, ...]
    prices: tuple[PriceEntry, ...]
    gates: tuple[GateKey, ...]
    gs1: tuple[Gs1Entry, ...]

    def check(self, where: str) -> None:
        if not self.since <= self.version <= self.latest:
            raise DecodeError(
                f"{where}: versions out of order (since {self.since}, version {self.version}, "
                f"latest {self.latest})"
            )
        seen: dict[bytes, str] = {}
        for i, entry in enumerate(self.gates):
            if entry.public_key in seen:
                raise DecodeError(
                    f"{where}.gates[{i}]: the key of gate {entry.gate} is listed before for gate "
                    f"{seen[entry.public_key]} (a key belongs to one gate, once)"
                )
            seen[entry.public_key] = entry.gate
        prefixes = [layout.prefix for layout in self.gs1]
        if len(set(prefixes)) != len(prefixes):
            raise DecodeError(f"{where}.gs1: a prefix is listed twice (one layout per prefix)")

    def gate_keys(self) -> dict[str, tuple[bytes, ...]]:
        """The listed gates and their keys, as the phone pins them (a gate may be listed with several)."""
        keys: dict[str, tuple[bytes, ...]] = {}
        for entry in self.gates:
            keys[entry.gate] = (*keys.get(entry.gate, ()), entry.public_key)
        return keys
