"""`selfcheckout payments ...`: run the store payment system and the simulated bank, and administer them.

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
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gate.errors import ConfigError
from gate.protocol.keys import (
    SigningKey,
    read_public_key,
    read_secret_key,
    write_public_key,
    write_secret_key,
)
from payments.bank import HttpBank
from payments.context import PaymentsConfig
from payments.db import is_postgres_url, open_database, read_settings
from payments.db.engines import driver_message, redact_url
from payments.errors import PaymentsError
from payments.system import PaymentSystem

_SETTINGS = ("store_id", "currency")  # what `payments init` / `payments run` write into a new database
SWEEP_STOP_S = 30  # at a stop, how long `payments run` waits for a sweep under way to end its round


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


@click.group()
def group() -> None:
    """The store payment system (holds, charges, notices, feeds) and its simulated bank.

    The administration commands (enrol-gate, enrol-shopper, top-up, price, reconcile, sweep) name the
    database with --db (a SQLite file, or a postgresql:// URL) or with --config payments.toml.
    """


@group.command()
@click.option("--key", "key_path", required=True, type=click.Path(path_type=Path), help="Secret key file.")
@click.option("--public", "public_path", type=click.Path(path_type=Path), help="Default: KEY with .pub.")
@click.option("--force", is_flag=True, help="Overwrite an existing key file.")
def keygen(key_path: Path, public_path: Path | None, force: bool) -> None:
    """Make the payment system's Ed25519 key pair (give the .pub file to every gate)."""
    public_path = public_path or key_path.with_suffix(".pub")
    if key_path.exists() and not force:
        raise click.ClickException(f"{key_path} exists; pass --force to replace it (gates trust the old key)")
    key = SigningKey.generate()
    write_secret_key(key_path, key)
    write_public_key(public_path, key.public_key)
    click.echo(f"key id {key.key_id}: secret {key_path}, public {public_path}")


_CONFIG = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The payment system's config file (TOML; see config/payments.example.toml).",
)


@group.command()
@_CONFIG
def init(config_path: Path) -> None:
    """Make the signing key, the admin token and the database the config names; never overwrites."""
    from payments import config as ps_config

    cfg = ps_config.load(config_path)
    for line in ps_config.init(cfg):
        click.echo(line)
    settings = _settings(cfg, with_key=False)
    PaymentSystem(settings).close()
    where = str(settings.database).split("@")[-1]  # a URL's credentials stay out of the output
    click.echo(f"database {where} for store {cfg.store.store_id} in {cfg.store.currency}")


@group.command()
@_CONFIG
def run(config_path: Path) -> None:
    """Serve the payment system's HTTP API (cheroot, payments/serving.py), as the config says.

    SIGTERM (systemctl stop) or Ctrl-C stops it gracefully: no new requests, those in flight answered, the
    settlement workers' current batches finished, then one line and exit status 0.
    """
    from payments import config as ps_config
    from payments.app import MAX_BODY_BYTES as app_max_body
    from payments.app import create_app
    from payments.serving import serve

    cfg = ps_config.load(config_path)
    config = _settings(cfg, with_key=True)
    app = create_app(config)
    system: PaymentSystem = app.extensions["payments"]
    stop = threading.Event()
    sweeper = None
    if cfg.timings.sweep_interval_s > 0:
        args = (system, cfg.timings.sweep_interval_s, stop)
        sweeper = threading.Thread(target=_sweeper, args=args, name="sweeper", daemon=True)
        sweeper.start()
    host, port = cfg.listen.host, cfg.listen.port
    banner = f"payment system for store {config.store_id} on http://{host}:{port} (key {config.key.key_id})"
    try:
        signal_name = serve(app, host, port, threads=cfg.listen.threads, banner=banner, max_body=app_max_body)
    finally:
        # The server has answered its last request. A sweep under way ends its round; then the settlement
        # workers finish the batch each holds (PaymentSystem.close), so no charge stays claimed by this
        # process for settle_lease_s: another process, or this one started again, takes the rest at once.
        stop.set()
        if sweeper is not None:
            sweeper.join(timeout=SWEEP_STOP_S)
        system.close()
    click.echo(f"payment system for store {config.store_id} stopped{_on(signal_name)}")


def _on(signal_name: str | None) -> str:
    return f" on {signal_name}" if signal_name else ""


def _settings(cfg: Any, *, with_key: bool) -> PaymentsConfig:
    """What PaymentSystem needs, from the config file (the key and bank only for serving)."""
    from payments import config as ps_config

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
        admin_token=ps_config.read_admin_token(cfg) if with_key else None,
        former_public_keys=tuple(read_public_key(p) for p in cfg.store.former_key_files),
        hold_ttl_s=cfg.timings.hold_ttl_s,
        charge_grace_s=cfg.timings.charge_grace_s,
        settle_workers=cfg.settlement.workers if with_key else 0,
        settle_batch=cfg.settlement.batch,
        settle_lease_s=cfg.settlement.lease_s,
        bank_concurrency=cfg.settlement.bank_concurrency,
        gs1=tuple(cfg.barcodes.gs1),
    )


def _sweeper(system: PaymentSystem, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            system.sweep()
        except Exception as exc:  # keep sweeping; the next round retries
            click.echo(f"sweep failed: {exc}", err=True)


@group.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8700, show_default=True, type=int)
@click.option("--latency-ms", default=0, show_default=True, type=int, help="Delay of every bank call.")
@click.option("--decline-rate", default=0.0, show_default=True, type=float, help="Share of holds declined.")
@click.option("--seed", type=int, help="Seed of the random declines.")
@click.option("--threads", default=8, show_default=True, type=int, help="Calls served at once.")
def bank(host: str, port: int, latency_ms: int, decline_rate: float, seed: int | None, threads: int) -> None:
    """Serve the simulated bank (POST /admin/faults switches outages and declines on and off).

    SIGTERM or Ctrl-C stops it once the calls in flight are answered, with one line and exit status 0.
    """
    import random

    from payments.banksim import BankSimulator, create_bank_app
    from payments.serving import serve

    sim = BankSimulator(latency_ms=latency_ms, decline_rate=decline_rate, rng=random.Random(seed))
    banner = f"simulated bank on http://{host}:{port}"
    signal_name = serve(create_bank_app(sim), host, port, threads=threads, banner=banner)
    click.echo(f"simulated bank stopped{_on(signal_name)}")


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


@group.command("enrol-gate")
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


@group.command("enrol-shopper")
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


@group.command("top-up")
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


@group.command()
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


@group.command("reconcile")
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


@group.command()
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
            _settings(cfg, with_key=False),
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
