"""The `selfcheckout` command: one entry point for technicians, maintainers and the demo.

This package is the composition root of the whole store. Each component keeps its own click groups
(`gate.cli`, `payments.cli`, `phone.cli`); only this module gathers them, so the gate never imports the phone
or the payment system. Every package's own errors, and the hardware's, become one-line messages here.

The groups are imported when a command line names them, not when the root loads: a lane's `gate run` lives
for months next to a nats-server node within a memory budget, and the kiosk's, payment system's, phone's and
demo's modules (several megabytes resident, and most of a second of start-up) are nothing it ever runs.
"""

from __future__ import annotations

import importlib
import sys

import click

from drivers.errors import DriverError
from gate.errors import GateError
from kiosk.errors import KioskError
from phone.errors import PhoneError

# command name -> (module, attribute) of the click command it stands for
_COMMANDS: dict[str, tuple[str, str]] = {
    "config": ("gate.cli", "config"),
    "demo": ("selfcheckout.demo", "demo_command"),
    "doctor": ("gate.cli", "doctor_command"),
    "gate": ("gate.cli", "gate"),
    "kiosk": ("kiosk.cli", "kiosk_group"),
    "panel": ("gate.panel.cli", "panel"),
    "payments": ("payments.cli", "group"),
    "phone": ("phone.cli", "phone_group"),
}


class _Root(click.Group):
    """Load each group on first use, and turn any of the project's own errors, and the hardware's, into a
    one-line message and exit status 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        module, attribute = _COMMANDS[cmd_name]
        return getattr(importlib.import_module(module), attribute)

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (GateError, DriverError, PhoneError, KioskError) as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Root, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="selfcheckout", message="selfcheckout %(version)s")
def main() -> None:
    """Exit-lane controller for self-checkout: signed lists checked at the gate, charged later."""


if __name__ == "__main__":
    sys.exit(main())
