"""The payment system's config file: one TOML file, like the lane's, checked before anything is opened.

A store runs `selfcheckout payments run --config FILE` under systemd, so everything the server needs (store,
currency, bank, keys, token, where to listen, where the database is) lives in a file a maintainer edits,
never in the unit's command line. Mistakes are one line naming the file and the key (gate.config's rules).
`selfcheckout payments init --config FILE` makes the key pair and the admin token the file names.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate import config as rules
from gate.config import BarcodesSection, _currency, _http_url, _ident
from gate.errors import ConfigError
from gate.examples import example
from gate.protocol.keys import (
    SigningKey,
    read_public_key,
    read_secret_key,
    write_public_key,
    write_secret_key,
)
from payments.bank import HttpBank
from payments.context import PaymentsConfig

EXAMPLE = example("payments.example.toml")


@dataclass(frozen=True, kw_only=True)
class StoreSection:
    store_id: str = rules.spec("an id of letters, digits, '.', '_' or '-'", check=_ident)
    currency: str = rules.spec("an ISO 4217 code such as 'EUR'", check=_currency)
    database: Path | None = rules.spec(
        "a path to the payment system's SQLite database, or absent when database_url is given", default=None
    )
    database_url: str | None = rules.spec(
        "a postgresql:// URL (several payment-system processes on one server), or absent",
        check=lambda v: v.startswith(("postgresql://", "postgres://")),
        default=None,
    )
    key_file: Path = rules.spec("a path to the payment system's Ed25519 secret key file")
    former_key_files: list[Path] = rules.spec("a list of former public key files", default_factory=list)
    admin_token_file: Path | None = rules.spec(
        "a path to the back office's admin token, or absent", default=None
    )

    @property
    def database_in_use(self) -> str | Path:
        """The database `payments run` and the administration commands use: database_url, else database."""
        target = self.database_url or self.database
        assert target is not None, "StoreSection is built only with one of the two (_store_problems)"
        return target


def _store_problems(store: StoreSection) -> list[tuple[str, Any, str]]:
    """One store's database is a SQLite file (`database`), a chain's a PostgreSQL URL (`database_url`)."""
    if store.database is None and store.database_url is None:
        return [
            (
                "database",
                None,
                "a value: a path to the payment system's SQLite database, or store.database_url for a "
                "chain's PostgreSQL; one of the two is required",
            )
        ]
    return []


rules.table_rule(StoreSection, _store_problems)


@dataclass(frozen=True, kw_only=True)
class ListenSection:
    host: str = rules.spec("an address to listen on", check=bool, default="127.0.0.1")
    port: int = rules.spec("a TCP port 1-65535", check=lambda v: 1 <= v <= 65535, default=8600)
    threads: int = rules.spec("a count > 0", check=lambda v: v > 0, default=8)


@dataclass(frozen=True, kw_only=True)
class BankSection:
    url: str = rules.spec("an http:// or https:// URL", check=_http_url)
    timeout_s: float = rules.spec("seconds > 0", check=lambda v: v > 0, default=5.0)


@dataclass(frozen=True, kw_only=True)
class TimingsSection:
    hold_ttl_s: int = rules.spec("seconds > 0", check=lambda v: v > 0, default=4 * 3600)
    charge_grace_s: int = rules.spec("seconds >= 0", check=lambda v: v >= 0, default=3 * 86400)
    sweep_interval_s: float = rules.spec(
        "seconds >= 0 (0: no sweeping)", check=lambda v: v >= 0, default=30.0
    )


@dataclass(frozen=True, kw_only=True)
class SettlementSection:
    """The workers that take the money for accepted charges (payments/settlement.py)."""

    workers: int = rules.spec("a count >= 0 (0: only the sweep settles)", check=lambda v: v >= 0, default=4)
    batch: int = rules.spec("a count > 0", check=lambda v: v > 0, default=64)
    lease_s: int = rules.spec("seconds > 0", check=lambda v: v > 0, default=60)
    bank_concurrency: int = rules.spec("a count > 0", check=lambda v: v > 0, default=32)


@dataclass(frozen=True, kw_only=True)
class PaymentsFile:
    store: StoreSection = rules.spec()
    listen: ListenSection = rules.spec(default_factory=ListenSection)
    bank: BankSection = rules.spec()
    timings: TimingsSection = rules.spec(default_factory=TimingsSection)
    settlement: SettlementSection = rules.spec(default_factory=SettlementSection)
    barcodes: BarcodesSection = rules.spec(default_factory=BarcodesSection)
    source: Path = field(default=Path("<memory>"), compare=False)


def example_with(**sections: dict[str, Any]) -> str:
    """The documented example with `sections` laid over it, as TOML text (tests, the bench)."""
    return rules.overlay(EXAMPLE, **sections)


def load(path: str | Path) -> PaymentsFile:
    """Read and validate a payment-system config; relative paths are taken from the file's folder."""
    path = Path(path)
    config: PaymentsFile = rules.build(PaymentsFile, rules.read_toml(path), path)
    return dataclasses.replace(config, source=path)


def read_admin_token(config: PaymentsFile) -> str | None:
    """The admin token, None when the file names none; a missing or readable-by-others file is an error."""
    path = config.store.admin_token_file
    if path is None:
        return None
    try:
        mode = path.stat().st_mode
        token = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(
            f"{config.source}: key 'store.admin_token_file': cannot read {path} ({exc.strerror}); "
            f"make it with `selfcheckout payments init --config {config.source}`"
        ) from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{config.source}: key 'store.admin_token_file': {path} is readable by others "
            f"(mode {stat.S_IMODE(mode):04o}); chmod 600 {path}"
        )
    if len(token) < 16:
        raise ConfigError(f"{config.source}: key 'store.admin_token_file': {path} holds under 16 characters")
    return token


def init(config: PaymentsFile) -> list[str]:
    """Make the key pair and the admin token the config names, keeping any that exist; say what was done.

    Never overwrites: every gate trusts the existing public key, and every back-office client holds the
    existing token.
    """
    done: list[str] = []
    key_file = config.store.key_file
    public = key_file.with_suffix(".pub")
    if key_file.exists():
        done.append(f"kept {key_file}")
    else:
        key = SigningKey.generate()
        write_secret_key(key_file, key)
        write_public_key(public, key.public_key)
        done.append(f"wrote {key_file} (secret, 0600) and {public}: key id {key.key_id}")
    token_file = config.store.admin_token_file
    if token_file is None:
        done.append("no store.admin_token_file: the admin endpoints stay disabled")
    elif token_file.exists():
        done.append(f"kept {token_file}")
    else:
        write_secret(token_file, secrets.token_urlsafe(32))
        done.append(f"wrote {token_file} (admin token, 0600)")
    return done


def write_secret(path: Path, text: str) -> None:
    """A new file readable by its owner only, or a ConfigError naming it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(text + "\n")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror}") from exc


def system_config(cfg: PaymentsFile, *, with_key: bool) -> PaymentsConfig:
    """What PaymentSystem needs, from the config file (the key, the bank and the token only for serving)."""
    return PaymentsConfig(
        database=cfg.store.database_in_use,
        store_id=cfg.store.store_id,
        currency=cfg.store.currency,
        key=read_secret_key(cfg.store.key_file) if with_key else None,
        bank=(
            HttpBank(cfg.bank.url, timeout_s=cfg.bank.timeout_s, connections=cfg.settlement.bank_concurrency)
            if with_key
            else None
        ),
        admin_token=read_admin_token(cfg) if with_key else None,
        former_public_keys=tuple(read_public_key(p) for p in cfg.store.former_key_files),
        hold_ttl_s=cfg.timings.hold_ttl_s,
        charge_grace_s=cfg.timings.charge_grace_s,
        settle_workers=cfg.settlement.workers if with_key else 0,
        settle_batch=cfg.settlement.batch,
        settle_lease_s=cfg.settlement.lease_s,
        bank_concurrency=cfg.settlement.bank_concurrency,
        gs1=tuple(cfg.barcodes.gs1),
    )
