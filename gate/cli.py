"""The `selfcheckout` command: one entry point for technicians, maintainers and the demo.

Each package keeps its own click group (`payments.cli`, `phone.cli`, ...); this module only gathers them,
and turns our own errors into one-line messages at the edge.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gate import config as lane_config
from gate.errors import GateError


class _Root(click.Group):
    """Turn any of the project's own errors into a one-line message and exit status 2."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except GateError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Root, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Exit-lane controller for self-checkout: signed lists checked at the gate, charged later."""


@main.group()
def config() -> None:
    """Lane config files."""


@config.command("check")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--no-key-files", is_flag=True, help="Do not check that the key files exist and are private.")
def config_check(path: Path, no_key_files: bool) -> None:
    """Validate a lane config file and print a summary, or one line naming the bad key."""
    cfg = lane_config.load(path, check_key_files=not no_key_files)
    click.echo(
        f"{path}: ok (store {cfg.lane.store_id}, gate {cfg.lane.gate_id}, "
        f"{len(cfg.payments.public_key_files)} trusted payment-system key(s))"
    )


@main.group()
def gate() -> None:
    """The exit gate: check presentations, run the lane, read its events."""


def _add_package_groups() -> None:
    from payments.cli import group as payments_group

    main.add_command(payments_group, "payments")


_add_package_groups()

if __name__ == "__main__":
    sys.exit(main())
