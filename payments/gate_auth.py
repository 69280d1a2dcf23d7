"""A request a gate signed with its enrolled key: the gate is known and active, the time is near, the
signature verifies over the exact bytes the gate signed.

Gates ask for things only they may read (their own charges after a lost database, their charges' notices);
the ids they name are not secret, so their enrolled key is what authenticates them. A signed time bounds
replay: a recorded request is refused once `window_s` has passed.
"""

from __future__ import annotations

import re
from typing import Any

from gate.errors import SignatureError
from gate.protocol.keys import verify
from payments.context import Context
from payments.errors import BadRequest, Forbidden, NotFound, Unauthorized

_SIGNATURE = re.compile(r"[0-9a-f]{128}")


def signed_fields(at: Any, signature: Any) -> tuple[int, bytes]:
    """(at, signature) of a gate's request; BadRequest naming the field that is not one."""
    if not isinstance(at, int) or isinstance(at, bool):
        raise BadRequest("at must be the unix time the gate signed the request at")
    if not isinstance(signature, str) or not _SIGNATURE.fullmatch(signature):
        raise BadRequest("signature must be 128 lowercase hex digits")
    return at, bytes.fromhex(signature)


def check_gate_signature(
    ctx: Context, gate: str, message: bytes, at: int, signature: bytes, *, window_s: int
) -> None:
    """Return only if `gate` is enrolled and active and signed `message` within `window_s` of now."""
    row = ctx.db.one("SELECT public_key, active FROM gates WHERE gate = ?", [gate])
    if row is None:
        raise NotFound(f"no gate {gate}")
    if not row["active"]:
        raise Forbidden(f"gate {gate} is revoked", code="gate_revoked")
    if abs(ctx.now() - at) > window_s:
        raise Unauthorized(
            f"the request was signed at {at}, more than {window_s} s from now: check the clocks",
            code="stale_request",
        )
    try:
        verify(bytes(row["public_key"]), message, signature)
    except SignatureError as exc:
        raise Unauthorized(f"the request is not signed by gate {gate}'s key", code="bad_signature") from exc
