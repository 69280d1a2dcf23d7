"""The documents the gate itself signs: the challenge it sends, the exit receipt, and the charge.

The lane calls these around a decision: `new_challenge` before the tap, `check`, then for a pass
`build_charge` -> GateStore.record_pass -> open the gate, and `build_receipt` for the phone in every case.
"""

from __future__ import annotations

import os

from gate.errors import ProtocolError
from gate.legality.check import Decision, GateIdentity
from gate.protocol.documents import (
    ID_BYTES,
    NONCE_BYTES,
    VERDICTS,
    VERSION,
    Charge,
    ExitChallenge,
    ExitReceipt,
    Signed,
    sign,
)
from gate.protocol.keys import SigningKey

NO_LIST = bytes(ID_BYTES)  # the list id a receipt names when the presentation could not be read


def new_challenge(gate: GateIdentity, now: float, nonce: bytes | None = None) -> ExitChallenge:
    """A fresh challenge for one tap: 32 random bytes from the OS unless a test passes its own."""
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    if len(nonce) != NONCE_BYTES:
        raise ProtocolError(f"a challenge nonce is {NONCE_BYTES} bytes, not {len(nonce)}")
    return ExitChallenge(v=VERSION, gate=gate.gate, store=gate.store, nonce=nonce, time=int(now))


def build_charge(decision: Decision, gate_key: SigningKey) -> Signed[Charge]:
    """The charge the forwarder will send, signed by the gate: the whole presentation and its challenge.

    Only for a decision that lets the shopper out: "pass", or "attendant" once an attendant approved.
    """
    p = decision.presentation
    if p is None or decision.verdict == "deny":
        raise ProtocolError(f"no charge for a decision with verdict {decision.verdict}")
    charge = Charge(
        v=VERSION,
        charge=p.list.doc.list,
        gate=decision.gate.gate,
        store=decision.gate.store,
        challenge=decision.challenge,
        voucher=p.voucher,
        list=p.list,
        answer=p.answer,
        amount=p.list.doc.total,
        currency=p.list.doc.currency,
        decided=int(decision.decided_at),
    )
    return sign(charge, gate_key)


def build_receipt(
    decision: Decision,
    gate_key: SigningKey,
    *,
    verdict: str | None = None,
    reasons: tuple[str, ...] | None = None,
) -> Signed[ExitReceipt]:
    """The signed exit receipt for the phone: verdict and every reason code (claim 1, step 3).

    `verdict` overrides the decision's, e.g. "pass" after an attendant approved, or "emergency"; `reasons`
    too, for a repeat tap answered `pass` with exactly `list_used` (docs/protocol.md, "Repeat taps").
    """
    verdict = verdict or decision.verdict
    if verdict not in VERDICTS:
        raise ProtocolError(f"unknown verdict {verdict!r}")
    receipt = ExitReceipt(
        v=VERSION,
        gate=decision.gate.gate,
        store=decision.gate.store,
        list=decision.list_id or NO_LIST,
        nonce=decision.challenge.nonce,
        verdict=verdict,
        reasons=decision.codes if reasons is None else reasons,
        total=decision.total,
        currency=decision.currency,
        at=int(decision.decided_at),
    )
    return sign(receipt, gate_key)
