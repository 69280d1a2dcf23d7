"""The payment system's HTTP JSON API as the phone uses it (docs/payments-api.md).

Only transport lives here: every document that comes back is returned as raw bytes for phone.checks to
verify; nothing the payment system says is believed because of the channel it came on.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

import requests

from gate.http import environment_session
from gate.protocol.keys import SigningKey
from gate.protocol.notice_request import authorization
from phone.errors import PaymentSystemError, Refused

DEFAULT_TIMEOUT_S = 10.0


class PaymentSystemClient:
    """A session with one payment system at `url` (http://host:port, no trailing path)."""

    def __init__(
        self, url: str, *, session: requests.Session | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise PaymentSystemError(f"{url!r} is not an http:// or https:// URL")
        self.url = url.rstrip("/")
        self._own_session = session is None
        self._http = session or environment_session(self.url)
        self._timeout_s = timeout_s

    def close(self) -> None:
        """Close the HTTP session if this client made it (a session passed in is the caller's)."""
        if self._own_session:
            self._http.close()

    def __enter__(self) -> PaymentSystemClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public -----------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """{"status", "store", "currency"}."""
        return self._call("GET", "/v1/health")

    def keys(self) -> dict[str, Any]:
        """{"store", "current", "keys": [{"key_id", "public_key" (hex)}]}: the keys the PS signs with."""
        return self._call("GET", "/v1/keys")

    def feed(self, since: int, nonce: bytes) -> tuple[bytes, int, int]:
        """One signed page of the store's feed (prices and gate keys in it): (envelope bytes, version,
        latest)."""
        answer = self._call("GET", "/v1/feed", params={"since": str(since), "nonce": nonce.hex()})
        return _document(answer, "feed"), _int(answer, "version"), _int(answer, "latest")

    # -- the shopper ------------------------------------------------------------------------------------

    def enrol(self, shopper: str, public_key: bytes, bank_account: str | None, token: str) -> dict[str, Any]:
        """Bind the phone's public key (and a bank account) to the user name; the same again is a no-op."""
        body = {"shopper": shopper, "public_key": public_key.hex(), "bank_account": bank_account}
        return self._call("POST", "/v1/shoppers", json=body, token=token)

    def place_hold(self, signed_request: bytes) -> bytes:
        """POST a signed HoldRequest; the signed HoldVoucher envelope that comes back."""
        answer = self._call("POST", "/v1/holds", json={"request": _b64(signed_request)})
        return _document(answer, "voucher")

    def notice(self, charge: bytes, *, store: str, shopper: str, key: SigningKey) -> bytes | None:
        """The signed DeductionNotice for a charge (its id is the list id), or None while not settled.

        Asked with a request signed by the shopper's key (gate/protocol/notice_request.py): the payment
        system shows a notice only to the shopper it belongs to."""
        signed = authorization(store, shopper, charge.hex(), int(time.time()), key)
        try:
            answer = self._call("GET", f"/v1/notices/{charge.hex()}", authorization=signed)
        except PaymentSystemError as exc:
            if exc.status == 404:
                return None
            raise
        return _document(answer, "notice")

    # -- transport --------------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        authorization: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif authorization:
            headers["Authorization"] = authorization
        try:
            response = self._http.request(
                method, self.url + path, headers=headers, timeout=self._timeout_s, **kwargs
            )
        except requests.RequestException as exc:
            raise PaymentSystemError(f"payment system at {self.url} unreachable: {_reason(exc)}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            code, message = "http_error", response.reason
            if isinstance(body, dict):
                code, message = str(body.get("error", code)), str(body.get("message", message))
            raise PaymentSystemError(
                f"payment system refused {method} {path}: {message} ({code}, HTTP {response.status_code})",
                status=response.status_code,
                code=code,
            )
        if not isinstance(body, dict):
            raise Refused(f"payment system answer to {method} {path} is not a JSON object")
        return body


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _document(answer: dict[str, Any], field: str) -> bytes:
    value = answer.get(field)
    if not isinstance(value, str):
        raise Refused(f"payment system answer has no {field!r} document")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Refused(f"payment system answer: {field!r} is not base64") from exc


def _int(answer: dict[str, Any], field: str) -> int:
    value = answer.get(field)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise Refused(f"payment system answer: {field!r} is not a non-negative integer")
    return value


def _reason(exc: requests.RequestException) -> str:
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return text.splitlines()[0][:200] if text else type(exc).__name__
