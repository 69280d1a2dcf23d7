"""The signed feed the gates pull: deny lists, holds consumed elsewhere, price changes, the gates' keys.

Every change is a numbered row in `feed_log`. Numbers come from the `feed_version` counter, taken under its
row lock in the transaction that writes the change, so versions commit in order even with several
processes on one PostgreSQL: a gate that read "everything after n" can never miss an n+1 committed later.
"""

from __future__ import annotations

from typing import Any

from gate.protocol.documents import VERSION, sign
from gate.protocol.feed import MAX_CONSUMED, MAX_GATES, MAX_PRICES, GateFeed, GateKey, Gs1Entry, PriceEntry
from payments.context import Context
from payments.db import Tx
from payments.errors import BadRequest, PaymentsError
from payments.wire import b64

FEED_PAGE_BYTES = 56_000  # under the protocol's 65,535-byte document limit, with room for the envelope
FEED_PAGE_ROWS = 5000

__all__ = ["MAX_GATES", "Feed", "add_change", "add_changes", "latest"]


def add_change(db: Tx, kind: str, key: str, at: int) -> int:
    """Record one change in the caller's transaction; its feed version."""
    db.execute("UPDATE counters SET value = value + 1 WHERE name = 'feed_version'")
    version = db.one("SELECT value FROM counters WHERE name = 'feed_version'")["value"]
    db.insert("feed_log", {"version": version, "kind": kind, "key": key, "at": at})
    return version


def add_changes(db: Tx, kind: str, keys: list[str], at: int) -> None:
    """Several changes of one kind in the caller's transaction: one counter update, one insert."""
    if not keys:
        return
    db.execute("UPDATE counters SET value = value + ? WHERE name = 'feed_version'", [len(keys)])
    last = db.one("SELECT value FROM counters WHERE name = 'feed_version'")["value"]
    first = last - len(keys) + 1
    rows = [{"version": first + i, "kind": kind, "key": key, "at": at} for i, key in enumerate(keys)]
    db.insert_many("feed_log", rows)


def latest(db: Tx) -> int:
    return db.one("SELECT value FROM counters WHERE name = 'feed_version'")["value"]


def deny(db: Tx, shopper: str, hold_hex: str, now: int) -> None:
    """A debt: the shopper and the hold it came from go on the deny list."""
    for kind, key in (("shopper", shopper), ("hold", hold_hex)):
        if db.one("SELECT 1 FROM deny WHERE kind = ? AND key = ?", [kind, key]) is None:
            version = add_change(db, "deny_" + kind, key, now)
            db.insert("deny", {"kind": kind, "key": key, "reason": "debt", "since": version})


def allow(db: Tx, shopper: str, now: int) -> None:
    """All of a shopper's debts are paid: take them and their debt holds off the deny list."""
    holds = [r["hold"] for r in db.all("SELECT DISTINCT hold FROM debts WHERE shopper = ?", [shopper])]
    for kind, key in [("shopper", shopper)] + [("hold", h) for h in holds]:
        if db.execute("DELETE FROM deny WHERE kind = ? AND key = ?", [kind, key]):
            add_change(db, "allow_" + kind, key, now)


class Feed:
    """Pages of the feed, signed with the payment system's key."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def page(self, since: int, nonce: bytes) -> dict[str, Any]:
        """One signed page of changes after `since`; ask again from `version` while version < latest."""
        with self.ctx.db.read() as db:
            newest = latest(db)
            if since > newest:
                raise BadRequest(
                    f"version {since} is ahead of this payment system ({newest}): was the gate's database"
                    " restored from another store?",
                    code="feed_ahead",
                )
            deny_holds = sorted(
                bytes.fromhex(r["key"]) for r in db.all("SELECT key FROM deny WHERE kind = 'hold'")
            )
            deny_shoppers = sorted(r["key"] for r in db.all("SELECT key FROM deny WHERE kind = 'shopper'"))
            gates = [
                GateKey(gate=r["gate"], public_key=bytes(r["public_key"]))
                for r in db.all("SELECT gate, public_key FROM gates WHERE active = 1 ORDER BY gate")
            ]
            budget = FEED_PAGE_BYTES - 20 * len(deny_holds) - 70 * len(deny_shoppers)
            budget -= sum(len(g.encode()) for g in gates)
            if budget < 8_000:
                raise PaymentsError("the deny list is too long for one feed page", code="feed_too_large")
            consumed: list[bytes] = []
            prices: list[PriceEntry] = []
            version = since
            changes = db.all(
                "SELECT f.version, f.kind, f.key, p.name, p.category, p.unit, p.price, p.currency,"
                " p.valid_from FROM feed_log f LEFT JOIN prices p ON p.version = f.version"
                " WHERE f.version > ? ORDER BY f.version LIMIT ?",
                [since, FEED_PAGE_ROWS],
            )
            complete = len(changes) < FEED_PAGE_ROWS
            for row in changes:
                if row["kind"] == "consumed":
                    if len(consumed) == MAX_CONSUMED or budget < 20:
                        complete = False
                        break
                    consumed.append(bytes.fromhex(row["key"]))
                    budget -= 20
                elif row["kind"] == "price":
                    price = PriceEntry(
                        code=row["key"],
                        name=row["name"],
                        category=row["category"],
                        unit=row["unit"],
                        price=row["price"],
                        currency=row["currency"],
                        valid_from=row["valid_from"],
                    )
                    cost = len(price.encode()) + 2
                    if len(prices) == MAX_PRICES or budget < cost:
                        complete = False
                        break
                    prices.append(price)
                    budget -= cost
                version = row["version"]  # deny and allow changes travel as the whole deny sets
            if complete:
                version = newest
        feed = GateFeed(
            v=VERSION,
            store=self.ctx.config.store_id,
            nonce=nonce,
            since=since,
            version=version,
            latest=newest,
            issued=self.ctx.now(),
            deny_holds=tuple(deny_holds),
            deny_shoppers=tuple(deny_shoppers),
            consumed=tuple(consumed),
            prices=tuple(prices),
            gates=tuple(gates),
            gs1=tuple(Gs1Entry.of(layout) for layout in self.ctx.config.gs1),
        )
        return {"feed": b64(sign(feed, self.ctx.key).encode()), "version": version, "latest": newest}
