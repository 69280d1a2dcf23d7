"""The `selfcheckout` command: one entry point for technicians, maintainers and the demo.

This package is the composition root of the whole store. Each component keeps its own click groups
(`gate.cli`, `payments.cli`, `phone.cli`); only this module gathers them, so the gate never imports the phone
or the payment system. Every package's own errors, and the hardware's, become one-line messages here.
"""

from __future__ import annotations

import sys

import click

from drivers.errors import DriverError
from gate.cli import config as config_group
from gate.cli import doctor_command
from gate.cli import gate as gate_group
from gate.errors import GateError
from gate.panel.cli import panel as panel_group
from kiosk.cli import kiosk_group
from kiosk.errors import KioskError
from payments.cli import group as payments_group
from phone.cli import phone_group
from phone.errors import PhoneError
from selfcheckout.demo import demo_command


class _Root(click.Group):
    """Turn any of the project's own errors, and the hardware's, into a one-line message and exit status 1."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (GateError, DriverError, PhoneError, KioskError) as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Root, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="selfcheckout", message="selfcheckout %(version)s")
def main() -> None:
    """Exit-lane controller for self-checkout: signed lists checked at the gate, charged later."""


main.add_command(config_group, "config")
main.add_command(gate_group, "gate")
main.add_command(kiosk_group, "kiosk")
main.add_command(panel_group, "panel")
main.add_command(payments_group, "payments")
main.add_command(phone_group, "phone")
main.add_command(demo_command)
main.add_command(doctor_command)

if __name__ == "__main__":
    sys.exit(main())
