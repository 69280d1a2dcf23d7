"""A simulated bank: a small HTTP service that places holds, captures from them and releases them.

It stands in for the acquirer in tests, benchmarks and the demo, in its own process
(`selfcheckout payments bank`) or in a thread. Its state is in memory: it models a bank that keeps its
promises (idempotent by reference), not one that survives a restart.

Faults are set at run time through `POST /admin/faults`, so a test can put the bank in an outage, make it
decline, or make it do the work and lose the answer (503 after the fact), at hold, capture or release time,
while everything else keeps running.
"""

from __future__ import annotations

import base64
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, jsonify, request

from gate.errors import ProtocolError
from gate.protocol.documents import ShoppingList, open_signed

OPERATIONS = ("hold", "capture", "release")


@dataclass
class _Hold:
    reference: str
    account: str
    amount: int
    currency: str
    captured: int = 0
    released: int = 0
    captures: dict[str, int] = field(default_factory=dict)

    @property
    def remaining(self) -> int:
        return self.amount - self.captured - self.released

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "account": self.account,
            "amount": self.amount,
            "currency": self.currency,
            "captured": self.captured,
            "released": self.released,
            "remaining": self.remaining,
            "captures": dict(self.captures),
        }


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class BankSimulator:
    """The bank's books and its fault switches; thread-safe. `rng` decides random declines."""

    def __init__(
        self, *, latency_ms: int = 0, decline_rate: float = 0.0, rng: random.Random | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._rng = rng or random.Random()
        self._holds: dict[str, _Hold] = {}
        self._capture_log: list[dict[str, Any]] = []
        self.replays = 0
        self.latency_ms = latency_ms
        self.decline_rate = decline_rate
        self.outage: set[str] = set()
        self.decline: set[str] = set()
        self.lost: set[str] = set()

    # -- faults ---------------------------------------------------------------------------------------

    def set_faults(self, settings: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if "outage" in settings:
                self.outage = _operations(settings["outage"], "outage")
            if "decline" in settings:
                self.decline = _operations(settings["decline"], "decline")
            if "lost" in settings:
                self.lost = _operations(settings["lost"], "lost")
            if "decline_rate" in settings:
                rate = settings["decline_rate"]
                if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 <= rate <= 1:
                    raise _Refusal(400, "bad_request", "decline_rate must be a number from 0 to 1")
                self.decline_rate = float(rate)
            if "latency_ms" in settings:
                latency = settings["latency_ms"]
                if not isinstance(latency, int) or isinstance(latency, bool) or latency < 0:
                    raise _Refusal(400, "bad_request", "latency_ms must be an integer >= 0")
                self.latency_ms = latency
            return self.faults()

    def faults(self) -> dict[str, Any]:
        return {
            "outage": sorted(self.outage),
            "decline": sorted(self.decline),
            "lost": sorted(self.lost),
            "decline_rate": self.decline_rate,
            "latency_ms": self.latency_ms,
        }

    def _answer(self, operation: str, status: int, answer: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The answer, or - for an operation whose answers are 'lost' - a 503 after the work was done."""
        if operation in self.lost:
            raise _Refusal(503, "outage", f"the {operation} was done but its answer is lost (simulated)")
        return status, answer

    def _gate(self, operation: str) -> None:
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        if operation in self.outage:
            raise _Refusal(503, "outage", f"the bank is unavailable for {operation}s (simulated outage)")

    # -- the bank's operations ------------------------------------------------------------------------

    def place_hold(self, reference: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self._gate("hold")
        account = _field(body, "account", str)
        amount = _field(body, "amount", int)
        currency = _field(body, "currency", str)
        if amount <= 0:
            raise _Refusal(400, "bad_request", "amount must be > 0")
        with self._lock:
            existing = self._holds.get(reference)
            if existing is not None:
                if (existing.account, existing.amount, existing.currency) != (account, amount, currency):
                    raise _Refusal(409, "conflict", f"hold {reference} exists with other terms")
                return 200, existing.to_json()
            if "hold" in self.decline or self._rng.random() < self.decline_rate:
                raise _Refusal(402, "declined", f"the bank declined a hold of {amount} on {account}")
            hold = self._holds[reference] = _Hold(reference, account, amount, currency)
            return self._answer("hold", 201, hold.to_json())

    def capture(self, reference: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self._gate("capture")
        capture_ref = _field(body, "reference", str)
        amount = _field(body, "amount", int)
        evidence = _field(body, "evidence", dict)
        with self._lock:
            hold = self._holds.get(reference)
            if hold is None:
                raise _Refusal(404, "no_hold", f"no hold {reference}")
            if capture_ref in hold.captures:
                self.replays += 1
                return 200, _capture_answer(hold, capture_ref)
            if "capture" in self.decline:
                raise _Refusal(402, "declined", f"the bank declined a capture of {amount} from {reference}")
            if amount <= 0 or amount > hold.remaining:
                raise _Refusal(402, "over_hold", f"capture of {amount} but {hold.remaining} remains held")
            _check_evidence(evidence, amount)
            hold.captured += amount
            hold.captures[capture_ref] = amount
            if body.get("release_rest") is True:  # a final capture: what is left is released with it
                hold.released += hold.remaining
            self._capture_log.append({"hold": reference, "reference": capture_ref, "amount": amount})
            return self._answer("capture", 201, _capture_answer(hold, capture_ref))

    def release(self, reference: str) -> tuple[int, dict[str, Any]]:
        self._gate("release")
        with self._lock:
            hold = self._holds.get(reference)
            if hold is None:
                return 200, {"reference": reference, "released": 0}
            released = hold.remaining
            hold.released += released
            return self._answer("release", 200, {"reference": reference, "released": released})

    def hold(self, reference: str) -> dict[str, Any]:
        with self._lock:
            hold = self._holds.get(reference)
            if hold is None:
                raise _Refusal(404, "no_hold", f"no hold {reference}")
            return hold.to_json()

    def summary(self) -> dict[str, Any]:
        """The bank's own totals, for reconciliation against the payment system's ledger."""
        with self._lock:
            holds = list(self._holds.values())
            return {
                "holds": len(holds),
                "held": sum(h.amount for h in holds),
                "captured": sum(h.captured for h in holds),
                "released": sum(h.released for h in holds),
                "open": sum(h.remaining for h in holds),
                "captures": list(self._capture_log),
                "capture_count": len(self._capture_log),
                "replays": self.replays,
            }


def _capture_answer(hold: _Hold, capture_ref: str) -> dict[str, Any]:
    return {
        "capture_ref": f"cap-{hold.reference[:12]}-{capture_ref[:12]}",
        "amount": hold.captures[capture_ref],
        "remaining": hold.remaining,
    }


def _check_evidence(evidence: dict[str, Any], amount: int) -> None:
    """Claim 7: the capture carries the shopper's signed list; the bank checks it covers the amount."""
    try:
        key = bytes.fromhex(evidence["shopper_key"])
        signed = open_signed(base64.b64decode(evidence["list"], validate=True), ShoppingList)
        shopping_list = signed.verify_with(key)
    except (KeyError, TypeError, ValueError, ProtocolError) as exc:
        raise _Refusal(422, "bad_evidence", f"the signed list does not verify: {exc}") from exc
    if shopping_list.total < amount:
        raise _Refusal(422, "bad_evidence", f"capture of {amount} exceeds the list total")


def _field(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _Refusal(400, "bad_request", f"field {name!r} must be {kind.__name__}")
    return value


def _operations(value: Any, name: str) -> set[str]:
    if value in ("all", True):
        return set(OPERATIONS)
    if value in ("none", False, None):
        return set()
    if not isinstance(value, list) or not set(value) <= set(OPERATIONS):
        raise _Refusal(400, "bad_request", f"{name} must be 'all', 'none' or a list of {OPERATIONS}")
    return set(value)


def create_bank_app(bank: BankSimulator | None = None) -> Flask:
    """The simulated bank's HTTP API; `app.extensions["bank"]` is the BankSimulator behind it."""
    bank = bank or BankSimulator()
    app = Flask("payments.banksim")
    app.extensions["bank"] = bank

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise _Refusal(400, "bad_request", "the body must be a JSON object")
        return data

    @app.errorhandler(_Refusal)
    def refused(exc: _Refusal):
        return jsonify(error=exc.code, message=exc.message), exc.status

    @app.put("/holds/<reference>")
    def put_hold(reference: str):
        status, answer = bank.place_hold(reference, body())
        return jsonify(answer), status

    @app.get("/holds/<reference>")
    def get_hold(reference: str):
        return jsonify(bank.hold(reference))

    @app.post("/holds/<reference>/captures")
    def post_capture(reference: str):
        status, answer = bank.capture(reference, body())
        return jsonify(answer), status

    @app.post("/holds/<reference>/release")
    def post_release(reference: str):
        status, answer = bank.release(reference)
        return jsonify(answer), status

    @app.get("/health")
    def health():
        return jsonify(status="ok", faults=bank.faults())

    @app.get("/admin/faults")
    def get_faults():
        return jsonify(bank.faults())

    @app.post("/admin/faults")
    def post_faults():
        return jsonify(bank.set_faults(body()))

    @app.get("/admin/summary")
    def get_summary():
        return jsonify(bank.summary())

    return app
