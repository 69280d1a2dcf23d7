"""Pruning what the lane no longer needs, without ever pruning what a decision or a charge still needs.

Kept whatever its age: a charge not yet settled at the payment system (pending, accepted, flagged) with its
decision and lane events; a used list id, and the event of its pass, while a list that old could still be
presented (the legality check would otherwise forget it was used: a replay must stay `list_used`); every
consumed hold (a voucher's validity is the payment system's to choose, and a row is a few dozen bytes).
Pruned: settled charges older than the settled retention, and decision and lane events older than the
events retention. One transaction, then a checkpoint; SQLite reuses the freed pages.
"""

from __future__ import annotations

from dataclasses import dataclass

from gate.store.database import StoreBase

# Charges the payment system has not settled: everything about them stays.
_UNSETTLED = "SELECT charge_id FROM outbox WHERE state != 'settled'"


@dataclass(frozen=True)
class Pruned:
    """How many rows one prune removed, per table."""

    outbox: int
    used_lists: int
    events: int
    lane_events: int

    @property
    def total(self) -> int:
        return self.outbox + self.used_lists + self.events + self.lane_events


class RetentionTables(StoreBase):
    def prune(
        self, *, now: float, keep_events_s: float, keep_settled_s: float, list_valid_s: float
    ) -> Pruned:
        """Remove what is older than its retention and needed by nothing (see the module's docstring).

        `list_valid_s`: how old a list may be and still pass (max_list_age_s + clock_skew_s); its used id
        is kept at least that long after the pass.
        """
        with self._write() as db:
            outbox = db.execute(
                "DELETE FROM outbox WHERE state = 'settled' AND coalesce(settled_at, created_at) < ?",
                [now - keep_settled_s],
            ).rowcount
            used = db.execute(
                f"DELETE FROM used_lists WHERE at < ? AND list_id NOT IN ({_UNSETTLED})",
                [now - list_valid_s],
            ).rowcount
            events = db.execute(
                "DELETE FROM events WHERE at < ?"
                " AND (list_id IS NULL OR list_id NOT IN (SELECT list_id FROM used_lists))"
                f" AND (list_id IS NULL OR list_id NOT IN ({_UNSETTLED}))",
                [now - keep_events_s],
            ).rowcount
            lane_events = db.execute(
                "DELETE FROM lane_events WHERE at < ? AND NOT (kind = 'passage'"
                " AND json_extract(data, '$.list') IN (SELECT lower(hex(list_id)) FROM used_lists))",
                [now - keep_events_s],
            ).rowcount
        self.checkpoint()
        return Pruned(outbox, used, events, lane_events)
