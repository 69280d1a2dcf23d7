"""How a phone asks the payment system for its own deduction notice (`GET /v1/notices/{charge}`).

A notice names the shopper's money (stored value, bank, debt) and the charge id is the list id, which the
gate's panel and logs have seen. So the id alone is not enough: the phone signs `notice_request_message`
(store, shopper, charge, time) with its shopper key and sends

    Authorization: Shopper <shopper> <unix seconds> <signature, 128 hex digits>

The payment system answers only when the signature verifies with the key enrolled for that shopper, the
time is within NOTICE_WINDOW_S of its own, and the charge is that shopper's; the back office may ask with
its admin token instead.

A gate pulls the notices of the charges it sent in batches (`POST /v1/notices`); the same reasoning holds,
so it signs `gate_notices_message` (store, gate, time, the charge ids asked for) with its enrolled gate key,
and the payment system answers only the notices of charges that gate sent.
"""

from __future__ import annotations

import re

from gate.errors import ProtocolError
from gate.protocol.keys import SigningKey

NOTICE_WINDOW_S = 300
SCHEME = "Shopper"
_HEADER = re.compile(r"Shopper (\S{1,64}) ([0-9]{1,12}) ([0-9a-f]{128})")


def notice_request_message(store_id: str, shopper: str, charge_hex: str, at: int) -> bytes:
    """The bytes a phone signs to read one charge's notice (the payment system checks the same bytes)."""
    return f"selfcheckout-notice-request/1\n{store_id}\n{shopper}\n{charge_hex.lower()}\n{at}".encode()


def gate_notices_message(store_id: str, gate_id: str, charge_ids: list[str], at: int) -> bytes:
    """The bytes a gate signs to pull its charges' notices (the payment system checks the same bytes).

    The ids are part of it, so a recorded pull cannot be replayed within the window to ask for others."""
    charges = ",".join(c.lower() for c in charge_ids)
    return f"selfcheckout-gate-notices/1\n{store_id}\n{gate_id}\n{at}\n{charges}".encode()


def authorization(store_id: str, shopper: str, charge_hex: str, at: int, key: SigningKey) -> str:
    """The Authorization header value of a phone's notice request."""
    signature = key.sign(notice_request_message(store_id, shopper, charge_hex, at)).hex()
    return f"{SCHEME} {shopper} {at} {signature}"


def parse_authorization(value: str) -> tuple[str, int, bytes]:
    """(shopper, at, signature) of a `Shopper ...` Authorization header; ProtocolError if malformed."""
    found = _HEADER.fullmatch(value)
    if found is None:
        raise ProtocolError(
            "Authorization must be 'Shopper <shopper> <unix seconds> <signature as 128 hex digits>'"
        )
    return found.group(1), int(found.group(2)), bytes.fromhex(found.group(3))
