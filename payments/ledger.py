"""Reconciliation: prove from two sides (the journal and the tables) that every sum balances.

The invariants (docs/payments-api.md, "The ledger"):

1. Every settled charge is paid exactly: amount = stored value + bank capture + debt.
2. The journal agrees with the charges: sum of stored-value debits, bank captures and debts raised.
3. Stored value: balances = top-ups - debt repaid from top-ups - stored-value debits; reservations =
   reserved - unreserved = what open holds still reserve.
4. Every hold that is closed or failed is fully accounted: captured + released = reserved (stored value)
   and = held (bank). A hold still open says why (awaiting its charge until a date, a capture or a
   release pending at the bank, being placed).
5. Debts: raised = repaid + outstanding, and outstanding = what shoppers owe.
"""

from __future__ import annotations

from typing import Any

from payments.db import Database, Tx

OPEN_REASONS = {
    "awaiting_charge": "voucher issued, no charge yet; swept after expiry plus the grace time",
    "charge_received": "its charge is recorded and waits in the settlement queue for a worker",
    "capture_pending": "a charge is waiting for the bank to capture (bank unavailable)",
    "bank_release_pending": "charged or expired; the bank has not yet confirmed the release",
    "placing": "being placed (bank call in flight, or interrupted: the sweep fails it)",
}
MAX_LISTED = 100


def line(
    at: int,
    kind: str,
    amount: int,
    *,
    shopper: str | None = None,
    hold: str | None = None,
    charge: str | None = None,
    ref: str | None = None,
) -> dict[str, Any]:
    """One journal line as a row, every column named: lines of a batch go in with one `insert_many`."""
    return {
        "at": at,
        "kind": kind,
        "amount": amount,
        "shopper": shopper,
        "hold": hold,
        "charge": charge,
        "ref": ref,
    }


def entry(db: Tx, at: int, kind: str, amount: int, **refs: str | None) -> None:
    """One journal line, in the caller's transaction (the one that moves the money it explains)."""
    db.insert("entries", line(at, kind, amount, **refs))


def unreserve(db: Tx, now: int, shopper: str, hold_hex: str, amount: int) -> None:
    """Give a hold's stored-value reservation back to the shopper's balance, on the journal."""
    if amount:
        db.execute("UPDATE shoppers SET reserved = reserved - ? WHERE shopper = ?", [amount, shopper])
        entry(db, now, "sv_unreserve", amount, shopper=shopper, hold=hold_hex)


def reconcile(database: Database) -> dict[str, Any]:
    """The report: sums, open items with their reasons, and `balanced` with every problem found."""
    with database.read() as db:

        def scalar(sql: str, params: Any = ()) -> int:
            return next(iter(db.all(sql, params)))["v"] or 0

        sums = db.all("select kind, sum(amount) total from entries group by kind")
        journal = {r["kind"]: r["total"] for r in sums}

        def j(kind: str) -> int:
            return journal.get(kind, 0) or 0

        charges = next(
            iter(
                db.all(
                    "select count(*) n, coalesce(sum(amount), 0) amount,"
                    " coalesce(sum(stored_value), 0) sv, coalesce(sum(bank), 0) bank,"
                    " coalesce(sum(case when state = 'settled' then debt else 0 end), 0) debt,"
                    " coalesce(sum(case when state = 'settled' then 1 else 0 end), 0) settled,"
                    " coalesce(sum(case when state = 'settled' then amount else 0 end), 0) settled_amount"
                    " from charges",
                )
            )
        )
        pending = [
            {"charge": r["charge"], "state": r["state"], "amount": r["amount"], "last_error": r["last_error"]}
            for r in db.all(
                "select charge, state, amount, last_error from charges where state != 'settled' limit ?",
                [MAX_LISTED],
            )
        ]
        unbalanced_charges = scalar(
            "select count(*) v from charges where state = 'settled' and amount != stored_value + bank + debt"
        )
        shoppers = next(
            iter(
                db.all(
                    "select coalesce(sum(balance), 0) balance, coalesce(sum(reserved), 0) reserved,"
                    " coalesce(sum(debt), 0) debt from shoppers",
                )
            )
        )
        debts = next(
            iter(
                db.all(
                    "select coalesce(sum(amount), 0) amount, coalesce(sum(repaid), 0) repaid,"
                    " coalesce(sum(case when paid is null then 1 else 0 end), 0) open from debts",
                )
            )
        )
        holds = {
            r["state"]: r
            for r in db.all(
                "select state, count(*) n, sum(stored_value) sv, sum(bank) bank,"
                " sum(sv_captured + bank_captured) captured, sum(sv_released + bank_released) released"
                " from holds group by state",
            )
        }
        unaccounted = [
            r["hold"]
            for r in db.all(
                "select hold from holds where (state = 'closed'"
                " and (sv_captured + sv_released != stored_value or bank_captured + bank_released != bank))"
                " or (state = 'failed'"
                " and (sv_released != stored_value or sv_captured != 0 or bank_captured != 0)) limit ?",
                [MAX_LISTED],
            )
        ]
        open_holds = [
            {
                "hold": r["hold"],
                "state": r["state"],
                "reason": r["reason"],
                "explanation": OPEN_REASONS.get(r["reason"] or "", "no reason recorded"),
                "expires": r["expires"],
            }
            for r in db.all(
                "select hold, state, reason, expires from holds"
                " where state in ('placing', 'open', 'releasing') order by issued limit ?",
                [MAX_LISTED],
            )
        ]
        open_reasons = {
            r["reason"] or "none": r["n"]
            for r in db.all(
                "select reason, count(*) n from holds where state in ('placing', 'open', 'releasing')"
                " group by reason",
            )
        }
        still_reserved = scalar(
            "select sum(stored_value - sv_captured - sv_released) v from holds"
            " where state in ('placing', 'open', 'releasing')"
        )
        bank_held = scalar("select sum(bank) v from holds where state != 'failed' and state != 'placing'")
        bank_released = scalar("select sum(bank_released) v from holds")
        bank_captured_holds = scalar("select sum(bank_captured) v from holds")

    problems: list[str] = []

    def expect(name: str, left: int, right: int) -> None:
        if left != right:
            problems.append(f"{name}: {left} != {right}")

    if unbalanced_charges:
        problems.append(f"{unbalanced_charges} settled charge(s) where amount != stored value + bank + debt")
    expect("stored-value debits (journal vs charges)", j("sv_debit"), charges["sv"])
    expect("bank captures (journal vs charges)", j("bank_capture"), charges["bank"])
    expect("bank captures (charges vs holds)", charges["bank"], bank_captured_holds)
    expect("debts raised (journal vs charges)", j("debt"), charges["debt"])
    expect("debts raised (journal vs debts)", j("debt"), debts["amount"])
    expect("debts repaid (journal vs debts)", j("debt_repay"), debts["repaid"])
    expect("debt outstanding (debts vs shoppers)", debts["amount"] - debts["repaid"], shoppers["debt"])
    expect(
        "stored-value balances (top-ups - repaid - debits vs shoppers)",
        j("topup") - j("debt_repay") - j("sv_debit"),
        shoppers["balance"],
    )
    expect("reservations (journal vs shoppers)", j("sv_reserve") - j("sv_unreserve"), shoppers["reserved"])
    expect("reservations (shoppers vs open holds)", shoppers["reserved"], still_reserved)
    expect("bank holds (journal vs holds)", j("bank_hold"), bank_held)
    expect("bank releases (journal vs holds)", j("bank_release"), bank_released)
    if unaccounted:
        problems.append(f"hold(s) closed without captured + released = held: {', '.join(unaccounted)}")
    missing = [h["hold"] for h in open_holds if h["reason"] not in OPEN_REASONS]
    if missing:
        problems.append(f"open hold(s) without a stated reason: {', '.join(missing)}")

    def hold_sum(key: str, *states: str) -> int:
        return sum((holds.get(s) or {}).get(key) or 0 for s in states)

    all_states = ("placing", "open", "releasing", "closed", "failed")
    return {
        "balanced": not problems,
        "problems": problems,
        "charges": {
            "count": charges["n"],
            "amount": charges["amount"],
            "settled": charges["settled"],
            "settled_amount": charges["settled_amount"],
            "pending": pending,
        },
        "money": {
            "stored_value": j("sv_debit"),
            "bank": j("bank_capture"),
            "debt": j("debt"),
            "debt_repaid": j("debt_repay"),
            "debt_outstanding": shoppers["debt"],
        },
        "stored_value": {
            "top_ups": j("topup"),
            "balances": shoppers["balance"],
            "reserved": shoppers["reserved"],
        },
        "holds": {
            "count": hold_sum("n", *all_states),
            "by_state": {s: hold_sum("n", s) for s in all_states},
            "stored_value": hold_sum("sv", *all_states[:4]),
            "bank": hold_sum("bank", "open", "releasing", "closed"),
            "captured": hold_sum("captured", *all_states),
            "released": hold_sum("released", *all_states),
            "open": open_holds,
            "open_reasons": open_reasons,
        },
    }
