"""The store's back office: shoppers and their stored value, top-ups, gates and their keys, catalog prices.

Everything here is administration (the admin token, or the CLI on the database); no money leaves a shopper
here, it only arrives (a top-up pays the shopper's debts first, then adds stored value).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gate.catalog import CatalogError, PriceChange
from gate.errors import DecodeError, SignatureError
from gate.protocol.documents import MAX_AMOUNT
from gate.protocol.feed import MAX_GATES, PriceEntry
from gate.protocol.keys import check_public_key, key_id
from payments.context import Context
from payments.db import Tx
from payments.errors import BadRequest, Conflict, NotFound
from payments.feed import add_change, allow, latest
from payments.ledger import entry
from payments.wire import ACCOUNT, NAME, REFERENCE, check_name


class Accounts:
    """Shoppers, top-ups, gates and prices."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- shoppers -------------------------------------------------------------------------------------

    def enrol_shopper(
        self, shopper: str, public_key: bytes, bank_account: str | None
    ) -> tuple[bool, dict[str, Any]]:
        """Enrol a shopper with their phone's key; the same enrolment again is a no-op (False)."""
        check_name(NAME, shopper, "shopper")
        if bank_account is not None:
            check_name(ACCOUNT, bank_account, "bank_account")
        _check_key(public_key)
        with self.ctx.db.tx() as db:
            row = db.one(f"SELECT * FROM shoppers WHERE shopper = ?{db.for_update}", [shopper])
            if row is not None:
                if bytes(row["public_key"]) != public_key or row["bank_account"] != bank_account:
                    raise Conflict(
                        f"shopper {shopper} is enrolled with another key or account", code="enrolled"
                    )
                return False, shopper_view(db, shopper)
            db.execute(
                "INSERT INTO shoppers (shopper, public_key, key_id, bank_account, currency, balance,"
                " reserved, debt, created) VALUES (?, ?, ?, ?, ?, 0, 0, 0, ?)"
                " ON CONFLICT (shopper) DO NOTHING",
                [
                    shopper,
                    public_key,
                    key_id(public_key),
                    bank_account,
                    self.ctx.config.currency,
                    self.ctx.now(),
                ],
            )
            return True, shopper_view(db, shopper)

    def shopper(self, shopper: str) -> dict[str, Any]:
        with self.ctx.db.read() as db:
            return shopper_view(db, shopper)

    def top_up(self, shopper: str, amount: int, reference: str) -> tuple[bool, dict[str, Any]]:
        """Add stored value; it pays the shopper's debts first. Idempotent by reference."""
        check_name(REFERENCE, reference, "reference")
        if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= MAX_AMOUNT:
            raise BadRequest(f"amount must be an integer 1..{MAX_AMOUNT} (minor units)", code="bad_amount")
        now = self.ctx.now()
        with self.ctx.db.tx() as db:
            row = db.one(f"SELECT * FROM shoppers WHERE shopper = ?{db.for_update}", [shopper])
            if row is None:
                raise NotFound(f"no shopper {shopper}")
            done = db.one("SELECT * FROM top_ups WHERE reference = ?", [reference])
            if done is not None:
                if (done["shopper"], done["amount"]) != (shopper, amount):
                    raise Conflict(f"top-up {reference} was made with another shopper or amount")
                return False, {**shopper_view(db, shopper), "debt_repaid": done["debt_repaid"]}
            repay = min(amount, row["debt"])
            left = repay
            for debt in db.all(
                "SELECT * FROM debts WHERE shopper = ? AND paid IS NULL ORDER BY created, charge", [shopper]
            ):
                if left == 0:
                    break
                part = min(left, debt["amount"] - debt["repaid"])
                left -= part
                paid = now if debt["repaid"] + part == debt["amount"] else None
                db.execute(
                    "UPDATE debts SET repaid = repaid + ?, paid = ? WHERE charge = ?",
                    [part, paid, debt["charge"]],
                )
            db.execute(
                "UPDATE shoppers SET balance = balance + ?, debt = debt - ? WHERE shopper = ?",
                [amount - repay, repay, shopper],
            )
            db.insert(
                "top_ups",
                {
                    "reference": reference,
                    "shopper": shopper,
                    "amount": amount,
                    "debt_repaid": repay,
                    "at": now,
                },
            )
            entry(db, now, "topup", amount, shopper=shopper, ref=reference)
            if repay:
                entry(db, now, "debt_repay", repay, shopper=shopper, ref=reference)
            if repay and row["debt"] == repay:
                allow(db, shopper, now)
            return True, {**shopper_view(db, shopper), "debt_repaid": repay}

    # -- gates ----------------------------------------------------------------------------------------

    def enrol_gate(self, gate: str, public_key: bytes) -> tuple[bool, dict[str, Any]]:
        check_name(NAME, gate, "gate")
        _check_key(public_key)
        kid = key_id(public_key)
        with self.ctx.db.tx() as db:
            db.execute("SELECT value FROM counters WHERE name = 'feed_version'" + db.for_update)
            row = db.one("SELECT * FROM gates WHERE gate = ?", [gate])
            if row is not None and bytes(row["public_key"]) == public_key and row["active"]:
                return False, gate_view(row)
            other = db.one("SELECT gate FROM gates WHERE key_id = ? AND gate != ?", [kid, gate])
            if other is not None:
                raise Conflict(f"this key is already enrolled for gate {other['gate']}", code="enrolled")
            active = db.one("SELECT count(*) AS n FROM gates WHERE active = 1 AND gate != ?", [gate])["n"]
            if active >= MAX_GATES:
                raise Conflict(
                    f"the store has {active} active gates and the feed lists at most {MAX_GATES}: "
                    "revoke one first",
                    code="too_many_gates",
                )
            db.execute(
                "INSERT INTO gates (gate, public_key, key_id, active, enrolled, revoked)"
                " VALUES (?, ?, ?, 1, ?, NULL) ON CONFLICT (gate) DO UPDATE SET"
                " public_key = excluded.public_key, key_id = excluded.key_id, active = 1,"
                " enrolled = excluded.enrolled, revoked = NULL",
                [gate, public_key, kid, self.ctx.now()],
            )
            return True, gate_view(db.one("SELECT * FROM gates WHERE gate = ?", [gate]))

    def revoke_gate(self, gate: str) -> dict[str, Any]:
        with self.ctx.db.tx() as db:
            if not db.execute(
                "UPDATE gates SET active = 0, revoked = coalesce(revoked, ?) WHERE gate = ?",
                [self.ctx.now(), gate],
            ):
                raise NotFound(f"no gate {gate}")
            return gate_view(db.one("SELECT * FROM gates WHERE gate = ?", [gate]))

    def gates(self) -> list[dict[str, Any]]:
        return [gate_view(r) for r in self.ctx.db.all("SELECT * FROM gates ORDER BY gate")]

    # -- catalog --------------------------------------------------------------------------------------

    def set_prices(self, items: list[dict[str, Any]]) -> int:
        """Record price changes; each becomes a feed entry. Returns the feed version after them."""
        if not isinstance(items, list) or not items:
            raise BadRequest("items must be a non-empty list", code="bad_request")
        entries = []
        currency = self.ctx.config.currency
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise BadRequest(f"items[{i}] must be an object", code="bad_request")
            item = {"currency": currency, "valid_from": self.ctx.now(), **item}
            try:
                price = PriceEntry.from_map(item, f"items[{i}]")
                change = PriceChange(**price.to_map()).checked(f"items[{i}]")
            except (DecodeError, CatalogError) as exc:
                raise BadRequest(str(exc), code="bad_price") from exc
            entries.append(dataclasses.replace(price, code=change.code))
            if entries[-1].currency != currency:
                raise BadRequest(f"items[{i}].currency is not {currency}", code="bad_price")
        with self.ctx.db.tx() as db:
            for price in entries:
                version = add_change(db, "price", price.code, self.ctx.now())
                db.insert("prices", {"version": version, **price.to_map()})
            return latest(db)


def shopper_view(db: Tx, shopper: str) -> dict[str, Any]:
    row = db.one("SELECT * FROM shoppers WHERE shopper = ?", [shopper])
    if row is None:
        raise NotFound(f"no shopper {shopper}")
    return {
        "shopper": row["shopper"],
        "key_id": row["key_id"],
        "bank_account": row["bank_account"],
        "currency": row["currency"],
        "balance": row["balance"],
        "reserved": row["reserved"],
        "available": row["balance"] - row["reserved"],
        "debt": row["debt"],
        "denied": db.one("SELECT 1 FROM deny WHERE kind = 'shopper' AND key = ?", [shopper]) is not None,
    }


def gate_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "gate": row["gate"],
        "key_id": row["key_id"],
        "public_key": bytes(row["public_key"]).hex(),
        "active": bool(row["active"]),
        "enrolled": row["enrolled"],
        "revoked": row["revoked"],
    }


def _check_key(public_key: bytes) -> None:
    try:
        check_public_key(public_key)
    except SignatureError as exc:
        raise BadRequest(f"public_key: {exc}", code="bad_key") from exc
