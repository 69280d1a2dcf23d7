"""What every part of the payment system shares: its settings, database, clock, signing key and bank."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gate.config import Gs1Layout
from gate.protocol.keys import SigningKey, TrustedKeys
from payments.bank import BankConnector
from payments.db import Database
from payments.errors import BankUnavailable, PaymentsError


@dataclass(frozen=True, kw_only=True)
class PaymentsConfig:
    """Everything the payment system needs; create_app(config) and the `run` command build one.

    `database` is a SQLite file (or ":memory:") for one store, or a postgresql:// URL shared by several
    processes. `settle_workers` threads take accepted charges from the settlement queue (0: only the
    sweep and the older one-charge flow settle). A claim on a charge lasts `settle_lease_s`; a process
    killed while holding one leaves it to another worker after that time.
    """

    database: str | Path
    store_id: str
    currency: str
    key: SigningKey | None = None
    bank: BankConnector | None = None
    admin_token: str | None = None
    former_public_keys: tuple[bytes, ...] = ()
    hold_ttl_s: int = 4 * 3600
    charge_grace_s: int = 3 * 86400
    request_skew_s: int = 300
    placing_timeout_s: int = 120
    settle_workers: int = 0
    settle_batch: int = 64
    settle_lease_s: int = 60
    bank_concurrency: int = 32
    max_batch: int = 500
    # The store's GS1 price- and weight-embedded barcode layouts, signed in every feed page for the phones;
    # the same as every lane's [[barcodes.gs1]].
    gs1: tuple[Gs1Layout, ...] = ()
    db_connections: int = 16  # PostgreSQL: the most connections this process keeps (its pool)
    clock: Callable[[], float] = field(default=time.time)


@dataclass
class Context:
    """One per process; the parts (holds, intake, settlement...) each keep a reference to it."""

    config: PaymentsConfig
    db: Database
    trusted: TrustedKeys

    def now(self) -> int:
        return int(self.config.clock())

    @property
    def key(self) -> SigningKey:
        if self.config.key is None:
            raise PaymentsError("this payment system was started without its signing key")
        return self.config.key

    @property
    def bank(self) -> BankConnector:
        if self.config.bank is None:
            raise BankUnavailable("this payment system was started without a bank connector")
        return self.config.bank
