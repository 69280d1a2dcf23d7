"""Who may read a deduction notice: the shopper it belongs to, by a signed request, or the back office.

The charge id is the list id, and the list id is not secret (the gate's panel, its logs and its
receipts show it), so it cannot be the capability: a notice says how a shopper's money moved. The phone
signs gate.protocol.notice_request.notice_request_message with its enrolled shopper key; a request that
does not verify is 401, and a charge that is not that shopper's is answered exactly like an unknown one
(404), so a stranger learns nothing of whether it exists.
"""

from __future__ import annotations

from gate.errors import ProtocolError, SignatureError
from gate.protocol.keys import verify
from gate.protocol.notice_request import NOTICE_WINDOW_S, notice_request_message, parse_authorization
from payments.context import Context
from payments.errors import NotFound, Unauthorized


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
