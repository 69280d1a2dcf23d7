"""What the gate database hands back: outbox entries, decisions, lane events, import results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OutboxEntry:
    """One charge waiting for (or done with) the payment system."""

    charge_id: bytes
    body: bytes  # the encoded signed Charge envelope, exactly as it will be sent
    amount: int
    currency: str
    created_at: float
    attempts: int
    next_attempt_at: float
    state: str  # "pending", "accepted", "settled" or "flagged"
    last_error: str


@dataclass(frozen=True)
class Event:
    """One decision as recorded: what the panel lists and a technician reads."""

    id: int
    at: float
    gate: str
    verdict: str
    reasons: tuple[tuple[str, str], ...]  # (code, message)
    timings: dict[str, float]  # seconds per step
    list_id: bytes | None
    hold: bytes | None
    shopper: str | None
    total: int
    currency: str
    attendant: str | None

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(code for code, _ in self.reasons)


@dataclass(frozen=True)
class LaneEvent:
    """Something the lane reports besides a decision."""

    id: int
    at: float
    kind: str
    detail: str
    data: dict[str, Any]


@dataclass(frozen=True)
class ImportResult:
    rows: int
    products_added: int
    prices_added: int
    seconds: float


@dataclass(frozen=True)
class AuditRecord:
    """An attendant's audit as recorded: the scanned list beside the signed one (by its list id)."""

    list_id: bytes
    started_at: float
    ended_at: float
    outcome: str  # "let_out" or "manager"
    attendant: str  # who ended it
    asked_by: str | None  # the attendant who asked for it; None when the check sent the list
    reasons: tuple[str, ...]  # the decision's reason codes
    listed_total: int
    scanned_total: int
    difference: int  # money of the basket beyond the list (negative: short of it)
    unpriced: int  # scanned units with no catalog price
    currency: str
    scanned: tuple[str, ...]  # the codes scanned, in order
    lines: tuple[dict[str, Any], ...]  # scanned against listed, per product
    notes: tuple[str, ...]  # unreadable scans and the scanner's troubles during the audit
    id: int | None = None


@dataclass(frozen=True)
class PassRecord:
    """The pass given under a list id: which gate gave it, when (unix seconds) and the signed list body.

    A repeat tap reopens only for the very list (these bytes), at that gate, within its time bound."""

    gate: str
    at: float
    list_body: bytes
