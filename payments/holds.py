"""Holds (claims 3 and 9): reserve stored value, hold the rest at the bank, sign the voucher; and the end of
a hold that no charge used (expiry, the bank's release).

A bank call is never made inside a transaction. A hold records how far it got (`placing`, `open`,
`releasing`, `closed`, `failed`), so a crash between two steps is finished by the sweep, never done twice:
the bank is idempotent by the hold id.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from gate.protocol.documents import VERSION, HoldRequest, HoldVoucher, sign
from payments.context import Context
from payments.errors import (
    BankDeclined,
    BankUnavailable,
    Conflict,
    Declined,
    Forbidden,
    NotFound,
    PaymentsError,
    Unauthorized,
    Unprocessable,
)
from payments.ledger import entry, line, unreserve
from payments.wire import b64, open_document, to_json, verify


class Holds:
    """Placing, looking up, expiring and releasing holds."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def place(self, raw: bytes) -> tuple[int, str]:
        """Reserve stored value, hold the rest at the bank, sign the voucher. Idempotent by request id."""
        signed = open_document(raw, HoldRequest)
        req = signed.doc
        row = self.ctx.db.one("SELECT public_key FROM shoppers WHERE shopper = ?", [req.shopper])
        if row is None:
            raise Unauthorized(f"no shopper {req.shopper} is enrolled", code="unknown_shopper")
        verify(signed, bytes(row["public_key"]), "hold request")
        sha = hashlib.sha256(raw).hexdigest()
        done = self._placed(req.request.hex(), sha)
        if done is not None:
            return done
        return self._place_new(req, req.request.hex(), sha)

    def _placed(self, request_hex: str, sha: str) -> tuple[int, str] | None:
        """The answer already given to this request, or None if it was never placed (or failed)."""
        done = self.ctx.db.one("SELECT * FROM holds WHERE request = ? AND state != 'failed'", [request_hex])
        if done is None:
            return None
        if done["request_sha"] != sha:
            raise Conflict(f"hold request {request_hex} was made with another body", code="request_conflict")
        if done["state"] == "placing":
            raise BankUnavailable("this hold is still being placed; ask again", code="hold_in_progress")
        return done["status"], done["answer"]

    def _place_new(self, req: HoldRequest, request_hex: str, sha: str) -> tuple[int, str]:
        config = self.ctx.config
        now = self.ctx.now()
        if req.store != config.store_id:
            raise Forbidden(f"this is the payment system of store {config.store_id}", code="wrong_store")
        if req.currency != config.currency:
            raise Unprocessable(f"this store charges in {config.currency}", code="wrong_currency")
        if abs(req.at - now) > config.request_skew_s:
            raise Unprocessable(
                f"request made at {req.at}, now is {now}: more than {config.request_skew_s}s apart",
                code="stale_request",
            )
        hold_id = os.urandom(16)
        hold_hex = hold_id.hex()
        with self.ctx.db.tx() as db:
            shopper = db.one(f"SELECT * FROM shoppers WHERE shopper = ?{db.for_update}", [req.shopper])
            denied = db.one("SELECT 1 FROM deny WHERE kind = 'shopper' AND key = ?", [req.shopper])
            if shopper["debt"] or denied:
                raise Forbidden(
                    f"shopper {req.shopper} owes {shopper['debt']}: pay or top up first",
                    code="shopper_denied",
                )
            stored_value = max(0, min(req.estimate, shopper["balance"] - shopper["reserved"]))
            bank = req.estimate - stored_value
            if bank and not shopper["bank_account"]:
                raise Declined(
                    f"stored value covers {stored_value} of {req.estimate} and no bank account is bound",
                    code="insufficient_funds",
                )
            placed = db.execute(
                "INSERT INTO holds (hold, request, request_sha, shopper, currency, estimate, stored_value,"
                " bank, state, reason, issued) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'placing', 'placing', ?)"
                " ON CONFLICT (request) WHERE state != 'failed' DO NOTHING",
                [
                    hold_hex,
                    request_hex,
                    sha,
                    req.shopper,
                    req.currency,
                    req.estimate,
                    stored_value,
                    bank,
                    now,
                ],
            )
            if placed and stored_value:
                db.execute(
                    "UPDATE shoppers SET reserved = reserved + ? WHERE shopper = ?",
                    [stored_value, req.shopper],
                )
                entry(db, now, "sv_reserve", stored_value, shopper=req.shopper, hold=hold_hex)
        if not placed:  # the same request, placed meanwhile by another thread or process
            return self._placed(request_hex, sha) or (503, "")
        if bank:
            try:
                self.ctx.bank.place_hold(hold_hex, shopper["bank_account"], bank, req.currency)
            except (BankDeclined, BankUnavailable) as exc:
                self.fail(hold_hex, exc)
                raise
        expires = now + config.hold_ttl_s
        voucher = sign(
            HoldVoucher(
                v=VERSION,
                hold=hold_id,
                shopper=req.shopper,
                shopper_key=bytes(shopper["public_key"]),
                store=config.store_id,
                currency=req.currency,
                amount=req.estimate,
                stored_value=stored_value,
                bank=bank,
                issued=now,
                expires=expires,
            ),
            self.ctx.key,
        ).encode()
        answer = to_json(
            {
                "hold": hold_hex,
                "voucher": b64(voucher),
                "amount": req.estimate,
                "stored_value": stored_value,
                "bank": bank,
                "currency": req.currency,
                "expires": expires,
            }
        )
        with self.ctx.db.tx() as db:
            opened = db.execute(
                "UPDATE holds SET state = 'open', reason = 'awaiting_charge', voucher = ?, status = 201,"
                " answer = ?, expires = ? WHERE hold = ? AND state = 'placing'",
                [voucher, answer, expires, hold_hex],
            )
            if not opened:
                raise BankUnavailable("the hold timed out while being placed; ask again", code="interrupted")
            if bank:
                entry(db, now, "bank_hold", bank, shopper=req.shopper, hold=hold_hex)
        return 201, answer

    def fail(self, hold_hex: str, exc: PaymentsError) -> None:
        """Undo a hold that could not be placed: give back the stored value; ask the bank to forget it."""
        cleanup = 0
        if isinstance(exc, BankUnavailable):  # the bank may have placed it and the answer got lost
            try:
                self.ctx.bank.release(hold_hex)
            except PaymentsError:
                cleanup = 1
        now = self.ctx.now()
        with self.ctx.db.tx() as db:
            hold = db.one(f"SELECT * FROM holds WHERE hold = ?{db.for_update}", [hold_hex])
            if hold["state"] != "placing":
                return
            unreserve(db, now, hold["shopper"], hold_hex, hold["stored_value"])
            db.execute(
                "UPDATE holds SET state = 'failed', reason = ?, sv_released = stored_value, closed = ?,"
                " bank_cleanup = ? WHERE hold = ?",
                [exc.code, now, cleanup, hold_hex],
            )

    def view(self, hold_hex: str) -> dict[str, Any]:
        row = self.ctx.db.one("SELECT * FROM holds WHERE hold = ?", [hold_hex.lower()])
        if row is None or row["state"] == "failed":
            raise NotFound(f"no hold {hold_hex}")
        return {
            "hold": row["hold"],
            "shopper": row["shopper"],
            "state": row["state"],
            "reason": row["reason"],
            "currency": row["currency"],
            "amount": row["stored_value"] + row["bank"],
            "stored_value": row["stored_value"],
            "bank": row["bank"],
            "expires": row["expires"],
            "charge": row["charge"],
            "captured": row["sv_captured"] + row["bank_captured"],
            "released": row["sv_released"] + row["bank_released"],
        }

    # -- the end of a hold ----------------------------------------------------------------------------

    def expire(self, hold_hex: str, now: int) -> bool:
        """A hold no charge used, past its expiry and the grace time: give everything back."""
        with self.ctx.db.tx() as db:
            hold = db.one(f"SELECT * FROM holds WHERE hold = ?{db.for_update}", [hold_hex])
            if hold["state"] != "open" or hold["charge"] is not None:
                return False
            unreserve(db, now, hold["shopper"], hold_hex, hold["stored_value"])
            db.execute(
                "UPDATE holds SET state = 'releasing', reason = 'bank_release_pending',"
                " sv_released = stored_value WHERE hold = ?",
                [hold_hex],
            )
        self.release(hold_hex)
        return True

    def release(self, hold_hex: str) -> bool:
        """Give back what a hold still holds at the bank; False (left for the sweep) if the bank is down."""
        hold = self.ctx.db.one("SELECT * FROM holds WHERE hold = ?", [hold_hex])
        if hold["state"] != "releasing":
            return True
        if hold["bank"] - hold["bank_captured"] - hold["bank_released"] > 0:
            try:
                self.ctx.bank.release(hold_hex)
            except (BankUnavailable, BankDeclined):
                with self.ctx.db.tx() as db:
                    db.execute(
                        "UPDATE holds SET bank_cleanup = 1, reason = 'bank_release_pending' WHERE hold = ?",
                        [hold_hex],
                    )
                return False
        now = self.ctx.now()
        with self.ctx.db.tx() as db:
            close_released(db, hold_hex, now)
        return True

    def sweep(self, done: dict[str, int]) -> None:
        """Expired holds, releases owed to the bank, placements cut short (counted into `done`)."""
        config = self.ctx.config
        now = self.ctx.now()
        for row in self.ctx.db.all(
            "SELECT hold FROM holds WHERE state = 'open' AND charge IS NULL AND expires + ? < ?",
            [config.charge_grace_s, now],
        ):
            if self.expire(row["hold"], now):
                done["expired"] += 1
        for row in self.ctx.db.all("SELECT hold, state FROM holds WHERE bank_cleanup = 1"):
            if row["state"] == "releasing":
                ok = self.release(row["hold"])
            else:
                try:
                    self.ctx.bank.release(row["hold"])
                    ok = True
                    with self.ctx.db.tx() as db:
                        db.execute("UPDATE holds SET bank_cleanup = 0 WHERE hold = ?", [row["hold"]])
                except PaymentsError:
                    ok = False
            done["releases" if ok else "errors"] += 1
        for row in self.ctx.db.all(
            "SELECT hold FROM holds WHERE state = 'placing' AND issued < ?", [now - config.placing_timeout_s]
        ):
            self.fail(row["hold"], BankUnavailable("placement interrupted", code="interrupted"))
            done["stuck"] += 1


def close_released(db: Any, hold_hex: str, now: int) -> None:
    """In the caller's transaction: the bank gave back the rest of a `releasing` hold; close it."""
    hold = db.one(f"SELECT * FROM holds WHERE hold = ?{db.for_update}", [hold_hex])
    if hold["state"] != "releasing":
        return
    for journal_line in closing(hold, now):
        db.insert("entries", journal_line)
    db.execute(
        "UPDATE holds SET bank_released = ?, state = 'closed', reason = NULL, bank_cleanup = 0, closed = ?"
        " WHERE hold = ?",
        [hold["bank_released"], now, hold_hex],
    )


def closing(hold: dict[str, Any], now: int) -> list[dict[str, Any]]:
    """A `releasing` hold (as locked) closed in memory, the bank's rest released; the journal line of
    what came back, if anything did. The caller writes both."""
    remaining = hold["bank"] - hold["bank_captured"] - hold["bank_released"]
    hold.update(
        bank_released=hold["bank_released"] + max(remaining, 0),
        state="closed",
        reason=None,
        bank_cleanup=0,
        closed=now,
    )
    if remaining <= 0:
        return []
    return [line(now, "bank_release", remaining, shopper=hold["shopper"], hold=hold["hold"])]
