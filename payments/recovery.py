"""A gate whose database was made anew asks for the charges it had sent, to know again what it decided.

`POST /v1/gates/{gate}/recovery`: the gate signs (store, gate, its new database instance, the time) with
its enrolled key (gate/recovery.py `recovery_message`); a request older or newer than RECOVERY_WINDOW_S is
refused, so a recorded one cannot be replayed later. The answer is the charges that gate sent, as the
exact signed bytes it sent them, in charge-id order, a page at a time: the gate trusts only its own signatures
on them. The instance is recorded (first seen, recovered), so the store knows which gates started over.
"""

from __future__ import annotations

import re
from typing import Any

from gate.recovery import RECOVERY_WINDOW_S, recovery_message
from payments.context import Context
from payments.errors import BadRequest
from payments.gate_auth import check_gate_signature, signed_fields
from payments.wire import b64

MAX_PAGE = 1000
_INSTANCE = re.compile(r"[0-9a-f]{32}")
_CHARGE_ID = re.compile(r"[0-9a-f]{32}")


def check_instance(instance: Any) -> None:
    if not isinstance(instance, str) or not _INSTANCE.fullmatch(instance):
        raise BadRequest("instance must be 32 lowercase hex digits (selfcheckout gate init prints it)")


class Recovery:
    """The charges of one gate, for that gate only."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def note_instance(self, gate: str, instance: str, *, recovered: bool = False) -> None:
        """Remember that `gate` runs on database `instance` (told at enrolment or at recovery)."""
        check_instance(instance)
        now = self.ctx.now()
        with self.ctx.db.tx() as db:
            db.execute(
                "INSERT INTO gate_instances (gate, instance, first_seen, recovered) VALUES (?, ?, ?, NULL)"
                " ON CONFLICT (gate, instance) DO NOTHING",
                [gate, instance, now],
            )
            if recovered:
                db.execute(
                    "UPDATE gate_instances SET recovered = ? WHERE gate = ? AND instance = ?",
                    [now, gate, instance],
                )

    def charges_of(self, gate: str, data: dict[str, Any]) -> dict[str, Any]:
        instance, at, signature = data.get("instance"), data.get("at"), data.get("signature")
        after, limit = data.get("after") or "", data.get("limit", MAX_PAGE)
        at, signed = signed_fields(at, signature)
        if not isinstance(after, str) or (after and not _CHARGE_ID.fullmatch(after)):
            raise BadRequest("after must be a charge id (32 hex digits) or empty")
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
            raise BadRequest(f"limit must be 1-{MAX_PAGE}")
        check_instance(instance)
        message = recovery_message(self.ctx.config.store_id, gate, instance, at)
        check_gate_signature(self.ctx, gate, message, at, signed, window_s=RECOVERY_WINDOW_S)
        rows = self.ctx.db.all(
            "SELECT charge, body FROM charges WHERE gate = ? AND charge > ? ORDER BY charge LIMIT ?",
            [gate, after, limit + 1],
        )
        more = len(rows) > limit
        rows = rows[:limit]
        if not more:
            self.note_instance(gate, instance, recovered=True)
        return {
            "gate": gate,
            "instance": instance,
            "charges": [b64(bytes(r["body"])) for r in rows],
            "next": rows[-1]["charge"] if more else None,
        }
