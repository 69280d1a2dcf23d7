"""`selfcheckout payments ...`: run the store payment system and the simulated bank (keygen, init, run,
bank), and administer them (payments.admin_cli: enrol-gate, enrol-shopper, top-up, price, reconcile, sweep).
"""

from __future__ import annotations

import threading
from pathlib import Path

import click

from gate.protocol.keys import SigningKey, write_public_key, write_secret_key
from payments import admin_cli
from payments.system import PaymentSystem

SWEEP_STOP_S = 30  # at a stop, how long `payments run` waits for a sweep under way to end its round


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
    settings = ps_config.system_config(cfg, with_key=False)
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
    config = ps_config.system_config(cfg, with_key=True)
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


for _command in admin_cli.COMMANDS:
    group.add_command(_command)
