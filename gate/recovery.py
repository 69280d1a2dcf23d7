"""A gate whose database was made anew takes back, before deciding anything, the passes it had reported.

`POST /v1/gates/{gate}/recovery` (docs/payments-api.md) is asked with this gate's signature over
`recovery_message` (store, gate, the new database's instance id, the time), so only the gate itself reads
its charges, and a recorded request is refused once RECOVERY_WINDOW_S has passed. The answer is the
charges this gate signed, page by page. Each is checked to carry this gate's own signature over a charge
of this store and gate: the payment system cannot make the gate believe in a pass it never gave. The
passes are then written back (gate/store/recovery.py): a list that passed before the database was lost is
`list_used` again, its hold consumed, its charge not sent twice.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import requests

from gate.errors import GateError, ProtocolError
from gate.protocol.documents import Charge, open_signed
from gate.protocol.keys import SigningKey
from gate.store import GateStore
from gate.store.recovery import ReportedPass

RECOVERY_WINDOW_S = 300
PAGE = 1000
MAX_PAGES = 10_000


class RecoveryError(GateError):
    """The reported passes could not be taken back: the lane must not decide until they are."""


def recovery_message(store_id: str, gate_id: str, instance: str, at: int) -> bytes:
    """The bytes a gate signs to ask for its charges (the payment system checks the same bytes)."""
    return f"selfcheckout-gate-recovery/1\n{store_id}\n{gate_id}\n{instance}\n{at}".encode()


def recover(
    store: GateStore,
    *,
    url: str,
    store_id: str,
    gate_id: str,
    gate_key: SigningKey,
    session: requests.Session,
    timeout_s: float = 5.0,
    clock: Callable[[], float] = time.time,
) -> int:
    """Fetch, check and write back this gate's reported passes; how many were restored."""
    instance = store.instance_id()
    passes: list[ReportedPass] = []
    after = ""
    for _ in range(MAX_PAGES):
        at = int(clock())
        signature = gate_key.sign(recovery_message(store_id, gate_id, instance, at))
        try:
            response = session.post(
                f"{url.rstrip('/')}/v1/gates/{gate_id}/recovery",
                json={
                    "instance": instance,
                    "at": at,
                    "signature": signature.hex(),
                    "after": after,
                    "limit": PAGE,
                },
                timeout=timeout_s,
            )
        except requests.RequestException as exc:
            raise RecoveryError(f"the payment system did not answer ({type(exc).__name__})") from exc
        if response.status_code != 200:
            raise RecoveryError(f"the payment system answered {response.status_code}: {response.text[:200]}")
        try:
            page = response.json()
            raws = [base64.b64decode(c, validate=True) for c in page["charges"]]
            following = page.get("next") or ""
        except (ValueError, KeyError, TypeError) as exc:
            raise RecoveryError(f"the payment system's answer is not a recovery page: {exc}") from exc
        passes += [_own_pass(raw, gate_key, store_id, gate_id) for raw in raws]
        if not following:
            break
        after = following
    return store.restore_passes(passes, clock())


def _own_pass(raw: bytes, gate_key: SigningKey, store_id: str, gate_id: str) -> ReportedPass:
    try:
        signed = open_signed(raw, Charge)
        if signed.kid != gate_key.key_id:
            raise ProtocolError(f"signed by key {signed.kid}, not this gate's {gate_key.key_id}")
        charge = signed.verify_with(gate_key.public_key)
    except GateError as exc:
        raise RecoveryError(f"a charge the payment system returned is not this gate's own: {exc}") from exc
    if charge.gate != gate_id or charge.store != store_id:
        raise RecoveryError(f"a returned charge is gate {charge.gate}'s of store {charge.store}, not ours")
    slist = charge.list.doc
    return ReportedPass(slist.list, slist.hold, float(charge.decided), charge.amount, charge.currency, raw)


__all__ = ["RECOVERY_WINDOW_S", "RecoveryError", "recover", "recovery_message"]
