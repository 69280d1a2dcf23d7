"""`selfcheckout gate init | backup | restore | prune`: the lane database made once, copied online, brought
back, kept to its retention."""

from __future__ import annotations

from pathlib import Path

import click

from gate import config as lane_config
from gate.lane_cli import CONFIG_OPTION


@click.command("init")
@CONFIG_OPTION
def init_command(config_path: Path) -> None:
    """Make the lane's database ([lane] database) with a new random instance id; never replaces one.

    Enrol the gate at the payment system afterwards with this instance id: a gate whose database was made
    anew then takes back what the payment system knows it decided before it decides anything.
    """
    from gate.store.files import init_database

    cfg = lane_config.load(config_path, check_key_files=False)
    instance = init_database(cfg.lane.database)
    click.echo(f"made {cfg.lane.database}: instance {instance}")


@click.command("backup")
@click.argument("target", type=click.Path(path_type=Path, dir_okay=False))
@CONFIG_OPTION
def backup_command(target: Path, config_path: Path) -> None:
    """Copy the lane's database to TARGET, consistent while the lane runs (SQLite's online backup)."""
    from gate.store.files import backup

    cfg = lane_config.load(config_path, check_key_files=False)
    backup(cfg.lane.database, target)
    click.echo(f"backed {cfg.lane.database} up to {target} ({target.stat().st_size:,} bytes)")


@click.command("restore")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False))
@CONFIG_OPTION
def restore_command(source: Path, config_path: Path) -> None:
    """Put the backup SOURCE in the place of the lane's database; refused while the lane runs.

    The database it replaces is kept beside it (`<name>.replaced-<time>`).
    """
    from gate.store.files import restore

    cfg = lane_config.load(config_path, check_key_files=False)
    kept = restore(source, cfg.lane.database)
    click.echo(
        f"restored {source} to {cfg.lane.database}" + (f"; the replaced one is {kept}" if kept else "")
    )


@click.command("prune")
@CONFIG_OPTION
def prune_command(config_path: Path) -> None:
    """Prune now by [retention] (gate run also does, every prune_every_s); prints what was removed."""
    import time

    from gate.pruner import prune_now
    from gate.store import GateStore

    cfg = lane_config.load(config_path, check_key_files=False)
    with GateStore(cfg.lane.database, create=False) as store:
        pruned = prune_now(store, cfg, time.time())
    click.echo(
        f"pruned {pruned.outbox} settled charge(s), {pruned.events} decision(s), {pruned.lane_events} lane"
        f" event(s), {pruned.used_lists} used list id(s) past their validity"
    )
