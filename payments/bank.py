"""The connector between the payment system and a bank (acquirer): holds, captures and releases.

The payment system only ever talks to a `BankConnector`. `HttpBank` speaks the small HTTP contract of our
simulated bank (payments/banksim.py, docs/payments-api.md "The bank connector"); a store that uses a real
acquirer writes another class with the same four methods.

Every call is idempotent by a reference the payment system chooses: a hold is named by the hold id, a
capture by the charge id. A call whose answer was lost is therefore simply made again. Money is integer
minor units throughout.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import urllib3

from payments.errors import BankDeclined, BankUnavailable


@dataclass(frozen=True)
class Capture:
    """What the bank answers to a capture: its own reference for the money movement, and the amount."""

    reference: str
    amount: int
    remaining: int | None = None  # what the hold still holds, when the bank says


@dataclass(frozen=True)
class Evidence:
    """What the bank gets with a capture (claim 7): the signed list and the key that signed it."""

    signed_list: bytes
    shopper_key: bytes

    def to_json(self) -> dict[str, str]:
        return {
            "list": base64.b64encode(self.signed_list).decode("ascii"),
            "shopper_key": self.shopper_key.hex(),
        }


class BankConnector(Protocol):
    """What the payment system needs from a bank. Raise BankDeclined or BankUnavailable, nothing else."""

    def place_hold(self, reference: str, account: str, amount: int, currency: str) -> None:
        """Reserve amount on account under reference; placing the same reference again is a no-op."""

    def capture(
        self, reference: str, capture_ref: str, amount: int, evidence: Evidence, *, release_rest: bool = False
    ) -> Capture:
        """Take amount from the hold; the same capture_ref again answers the first capture, moving nothing.

        `release_rest`: a final capture; the bank releases what the hold has left in the same call (one
        call per charge instead of two, as acquirers' final captures do). `Capture.remaining` says what
        the hold still holds after it."""

    def release(self, reference: str) -> int:
        """Release whatever is still held under reference (0 if nothing, or no such hold); return it."""

    def check(self) -> None:
        """Raise BankUnavailable when the bank cannot be reached now (GET /v1/health reports it)."""

    def close(self) -> None:
        """Free connections."""


class HttpBank:
    """A BankConnector for the simulated bank's HTTP API (or any bank that speaks it).

    On urllib3 itself, not requests: settlement makes a bank call per charge, hundreds a second, and
    requests' own work per request (preparing it, merging session settings) cost as much CPU as the call.
    The proxy and CA settings of the environment are read once, as gate.http reads them for our other
    clients; `environment=False` ignores them (everything on 127.0.0.1)."""

    def __init__(
        self, base_url: str, *, timeout_s: float = 5.0, connections: int = 10, environment: bool = True
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        # As many kept-alive connections as calls the settlement workers make at once.
        self._http = _pool(self.base_url, connections, environment)

    def place_hold(self, reference: str, account: str, amount: int, currency: str) -> None:
        self._call("PUT", f"/holds/{reference}", {"account": account, "amount": amount, "currency": currency})

    def capture(
        self, reference: str, capture_ref: str, amount: int, evidence: Evidence, *, release_rest: bool = False
    ) -> Capture:
        body = {"reference": capture_ref, "amount": amount, "evidence": evidence.to_json()}
        if release_rest:
            body["release_rest"] = True
        answer = self._call("POST", f"/holds/{reference}/captures", body)
        remaining = answer.get("remaining")
        return Capture(
            reference=str(answer["capture_ref"]),
            amount=int(answer["amount"]),
            remaining=int(remaining) if isinstance(remaining, int) else None,
        )

    def release(self, reference: str) -> int:
        answer = self._call("POST", f"/holds/{reference}/release", {})
        return int(answer["released"])

    def check(self) -> None:
        # Any HTTP answer below 500 means the bank is there: an acquirer need not serve /health itself.
        try:
            response = self._http.request(
                "GET", self.base_url + "/health", timeout=min(self.timeout_s, 2.0), retries=False
            )
        except urllib3.exceptions.HTTPError as exc:
            raise BankUnavailable(f"bank at {self.base_url} did not answer: {type(exc).__name__}") from exc
        if response.status >= 500:
            raise BankUnavailable(f"bank at {self.base_url} answered {response.status}")

    def close(self) -> None:
        self._http.clear()

    def _call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self.base_url + path
        try:
            response = self._http.request(method, url, json=body, timeout=self.timeout_s, retries=False)
        except urllib3.exceptions.HTTPError as exc:
            raise BankUnavailable(f"bank did not answer {method} {path}: {type(exc).__name__}") from exc
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        status = response.status
        if status >= 500 or status in (408, 429):
            raise BankUnavailable(f"bank answered {status} to {method} {path}: {answer.get('message', '')}")
        if status >= 400:
            raise BankDeclined(f"bank declined {method} {path}: {answer.get('message') or status}")
        return answer


def _pool(url: str, connections: int, environment: bool) -> urllib3.PoolManager:
    options: dict[str, Any] = {"maxsize": connections}
    if environment:
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            options["ca_certs"] = bundle
        proxy = getproxies().get(urlsplit(url).scheme)
        if proxy and not proxy_bypass(urlsplit(url).hostname or ""):
            return urllib3.ProxyManager(proxy, **options)
    return urllib3.PoolManager(**options)
