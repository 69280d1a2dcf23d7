"""The payment system of one store, put together: the parts the HTTP layer and the command line call.

`PaymentSystem` owns the database and hands each part (accounts, holds, intake, settlement, feed) the
same context. Money moves only inside database transactions that also write the journal, and a bank call
is never made inside a transaction (payments/holds.py, payments/settlement.py). Several processes may
run on one PostgreSQL database; SQLite serves one process.
"""

from __future__ import annotations

from typing import Any

from gate.protocol.keys import TrustedKeys
from payments.accounts import Accounts
from payments.context import Context, PaymentsConfig
from payments.db import open_database, read_settings
from payments.errors import PaymentsError
from payments.feed import Feed
from payments.holds import Holds
from payments.intake import Intake, Received
from payments.ledger import reconcile
from payments.notice_access import NoticeAccess
from payments.recovery import Recovery, check_instance
from payments.settlement import Settlement


class ChargeRefused(PaymentsError):
    """A charge refused at intake, carrying the signed refusal the gate flags it by."""

    def __init__(self, received: Received) -> None:
        assert received.error is not None
        super().__init__(received.error.message, code=received.error.code)
        self.status = received.error.status
        self.refusal = received.refusal


class PaymentSystem:
    """The payment system of one store, in this process. Thread-safe."""

    def __init__(self, config: PaymentsConfig) -> None:
        self.config = config
        self.db = open_database(config.database, connections=config.db_connections)
        own = [config.key.public_key] if config.key else []
        self.ctx = Context(config, self.db, TrustedKeys([*own, *config.former_public_keys]))
        self.trusted = self.ctx.trusted
        try:
            self._check_settings()
        except BaseException:
            self.db.close()
            raise
        self.accounts = Accounts(self.ctx)
        self.holds = Holds(self.ctx)
        self.intake = Intake(self.ctx)
        self.settlement = Settlement(self.ctx)
        self.feeds = Feed(self.ctx)
        self.recovery = Recovery(self.ctx)
        self.notice_access = NoticeAccess(self.ctx)
        if config.settle_workers:
            self.settlement.start(config.settle_workers)

    def _check_settings(self) -> None:
        """A database belongs to one store and one currency, fixed when it is created."""
        wanted = {"store_id": self.config.store_id, "currency": self.config.currency}
        with self.db.tx() as db:
            for name, value in wanted.items():
                db.execute(
                    "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                    [name, value],
                )
            found = read_settings(db)
        wrong = [(n, found[n], v) for n, v in wanted.items() if found[n] != v]
        if wrong:
            name, have, value = wrong[0]
            raise PaymentsError(
                f"{_where(self.config.database)}: this database belongs to {name} {have!r}, not {value!r}",
                code="wrong_database",
            )

    def close(self) -> None:
        self.settlement.close()
        self.db.close()
        if self.config.bank is not None:
            self.config.bank.close()

    def now(self) -> int:
        return self.ctx.now()

    @property
    def key(self) -> Any:
        return self.ctx.key

    # -- the parts, as the HTTP layer and the CLI call them -------------------------------------------

    def enrol_shopper(
        self, shopper: str, public_key: bytes, bank_account: str | None
    ) -> tuple[bool, dict[str, Any]]:
        return self.accounts.enrol_shopper(shopper, public_key, bank_account)

    def shopper(self, shopper: str) -> dict[str, Any]:
        return self.accounts.shopper(shopper)

    def top_up(self, shopper: str, amount: int, reference: str) -> tuple[bool, dict[str, Any]]:
        return self.accounts.top_up(shopper, amount, reference)

    def enrol_gate(
        self, gate: str, public_key: bytes, instance: str | None = None
    ) -> tuple[bool, dict[str, Any]]:
        """Enrol (or re-key) a gate; `instance` is its database's id, when the enrolment carries it."""
        if instance is not None:
            check_instance(instance)
        created, view = self.accounts.enrol_gate(gate, public_key)
        if instance is not None:
            self.recovery.note_instance(gate, instance)
        return created, view

    def gate_recovery(self, gate: str, data: dict[str, Any]) -> dict[str, Any]:
        """The charges `gate` sent, for that gate (signed request) whose database was made anew."""
        return self.recovery.charges_of(gate, data)

    def revoke_gate(self, gate: str) -> dict[str, Any]:
        return self.accounts.revoke_gate(gate)

    def gates(self) -> list[dict[str, Any]]:
        return self.accounts.gates()

    def set_prices(self, items: list[dict[str, Any]]) -> int:
        return self.accounts.set_prices(items)

    def place_hold(self, raw: bytes) -> tuple[int, str]:
        return self.holds.place(raw)

    def hold(self, hold_hex: str) -> dict[str, Any]:
        return self.holds.view(hold_hex)

    def receive_charges(self, raws: list[bytes]) -> list[Received]:
        """Batched intake (the current flow): record, answer per charge, settle later."""
        received = self.intake.receive(raws)
        if any(r.status == "accepted" for r in received):
            self.settlement.notify()
        return received

    def take_charge(self, raw: bytes) -> tuple[int, str]:
        """One charge, settled while the gate waits (the older flow): its stored answer, or the refusal."""
        (received,) = self.intake.receive([raw])
        if received.status == "refused":
            raise ChargeRefused(received)
        if received.status == "settled":
            return 200, received.answer
        return 200, self.settlement.settle_now(received.charge)

    def charge(self, charge_hex: str) -> dict[str, Any]:
        return self.settlement.charge(charge_hex)

    def notice(self, charge_hex: str, *, authorization: str, admin: bool = False) -> dict[str, Any]:
        """The notice for the shopper who signed `authorization` (payments.notice_access), or for the back
        office (`admin`: its token was checked by the caller)."""
        if not admin:
            shopper = self.notice_access.shopper_of_request(authorization, charge_hex)
            self.notice_access.check_owner(charge_hex, shopper)
        return self.settlement.notice(charge_hex)

    def notices(self, data: dict[str, Any], charge_ids: list[str]) -> list[dict[str, Any]]:
        """A gate's batch pull: the settled ones among the charges that gate sent (notice_access)."""
        gate = self.notice_access.gate_of_pull(data, charge_ids)
        return self.settlement.notices(charge_ids, gate)

    def feed(self, since: int, nonce: bytes) -> dict[str, Any]:
        return self.feeds.page(since, nonce)

    def reconcile(self) -> dict[str, Any]:
        return reconcile(self.db)

    def sweep(self) -> dict[str, int]:
        """Finish what was left half-way: queued charges, expired holds, releases owed, stuck placements."""
        done = {"expired": 0, "charges": 0, "releases": 0, "stuck": 0, "errors": 0}
        self.settlement.sweep(done)
        self.holds.sweep(done)
        return done


def _where(database: Any) -> str:
    text = str(database)
    return text.split("@")[-1] if "://" in text else text
