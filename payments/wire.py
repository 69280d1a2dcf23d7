"""What arrives over the wire, checked at the door: base64 fields, signed envelopes, names and references.

Each check raises the PaymentsError the client is documented to get (docs/payments-api.md, "Error codes"),
so no handler checks its own way.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from gate.errors import DecodeError, SignatureError
from gate.protocol import encoding
from gate.protocol.documents import D, Signed, open_signed
from payments.errors import BadRequest, Unauthorized

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/-]{0,63}")
REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
CHARGE_ID = re.compile(r"[0-9a-fA-F]{32}")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(value: Any, what: str) -> bytes:
    """Standard padded base64 text to bytes, or BadRequest naming the field."""
    if not isinstance(value, str):
        raise BadRequest(f"{what} must be base64 text", code="bad_request")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise BadRequest(f"{what} is not standard padded base64: {exc}", code="bad_base64") from exc


def open_document(raw: bytes, doc_class: type[D]) -> Signed[D]:
    """Parse a signed envelope; a body that is not an envelope at all is 'unsigned' (401)."""
    try:
        value = encoding.decode(raw)
    except DecodeError as exc:
        raise BadRequest(f"not a canonical CBOR document: {exc}", code="malformed_document") from exc
    if not isinstance(value, dict) or set(value) != {"b", "k", "s", "t"}:
        raise Unauthorized(
            f"the body is not a signed envelope (t, k, b, s) holding a {doc_class.TYPE}", code="unsigned"
        )
    try:
        return open_signed(value, doc_class)
    except DecodeError as exc:
        raise BadRequest(str(exc), code="malformed_document") from exc


def verify(signed: Signed[Any], public_key: bytes, what: str) -> None:
    try:
        signed.verify_with(public_key)
    except SignatureError as exc:
        raise Unauthorized(f"the {what} signature does not verify: {exc}", code="bad_signature") from exc


def check_name(pattern: re.Pattern[str], value: Any, what: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadRequest(f"{what}: {str(value)[:80]!r} is not valid", code="bad_request")


def charge_id(value: Any, what: str = "charge") -> str:
    """A charge id as 32 lower-case hex digits, or BadRequest."""
    if not isinstance(value, str) or not CHARGE_ID.fullmatch(value):
        raise BadRequest(f"{what} must be 32 hex digits", code="bad_request")
    return value.lower()


def to_json(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def enrolment_key(data: dict[str, Any], whose: str) -> bytes:
    """An enrolment's `public_key`: 64 hex digits, else `bad_key` saying so, whether it is missing, not hex
    or of the wrong length (one that is no usable Ed25519 key is `bad_key` too, from payments.accounts)."""
    value = data.get("public_key")
    try:
        key = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        key = None
    if key is not None and len(key) == 32:
        return key
    if value is None:
        found = "it is missing"
    elif not isinstance(value, str):
        kinds = {
            bool: "true or false",
            int: "a number",
            float: "a number",
            list: "an array",
            dict: "an object",
        }
        found = f"found {kinds.get(type(value), 'no string')}"
    elif key is None:
        found = f"found {len(value)} characters, not all hex digits"
    else:
        found = f"found {len(value)} hex digits"
    raise BadRequest(
        f"public_key must be 64 hex digits ({whose} Ed25519 public key); {found}", code="bad_key"
    )
