"""A whole payment side on this machine: the simulated bank and the payment system on real TCP ports.

Used by the tests, the benchmarks and the demo alike (one stand-in, first-class code). Also here: a
simulated shopper and gate that sign the documents the real phone and gate sign, so a test can make a hold,
a list, an exit and a charge without a phone or a Pi.

    with LocalStack.start(tmp_path) as stack:
        shopper = SimShopper("alice")
        stack.enrol_shopper(shopper, bank_account="DE-0001")
        stack.top_up(shopper.name, 500)
        voucher = stack.place_hold(shopper, estimate=3000)
        gate = SimGate("gate-01", stack.store_id)
        stack.enrol_gate(gate)
        charge = make_exit(shopper, gate, voucher, [("4006381333931", 2, 199)], now=stack.now())
        answer = stack.post_charge(charge.encode())
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from gate.protocol.documents import (
    VERSION,
    Charge,
    ExitAnswer,
    ExitChallenge,
    HoldRequest,
    HoldVoucher,
    Item,
    ShoppingList,
    Signed,
    line_total,
    open_signed,
    sign,
)
from gate.protocol.keys import SigningKey
from payments.app import MAX_BODY_BYTES, create_app
from payments.bank import HttpBank
from payments.banksim import BankSimulator, create_bank_app
from payments.context import PaymentsConfig
from payments.serving import ServerThread
from payments.system import PaymentSystem
from payments.wire import b64, unb64

Line = tuple[str, int, int]  # (code, quantity, unit price) or, with grams, see SimShopper.sign_list


@dataclass
class SimShopper:
    """A phone's signing side: the shopper's key and the documents it signs."""

    name: str
    key: SigningKey = field(default_factory=SigningKey.generate)
    bank_account: str | None = None

    def hold_request(self, store: str, currency: str, estimate: int, at: int) -> bytes:
        request = HoldRequest(
            v=VERSION, request=os.urandom(16), shopper=self.name, store=store, currency=currency,
            estimate=estimate, at=at,
        )  # fmt: skip
        return sign(request, self.key).encode()

    def sign_list(
        self, voucher: HoldVoucher, lines: Sequence[Line | tuple[str, int, int, int]], created: int
    ) -> Signed[ShoppingList]:
        items = []
        for line in lines:
            code, qty, price = line[0], line[1], line[2]
            grams = line[3] if len(line) > 3 else None
            items.append(
                Item(
                    code=code,
                    qty=qty,
                    unit_price=price,
                    line_total=line_total(qty, price, grams),
                    grams=grams,
                )
            )
        shopping_list = ShoppingList(
            v=VERSION, list=os.urandom(16), hold=voucher.hold, store=voucher.store, currency=voucher.currency,
            created=created, items=tuple(items), total=sum(i.line_total for i in items),
        )  # fmt: skip
        return sign(shopping_list, self.key)

    def answer(self, challenge: ExitChallenge, signed_list: Signed[ShoppingList]) -> Signed[ExitAnswer]:
        answer = ExitAnswer(
            v=VERSION, gate=challenge.gate, nonce=challenge.nonce, list_hash=signed_list.doc.hash()
        )
        return sign(answer, self.key)


@dataclass
class SimGate:
    """A gate's signing side: its key, its challenges and the charges it signs."""

    gate_id: str
    store_id: str
    key: SigningKey = field(default_factory=SigningKey.generate)

    def challenge(self, now: int) -> ExitChallenge:
        return ExitChallenge(
            v=VERSION, gate=self.gate_id, store=self.store_id, nonce=os.urandom(32), time=now
        )

    def charge(
        self,
        challenge: ExitChallenge,
        voucher: Signed[HoldVoucher],
        signed_list: Signed[ShoppingList],
        answer: Signed[ExitAnswer],
        decided: int,
    ) -> Signed[Charge]:
        charge = Charge(
            v=VERSION, charge=signed_list.doc.list, gate=self.gate_id, store=self.store_id,
            challenge=challenge, voucher=voucher, list=signed_list, answer=answer,
            amount=signed_list.doc.total, currency=signed_list.doc.currency, decided=decided,
        )  # fmt: skip
        return sign(charge, self.key)


def make_exit(
    shopper: SimShopper,
    gate: SimGate,
    voucher: bytes | Signed[HoldVoucher],
    lines: Sequence[Line | tuple[str, int, int, int]],
    *,
    now: int,
) -> Signed[Charge]:
    """The whole exit of one shopper at one gate, as the gate forwards it: list, challenge, answer, charge."""
    if isinstance(voucher, bytes):
        voucher = open_signed(voucher, HoldVoucher)
    signed_list = shopper.sign_list(voucher.doc, lines, now)
    challenge = gate.challenge(now)
    return gate.charge(challenge, voucher, signed_list, shopper.answer(challenge, signed_list), now)


def _direct_session() -> requests.Session:
    """A session that ignores proxy variables: everything here is on 127.0.0.1 (and it is faster)."""
    session = requests.Session()
    session.trust_env = False
    return session


class LocalBank:
    """The simulated bank served on a real port."""

    def __init__(
        self,
        *,
        latency_ms: int = 0,
        decline_rate: float = 0.0,
        seed: int = 0,
        port: int = 0,
        threads: int = 8,
    ) -> None:
        self.sim = BankSimulator(latency_ms=latency_ms, decline_rate=decline_rate, rng=random.Random(seed))
        self.server = ServerThread(create_bank_app(self.sim), port=port, threads=threads)
        self.url = self.server.url

    def faults(self, **settings: Any) -> dict[str, Any]:
        """Set outage/decline/decline_rate/latency_ms, through the bank's own admin endpoint."""
        response = requests.post(self.url + "/admin/faults", json=settings, timeout=5)
        response.raise_for_status()
        return response.json()

    def summary(self) -> dict[str, Any]:
        return self.sim.summary()

    def close(self) -> None:
        self.server.close()


class LocalStack:
    """The bank and the payment system, each on its own port; a context manager."""

    def __init__(
        self,
        bank: LocalBank,
        system: PaymentSystem,
        server: ServerThread,
        *,
        admin_token: str,
    ) -> None:
        self.bank = bank
        self.system = system
        self.app = server.app
        self.server = server
        self.url = server.url
        self.admin_token = admin_token
        self.store_id = system.config.store_id
        self.currency = system.config.currency
        self.key = system.key
        self.http = _direct_session()
        self.http.headers["Authorization"] = f"Bearer {admin_token}"

    @classmethod
    def start(
        cls,
        folder: Path | None = None,
        *,
        store_id: str = "store-0001",
        currency: str = "EUR",
        key: SigningKey | None = None,
        clock: Callable[[], float] = time.time,
        bank_latency_ms: int = 0,
        ps_port: int = 0,
        bank_timeout_s: float = 5.0,
        database: str | None = None,
        **settings: Any,
    ) -> LocalStack:
        settings.setdefault("settle_workers", 2)
        bank = LocalBank(latency_ms=bank_latency_ms)
        config = PaymentsConfig(
            database=database or (str(folder / "payments.db") if folder else ":memory:"),
            store_id=store_id,
            currency=currency,
            key=key or SigningKey.generate(),
            bank=HttpBank(bank.url, timeout_s=bank_timeout_s, environment=False),
            admin_token=os.urandom(16).hex(),
            clock=clock,
            **settings,
        )
        system = PaymentSystem(config)
        server = ServerThread(create_app(config, system=system), port=ps_port, max_body=MAX_BODY_BYTES)
        return cls(bank, system, server, admin_token=config.admin_token or "")

    def now(self) -> int:
        return self.system.now()

    # -- the back office, over HTTP -------------------------------------------------------------------

    def admin(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.http.request(method, self.url + path, timeout=10, **kwargs)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    def enrol_shopper(self, shopper: SimShopper, *, bank_account: str | None = "DE-0001") -> dict[str, Any]:
        shopper.bank_account = bank_account
        body = {
            "shopper": shopper.name,
            "public_key": shopper.key.public_key.hex(),
            "bank_account": bank_account,
        }
        return self.admin("POST", "/v1/shoppers", json=body)

    def enrol_gate(self, gate: SimGate) -> dict[str, Any]:
        return self.admin(
            "POST", "/v1/gates", json={"gate": gate.gate_id, "public_key": gate.key.public_key.hex()}
        )

    def top_up(self, shopper: str, amount: int, reference: str | None = None) -> dict[str, Any]:
        body = {"amount": amount, "reference": reference or os.urandom(8).hex()}
        return self.admin("POST", f"/v1/shoppers/{shopper}/top-ups", json=body)

    def reconcile(self) -> dict[str, Any]:
        return self.system.reconcile()

    # -- the phone and the gate, over HTTP ------------------------------------------------------------

    def place_hold(self, shopper: SimShopper, estimate: int) -> bytes:
        """Ask for a hold as the phone does; return the signed voucher bytes (AssertionError if refused)."""
        raw = shopper.hold_request(self.store_id, self.currency, estimate, self.now())
        response = self.http.post(self.url + "/v1/holds", json={"request": b64(raw)}, timeout=10)
        if response.status_code != 201:
            raise AssertionError(f"hold refused: {response.status_code} {response.text}")
        return unb64(response.json()["voucher"], "voucher")

    def post_charge(self, charge: bytes) -> requests.Response:
        return self.http.post(self.url + "/v1/charges", json={"charge": b64(charge)}, timeout=10)

    def down(self) -> None:
        """Stop serving (connections refused) while keeping the payment system's state."""
        self.server.close()

    def up(self) -> None:
        """Serve again on the same port (nothing if it is serving)."""
        if self.server.closed:
            self.server = ServerThread(self.app, port=self.server.port, max_body=MAX_BODY_BYTES)

    def close(self) -> None:
        self.http.close()
        self.server.close()
        self.system.close()
        self.bank.close()

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
