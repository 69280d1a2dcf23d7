"""The lane's states and what a tap comes to: read by the panel, the service, the demo and the bench."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from gate.legality import Decision


class LaneState(enum.StrEnum):
    IDLE = "idle"
    READING = "reading"
    DECIDING = "deciding"
    OPEN = "open"
    CLOSING = "closing"
    DENIED = "denied"
    AUDIT = "audit"  # the gate held while an attendant re-scans the basket
    EMERGENCY = "emergency"
    MAINTENANCE = "maintenance"
    FAULT = "fault"


@dataclass(frozen=True)
class LaneTimings:
    """How long a lane stays in each passing state (seconds): the config's [timings] section."""

    open_timeout_s: float = 8.0
    close_after_passage_s: float = 0.3
    denied_display_s: float = 1.5
    # How long after its pass a list may reopen the gate at a repeat tap, for a shopper not yet through.
    repeat_window_s: float = 120.0


@dataclass
class Opening:
    """One pass's gate opening: whose it is, when it closes, how many people the beam counted."""

    list_id: bytes | None
    deadline: float
    passages: int = 0
    close_at: float | None = None


@dataclass(frozen=True)
class TapOutcome:
    """What one tap came to, for the caller (tests, the demo, the bench)."""

    verdict: str  # what the receipt said: pass, deny, attendant, emergency
    decision: Decision
    charged: bool
    opened: bool
    receipt: bytes
    receipt_delivered: bool
    timings: Mapping[str, float]
