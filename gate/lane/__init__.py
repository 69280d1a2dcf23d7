"""The exit lane: its state machine (`machine`), its states and tap outcomes (`outcomes`), and what it
needs from hardware and store (`ports`)."""

from gate.lane.machine import ATTENDANT_WAIT_S, MAX_AWAITING, REPEAT_CODES, Lane
from gate.lane.outcomes import LaneState, LaneTimings, Opening, TapOutcome
from gate.lane.ports import GateIOLike, LaneStore, PhoneSessionLike, ReaderLike

__all__ = [
    "ATTENDANT_WAIT_S",
    "MAX_AWAITING",
    "REPEAT_CODES",
    "GateIOLike",
    "Lane",
    "LaneState",
    "LaneStore",
    "LaneTimings",
    "Opening",
    "PhoneSessionLike",
    "ReaderLike",
    "TapOutcome",
]
