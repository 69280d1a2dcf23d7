"""What the other parties do with the documents, as reference code: the payment system issues a voucher, the
phone signs a list and answers a gate's challenge.

The gate never calls these in production; the reference phone, the payment system, the test vectors, the
benchmarks and the tests do, so there is one correct way to build each document.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

from gate.protocol.documents import (
    ID_BYTES,
    VERSION,
    ExitAnswer,
    ExitChallenge,
    ExitPresentation,
    HoldVoucher,
    Item,
    ShoppingList,
    Signed,
    line_total,
    sign,
)
from gate.protocol.keys import SigningKey


def new_id() -> bytes:
    """A random 16-byte id (list id, hold id, request id)."""
    return os.urandom(ID_BYTES)


def issue_voucher(
    ps_key: SigningKey,
    *,
    hold: bytes,
    shopper: str,
    shopper_key: bytes,
    store: str,
    currency: str,
    stored_value: int,
    bank: int,
    issued: int,
    expires: int,
) -> Signed[HoldVoucher]:
    """The payment system reserves stored_value + bank for this shopper's visit and signs the voucher."""
    voucher = HoldVoucher(
        v=VERSION,
        hold=hold,
        shopper=shopper,
        shopper_key=shopper_key,
        store=store,
        currency=currency,
        amount=stored_value + bank,
        stored_value=stored_value,
        bank=bank,
        issued=issued,
        expires=expires,
    )
    return sign(voucher, ps_key)


def item(code: str, unit_price: int, qty: int = 1, grams: int | None = None) -> Item:
    """One list line with its line total computed the protocol's way (half up for weighed goods)."""
    total = line_total(qty, unit_price, grams)
    return Item(code=code, qty=qty, unit_price=unit_price, line_total=total, grams=grams)


def sign_list(
    shopper_key: SigningKey,
    *,
    list_id: bytes,
    hold: bytes,
    store: str,
    currency: str,
    created: int,
    items: Sequence[Item],
    total: int | None = None,
) -> Signed[ShoppingList]:
    """The shopper confirms the list with their key (claim 2); the total is the sum of lines unless given."""
    doc = ShoppingList(
        v=VERSION,
        list=list_id,
        hold=hold,
        store=store,
        currency=currency,
        created=created,
        items=tuple(items),
        total=sum(i.line_total for i in items) if total is None else total,
    )
    return sign(doc, shopper_key)


def answer_challenge(
    shopper_key: SigningKey, challenge: ExitChallenge, signed_list: Signed[ShoppingList]
) -> Signed[ExitAnswer]:
    """The phone binds the gate's fresh challenge to the exact list bytes it presents."""
    answer = ExitAnswer(
        v=VERSION,
        gate=challenge.gate,
        nonce=challenge.nonce,
        list_hash=hashlib.sha256(signed_list.body).digest(),
    )
    return sign(answer, shopper_key)


def present(
    voucher: Signed[HoldVoucher], signed_list: Signed[ShoppingList], answer: Signed[ExitAnswer]
) -> ExitPresentation:
    return ExitPresentation(v=VERSION, voucher=voucher, list=signed_list, answer=answer)
