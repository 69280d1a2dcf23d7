"""The store payment system's behaviour, without HTTP: shoppers, holds, gates, charges, feeds, sweeps.

The HTTP layer (payments/app.py) and the command line (payments/cli.py) are thin shells around
`PaymentSystem`. Money moves only inside database transactions that also write the journal, and a bank call
is never made inside a transaction: a charge records how far it got (state `capture_pending`, then
`releasing`, then `settled`), so a crash or a bank outage between two steps is finished by the next attempt
of the same charge, or by the sweep, and never done twice.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate.catalog import CatalogError, PriceChange
from gate.errors import DecodeError, SignatureError
from gate.protocol import encoding
from gate.protocol.documents import (
    MAX_AMOUNT,
    VERSION,
    Charge,
    D,
    DeductionNotice,
    HoldRequest,
    HoldVoucher,
    Signed,
    open_signed,
    sign,
)
from gate.protocol.feed import MAX_CONSUMED, MAX_GATES, MAX_PRICES, GateFeed, GateKey, PriceEntry
from gate.protocol.keys import SigningKey, TrustedKeys, check_public_key, key_id
from payments.bank import BankConnector, Capture, Evidence
from payments.db import Store, read_settings, rows
from payments.errors import (
    BadRequest,
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

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/-]{0,63}")
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_BANK_REF = re.compile(r"[^A-Za-z0-9._-]")
FEED_PAGE_BYTES = 56_000  # under the protocol's 64 KiB document limit, with room for the envelope
FEED_PAGE_ROWS = 5000


@dataclass(frozen=True, kw_only=True)
class PaymentsConfig:
    """Everything the payment system needs; create_app(config) and the `run` command build one."""

    database: str | Path
    store_id: str
    currency: str
    key: SigningKey | None = None
    bank: BankConnector | None = None
    admin_token: str | None = None
    former_public_keys: tuple[bytes, ...] = ()
    hold_ttl_s: int = 4 * 3600
    charge_grace_s: int = 3 * 86400
    request_skew_s: int = 300
    placing_timeout_s: int = 120
    clock: Callable[[], float] = field(default=time.time)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(value: Any, what: str) -> bytes:
    """Standard padded base64 text to bytes, or BadRequest naming the field."""
    if not isinstance(value, str):
        raise BadRequest(f"{what} must be base64 text", code="bad_request")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise BadRequest(f"{what} is not standard padded base64: {exc}", code="bad_base64") from exc


class KeyedLocks:
    """One lock per key (a charge id, a hold id), created on demand and dropped when nobody holds it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, list[Any]] = {}

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[key]


class PaymentSystem:
    """The payment system of one store. Thread-safe; one instance per process and database."""

    def __init__(self, config: PaymentsConfig) -> None:
        self.config = config
        self.store = Store(config.database)
        self._check_settings()
        self.clock = config.clock
        self._locks = KeyedLocks()
        own = [config.key.public_key] if config.key else []
        self.trusted = TrustedKeys([*own, *config.former_public_keys])

    def _check_settings(self) -> None:
        """A database belongs to one store and one currency, fixed when it is created."""
        wanted = {"store_id": self.config.store_id, "currency": self.config.currency}
        with self.store.tx() as db:
            found = read_settings(db)
            for name, value in wanted.items():
                if name not in found:
                    _insert(db, "settings", {"name": name, "value": value})
        wrong = [(n, found[n], v) for n, v in wanted.items() if n in found and found[n] != v]
        if wrong:
            self.store.close()
            name, have, value = wrong[0]
            raise PaymentsError(
                f"{self.config.database}: this database belongs to {name} {have!r}, not {value!r}",
                code="wrong_database",
            )

    def close(self) -> None:
        self.store.close()
        if self.config.bank is not None:
            self.config.bank.close()

    def now(self) -> int:
        return int(self.clock())

    @property
    def key(self) -> SigningKey:
        if self.config.key is None:
            raise PaymentsError("this payment system was started without its signing key")
        return self.config.key

    @property
    def bank(self) -> BankConnector:
        if self.config.bank is None:
            raise BankUnavailable("this payment system was started without a bank connector")
        return self.config.bank

    # -- shoppers -------------------------------------------------------------------------------------

    def enrol_shopper(
        self, shopper: str, public_key: bytes, bank_account: str | None
    ) -> tuple[bool, dict[str, Any]]:
        """Enrol a shopper with their phone's key; the same enrolment again is a no-op (False)."""
        _check(_NAME, shopper, "shopper")
        if bank_account is not None:
            _check(_ACCOUNT, bank_account, "bank_account")
        try:
            check_public_key(public_key)
        except SignatureError as exc:
            raise BadRequest(f"public_key: {exc}", code="bad_key") from exc
        with self.store.tx() as db:
            row = _one(db, "select * from shoppers where shopper = ?", [shopper])
            if row is not None:
                if row["public_key"] != public_key or row["bank_account"] != bank_account:
                    raise Conflict(
                        f"shopper {shopper} is enrolled with another key or account", code="enrolled"
                    )
                return False, self._shopper_view(db, shopper)
            _insert(
                db,
                "shoppers",
                {
                    "shopper": shopper,
                    "public_key": public_key,
                    "key_id": key_id(public_key),
                    "bank_account": bank_account,
                    "currency": self.config.currency,
                    "balance": 0,
                    "reserved": 0,
                    "debt": 0,
                    "created": self.now(),
                },
            )
            return True, self._shopper_view(db, shopper)

    def shopper(self, shopper: str) -> dict[str, Any]:
        with self.store.read() as db:
            return self._shopper_view(db, shopper)

    def _shopper_view(self, db: Any, shopper: str) -> dict[str, Any]:
        row = _one(db, "select * from shoppers where shopper = ?", [shopper])
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
            "denied": _one(db, "select 1 from deny where kind = 'shopper' and key = ?", [shopper])
            is not None,
        }

    def top_up(self, shopper: str, amount: int, reference: str) -> tuple[bool, dict[str, Any]]:
        """Add stored value; it pays the shopper's debts first. Idempotent by reference."""
        _check(_REFERENCE, reference, "reference")
        if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= MAX_AMOUNT:
            raise BadRequest(f"amount must be an integer 1..{MAX_AMOUNT} (minor units)", code="bad_amount")
        now = self.now()
        with self.store.tx() as db:
            done = _one(db, "select * from top_ups where reference = ?", [reference])
            if done is not None:
                if (done["shopper"], done["amount"]) != (shopper, amount):
                    raise Conflict(f"top-up {reference} was made with another shopper or amount")
                return False, {**self._shopper_view(db, shopper), "debt_repaid": done["debt_repaid"]}
            row = _one(db, "select * from shoppers where shopper = ?", [shopper])
            if row is None:
                raise NotFound(f"no shopper {shopper}")
            repay = min(amount, row["debt"])
            left = repay
            for debt in rows(
                db,
                "select * from debts where shopper = ? and paid is null order by created, charge",
                [shopper],
            ):
                if left == 0:
                    break
                part = min(left, debt["amount"] - debt["repaid"])
                left -= part
                paid = now if debt["repaid"] + part == debt["amount"] else None
                db.execute(
                    "update debts set repaid = repaid + ?, paid = ? where charge = ?",
                    [part, paid, debt["charge"]],
                )
            db.execute(
                "update shoppers set balance = balance + ?, debt = debt - ? where shopper = ?",
                [amount - repay, repay, shopper],
            )
            _insert(
                db,
                "top_ups",
                {
                    "reference": reference,
                    "shopper": shopper,
                    "amount": amount,
                    "debt_repaid": repay,
                    "at": now,
                },
            )
            _entry(db, now, "topup", amount, shopper=shopper, ref=reference)
            if repay:
                _entry(db, now, "debt_repay", repay, shopper=shopper, ref=reference)
            if repay and row["debt"] == repay:
                self._allow(db, shopper, now)
            return True, {**self._shopper_view(db, shopper), "debt_repaid": repay}

    # -- gates ----------------------------------------------------------------------------------------

    def enrol_gate(self, gate: str, public_key: bytes) -> tuple[bool, dict[str, Any]]:
        _check(_NAME, gate, "gate")
        try:
            check_public_key(public_key)
        except SignatureError as exc:
            raise BadRequest(f"public_key: {exc}", code="bad_key") from exc
        kid = key_id(public_key)
        with self.store.tx() as db:
            row = _one(db, "select * from gates where gate = ?", [gate])
            if row is not None and row["public_key"] == public_key and row["active"]:
                return False, _gate_view(row)
            other = _one(db, "select gate from gates where key_id = ? and gate != ?", [kid, gate])
            if other is not None:
                raise Conflict(f"this key is already enrolled for gate {other['gate']}", code="enrolled")
            active = _one(db, "select count(*) as n from gates where active = 1 and gate != ?", [gate])["n"]
            if active >= MAX_GATES:
                raise Conflict(
                    f"the store has {active} active gates and the feed lists at most {MAX_GATES}: "
                    "revoke one first",
                    code="too_many_gates",
                )
            db["gates"].upsert(
                {
                    "gate": gate,
                    "public_key": public_key,
                    "key_id": kid,
                    "active": 1,
                    "enrolled": self.now(),
                    "revoked": None,
                },
                pk="gate",
            )
            return True, _gate_view(_one(db, "select * from gates where gate = ?", [gate]))

    def revoke_gate(self, gate: str) -> dict[str, Any]:
        with self.store.tx() as db:
            if _one(db, "select 1 from gates where gate = ?", [gate]) is None:
                raise NotFound(f"no gate {gate}")
            db.execute(
                "update gates set active = 0, revoked = coalesce(revoked, ?) where gate = ?",
                [self.now(), gate],
            )
            return _gate_view(_one(db, "select * from gates where gate = ?", [gate]))

    def gates(self) -> list[dict[str, Any]]:
        return [_gate_view(r) for r in self.store.all("select * from gates order by gate")]

    # -- catalog --------------------------------------------------------------------------------------

    def set_prices(self, items: list[dict[str, Any]]) -> int:
        """Record price changes; each becomes a feed entry. Returns the feed version after them."""
        if not isinstance(items, list) or not items:
            raise BadRequest("items must be a non-empty list", code="bad_request")
        entries = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise BadRequest(f"items[{i}] must be an object", code="bad_request")
            item = {"currency": self.config.currency, "valid_from": self.now(), **item}
            try:
                entry = PriceEntry.from_map(item, f"items[{i}]")
                change = PriceChange(**entry.to_map()).checked(f"items[{i}]")
            except (DecodeError, CatalogError) as exc:
                raise BadRequest(str(exc), code="bad_price") from exc
            entries.append(dataclasses.replace(entry, code=change.code))
            if entries[-1].currency != self.config.currency:
                raise BadRequest(f"items[{i}].currency is not {self.config.currency}", code="bad_price")
        with self.store.tx() as db:
            for entry in entries:
                version = _feed(db, "price", entry.code, self.now())
                _insert(db, "prices", {"version": version, **entry.to_map()})
            return _latest(db)

    # -- holds (claims 3 and 9) -----------------------------------------------------------------------

    def place_hold(self, raw: bytes) -> tuple[int, str]:
        """Reserve stored value, hold the rest at the bank, sign the voucher. Idempotent by request id."""
        signed = _open(raw, HoldRequest)
        req = signed.doc
        row = self.store.one("select * from shoppers where shopper = ?", [req.shopper])
        if row is None:
            raise Unauthorized(f"no shopper {req.shopper} is enrolled", code="unknown_shopper")
        _verify(signed, row["public_key"], "hold request")
        sha = hashlib.sha256(raw).hexdigest()
        request_hex = req.request.hex()
        with self._locks.hold("request:" + request_hex):
            done = self.store.one(
                "select * from holds where request = ? and state != 'failed'", [request_hex]
            )
            if done is not None:
                if done["request_sha"] != sha:
                    raise Conflict(
                        f"hold request {request_hex} was made with another body", code="request_conflict"
                    )
                if done["state"] == "placing":
                    raise BankUnavailable(
                        "this hold is still being placed; ask again", code="hold_in_progress"
                    )
                return done["status"], done["answer"]
            return self._place_new_hold(req, request_hex, sha)

    def _place_new_hold(self, req: HoldRequest, request_hex: str, sha: str) -> tuple[int, str]:
        now = self.now()
        if req.store != self.config.store_id:
            raise Forbidden(f"this is the payment system of store {self.config.store_id}", code="wrong_store")
        if req.currency != self.config.currency:
            raise Unprocessable(f"this store charges in {self.config.currency}", code="wrong_currency")
        if abs(req.at - now) > self.config.request_skew_s:
            raise Unprocessable(
                f"request made at {req.at}, now is {now}: more than {self.config.request_skew_s}s apart",
                code="stale_request",
            )
        hold_id = os.urandom(16)
        hold_hex = hold_id.hex()
        with self.store.tx() as db:
            shopper = _one(db, "select * from shoppers where shopper = ?", [req.shopper])
            denied = _one(db, "select 1 from deny where kind = 'shopper' and key = ?", [req.shopper])
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
            _insert(
                db,
                "holds",
                {
                    "hold": hold_hex,
                    "request": request_hex,
                    "request_sha": sha,
                    "shopper": req.shopper,
                    "currency": req.currency,
                    "estimate": req.estimate,
                    "stored_value": stored_value,
                    "bank": bank,
                    "state": "placing",
                    "reason": "placing",
                    "issued": now,
                },
            )
            if stored_value:
                db.execute(
                    "update shoppers set reserved = reserved + ? where shopper = ?",
                    [stored_value, req.shopper],
                )
                _entry(db, now, "sv_reserve", stored_value, shopper=req.shopper, hold=hold_hex)
        if bank:
            try:
                self.bank.place_hold(hold_hex, shopper["bank_account"], bank, req.currency)
            except (BankDeclined, BankUnavailable) as exc:
                self._fail_hold(hold_hex, exc)
                raise
        voucher = sign(
            HoldVoucher(
                v=VERSION,
                hold=hold_id,
                shopper=req.shopper,
                shopper_key=shopper["public_key"],
                store=self.config.store_id,
                currency=req.currency,
                amount=req.estimate,
                stored_value=stored_value,
                bank=bank,
                issued=now,
                expires=now + self.config.hold_ttl_s,
            ),
            self.key,
        ).encode()
        answer = _json(
            {
                "hold": hold_hex,
                "voucher": b64(voucher),
                "amount": req.estimate,
                "stored_value": stored_value,
                "bank": bank,
                "currency": req.currency,
                "expires": now + self.config.hold_ttl_s,
            }
        )
        with self.store.tx() as db:
            opened = db.execute(
                "update holds set state = 'open', reason = 'awaiting_charge', voucher = ?, status = 201,"
                " answer = ?, expires = ? where hold = ? and state = 'placing'",
                [voucher, answer, now + self.config.hold_ttl_s, hold_hex],
            ).rowcount
            if not opened:
                raise BankUnavailable("the hold timed out while being placed; ask again", code="interrupted")
            if bank:
                _entry(db, now, "bank_hold", bank, shopper=req.shopper, hold=hold_hex)
        return 201, answer

    def _fail_hold(self, hold_hex: str, exc: PaymentsError) -> None:
        """Undo a hold that could not be placed: give back the stored value; ask the bank to forget it."""
        cleanup = 0
        if isinstance(exc, BankUnavailable):  # the bank may have placed it and the answer got lost
            try:
                self.bank.release(hold_hex)
            except PaymentsError:
                cleanup = 1
        now = self.now()
        with self.store.tx() as db:
            hold = _one(db, "select * from holds where hold = ?", [hold_hex])
            if hold["state"] != "placing":
                return
            _unreserve(db, now, hold["shopper"], hold_hex, hold["stored_value"])
            db.execute(
                "update holds set state = 'failed', reason = ?, sv_released = stored_value, closed = ?,"
                " bank_cleanup = ? where hold = ?",
                [exc.code, now, cleanup, hold_hex],
            )

    def hold(self, hold_hex: str) -> dict[str, Any]:
        row = self.store.one("select * from holds where hold = ?", [hold_hex.lower()])
        if row is None or row["state"] == "failed":
            raise NotFound(f"no hold {hold_hex}")
        return _hold_view(row)

    # -- charges (claims 5, 7, 8) ---------------------------------------------------------------------

    def take_charge(self, raw: bytes) -> tuple[int, str]:
        """Take the money for a signed Charge from an enrolled gate. Idempotent by charge id, for ever."""
        signed = _open(raw, Charge)
        self._authenticate_gate(signed)
        charge = signed.doc
        charge_hex = charge.charge.hex()
        sha = hashlib.sha256(raw).hexdigest()
        with self._locks.hold("charge:" + charge_hex):
            row = self.store.one("select * from charges where charge = ?", [charge_hex])
            if row is not None:
                if row["body_sha"] != sha:
                    raise Conflict(
                        f"charge {charge_hex} was already received with another body; nothing was moved",
                        code="charge_conflict",
                    )
                if row["state"] == "settled":
                    return 200, row["answer"]
                with self._locks.hold("hold:" + row["hold"]):
                    return self._advance(charge_hex)
            hold_hex = self._check_charge(charge)
            with self._locks.hold("hold:" + hold_hex):
                self._accept(charge, raw, sha)
                return self._advance(charge_hex)

    def _authenticate_gate(self, signed: Signed[Charge]) -> dict[str, Any]:
        gate = self.store.one("select * from gates where key_id = ?", [signed.kid])
        if gate is None:
            raise Unauthorized(f"key {signed.kid} is not an enrolled gate key", code="unknown_key")
        _verify(signed, gate["public_key"], "charge")
        if not gate["active"]:
            raise Forbidden(f"gate {gate['gate']} is revoked", code="gate_revoked")
        if signed.doc.gate != gate["gate"]:
            raise Forbidden(
                f"charge names gate {signed.doc.gate} but is signed by gate {gate['gate']}",
                code="gate_mismatch",
            )
        if signed.doc.store != self.config.store_id:
            raise Forbidden(f"this is the payment system of store {self.config.store_id}", code="wrong_store")
        return gate

    def _check_charge(self, charge: Charge) -> str:
        """Re-check what the gate checked offline: every inner signature, the bindings, the total."""

        def bad(message: str) -> Unprocessable:
            return Unprocessable(message, code="invalid_charge")

        voucher_env, list_env, answer_env = charge.voucher, charge.list, charge.answer
        if voucher_env.kid not in self.trusted:
            raise bad(f"the voucher is signed by key {voucher_env.kid}, not by this payment system")
        try:
            voucher = voucher_env.verify_with(self.trusted.get(voucher_env.kid))
            shopping_list = list_env.verify_with(voucher.shopper_key)
            answer = answer_env.verify_with(voucher.shopper_key)
        except SignatureError as exc:
            raise bad(f"an inner signature does not verify: {exc}") from exc
        if voucher.store != self.config.store_id or shopping_list.store != self.config.store_id:
            raise bad("the voucher or the list is for another store")
        if not voucher.currency == shopping_list.currency == charge.currency == self.config.currency:
            raise bad("currencies of voucher, list and charge differ")
        if shopping_list.hold != voucher.hold:
            raise bad("the list is not made against this voucher's hold")
        if sum(item.line_total for item in shopping_list.items) != shopping_list.total:
            raise bad("the list total is not the sum of its lines")
        if answer.list_hash != shopping_list.hash():
            raise bad("the exit answer is not for this list")
        if (
            not answer.nonce == charge.challenge.nonce
            or not answer.gate == charge.challenge.gate == charge.gate
        ):
            raise bad("the exit answer is not for this gate's challenge")
        hold_hex = voucher.hold.hex()
        hold = self.store.one("select * from holds where hold = ?", [hold_hex])
        if hold is None or hold["voucher"] != voucher_env.encode():
            raise bad(f"hold {hold_hex} was not issued with this voucher")
        return hold_hex

    def _accept(self, charge: Charge, raw: bytes, sha: str) -> None:
        """Record the charge and take the stored-value part, in one transaction (step one of three)."""
        now = self.now()
        charge_hex = charge.charge.hex()
        hold_hex = charge.voucher.doc.hold.hex()
        amount = charge.amount
        with self.store.tx() as db:
            hold = _one(db, "select * from holds where hold = ?", [hold_hex])
            shopper = _one(db, "select * from shoppers where shopper = ?", [hold["shopper"]])
            if hold["state"] == "open" and hold["charge"] is None:
                reserved = hold["stored_value"]
                stored_value = min(amount, reserved)
                bank = min(amount - stored_value, hold["bank"])
                from_hold = 1
                if reserved:
                    _entry(db, now, "sv_unreserve", reserved, shopper=shopper["shopper"], hold=hold_hex)
                db.execute(
                    "update holds set charge = ?, sv_captured = ?, sv_released = ?, state = 'releasing',"
                    " reason = ? where hold = ?",
                    [
                        charge_hex,
                        stored_value,
                        reserved - stored_value,
                        "capture_pending" if bank else "bank_release_pending",
                        hold_hex,
                    ],
                )
            else:  # the hold was used by another charge or released: only free stored value is left
                reserved = 0
                stored_value = max(0, min(amount, shopper["balance"] - shopper["reserved"]))
                bank = 0
                from_hold = 0
            db.execute(
                "update shoppers set balance = balance - ?, reserved = reserved - ? where shopper = ?",
                [stored_value, reserved, shopper["shopper"]],
            )
            if stored_value:
                _entry(
                    db,
                    now,
                    "sv_debit",
                    stored_value,
                    shopper=shopper["shopper"],
                    hold=hold_hex,
                    charge=charge_hex,
                )
            _insert(
                db,
                "charges",
                {
                    "charge": charge_hex,
                    "body": raw,
                    "body_sha": sha,
                    "gate": charge.gate,
                    "hold": hold_hex,
                    "shopper": shopper["shopper"],
                    "amount": amount,
                    "currency": charge.currency,
                    "decided": charge.decided,
                    "received": now,
                    "state": "capture_pending" if bank else "releasing",
                    "from_hold": from_hold,
                    "stored_value": stored_value,
                    "bank_planned": bank,
                    "bank": 0,
                    "bank_ref": "",
                    "debt": amount - stored_value - bank,
                    "released": 0,
                },
            )
            if _one(db, "select 1 from feed_log where kind = 'consumed' and key = ?", [hold_hex]) is None:
                _feed(db, "consumed", hold_hex, now)

    def _advance(self, charge_hex: str) -> tuple[int, str]:
        """Take the charge from where it stopped to settled; BankUnavailable leaves it to be resumed.

        The bank calls (capture, then release) come first, outside any transaction; what they did is then
        recorded together with the settlement in one transaction. A crash in between loses nothing: the
        charge is still `capture_pending` and the next attempt calls the bank again with the same
        references, which answers the first capture again instead of taking the money twice.
        """
        row = self.store.one("select * from charges where charge = ?", [charge_hex])
        if row["state"] == "settled":
            return 200, row["answer"]
        hold = self.store.one("select * from holds where hold = ?", [row["hold"]])
        captured: Capture | None = None
        declined = ""
        if row["state"] == "capture_pending":
            signed = open_signed(row["body"], Charge)
            evidence = Evidence(signed.doc.list.encode(), signed.doc.voucher.doc.shopper_key)
            try:
                captured = self.bank.capture(row["hold"], charge_hex, row["bank_planned"], evidence)
            except BankUnavailable as exc:
                with self.store.tx() as db:
                    db.execute(
                        "update charges set last_error = ? where charge = ?", [exc.message, charge_hex]
                    )
                raise
            except BankDeclined as exc:  # the bank part becomes a debt; the hold is released all the same
                declined = exc.message
        taken = min(captured.amount, row["bank_planned"]) if captured else 0
        releasing = bool(row["from_hold"]) and hold["state"] == "releasing"
        remaining = hold["bank"] - (hold["bank_captured"] + taken) - hold["bank_released"] if releasing else 0
        released_at_bank = True
        if remaining > 0:
            try:
                self.bank.release(row["hold"])
            except (BankUnavailable, BankDeclined):
                released_at_bank = False  # the sweep asks again; the charge settles now
        now = self.now()
        with self.store.tx() as db:
            if row["state"] == "capture_pending":
                bank_ref = _BANK_REF.sub("", captured.reference)[:64] if captured else ""
                db.execute(
                    "update charges set state = 'releasing', bank = ?, bank_ref = ?, debt = debt + ?,"
                    " last_error = ? where charge = ?",
                    [taken, bank_ref, row["bank_planned"] - taken, declined or None, charge_hex],
                )
                db.execute(
                    "update holds set bank_captured = bank_captured + ? where hold = ?", [taken, row["hold"]]
                )
                if taken:
                    _entry(
                        db,
                        now,
                        "bank_capture",
                        taken,
                        shopper=row["shopper"],
                        hold=row["hold"],
                        charge=charge_hex,
                    )
            if releasing and released_at_bank:
                if remaining > 0:
                    _entry(db, now, "bank_release", remaining, shopper=row["shopper"], hold=row["hold"])
                db.execute(
                    "update holds set bank_released = bank_released + ?, state = 'closed', reason = null,"
                    " bank_cleanup = 0, closed = ? where hold = ?",
                    [max(remaining, 0), now, row["hold"]],
                )
            elif releasing:
                db.execute(
                    "update holds set bank_cleanup = 1, reason = 'bank_release_pending' where hold = ?",
                    [row["hold"]],
                )
            answer = self._settle(db, charge_hex, now)
        return 200, answer

    def _release_hold(self, hold_hex: str) -> bool:
        """Give back what a hold still holds at the bank; False (left for the sweep) if the bank is down."""
        hold = self.store.one("select * from holds where hold = ?", [hold_hex])
        if hold["state"] != "releasing":
            return True
        remaining = hold["bank"] - hold["bank_captured"] - hold["bank_released"]
        if remaining > 0:
            try:
                self.bank.release(hold_hex)
            except (BankUnavailable, BankDeclined):
                with self.store.tx() as db:
                    db.execute(
                        "update holds set bank_cleanup = 1, reason = 'bank_release_pending' where hold = ?",
                        [hold_hex],
                    )
                return False
        now = self.now()
        with self.store.tx() as db:
            if remaining > 0:
                _entry(db, now, "bank_release", remaining, shopper=hold["shopper"], hold=hold_hex)
            db.execute(
                "update holds set bank_released = bank_released + ?, state = 'closed', reason = null,"
                " bank_cleanup = 0, closed = ? where hold = ?",
                [max(remaining, 0), now, hold_hex],
            )
        return True

    def _settle(self, db: Any, charge_hex: str, now: int) -> str:
        """In the caller's transaction: raise the debt if any, sign the deduction notice, store the answer."""
        row = _one(db, "select * from charges where charge = ?", [charge_hex])
        hold = _one(db, "select * from holds where hold = ?", [row["hold"]])
        released = 0
        if row["from_hold"]:
            released = (hold["stored_value"] - hold["sv_captured"]) + (hold["bank"] - hold["bank_captured"])
        if row["debt"]:
            _insert(
                db,
                "debts",
                {
                    "charge": charge_hex,
                    "shopper": row["shopper"],
                    "hold": row["hold"],
                    "amount": row["debt"],
                    "repaid": 0,
                    "created": now,
                },
            )
            db.execute("update shoppers set debt = debt + ? where shopper = ?", [row["debt"], row["shopper"]])
            _entry(db, now, "debt", row["debt"], shopper=row["shopper"], hold=row["hold"], charge=charge_hex)
            self._deny(db, row["shopper"], row["hold"], now)
        notice = sign(
            DeductionNotice(
                v=VERSION,
                charge=bytes.fromhex(charge_hex),
                hold=bytes.fromhex(row["hold"]),
                shopper=row["shopper"],
                currency=row["currency"],
                total=row["amount"],
                stored_value=row["stored_value"],
                bank=row["bank"],
                bank_ref=row["bank_ref"] or "",
                released=released,
                debt=row["debt"],
                settled=now,
            ),
            self.key,
        ).encode()
        answer = _json(
            {
                "charge": charge_hex,
                "status": "debt" if row["debt"] else "settled",
                "total": row["amount"],
                "stored_value": row["stored_value"],
                "bank": row["bank"],
                "debt": row["debt"],
                "released": released,
                "bank_ref": row["bank_ref"] or "",
                "notice": b64(notice),
            }
        )
        db.execute(
            "update charges set state = 'settled', released = ?, notice = ?, answer = ?, settled = ?"
            " where charge = ?",
            [released, notice, answer, now, charge_hex],
        )
        return answer

    def charge(self, charge_hex: str) -> dict[str, Any]:
        row = self.store.one("select * from charges where charge = ?", [charge_hex.lower()])
        if row is None:
            raise NotFound(f"no charge {charge_hex}")
        view = {k: row[k] for k in ("charge", "gate", "hold", "shopper", "amount", "currency", "state")}
        view.update(
            {k: row[k] for k in ("stored_value", "bank", "debt", "released", "bank_ref", "last_error")},
            received=row["received"],
            settled=row["settled"],
        )
        return view

    def notice(self, charge_hex: str) -> dict[str, Any]:
        """The signed deduction notice for the phone; the random charge id is the capability."""
        row = self.store.one("select state, answer from charges where charge = ?", [charge_hex.lower()])
        if row is None:
            raise NotFound(f"no charge {charge_hex} has reached the payment system yet")
        if row["state"] != "settled":
            raise NotFound(f"charge {charge_hex} is received and not yet settled", code="pending")
        return json.loads(row["answer"])

    # -- deny list and feed ---------------------------------------------------------------------------

    def _deny(self, db: Any, shopper: str, hold_hex: str, now: int) -> None:
        for kind, key in (("shopper", shopper), ("hold", hold_hex)):
            if _one(db, "select 1 from deny where kind = ? and key = ?", [kind, key]) is None:
                version = _feed(db, "deny_" + kind, key, now)
                _insert(db, "deny", {"kind": kind, "key": key, "reason": "debt", "since": version})

    def _allow(self, db: Any, shopper: str, now: int) -> None:
        """All of a shopper's debts are paid: take them and their debt holds off the deny list."""
        holds = [r["hold"] for r in rows(db, "select distinct hold from debts where shopper = ?", [shopper])]
        for kind, key in [("shopper", shopper)] + [("hold", h) for h in holds]:
            if _one(db, "select 1 from deny where kind = ? and key = ?", [kind, key]) is not None:
                db.execute("delete from deny where kind = ? and key = ?", [kind, key])
                _feed(db, "allow_" + kind, key, now)

    def feed(self, since: int, nonce: bytes) -> dict[str, Any]:
        """One signed page of changes after `since`; ask again from `version` while version < latest."""
        with self.store.read() as db:
            latest = _latest(db)
            if since > latest:
                raise BadRequest(
                    f"version {since} is ahead of this payment system ({latest}): was the gate's database"
                    " restored from another store?",
                    code="feed_ahead",
                )
            deny_holds = sorted(
                bytes.fromhex(r["key"]) for r in rows(db, "select key from deny where kind = 'hold'")
            )
            deny_shoppers = sorted(r["key"] for r in rows(db, "select key from deny where kind = 'shopper'"))
            gates = [
                GateKey(gate=r["gate"], public_key=r["public_key"])
                for r in rows(db, "select gate, public_key from gates where active = 1 order by gate")
            ]
            budget = FEED_PAGE_BYTES - 20 * len(deny_holds) - 70 * len(deny_shoppers)
            budget -= sum(len(g.encode()) for g in gates)
            if budget < 8_000:
                raise PaymentsError("the deny list is too long for one feed page", code="feed_too_large")
            consumed: list[bytes] = []
            prices: list[PriceEntry] = []
            version = since
            changes = list(
                rows(
                    db,
                    "select f.version, f.kind, f.key, p.name, p.category, p.unit, p.price, p.currency,"
                    " p.valid_from from feed_log f left join prices p on p.version = f.version"
                    " where f.version > ? order by f.version limit ?",
                    [since, FEED_PAGE_ROWS],
                )
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
                version = latest
        feed = GateFeed(
            v=VERSION,
            store=self.config.store_id,
            nonce=nonce,
            since=since,
            version=version,
            latest=latest,
            issued=self.now(),
            deny_holds=tuple(deny_holds),
            deny_shoppers=tuple(deny_shoppers),
            consumed=tuple(consumed),
            prices=tuple(prices),
            gates=tuple(gates),
        )
        return {"feed": b64(sign(feed, self.key).encode()), "version": version, "latest": latest}

    # -- maintenance ----------------------------------------------------------------------------------

    def sweep(self) -> dict[str, int]:
        """Finish what was left half-way: expired holds, pending captures and releases, stuck placements."""
        now = self.now()
        done = {"expired": 0, "charges": 0, "releases": 0, "stuck": 0, "errors": 0}
        for row in self.store.all(
            "select hold from holds where state = 'open' and charge is null and expires + ? < ?",
            [self.config.charge_grace_s, now],
        ):
            with self._locks.hold("hold:" + row["hold"]):
                if self._expire_hold(row["hold"], now):
                    done["expired"] += 1
        for row in self.store.all("select charge, hold from charges where state != 'settled'"):
            with self._locks.hold("charge:" + row["charge"]), self._locks.hold("hold:" + row["hold"]):
                try:
                    self._advance(row["charge"])
                    done["charges"] += 1
                except PaymentsError:
                    done["errors"] += 1
        for row in self.store.all("select hold, state from holds where bank_cleanup = 1"):
            with self._locks.hold("hold:" + row["hold"]):
                if row["state"] == "releasing":
                    ok = self._release_hold(row["hold"])
                else:
                    try:
                        self.bank.release(row["hold"])
                        ok = True
                        with self.store.tx() as db:
                            db.execute("update holds set bank_cleanup = 0 where hold = ?", [row["hold"]])
                    except PaymentsError:
                        ok = False
                done["releases" if ok else "errors"] += 1
        for row in self.store.all(
            "select hold from holds where state = 'placing' and issued < ?",
            [now - self.config.placing_timeout_s],
        ):
            with self._locks.hold("hold:" + row["hold"]):
                self._fail_hold(row["hold"], BankUnavailable("placement interrupted", code="interrupted"))
                done["stuck"] += 1
        return done

    def _expire_hold(self, hold_hex: str, now: int) -> bool:
        with self.store.tx() as db:
            hold = _one(db, "select * from holds where hold = ?", [hold_hex])
            if hold["state"] != "open" or hold["charge"] is not None:
                return False
            _unreserve(db, now, hold["shopper"], hold_hex, hold["stored_value"])
            db.execute(
                "update holds set state = 'releasing', reason = 'bank_release_pending',"
                " sv_released = stored_value where hold = ?",
                [hold_hex],
            )
        self._release_hold(hold_hex)
        return True


# -- helpers ------------------------------------------------------------------------------------------


def _open(raw: bytes, doc_class: type[D]) -> Signed[D]:
    """Parse a signed envelope; a body that is not an envelope at all is 'unsigned' (401)."""
    try:
        value = encoding.decode(raw)
    except DecodeError as exc:
        raise BadRequest(f"not a canonical CBOR document: {exc}", code="malformed_document") from exc
    if not isinstance(value, dict) or set(value) != {"b", "k", "s", "t"}:
        raise Unauthorized(
            f"the body is not a signed envelope (t, k, b, s) holding a {doc_class.TYPE}", code="unsigned"
        )
    try:
        return open_signed(value, doc_class)
    except DecodeError as exc:
        raise BadRequest(str(exc), code="malformed_document") from exc


def _verify(signed: Signed[Any], public_key: bytes, what: str) -> None:
    try:
        signed.verify_with(public_key)
    except SignatureError as exc:
        raise Unauthorized(f"the {what} signature does not verify: {exc}", code="bad_signature") from exc


def _check(pattern: re.Pattern[str], value: Any, what: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadRequest(f"{what}: {str(value)[:80]!r} is not valid", code="bad_request")


def _one(db: Any, sql: str, params: Any) -> dict[str, Any] | None:
    found = rows(db, sql, params)
    return found[0] if found else None


def _insert(db: Any, table: str, row: dict[str, Any]) -> None:
    """One row, by plain SQL (the hot path: sqlite-utils' insert re-reads the table's schema each time)."""
    columns = ", ".join(row)
    marks = ", ".join("?" * len(row))
    db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))


def _unreserve(db: Any, now: int, shopper: str, hold_hex: str, amount: int) -> None:
    """Give a hold's stored-value reservation back to the shopper's balance, on the journal."""
    if amount:
        db.execute("update shoppers set reserved = reserved - ? where shopper = ?", [amount, shopper])
        _entry(db, now, "sv_unreserve", amount, shopper=shopper, hold=hold_hex)


def _entry(db: Any, at: int, kind: str, amount: int, **refs: str | None) -> None:
    _insert(db, "entries", {"at": at, "kind": kind, "amount": amount, **refs})


def _feed(db: Any, kind: str, key: str, at: int) -> int:
    return db.execute("insert into feed_log (kind, key, at) values (?, ?, ?)", [kind, key, at]).lastrowid


def _latest(db: Any) -> int:
    return _one(db, "select coalesce(max(version), 0) as v from feed_log", [])["v"]


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _gate_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "gate": row["gate"],
        "key_id": row["key_id"],
        "public_key": row["public_key"].hex(),
        "active": bool(row["active"]),
        "enrolled": row["enrolled"],
        "revoked": row["revoked"],
    }


def _hold_view(row: dict[str, Any]) -> dict[str, Any]:
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
