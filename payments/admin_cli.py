"""`selfcheckout payments enrol-gate|enrol-shopper|top-up|price|reconcile|sweep`: administering a store's
payment system.

The administration commands (enrol-gate, enrol-shopper, top-up, price, reconcile, sweep) work on the
database directly, so a store can use them with the server running or not; the store id and currency are
read from the database. They take it as `--db` (a SQLite file, or a chain's postgresql:// URL) or as
`--config payments.toml` (the database `payments run` would use: `database_url`, else `database`), exactly
one of the two. They never make a database: a missing SQLite file is refused, and so is a database without
the store id and currency `payments init` (or the first `payments run`) wrote, a PostgreSQL one before
anything is written to it (`_offline`). `sweep` also signs and calls the bank: with `--config` it takes
the key file, the bank and the timings from the config, as `run` does; with `--db`, `--key` and
`--bank-url` name them. Every failure is one line; a URL is shown without its password.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gate.errors import ConfigError
from gate.protocol.keys import read_public_key, read_secret_key
from payments.bank import HttpBank
from payments.context import PaymentsConfig
from payments.db import is_postgres_url, open_database, read_settings
from payments.db.engines import driver_message, redact_url
from payments.errors import PaymentsError
from payments.system import PaymentSystem

_SETTINGS = ("store_id", "currency")  # what `payments init` / `payments run` write into a new database


def _db_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--db PATH_OR_URL` or `--config FILE`: where an administration command finds the database."""
    command = click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        help="The payment system's config (payments.toml): the database it names (its database_url, "
        "else its database). Instead of --db.",
    )(command)
    return click.option(
        "--db",
        "database",
        metavar="PATH_OR_URL",
        help="The payment system's database: a SQLite file, or a chain's postgresql:// URL. "
        "Instead of --config.",
    )(command)


def _offline(database: str | None, config_path: Path | None) -> PaymentSystem:
    """The payment system on an existing database, without key or bank, for administration.

    A database is used only when it holds the settings `payments init` or the first `payments run` wrote
    (store id and currency). Opening it for the payment system (`open_database`) brings its schema up to
    date, and on an empty database that makes one, so what is checked before opening differs:
    - SQLite: a database that does not exist would be created, so a missing file is refused; an existing
      file is opened as `payments run` opens it.
    - PostgreSQL: the database a URL names always exists (`createdb` makes it empty), so existence says
      nothing, and `open_database` would migrate the whole schema into it: a store's database before
      `payments init`, or a mistyped name that is another application's database. So its settings are
      read first on a plain connection that writes nothing, and it is opened only when they are there.
    """
    target = _target(database, config_path)
    settings = _postgres_settings(target) if is_postgres_url(target) else _sqlite_settings(Path(target))
    if any(name not in settings for name in _SETTINGS):
        raise click.ClickException(
            f"{_shown(target)}: not a payment-system database (it holds no store id and currency); "
            "run `selfcheckout payments init --config payments.toml` or `payments run` on it first"
        )
    config = PaymentsConfig(
        database=target, store_id=settings["store_id"], currency=settings["currency"], db_connections=2
    )
    try:
        return PaymentSystem(config)
    except PaymentsError as exc:
        raise click.ClickException(str(exc)) from exc


def _target(database: str | None, config_path: Path | None) -> str | Path:
    """The database --db names, or the one the config names (database_url, else database), as `run`
    reads it; exactly one of the two."""
    if database is not None and config_path is not None:
        raise click.UsageError("--db and --config both given: name the database with one of them")
    if database is not None:
        if is_postgres_url(database):
            return database
        if Path(database).is_dir():
            raise click.BadParameter(f"{database} is a folder, not a database file", param_hint="--db")
        return Path(database)
    if config_path is None:
        raise click.UsageError("name the database: --db PATH_OR_URL, or --config payments.toml")
    from payments import config as ps_config

    try:
        cfg = ps_config.load(config_path)
    except ConfigError as exc:  # the line `payments run` stops with
        raise click.ClickException(str(exc)) from exc
    return cfg.store.database_in_use


def _sqlite_settings(database: Path) -> dict[str, str]:
    if not database.exists():
        raise click.ClickException(f"{database}: no such database (start `payments run` once to create it)")
    try:
        db = open_database(database)
    except PaymentsError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        with db.read() as tx:
            return read_settings(tx)
    finally:
        db.close()


def _postgres_settings(url: str) -> dict[str, str]:
    """The settings of the database `url` names, read without writing (none: {}); one line on failure."""
    try:
        import psycopg
    except ImportError as exc:
        raise click.ClickException(
            "PostgreSQL needs psycopg and psycopg-pool: pip install 'selfcheckout[postgres]'"
        ) from exc
    try:
        conn = psycopg.connect(url, connect_timeout=10, autocommit=True)
    except psycopg.Error as exc:
        raise click.ClickException(
            f"cannot connect to PostgreSQL at {redact_url(url)}: {driver_message(exc, url)}"
        ) from exc
    with conn:
        try:
            row = conn.execute("SELECT to_regclass('settings') IS NOT NULL").fetchone()
            if not (row and row[0]):
                return {}
            rows = conn.execute("SELECT name, value FROM settings").fetchall()
        except psycopg.Error as exc:
            raise click.ClickException(
                f"{redact_url(url)}: cannot read its settings: {driver_message(exc, url)}"
            ) from exc
    return {str(name): str(value) for name, value in rows}


def _shown(target: str | Path) -> str:
    return redact_url(str(target)) if is_postgres_url(target) else str(target)


def _echo(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True))


@click.command("enrol-gate")
@_db_options
@click.option("--gate", required=True, help="The gate id from its lane config.")
@click.option("--public-key-file", required=True, type=click.Path(path_type=Path))
@click.option("--instance", help="The gate database's instance id, as `selfcheckout gate init` printed it.")
def enrol_gate(
    database: str | None, config_path: Path | None, gate: str, public_key_file: Path, instance: str | None
) -> None:
    """Enrol a gate's public key, so the payment system accepts its charges."""
    system = _offline(database, config_path)
    try:
        _echo(system.enrol_gate(gate, read_public_key(public_key_file), instance)[1])
    finally:
        system.close()


@click.command("enrol-shopper")
@_db_options
@click.option("--shopper", required=True)
@click.option("--public-key", "public_key", required=True, help="The phone's public key, 64 hex digits.")
@click.option("--bank-account", help="The bound bank account (none: stored value only).")
def enrol_shopper(
    database: str | None, config_path: Path | None, shopper: str, public_key: str, bank_account: str | None
) -> None:
    """Enrol a shopper with their phone's public key."""
    system = _offline(database, config_path)
    try:
        _echo(system.enrol_shopper(shopper, bytes.fromhex(public_key), bank_account)[1])
    except ValueError as exc:
        raise click.ClickException(f"--public-key: {exc}") from exc
    finally:
        system.close()


@click.command("top-up")
@_db_options
@click.option("--shopper", required=True)
@click.option("--amount", required=True, type=int, help="Minor units.")
@click.option("--reference", required=True, help="Idempotency key of this top-up (e.g. the till receipt).")
def top_up(database: str | None, config_path: Path | None, shopper: str, amount: int, reference: str) -> None:
    """Add stored value (it pays the shopper's debts first)."""
    system = _offline(database, config_path)
    try:
        _echo(system.top_up(shopper, amount, reference)[1])
    finally:
        system.close()


@click.command()
@_db_options
@click.option("--code", required=True)
@click.option("--name", required=True)
@click.option("--category", default="grocery", show_default=True)
@click.option("--unit", default="each", show_default=True)
@click.option("--price", required=True, type=int, help="Minor units per unit.")
@click.option("--valid-from", type=int, help="Unix time (default: now).")
def price(
    database: str | None,
    config_path: Path | None,
    code: str,
    name: str,
    category: str,
    unit: str,
    price: int,
    valid_from: int | None,
) -> None:
    """Set a product's price; gates learn it from the feed."""
    system = _offline(database, config_path)
    item: dict[str, Any] = {"code": code, "name": name, "category": category, "unit": unit, "price": price}
    if valid_from is not None:
        item["valid_from"] = valid_from
    try:
        _echo({"version": system.set_prices([item])})
    finally:
        system.close()


@click.command("reconcile")
@_db_options
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
def reconcile_command(database: str | None, config_path: Path | None, as_json: bool) -> None:
    """Check that the ledger balances; exit status 1 if it does not."""
    system = _offline(database, config_path)
    try:
        report = system.reconcile()
    finally:
        system.close()
    if as_json:
        _echo(report)
    else:
        m, c, h = report["money"], report["charges"], report["holds"]
        click.echo(
            f"charges: {c['count']} for {c['amount']} ({c['settled']} settled); "
            f"stored value {m['stored_value']} + bank {m['bank']} + debt {m['debt']}"
        )
        click.echo(f"holds: {h['count']} {h['by_state']}; open reasons {h['open_reasons']}")
        click.echo(f"debt outstanding {m['debt_outstanding']}; balanced: {report['balanced']}")
        for problem in report["problems"]:
            click.echo(f"PROBLEM: {problem}")
    if not report["balanced"]:
        raise SystemExit(1)


@click.command()
@_db_options
@click.option(
    "--key",
    "key_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The payment system's secret key file. With --db: required. With --config: instead of its "
    "store.key_file.",
)
@click.option(
    "--bank-url",
    help="The bank connector's URL. With --db: required. With --config: instead of its [bank] url.",
)
def sweep(
    database: str | None, config_path: Path | None, key_path: Path | None, bank_url: str | None
) -> None:
    """Release expired holds and finish captures and releases the bank left pending.

    It signs notices and calls the bank: with --config it takes the key file, the bank and the timings from
    the config, as `payments run` does (--key and --bank-url, if given, are used instead of the config's);
    with --db, give --key and --bank-url.
    """
    if database is not None and config_path is None:
        missing = [name for name, given in (("--key", key_path), ("--bank-url", bank_url)) if given is None]
        if missing:
            raise click.UsageError(
                f"--db needs {' and '.join(missing)} (or --config payments.toml, which names the key and the "
                "bank)"
            )
    offline = _offline(database, config_path)
    known = offline.config
    offline.close()
    if config_path is None:
        assert key_path is not None and bank_url is not None
        settings = PaymentsConfig(
            database=known.database,
            store_id=known.store_id,
            currency=known.currency,
            key=read_secret_key(key_path),
            bank=HttpBank(bank_url),
        )
    else:
        from payments import config as ps_config

        cfg = ps_config.load(config_path)  # read already, as _offline checked the database it names
        settings = dataclasses.replace(
            ps_config.system_config(cfg, with_key=False),
            key=read_secret_key(key_path or cfg.store.key_file),
            bank=HttpBank(
                bank_url or cfg.bank.url,
                timeout_s=cfg.bank.timeout_s,
                connections=cfg.settlement.bank_concurrency,
            ),
        )
    system = PaymentSystem(settings)
    try:
        _echo(system.sweep())
    except PaymentsError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        system.close()


COMMANDS = [enrol_gate, enrol_shopper, top_up, price, reconcile_command, sweep]
