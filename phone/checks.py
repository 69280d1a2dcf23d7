"""Every document the phone receives is checked here before anything is shown or stored.

Each check opens the envelope strictly, verifies the signature with a key the phone pinned (never a key
that came with the document), then compares the body with what the phone itself asked for. A failure is
a `Refused` that names the document and the first thing wrong, e.g.
"hold voucher refused: signature does not verify".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gate.errors import ProtocolError
from gate.legality import NO_LIST
from gate.protocol.documents import (
    D,
    DeductionNotice,
    ExitChallenge,
    ExitReceipt,
    HoldVoucher,
    ShoppingList,
    Signed,
    open_signed,
)
from gate.protocol.feed import GateFeed
from gate.protocol.keys import TrustedKeys
from phone.errors import Refused

CLOCK_SKEW_S = 300  # how far the phone's clock may disagree with the payment system's


@dataclass(frozen=True)
class HoldAsked:
    """What the phone asked the payment system for; the voucher must say exactly this."""

    shopper: str
    shopper_key: bytes
    store: str
    currency: str
    amount: int
    now: int


def _open(data: bytes | Signed[D], doc_class: type[D], what: str, keys: TrustedKeys) -> Signed[D]:
    try:
        signed = data if isinstance(data, Signed) else open_signed(data, doc_class)
        if signed.type != doc_class.TYPE:
            raise Refused(f"{what} refused: it is a {signed.type}")
        signed.verify_with(keys.get(signed.kid))
    except ProtocolError as exc:
        raise Refused(f"{what} refused: {exc}") from exc
    return signed


def _expect(what: str, field: str, got: Any, want: Any, show: Any = None) -> None:
    if got != want:
        shown = show if show is not None else (lambda v: v.hex() if isinstance(v, bytes) else v)
        raise Refused(f"{what} refused: {field} is {shown(got)}, expected {shown(want)}")


def check_voucher(
    data: bytes | Signed[HoldVoucher], ps_keys: TrustedKeys, asked: HoldAsked
) -> Signed[HoldVoucher]:
    """A hold voucher (claim 3): signed by a pinned payment-system key, naming this shopper, key, store,
    currency and amount, and valid now."""
    what = "hold voucher"
    signed = _open(data, HoldVoucher, what, ps_keys)
    v = signed.doc
    _expect(what, "shopper", v.shopper, asked.shopper)
    _expect(what, "shopper key", v.shopper_key, asked.shopper_key)
    _expect(what, "store", v.store, asked.store)
    _expect(what, "currency", v.currency, asked.currency)
    _expect(what, "amount", v.amount, asked.amount)
    if v.expires <= asked.now:
        raise Refused(f"{what} refused: already expired (at {v.expires}, now {asked.now})")
    if v.issued > asked.now + CLOCK_SKEW_S:
        raise Refused(f"{what} refused: issued in the future (at {v.issued}, now {asked.now})")
    return signed


def check_receipt(
    data: bytes,
    gate_keys: Mapping[str, TrustedKeys],
    challenge: ExitChallenge,
    signed_list: Signed[ShoppingList],
) -> Signed[ExitReceipt]:
    """An exit receipt (claim 1 step 3): signed by the key the payment system enrolled for the gate that
    challenged us, answering that very challenge about this very list."""
    what = "exit receipt"
    try:
        signed = open_signed(data, ExitReceipt)
    except ProtocolError as exc:
        raise Refused(f"{what} refused: {exc}") from exc
    r = signed.doc
    _expect(what, "gate", r.gate, challenge.gate)
    keys = gate_keys.get(r.gate)
    if keys is None:
        raise Refused(f"{what} refused: gate {r.gate} is not an enrolled gate of this store (run phone sync)")
    _open(signed, ExitReceipt, what, keys)
    lst = signed_list.doc
    _expect(what, "store", r.store, challenge.store)
    _expect(what, "nonce", r.nonce, challenge.nonce)
    if r.list == NO_LIST and r.verdict in ("deny", "emergency"):
        # The gate could not read our presentation: the nonce still binds it to this tap, and its shape is
        # fixed (docs/protocol.md, "Exit receipt"): reasons exactly malformed, total 0, the store's currency.
        _expect(what, "reasons of an unreadable presentation", r.reasons, ("malformed",))
        _expect(what, "total of an unreadable presentation", r.total, 0)
        _expect(what, "currency", r.currency, lst.currency)
        return signed
    _expect(what, "list", r.list, lst.list)
    _expect(what, "currency", r.currency, lst.currency)
    _expect(what, "total", r.total, lst.total)
    return signed


def check_notice(
    data: bytes,
    ps_keys: TrustedKeys,
    voucher: HoldVoucher,
    signed_list: ShoppingList,
) -> Signed[DeductionNotice]:
    """A deduction notice (claim 1 step 4): signed by a pinned payment-system key, for this list, hold and
    shopper, taking the list's total and nothing more."""
    what = "deduction notice"
    signed = _open(data, DeductionNotice, what, ps_keys)
    n = signed.doc
    _expect(what, "charge", n.charge, signed_list.list)
    _expect(what, "hold", n.hold, voucher.hold)
    _expect(what, "shopper", n.shopper, voucher.shopper)
    _expect(what, "currency", n.currency, voucher.currency)
    _expect(what, "total", n.total, signed_list.total)
    if n.bank > voucher.bank:
        raise Refused(f"{what} refused: takes {n.bank} from the bank, the hold there was {voucher.bank}")
    if n.released > voucher.amount - n.stored_value - n.bank:
        raise Refused(f"{what} refused: releases {n.released}, more than the hold had left")
    return signed


def check_feed(
    data: bytes, ps_keys: TrustedKeys, *, store: str, nonce: bytes, since: int
) -> Signed[GateFeed]:
    """One page of the store's feed (the catalog's prices and the gate keys are in it): signed by a pinned
    payment-system key, for this store, answering our own fresh nonce and the version we asked from."""
    what = "store feed"
    signed = _open(data, GateFeed, what, ps_keys)
    f = signed.doc
    _expect(what, "store", f.store, store)
    _expect(what, "nonce", f.nonce, nonce)
    _expect(what, "since", f.since, since)
    return signed
