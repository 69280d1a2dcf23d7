"""Intake: a gate's charges verified and recorded durably, in batches, before any money moves.

`receive` takes up to `max_batch` signed charges, checks each as the gate checked it offline (every
signature, the bindings, the total, the time) and records all the good ones in one transaction, then
answers per charge: `accepted` (recorded; a settlement worker takes the money later), `settled` (a
charge seen before and already settled: its notice), or `refused` with a reason signed by the payment
system (a `charge-refusal` over the exact body), which is the only answer that makes a gate stop sending
a charge. Idempotent by charge id for ever: the same bytes get the same standing, other bytes under the
same id are refused as `charge_conflict` and move nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from gate.errors import SignatureError
from gate.protocol.documents import CONFLICT, VERSION, Charge, ChargeRefusal, Signed, sign
from payments.context import Context
from payments.db import select_in
from payments.errors import BadRequest, Conflict, Forbidden, PaymentsError, Unauthorized, Unprocessable
from payments.feed import add_changes
from payments.wire import b64, open_document

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Received:
    """The standing of one charge after intake."""

    charge: str  # hex id ("" when the body did not decode)
    status: str  # accepted, settled or refused
    error: PaymentsError | None = None
    refusal: bytes = b""
    answer: str = ""  # the stored settlement answer (JSON text) when settled

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"charge": self.charge, "status": self.status}
        if self.error is not None:
            out.update(error=self.error.code, message=self.error.message, refusal=b64(self.refusal))
        if self.answer:
            out["notice"] = _notice_of(self.answer)
        return out


class Intake:
    """Verifies and records charges; see the module docstring."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def refusal(
        self, raw: bytes, error: PaymentsError, *, won: bytes | None = None, won_gate: str | None = None
    ) -> bytes:
        """The signed reason a charge body is refused, bound to its exact bytes; a conflict names the body
        that won (`won`, its SHA-256) and its gate, so the losing gate records a settled fact."""
        message = "".join(c if " " <= c <= "~" else "?" for c in error.message)[:300]
        doc = ChargeRefusal(
            v=VERSION,
            store=self.ctx.config.store_id,
            body_hash=hashlib.sha256(raw).digest(),
            code=error.code,
            message=message,
            at=self.ctx.now(),
            won=won,
            won_gate=won_gate,
        )
        return sign(doc, self.ctx.key).encode()

    def receive(self, raws: list[bytes]) -> list[Received]:
        """Check every charge, record the good ones in one transaction, answer each in the order sent."""
        if len(raws) > self.ctx.config.max_batch:
            raise BadRequest(
                f"at most {self.ctx.config.max_batch} charges in one request", code="batch_too_large"
            )
        gates = {r["key_id"]: r for r in self.ctx.db.all("SELECT * FROM gates")}
        opened = [_caught(open_document, raw, Charge) for raw in raws]
        authenticated = _on_two_threads(
            lambda s: s if isinstance(s, PaymentsError) else _caught(self._authenticate, s, gates), opened
        )
        parsed = list(zip(raws, authenticated, strict=True))
        ids = sorted({s.doc.charge.hex() for _, s in parsed if not isinstance(s, PaymentsError)})
        holds_of = sorted(
            {s.doc.voucher.doc.hold.hex() for _, s in parsed if not isinstance(s, PaymentsError)}
        )
        known = {
            r["charge"]: r
            for r in select_in(
                self.ctx.db, "SELECT charge, body_sha, gate, state, answer FROM charges", "charge", ids
            )
        }
        vouchers = {
            r["hold"]: bytes(r["voucher"]) if r["voucher"] is not None else None
            for r in select_in(self.ctx.db, "SELECT hold, voucher FROM holds", "hold", holds_of)
        }
        # Every charge not seen before, by its place in the batch (two bodies may share an id).
        checking = {
            n: s.doc
            for n, (_, s) in enumerate(parsed)
            if not isinstance(s, PaymentsError) and s.doc.charge.hex() not in known
        }
        errors = _on_two_threads(lambda c: _caught(self._check, c, vouchers), list(checking.values()))
        checked = dict(zip(checking, errors, strict=True))
        results: list[Received | None] = []
        new: dict[str, tuple[bytes, str, Charge]] = {}
        for n, (raw, signed) in enumerate(parsed):
            if isinstance(signed, PaymentsError):
                results.append(Received("", "refused", signed, self.refusal(raw, signed)))
                continue
            charge_hex = signed.doc.charge.hex()
            sha = hashlib.sha256(raw).hexdigest()
            seen = known.get(charge_hex)
            if seen is None and charge_hex in new:
                seen = {
                    "body_sha": new[charge_hex][1],
                    "gate": new[charge_hex][2].gate,
                    "state": "received",
                    "answer": None,
                }
            if seen is not None:
                results.append(self._standing(raw, charge_hex, sha, seen))
                continue
            error = checked[n]
            if error is not None:
                results.append(Received(charge_hex, "refused", error, self.refusal(raw, error)))
                continue
            new[charge_hex] = (raw, sha, signed.doc)
            results.append(None)
        recorded = self._record(list(new.values())) if new else {}
        out = []
        for (raw, signed), result in zip(parsed, results, strict=True):
            if result is None:
                assert not isinstance(signed, PaymentsError)
                charge_hex = signed.doc.charge.hex()
                seen = recorded.get(charge_hex)
                sha = hashlib.sha256(raw).hexdigest()
                result = (
                    self._standing(raw, charge_hex, sha, seen) if seen else Received(charge_hex, "accepted")
                )
            out.append(result)
        return out

    def _standing(self, raw: bytes, charge_hex: str, sha: str, seen: dict[str, Any]) -> Received:
        if seen["body_sha"] != sha:
            exc = Conflict(
                f"charge {charge_hex} was already received with another body, from gate {seen['gate']};"
                " this copy moved nothing",
                code=CONFLICT,
            )
            won = bytes.fromhex(seen["body_sha"])
            return Received(
                charge_hex, "refused", exc, self.refusal(raw, exc, won=won, won_gate=seen["gate"])
            )
        if seen["state"] == "settled":
            return Received(charge_hex, "settled", answer=seen["answer"])
        return Received(charge_hex, "accepted")

    def _authenticate(self, signed: Signed[Charge], gates: dict[str, dict[str, Any]]) -> Signed[Charge]:
        gate = gates.get(signed.kid)
        if gate is None:
            raise Unauthorized(f"key {signed.kid} is not an enrolled gate key", code="unknown_key")
        try:
            signed.verify_with(bytes(gate["public_key"]))
        except SignatureError as exc:
            raise Unauthorized(f"the charge signature does not verify: {exc}", code="bad_signature") from exc
        if not gate["active"]:
            raise Forbidden(f"gate {gate['gate']} is revoked", code="gate_revoked")
        if signed.doc.gate != gate["gate"]:
            raise Forbidden(
                f"charge names gate {signed.doc.gate} but is signed by gate {gate['gate']}",
                code="gate_mismatch",
            )
        if signed.doc.store != self.ctx.config.store_id:
            raise Forbidden(
                f"this is the payment system of store {self.ctx.config.store_id}", code="wrong_store"
            )
        return signed

    def _check(self, charge: Charge, vouchers: dict[str, bytes | None]) -> None:
        """Re-check what the gate checked offline: inner signatures, bindings, the total, the time."""

        def bad(message: str, code: str = "invalid_charge") -> Unprocessable:
            return Unprocessable(message, code=code)

        config = self.ctx.config
        voucher_env, list_env, answer_env = charge.voucher, charge.list, charge.answer
        hold_hex = voucher_env.doc.hold.hex()
        if vouchers.get(hold_hex) != voucher_env.encode():
            raise bad(f"hold {hold_hex} was not issued with this voucher")
        # The very bytes this payment system signed and stored for the hold: their signature holds, so
        # checking it again would spend a quarter of intake's time on nothing.
        voucher = voucher_env.doc
        try:
            shopping_list = list_env.verify_with(voucher.shopper_key)
            answer = answer_env.verify_with(voucher.shopper_key)
        except SignatureError as exc:
            raise bad(f"an inner signature does not verify: {exc}") from exc
        if voucher.store != config.store_id or shopping_list.store != config.store_id:
            raise bad("the voucher or the list is for another store")
        if not voucher.currency == shopping_list.currency == charge.currency == config.currency:
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
        skew = config.request_skew_s
        if charge.decided > self.ctx.now() + skew:
            raise bad(
                f"decided at {charge.decided}, more than {skew} s after the payment system's clock"
                f" ({self.ctx.now()})",
                code="decided_in_future",
            )
        if not voucher.issued - skew <= charge.decided <= voucher.expires + skew:
            raise bad(
                f"decided at {charge.decided}, outside the voucher's validity"
                f" {voucher.issued}..{voucher.expires}"
                f" (with {skew} s for clocks)",
                code="voucher_expired",
            )

    def _record(self, charges: list[tuple[bytes, str, Charge]]) -> dict[str, dict[str, Any]]:
        """One transaction for the batch; the rows another process recorded first, to answer from."""
        now = self.ctx.now()
        rows = [
            {
                "charge": c.charge.hex(),
                "body": raw,
                "body_sha": sha,
                "gate": c.gate,
                "hold": c.voucher.doc.hold.hex(),
                "shopper": c.voucher.doc.shopper,
                "amount": c.amount,
                "currency": c.currency,
                "decided": c.decided,
                "received": now,
                "state": "received",
            }
            for raw, sha, c in charges
        ]
        with self.ctx.db.tx() as db:
            # Batches take the feed counter's lock first: the feed stays in commit order (feed.py), and a
            # charge id sent in two batches at once is found by the second, never inserted twice.
            db.execute("UPDATE counters SET value = value WHERE name = 'feed_version'")
            earlier = {
                r["charge"]: r
                for r in select_in(
                    db,
                    "SELECT charge, body_sha, gate, state, answer FROM charges",
                    "charge",
                    [r["charge"] for r in rows],
                )
            }
            fresh = [r for r in rows if r["charge"] not in earlier]
            db.insert_many("charges", fresh)
            db.executemany(
                "UPDATE holds SET charge = ?, reason = 'charge_received'"
                " WHERE hold = ? AND state = 'open' AND charge IS NULL",
                [[r["charge"], r["hold"]] for r in fresh],
            )
            holds = sorted({r["hold"] for r in fresh})
            consumed = {
                r["key"]
                for r in select_in(db, "SELECT key FROM feed_log WHERE kind = 'consumed'", "key", holds)
            }
            add_changes(db, "consumed", [h for h in holds if h not in consumed], now)
        return earlier


def _notice_of(answer: str) -> str:
    return json.loads(answer)["notice"]


def _caught(work: Callable[..., R], *args: Any) -> R | PaymentsError:
    """work(*args), or the PaymentsError it raised: one charge's refusal is its answer, not the batch's."""
    try:
        return work(*args)
    except PaymentsError as exc:
        return exc


def _on_two_threads(work: Callable[[T], R], items: list[T]) -> list[R]:
    """`work` over items, in order, half of them on a second thread: for work that is mostly signature
    checks, which libsodium does without holding the GIL, so the halves run on two cores. Decoding, which
    is Python through and through, stays on one thread: split, the two halves only wait for each other's
    GIL."""
    if len(items) < 16:
        return [work(item) for item in items]
    half = len(items) // 2
    with ThreadPoolExecutor(1, thread_name_prefix="intake") as pool:
        first = pool.submit(lambda: [work(item) for item in items[:half]])
        rest = [work(item) for item in items[half:]]
        return first.result() + rest
