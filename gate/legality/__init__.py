"""The offline legality check and the documents the gate signs around it (docs/protocol.md)."""

from gate.legality.check import (
    STEPS,
    Backlog,
    Decision,
    GateIdentity,
    Policy,
    StateFacts,
    StoreState,
    audit_draw,
    check,
)
from gate.legality.issue import NO_LIST, build_charge, build_receipt, new_challenge
from gate.legality.reasons import ATTENDANT_CODES, BY_CODE, RULES, Reason, Rule, verdict_of

__all__ = [
    "ATTENDANT_CODES",
    "BY_CODE",
    "NO_LIST",
    "RULES",
    "STEPS",
    "Backlog",
    "Decision",
    "GateIdentity",
    "Policy",
    "Reason",
    "Rule",
    "StateFacts",
    "StoreState",
    "audit_draw",
    "build_charge",
    "build_receipt",
    "check",
    "new_challenge",
    "verdict_of",
]
