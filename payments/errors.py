"""The payment system's exceptions: each carries its HTTP status and the machine-readable code it answers.

They inherit the gate package's root, so the `selfcheckout` command turns any of them into a one-line
message, and the HTTP layer turns them into `{"error": code, "message": sentence}`.
"""

from __future__ import annotations

from gate.errors import GateError


class PaymentsError(GateError):
    """Root of every error the payment system answers with; `code` and `status` are what the client sees."""

    status = 500
    default_code = "internal"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message


class BadRequest(PaymentsError, ValueError):
    """The request is not JSON of the documented shape, or a document in it does not decode."""

    status = 400
    default_code = "bad_request"


class Unauthorized(PaymentsError):
    """The request is not signed, signed by a key we do not know, or the signature does not verify."""

    status = 401
    default_code = "unauthorized"


class Forbidden(PaymentsError):
    """The signer is known but may not do this (revoked gate, shopper on the deny list, other store)."""

    status = 403
    default_code = "forbidden"


class NotFound(PaymentsError, LookupError):
    """No such shopper, gate, hold or notice (yet)."""

    status = 404
    default_code = "not_found"


class Conflict(PaymentsError):
    """An idempotency key was reused for a different body, or an enrolment clashes with an existing one."""

    status = 409
    default_code = "conflict"


class Unprocessable(PaymentsError, ValueError):
    """The request is signed and well-formed but its content is wrong (bad inner signature, total, store)."""

    status = 422
    default_code = "unprocessable"


class Declined(PaymentsError):
    """The money is not there: the bank declined, or stored value alone cannot cover a hold."""

    status = 402
    default_code = "declined"


class BankUnavailable(PaymentsError, ConnectionError):
    """The bank did not answer (timeout, refused connection, 5xx); nothing is lost, try again later."""

    status = 503
    default_code = "bank_unavailable"


class BankDeclined(Declined):
    """The bank refused a hold or a capture."""

    default_code = "bank_declined"
