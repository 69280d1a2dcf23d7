"""Who may read a deduction notice: the shopper it belongs to, by a signed request, or the back office.

The charge id is the list id, and the list id is not secret (the gate's panel, its logs and its
receipts show it), so it cannot be the capability: a notice says how a shopper's money moved. The phone
signs gate.protocol.notice_request.notice_request_message with its enrolled shopper key; a request that
does not verify is 401, and a charge that is not that shopper's is answered exactly like an unknown one
(404), so a stranger learns nothing of whether it exists.

A gate's batch pull (`POST /v1/notices`) is signed the same way with the gate's enrolled key
(gate.protocol.notice_request.gate_notices_message; payments.gate_auth checks it, as for recovery), and it
answers only the charges that gate sent: another gate's are left out exactly like unknown ones.
"""

from __future__ import annotations

from typing import Any

from gate.errors import ProtocolError, SignatureError
from gate.protocol.keys import verify
from gate.protocol.notice_request import (
    NOTICE_WINDOW_S,
    gate_notices_message,
    notice_request_message,
    parse_authorization,
)
from payments.context import Context
from payments.errors import NotFound, Unauthorized
from payments.gate_auth import check_gate_signature, signed_fields


class NoticeAccess:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def shopper_of_request(self, authorization: str, charge_hex: str) -> str:
        """The shopper whose signed Authorization header this is; Unauthorized if it is not one."""
        if not authorization:
            raise Unauthorized(
                "a notice is for its shopper: sign the request (Authorization: Shopper ...), "
                "or use the admin token"
            )
        try:
            shopper, at, signature = parse_authorization(authorization)
        except ProtocolError as exc:
            raise Unauthorized(str(exc)) from exc
        if abs(self.ctx.now() - at) > NOTICE_WINDOW_S:
            raise Unauthorized(
                f"the request was signed at {at}, more than {NOTICE_WINDOW_S} s from now: check the clocks",
                code="stale_request",
            )
        row = self.ctx.db.one("SELECT public_key FROM shoppers WHERE shopper = ?", [shopper])
        if row is None:
            raise Unauthorized(f"no shopper {shopper} is enrolled", code="bad_signature")
        message = notice_request_message(self.ctx.config.store_id, shopper, charge_hex, at)
        try:
            verify(bytes(row["public_key"]), message, signature)
        except SignatureError as exc:
            raise Unauthorized(f"the request is not signed by {shopper}'s key", code="bad_signature") from exc
        return shopper

    def check_owner(self, charge_hex: str, shopper: str) -> None:
        """NotFound, as for an unknown charge, unless the charge is this shopper's."""
        row = self.ctx.db.one("SELECT shopper FROM charges WHERE charge = ?", [charge_hex.lower()])
        if row is None or row["shopper"] != shopper:
            raise NotFound(f"no charge {charge_hex} has reached the payment system yet")

    def gate_of_pull(self, data: dict[str, Any], charge_ids: list[str]) -> str:
        """The gate that signed this batch pull of `charge_ids`; Unauthorized if no gate did."""
        gate = data.get("gate")
        if not isinstance(gate, str) or not gate or "at" not in data or "signature" not in data:
            raise Unauthorized(
                "notices are pulled by the gate that sent the charges: sign the pull with the gate's "
                "enrolled key (gate, at, signature)"
            )
        at, signature = signed_fields(data["at"], data["signature"])
        message = gate_notices_message(self.ctx.config.store_id, gate, charge_ids, at)
        check_gate_signature(self.ctx, gate, message, at, signature, window_s=NOTICE_WINDOW_S)
        return gate
