"""Settlement: accepted charges become money and a signed deduction notice, by workers, after intake.

A worker claims a batch from the queue (charges not settled whose lease ran out) with
`FOR UPDATE SKIP LOCKED` on PostgreSQL, so workers in any number of processes never take the same charge
at once and never wait for each other; on SQLite the claim is one `BEGIN IMMEDIATE` transaction. In the
claiming transaction it takes the stored-value part (step one; the charge becomes `capture_pending` or
`releasing`). Then, outside any transaction and concurrently, the bank: capture with the signed list as
evidence, release what the hold has left. Then one transaction records what the bank did, closes the
holds and signs the notices, but only for charges this worker still holds the claim of.

A worker killed at any point loses nothing and doubles nothing: until its last transaction commits, its
charges stay in the queue under a lease that runs out after `settle_lease_s`; the next worker calls the
bank again with the same references (the charge id for the capture, the hold id for the release), which
answers the first capture again instead of taking the money twice.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cbor2

from gate.protocol import encoding
from gate.protocol.documents import VERSION, DeductionNotice, sign
from payments.bank import Capture, Evidence
from payments.context import Context
from payments.db import Tx, select_in
from payments.errors import BankDeclined, BankUnavailable, NotFound, PaymentsError
from payments.feed import deny
from payments.holds import closing
from payments.ledger import entry, line
from payments.wire import b64, to_json

log = logging.getLogger(__name__)
_BANK_REF = re.compile(r"[^A-Za-z0-9._-]")
BANK_RETRY_S = 10  # a charge the bank could not take waits this long before a worker tries it again


@dataclass
class _BankStep:
    """What the bank did for one claimed charge (nothing is written until the last transaction)."""

    row: dict[str, Any]
    captured: Capture | None = None
    declined: str = ""
    released_at_bank: bool = True
    unavailable: str = ""


class Settlement:
    """The settlement queue and its workers; see the module docstring."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._bank_pool: ThreadPoolExecutor | None = None

    # -- the queue ------------------------------------------------------------------------------------

    def settle_batch(self, limit: int | None = None, *, only: str | None = None, eager: bool = False) -> int:
        """Claim up to `limit` charges, take their money, sign their notices; how many were settled.

        Workers take what no one holds and the bank is not waited for; `eager` (the sweep, an operator's
        request) also takes charges waiting out a bank failure, and `only` one charge, for the older flow.
        """
        token = os.urandom(8).hex()
        claimed = self._claim(token, limit or self.ctx.config.settle_batch, only, eager)
        if not claimed:
            return 0
        steps = self._bank(claimed)
        return self._finish(token, steps)

    def _claim(self, token: str, limit: int, only: str | None, eager: bool) -> list[dict[str, Any]]:
        """The charges taken, each written once: its claim, and for a new one its stored-value part."""
        now = self.ctx.now()
        lease = now + self.ctx.config.settle_lease_s
        with self.ctx.db.tx() as db:
            if only is not None:
                rows = db.all(
                    "SELECT * FROM charges WHERE charge = ? AND state != 'settled'"
                    f" AND (claim IS NULL OR lease_until <= ?){db.for_update}",
                    [only, now],
                )
            else:
                free = "(claim IS NULL OR lease_until <= ?)" if eager else "lease_until <= ?"
                rows = db.all(
                    f"SELECT * FROM charges WHERE state != 'settled' AND {free}"
                    f" ORDER BY lease_until, received LIMIT ?{db.skip_locked}",
                    [now, limit],
                )
            if not rows:
                return []
            received = sorted((r for r in rows if r["state"] == "received"), key=_shopper_order)
            if received:
                self._take_stored_value(db, received, now)
            for row in rows:
                row.update(claim=token, lease_until=lease)
            columns = ("claim", "lease_until", "state", "from_hold", "stored_value", "bank_planned", "debt")
            db.executemany(
                f"UPDATE charges SET {' = ?, '.join(columns)} = ? WHERE charge = ?",
                [[*(r[c] for c in columns), r["charge"]] for r in rows],
            )
            return rows

    def _take_stored_value(self, db: Tx, rows: list[dict[str, Any]], now: int) -> None:
        """Step one, in the claiming transaction: the stored-value part, and what the bank is to capture.

        Worked out in memory charge by charge (`rows` in shopper order, updated in place; the caller writes
        them) on the shoppers and holds as locked, then written in one round trip per table."""
        shoppers = _locked(db, "shoppers", "shopper", rows)
        holds = _locked(db, "holds", "hold", rows)
        lines = []
        for row in rows:
            charge_hex, hold_hex, amount = row["charge"], row["hold"], row["amount"]
            shopper, hold = shoppers[row["shopper"]], holds[hold_hex]
            if hold["state"] == "open" and hold["charge"] == charge_hex:
                reserved = hold["stored_value"]
                stored_value = min(amount, reserved)
                bank = min(amount - stored_value, hold["bank"])
                from_hold = 1
                if reserved:
                    lines.append(line(now, "sv_unreserve", reserved, shopper=row["shopper"], hold=hold_hex))
                hold.update(
                    sv_captured=stored_value,
                    sv_released=reserved - stored_value,
                    state="releasing",
                    reason="capture_pending" if bank else "bank_release_pending",
                )
            else:  # the hold was used by another charge or released: only free stored value is left
                reserved = 0
                stored_value = max(0, min(amount, shopper["balance"] - shopper["reserved"]))
                bank = 0
                from_hold = 0
            shopper.update(balance=shopper["balance"] - stored_value, reserved=shopper["reserved"] - reserved)
            if stored_value:
                lines.append(
                    line(
                        now,
                        "sv_debit",
                        stored_value,
                        shopper=row["shopper"],
                        hold=hold_hex,
                        charge=charge_hex,
                    )
                )
            row.update(
                state="capture_pending" if bank else "releasing",
                from_hold=from_hold,
                stored_value=stored_value,
                bank_planned=bank,
                debt=amount - stored_value - bank,
            )
        db.insert_many("entries", lines)
        db.executemany(
            "UPDATE holds SET sv_captured = ?, sv_released = ?, state = ?, reason = ? WHERE hold = ?",
            [
                [h["sv_captured"], h["sv_released"], h["state"], h["reason"], h["hold"]]
                for h in holds.values()
            ],
        )
        db.executemany(
            "UPDATE shoppers SET balance = ?, reserved = ? WHERE shopper = ?",
            [[s["balance"], s["reserved"], s["shopper"]] for s in shoppers.values()],
        )

    def _bank(self, rows: list[dict[str, Any]]) -> list[_BankStep]:
        """The bank calls of a batch, concurrently (each charge's own calls in order)."""
        found = select_in(self.ctx.db, "SELECT * FROM holds", "hold", sorted({r["hold"] for r in rows}))
        holds = {h["hold"]: h for h in found}
        if len(rows) == 1 or self.ctx.config.bank_concurrency <= 1:
            return [self._bank_one(r, holds[r["hold"]]) for r in rows]
        pool = self._pool()
        return list(pool.map(lambda r: self._bank_one(r, holds[r["hold"]]), rows))

    def _pool(self) -> ThreadPoolExecutor:
        if self._bank_pool is None:
            self._bank_pool = ThreadPoolExecutor(self.ctx.config.bank_concurrency, thread_name_prefix="bank")
        return self._bank_pool

    def _bank_one(self, row: dict[str, Any], hold: dict[str, Any]) -> _BankStep:
        step = _BankStep(row)
        releasing = bool(row["from_hold"]) and hold["state"] == "releasing"
        if row["state"] == "capture_pending":
            evidence = _evidence(bytes(row["body"]))
            try:
                step.captured = self.ctx.bank.capture(
                    row["hold"], row["charge"], row["bank_planned"], evidence, release_rest=releasing
                )
            except BankUnavailable as exc:
                step.unavailable = exc.message
                return step
            except BankDeclined as exc:  # the bank part becomes a debt; the hold is released all the same
                step.declined = exc.message
        taken = min(step.captured.amount, row["bank_planned"]) if step.captured else 0
        if step.captured is not None and step.captured.remaining == 0:
            return step  # a final capture: the bank released the rest with it
        if releasing:
            remaining = hold["bank"] - (hold["bank_captured"] + taken) - hold["bank_released"]
            if remaining > 0:
                try:
                    self.ctx.bank.release(row["hold"])
                except (BankUnavailable, BankDeclined):
                    step.released_at_bank = False  # the sweep asks again; the charge settles now
        return step

    def _finish(self, token: str, steps: list[_BankStep]) -> int:
        """One transaction: what the bank did, the holds closed, the charges settled with their notices,
        for the charges whose claim is still this worker's; the others are left as another worker made them.
        """
        now = self.ctx.now()
        with self.ctx.db.tx() as db:
            rows = _locked(db, "charges", "charge", [s.row for s in steps])
            ours = [s for s in steps if rows[s.row["charge"]]["claim"] == token]
            ours = [s for s in ours if rows[s.row["charge"]]["state"] != "settled"]
            db.executemany(
                "UPDATE charges SET last_error = ?, claim = NULL, lease_until = ? WHERE charge = ?",
                [[s.unavailable, now + BANK_RETRY_S, s.row["charge"]] for s in ours if s.unavailable],
            )
            done = sorted(
                ((rows[s.row["charge"]], s) for s in ours if not s.unavailable),
                key=lambda pair: _shopper_order(pair[0]),
            )
            if not done:
                return 0
            holds = _locked(db, "holds", "hold", [row for row, _ in done])
            lines: list[dict[str, Any]] = []
            for row, step in done:
                lines += self._record(db, row, step, holds[row["hold"]], now)
            db.insert_many("entries", lines)
            closed = ("bank_captured", "bank_released", "state", "reason", "bank_cleanup", "closed")
            db.executemany(
                f"UPDATE holds SET {' = ?, '.join(closed)} = ? WHERE hold = ?",
                [[*(h[k] for k in closed), h["hold"]] for h in holds.values()],
            )
            db.executemany(
                "UPDATE charges SET state = 'settled', bank = ?, bank_ref = ?, debt = ?, last_error = ?,"
                " released = ?, notice = ?, answer = ?, settled = ?, claim = NULL, lease_until = 0"
                " WHERE charge = ?",
                [_settled_columns(row, now) for row, _ in done],
            )
        return len(done)

    def _record(
        self, db: Tx, row: dict[str, Any], step: _BankStep, hold: dict[str, Any], now: int
    ) -> list[dict[str, Any]]:
        """In memory: what the bank did, the hold closed, the charge settled (`row` and `hold` as locked,
        updated in place); the journal lines. Only a debt, which is rare, is written here."""
        charge_hex, hold_hex = row["charge"], row["hold"]
        lines = []
        if row["state"] == "capture_pending":
            taken = min(step.captured.amount, row["bank_planned"]) if step.captured else 0
            bank_ref = _BANK_REF.sub("", step.captured.reference)[:64] if step.captured else ""
            row.update(
                bank=taken,
                bank_ref=bank_ref,
                debt=row["debt"] + row["bank_planned"] - taken,
                last_error=step.declined or None,
            )
            hold["bank_captured"] += taken
            if taken:
                lines.append(
                    line(now, "bank_capture", taken, shopper=row["shopper"], hold=hold_hex, charge=charge_hex)
                )
        if row["from_hold"] and hold["state"] == "releasing":
            if step.released_at_bank:
                lines += closing(hold, now)
            else:
                hold.update(bank_cleanup=1, reason="bank_release_pending")
        released = 0
        if row["from_hold"]:
            released = (hold["stored_value"] - hold["sv_captured"]) + (hold["bank"] - hold["bank_captured"])
        if row["debt"]:
            self._raise_debt(db, row, now)
        notice = sign(
            DeductionNotice(
                v=VERSION,
                charge=bytes.fromhex(charge_hex),
                hold=bytes.fromhex(hold_hex),
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
            self.ctx.key,
        ).encode()
        answer = to_json(
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
        row.update(released=released, notice=notice, answer=answer)
        return lines

    @staticmethod
    def _raise_debt(db: Tx, row: dict[str, Any], now: int) -> None:
        """What neither stored value nor the bank covered: a debt, and the shopper and hold denied."""
        db.insert(
            "debts",
            {
                "charge": row["charge"],
                "shopper": row["shopper"],
                "hold": row["hold"],
                "amount": row["debt"],
                "repaid": 0,
                "created": now,
            },
        )
        db.execute("UPDATE shoppers SET debt = debt + ? WHERE shopper = ?", [row["debt"], row["shopper"]])
        entry(db, now, "debt", row["debt"], shopper=row["shopper"], hold=row["hold"], charge=row["charge"])
        deny(db, row["shopper"], row["hold"], now)

    # -- one charge now (the older flow: the gate waits for the notice) ------------------------------

    def settle_now(self, charge_hex: str, wait_s: float = 10.0) -> str:
        """Settle this charge in this request and answer its stored answer; BankUnavailable if the bank
        is down (the charge stays queued), or if another worker holds it for longer than `wait_s`."""
        deadline = time.monotonic() + wait_s
        while True:
            row = self.ctx.db.one(
                "SELECT state, answer, last_error, claim FROM charges WHERE charge = ?", [charge_hex]
            )
            if row is None:
                raise NotFound(f"no charge {charge_hex}")
            if row["state"] == "settled":
                return row["answer"]
            if self.settle_batch(1, only=charge_hex) == 0:
                row = self.ctx.db.one(
                    "SELECT state, answer, last_error, claim FROM charges WHERE charge = ?", [charge_hex]
                )
                if row["state"] == "settled":
                    return row["answer"]
                if row["claim"] is None and row["last_error"]:
                    raise BankUnavailable(f"the bank did not take the charge yet: {row['last_error']}")
                if time.monotonic() > deadline:
                    raise BankUnavailable(
                        "the charge is being settled by another worker; ask again", code="settling"
                    )
                time.sleep(0.05)

    # -- workers --------------------------------------------------------------------------------------

    def notify(self) -> None:
        """New charges were accepted: wake a worker now rather than at its next poll."""
        self._wake.set()

    def start(self, workers: int) -> None:
        for n in range(workers):
            thread = threading.Thread(target=self._work, name=f"settle-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                done = self.settle_batch()
            except PaymentsError as exc:
                log.warning("settlement batch failed: %s", exc)
                done = 0
            except Exception:  # the database is busy or went away: keep the worker, try again soon
                log.exception("settlement batch failed")
                done = 0
            if not done and self._wake.wait(1.0):
                self._wake.clear()

    def sweep(self, done: dict[str, int]) -> None:
        """Everything the queue holds that can be settled now (counted into `done`)."""
        while True:
            try:
                settled = self.settle_batch(eager=True)
            except PaymentsError:
                done["errors"] += 1
                return
            done["charges"] += settled
            if not settled:
                return

    def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads = []
        if self._bank_pool is not None:
            self._bank_pool.shutdown(wait=True)
            self._bank_pool = None

    # -- views ----------------------------------------------------------------------------------------

    def charge(self, charge_hex: str) -> dict[str, Any]:
        row = self.ctx.db.one("SELECT * FROM charges WHERE charge = ?", [charge_hex.lower()])
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
        row = self.ctx.db.one("SELECT state, answer FROM charges WHERE charge = ?", [charge_hex.lower()])
        if row is None:
            raise NotFound(f"no charge {charge_hex} has reached the payment system yet")
        if row["state"] != "settled":
            raise NotFound(f"charge {charge_hex} is received and not yet settled", code="pending")
        return json.loads(row["answer"])

    def notices(self, charge_ids: list[str], gate: str) -> list[dict[str, Any]]:
        """The settled ones among these charges that `gate` sent, with their notices (its batch pull);
        another gate's are left out as unknown ones are."""
        select = "SELECT charge, gate, answer FROM charges WHERE state = 'settled'"
        found = [r for r in select_in(self.ctx.db, select, "charge", charge_ids) if r["gate"] == gate]
        return [{"charge": r["charge"], "notice": json.loads(r["answer"])["notice"]} for r in found]


def _evidence(body: bytes) -> Evidence:
    """The signed list and the shopper's key from a charge as intake recorded it (fully checked then):
    read straight from its CBOR, which costs a tenth of decoding and validating the whole document again."""
    charge = cbor2.loads(cbor2.loads(body)["b"])
    voucher = cbor2.loads(charge["voucher"]["b"])
    return Evidence(encoding.encode(charge["list"]), voucher["shopper_key"])


def _shopper_order(row: dict[str, Any]) -> tuple[str, str]:
    """Charges are worked shopper by shopper in one order, so two workers never wait on each other."""
    return row["shopper"], row["charge"]


def _locked(db: Tx, table: str, column: str, rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The rows of `table` these charges name in `column`, locked in key order, by key."""
    keys = sorted({r[column] for r in rows})
    found = select_in(db, f"SELECT * FROM {table}", column, keys, tail=f" ORDER BY {column}{db.for_update}")
    return {r[column]: r for r in found}


def _settled_columns(row: dict[str, Any], now: int) -> list[Any]:
    """The parameters of the statement that records a charge settled, from its row as worked out."""
    names = ("bank", "bank_ref", "debt", "last_error", "released", "notice", "answer")
    return [*(row[n] for n in names), now, row["charge"]]
