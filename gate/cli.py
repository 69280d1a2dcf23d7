"""The gate's commands: `config` (lane config files) and `gate` (check, import, keys, run, events).

`selfcheckout.cli` gathers these groups with the other packages' under the one `selfcheckout` command and
turns every package's errors into one-line messages at the edge; nothing here knows of the phone or the
payment system.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gate import config as lane_config


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def config() -> None:
    """Lane config files."""


@config.command("check")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--no-key-files", is_flag=True, help="Do not check the key files (exist, private, hold a valid key)."
)
def config_check(path: Path, no_key_files: bool) -> None:
    """Validate a lane config file and the key files it names, as `gate run` does at start.

    Prints a summary, or every mistake (one line each, naming the key) and exits 1.
    """
    try:
        cfg = lane_config.load(path, check_key_files=not no_key_files)
    except lane_config.ConfigError as exc:
        for line in exc.problems:
            click.echo(f"Error: {line}", err=True)
        sys.exit(1)
    click.echo(
        f"{path}: ok (store {cfg.lane.store_id}, gate {cfg.lane.gate_id}, "
        f"{len(cfg.payments.public_key_files)} trusted payment-system key(s))"
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def gate() -> None:
    """The exit gate: check presentations, run the lane, read its events."""


_VERDICT_EXIT = {"pass": 0, "deny": 3, "attendant": 4}


@gate.command("check")
@click.argument("presentation_file", type=click.Path(path_type=Path, allow_dash=True))
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Lane config.")
@click.option(
    "--challenge",
    "challenge_file",
    type=click.Path(path_type=Path),
    help="The ExitChallenge the gate sent (CBOR or hex). Without it the answer's own nonce is assumed.",
)
@click.option("--now", type=float, help="Judge as of this unix time (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def gate_check(
    presentation_file: Path, config_path: Path, challenge_file: Path | None, now: float | None, as_json: bool
) -> None:
    """Judge a recorded exit presentation (CBOR or hex) against this lane's catalog, state and keys.

    Prints the verdict, every reason with its code, and the time each step took. Nothing is written.
    Exit status: 0 pass, 3 deny, 4 attendant (1 for an error before any verdict).
    """
    import json
    import time

    from gate.legality.tools import check_file

    cfg = lane_config.load(config_path, check_key_files=False)
    decision, assumed = check_file(
        cfg, presentation_file, challenge_file, time.time() if now is None else now
    )
    if as_json:
        click.echo(json.dumps({**decision.to_json(), "challenge_assumed": assumed}, indent=1))
    else:
        click.echo(f"verdict: {decision.verdict}")
        if assumed:
            click.echo("(no --challenge: the answer's own gate and nonce were taken as the challenge)")
        for r in decision.reasons:
            click.echo(f"  {r.code} [{r.kind}]: {r.message}")
        steps = ", ".join(f"{k} {v * 1000:.2f} ms" for k, v in decision.timings.items())
        click.echo(f"timings: {steps}")
    sys.exit(_VERDICT_EXIT[decision.verdict])


@gate.command("import-catalog")
@click.argument("csv_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Lane config.")
@click.option("--valid-from", type=int, help="Unix time rows without valid_from start at (default: now).")
def gate_import_catalog(csv_file: Path, config_path: Path, valid_from: int | None) -> None:
    """Import a catalog CSV (code,name,category,unit,price,currency, then any of valid_from, min_grams,
    max_grams, min_price, max_price) into the gate database.

    One transaction: a bad line leaves the catalog as it was. Prices are added as history, never overwritten.
    """
    import time

    from gate.catalog import count_rows, read_csv
    from gate.store import GateStore

    cfg = lane_config.load(config_path, check_key_files=False)
    start = int(time.time()) if valid_from is None else valid_from
    with (
        GateStore(cfg.lane.database, create=False) as store,
        click.progressbar(length=count_rows(csv_file), label=f"importing {csv_file.name}") as bar,
    ):
        result = store.import_catalog(read_csv(csv_file, default_valid_from=start), progress=bar.update)
    rate = result.rows / result.seconds if result.seconds else 0
    click.echo(
        f"{result.rows} rows: {result.products_added} new products, {result.prices_added} new prices "
        f"in {result.seconds:.2f} s ({rate:,.0f} rows/s) into {cfg.lane.database}"
    )


@gate.command("requeue")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Lane config.")
@click.option("--all", "every", is_flag=True, help="Every flagged charge (else name them with --charge).")
@click.option("--charge", "charges", multiple=True, help="A flagged charge id (32 hex digits).")
def gate_requeue(config_path: Path, every: bool, charges: tuple[str, ...]) -> None:
    """Send flagged charges to the payment system again, after fixing what refused them.

    The running lane's forwarder picks them up at its next round.
    """
    import time

    from gate.store import GateStore

    if every == bool(charges):
        raise click.UsageError("give either --all or one or more --charge")
    cfg = lane_config.load(config_path, check_key_files=False)
    with GateStore(cfg.lane.database) as store:
        if every:
            count = store.outbox_requeue_flagged(time.time())
        else:
            for charge in charges:
                try:
                    charge_id = bytes.fromhex(charge)
                except ValueError as exc:
                    raise click.UsageError(f"--charge {charge!r} is not hex") from exc
                store.outbox_requeue(charge_id, time.time())
            count = len(charges)
    click.echo(f"{count} flagged charge(s) queued to send again")


@gate.command("keygen")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing key.")
def gate_keygen(path: Path, force: bool) -> None:
    """Write a new Ed25519 secret key to PATH (mode 0600) and its public key to PATH.pub."""
    from gate.protocol.keys import SigningKey, write_public_key, write_secret_key

    pub = path.with_name(path.name + ".pub")
    if not force and (path.exists() or pub.exists()):
        raise click.ClickException(f"{path} or {pub} exists; pass --force to replace it")
    key = SigningKey.generate()
    write_secret_key(path, key)
    write_public_key(pub, key.public_key)
    click.echo(f"wrote {path} (secret, 0600) and {pub}: key id {key.key_id}")


@click.command("doctor")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Lane config.")
@click.option("--mock-gpio", is_flag=True, help="Check against gpiozero's MockFactory (bench, tests).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object a check.")
def doctor_command(config_path: Path, mock_gpio: bool, as_json: bool) -> None:
    """Check everything `gate run` needs: config and keys, reader, scanner, GPIO, database, disk, clock,
    the payment system (this gate still enrolled) and the feed's age. Exit status 1 on any problem."""
    import dataclasses
    import json

    from gate.doctor import Probes, doctor

    probes = Probes()
    if mock_gpio:
        from gpiozero.pins.mock import MockFactory

        probes.pin_factory = MockFactory()
    checks = doctor(config_path, probes)
    width = max(len(c.name) for c in checks)
    for c in checks:
        if as_json:
            click.echo(json.dumps(dataclasses.asdict(c), sort_keys=True))
            continue
        click.echo(f"{c.name:<{width}}  {'ok' if c.ok else 'PROBLEM':<7}  {c.sentence}")
        for line in c.detail.splitlines():
            click.echo(f"{'':<{width}}  {'':<7}    {line}")
    problems = sum(not c.ok for c in checks)
    if problems:
        if not as_json:
            click.echo(f"{problems} problem(s): `gate run` would not run as it should.", err=True)
        sys.exit(1)


@gate.command("nats-node")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Lane config.")
@click.option("--print", "print_only", is_flag=True, help="Print the node's nats-server config and stop.")
def gate_nats_node(config_path: Path, print_only: bool) -> None:
    """Run this lane's nats-server node (selfcheckout-nats.service): its config is derived from the lane
    config's [peers] (own node first, the others as cluster routes), its JetStream files kept beside the
    lane database. The lanes of the store share their passes through these nodes."""
    import os
    import shutil

    from gate.peers.server import lane_node, node_config

    cfg = lane_config.load(config_path, check_key_files=False)
    if cfg.peers is None:
        raise click.ClickException(
            f"{config_path}: no [peers] section: this lane shares its passes with none"
        )
    node, nodes = lane_node(cfg.lane.gate_id, cfg.peers.servers, cfg.peers.cluster_port)
    state = cfg.lane.database.resolve().parent
    text = node_config(node, state / "nats", nodes)
    if print_only:
        click.echo(text, nl=False)
        return
    binary = shutil.which("nats-server")
    if binary is None:
        raise click.ClickException("nats-server is not installed (apt-get install nats-server)")
    conf = state / "nats.conf"
    conf.write_text(text)
    os.execv(binary, [binary, "-c", str(conf)])


def _add_lane_commands() -> None:
    from gate.database_cli import backup_command, init_command, prune_command, restore_command
    from gate.lane_cli import events_command, run_command
    from gate.scanner_cli import scanner_test_command

    gate.add_command(run_command)
    gate.add_command(events_command)
    gate.add_command(init_command)
    gate.add_command(backup_command)
    gate.add_command(restore_command)
    gate.add_command(prune_command)
    gate.add_command(scanner_test_command)


_add_lane_commands()
