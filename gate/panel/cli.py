"""`selfcheckout panel`: the people who may use a lane's panel (add, remove, reset a secret, list).

A secret is read from the terminal twice (never from the command line, where `ps` and the shell history
would keep it), or from one line of standard input with --secret-stdin for install scripts.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from gate import config as lane_config
from gate.panel import Accounts, accounts_path
from gate.panel.accounts import ROLES

_CONFIG = click.option(
    "--config", "config_path", required=True, type=click.Path(path_type=Path), help="Lane config."
)
_STDIN = click.option("--secret-stdin", is_flag=True, help="Read the secret from one line of standard input.")


@click.group("panel", context_settings={"help_option_names": ["-h", "--help"]})
def panel() -> None:
    """The technician panel's accounts: technicians and attendants, each with a name and a secret."""


def _open(config_path: Path) -> Accounts:
    cfg = lane_config.load(config_path, check_key_files=False)
    return Accounts(accounts_path(cfg))


def _secret(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(
        click.prompt(
            "Password or PIN (6+ digits, or 8+ characters)", hide_input=True, confirmation_prompt=True
        )
    )


@panel.command("add-user")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What this person may do.")
@_CONFIG
@_STDIN
def add_user(name: str, role: str, config_path: Path, secret_stdin: bool) -> None:
    """Add a person who may log in to the panel."""
    with _open(config_path) as accounts:
        account = accounts.add(name, role, _secret(secret_stdin))
        click.echo(f"{account.name}: {account.role} added to {accounts.path}")


@panel.command("remove-user")
@click.argument("name")
@_CONFIG
def remove_user(name: str, config_path: Path) -> None:
    """Remove a person; their open sessions end at once."""
    with _open(config_path) as accounts:
        accounts.remove(name)
        click.echo(f"{name}: removed; their sessions have ended")


@panel.command("reset-secret")
@click.argument("name")
@_CONFIG
@_STDIN
def reset_secret(name: str, config_path: Path, secret_stdin: bool) -> None:
    """Give a person a new password or PIN; their open sessions end at once."""
    with _open(config_path) as accounts:
        accounts.reset(name, _secret(secret_stdin))
        click.echo(f"{name}: new secret set; their sessions have ended")


@panel.command("users")
@_CONFIG
def users(config_path: Path) -> None:
    """List the people who may log in, with their role."""
    with _open(config_path) as accounts:
        found = accounts.all()
        for a in found:
            click.echo(f"{a.name}\t{a.role}\tsince {time.strftime('%Y-%m-%d', time.localtime(a.created_at))}")
        if not found:
            click.echo(f"no accounts in {accounts.path}: add one with `selfcheckout panel add-user`")
