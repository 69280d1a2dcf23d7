"""What the payment system's answer for one charge of a batch means for the gate's outbox.

Charges go in batches (`POST /v1/charges` with `{"charges": [...]}`, docs/payments-api.md). `classify`
is the one place an answer becomes an outbox state:

| answer for a charge                                    | outbox      | why                                 |
|--------------------------------------------------------|-------------|-------------------------------------|
| `accepted`                                             | accepted    | recorded; the notice comes later    |
| `settled` with a deduction notice that verifies        | settled     | the payment system took it          |
| `refused` with a charge-refusal that verifies for this | flagged     | the PS stands behind it: technician |
| body                                                   |             |                                     |
| `refused` as a charge_conflict whose signed refusal    | conflict    | the list was charged once, from the |
| names the copy that won (another gate's, a replay)     |             | other copy: a replay incident, out  |
|                                                        |             | of the offline budget               |
| anything else: 5xx, a 4xx without a signed refusal (a  | retry later | it may pass next time: back off     |
| proxy, a captive portal), timeout, refused, garbage    |             |                                     |

Nothing but a refusal the payment system signed for this very body flags a charge: a proxy, a captive
portal or a load balancer between the lane and the payment system can answer any status, and none of them
holds the payment system's key.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import requests

from gate.errors import ProtocolError
from gate.protocol.documents import ChargeRefusal, DeductionNotice, open_signed
from gate.protocol.keys import TrustedKeys

MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Verdict:
    """What one answer means for one charge: `result` and, for the outbox, the notice or the reason."""

    result: str  # "accepted", "settled", "flagged", "conflict" or "retry"
    detail: str
    notice: bytes = b""
    won: bytes = b""  # a conflict: SHA-256 of the copy the payment system took, and its gate
    won_gate: str = ""


def classify(
    body: bytes, charge_id: bytes, answer: Any, *, trusted: TrustedKeys, store_id: str, status: int | None
) -> Verdict:
    """The outbox state one charge's answer leads to (the table in the module docstring).

    `answer` is this charge's entry of the batch answer (a dict), or None when no usable answer came;
    `status` is the HTTP status of the whole response (None: no response).
    """
    where = f"{status}" if status is not None else "no answer"
    if not isinstance(answer, dict):
        return Verdict("retry", f"{where}: no answer for this charge")
    state = answer.get("status")
    try:
        if state == "accepted":
            return Verdict("accepted", "accepted")
        if state == "settled":
            raw = base64.b64decode(answer["notice"], validate=True)
            signed = open_signed(raw, DeductionNotice)
            notice = signed.verify_with(trusted.get(signed.kid))
            if notice.charge != charge_id:
                raise ProtocolError("the notice is for another charge")
            return Verdict("settled", "settled", raw)
        if state == "refused":
            raw = base64.b64decode(answer["refusal"], validate=True)
            signed_refusal = open_signed(raw, ChargeRefusal)
            refusal = signed_refusal.verify_with(trusted.get(signed_refusal.kid))
            if refusal.body_hash != hashlib.sha256(body).digest() or refusal.store != store_id:
                raise ProtocolError("the refusal is for another charge or store")
            if refusal.won is not None and refusal.won_gate is not None:
                detail = (
                    f"replay incident: this list also passed at gate {refusal.won_gate}, whose charge the"
                    f" payment system took (body {refusal.won.hex()[:16]}); this copy is settled as a"
                    " conflict and no longer counts against the offline budget"
                )
                return Verdict(
                    "conflict", detail[:MAX_ERROR_CHARS], won=refusal.won, won_gate=refusal.won_gate
                )
            return Verdict("flagged", f"{refusal.code}: {refusal.message}"[:MAX_ERROR_CHARS])
    except (ValueError, KeyError, TypeError, ProtocolError) as exc:
        return Verdict("retry", f"{where}: an answer that does not verify ({exc})"[:MAX_ERROR_CHARS])
    return Verdict("retry", f"{where}: {str(answer)[:200]}")


def error_of(response: requests.Response) -> tuple[str, str]:
    try:
        answer = response.json()
        return str(answer.get("error", "error")), str(answer.get("message", ""))[:300]
    except (ValueError, AttributeError):
        return "error", response.text[:200]
