"""`sudo scripts/install lane|payments|bank ...` and `sudo scripts/install --uninstall [--purge]`.

Each failure is one line, `install: ...`, and exit status 1; the long outputs (apt, pip) are in the log.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys

from selfcheckout.install import InstallError, layout, steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/install",
        description="Install (or, with --uninstall, remove) a self-checkout lane, payment system or "
        "simulated bank on this Debian machine as systemd services. Safe to run again: keys, tokens, "
        "configs and databases that exist are kept.",
    )
    parser.add_argument("roles", nargs="*", metavar="ROLE", help="lane, nats, payments, bank")
    parser.add_argument(
        "--uninstall", action="store_true", help="remove the services, the venv and the files"
    )
    parser.add_argument(
        "--purge", action="store_true", help="with --uninstall: also keys, configs, data, user"
    )
    parser.add_argument(
        "--scanner", action="append", default=[], metavar="VID:PID", help="USB ids of a scanner model to name"
    )
    args = parser.parse_args(argv)
    say = lambda line: print(f"install: {line}", flush=True)  # noqa: E731
    try:
        _check(args)
        if args.uninstall:
            steps.uninstall(purge=args.purge, say=say)
        else:
            steps.install([layout.ROLES[r] for r in args.roles], scanners=args.scanner, say=say)
    except InstallError as exc:
        print(f"install: {exc}", file=sys.stderr)
        return 1
    if not args.uninstall:
        say("done; next steps: docs/operations.md")
    return 0


def _check(args: argparse.Namespace) -> None:
    if args.uninstall and args.roles:
        raise InstallError("--uninstall takes no role: it removes everything the install put here")
    if args.purge and not args.uninstall:
        raise InstallError("--purge goes with --uninstall")
    if not args.uninstall and not args.roles:
        raise InstallError("name what to install: lane, nats, payments or bank (several at once for a lab)")
    for role in args.roles:
        if role not in layout.ROLES:
            raise InstallError(f"no role {role!r}: lane, nats, payments or bank")
    for scanner in args.scanner:
        if not re.fullmatch(r"[0-9a-fA-F]{4}:[0-9a-fA-F]{4}", scanner):
            raise InstallError(f"--scanner {scanner}: expected USB vendor and product ids as VID:PID")
    if os.geteuid() != 0:
        raise InstallError("run as root: sudo scripts/install ...")
    for tool in ("dpkg-query", "apt-get", "useradd", "systemctl", "setpriv"):
        if shutil.which(tool) is None:
            raise InstallError(f"no {tool} here: the install is for Debian 12 or Raspberry Pi OS (bookworm)")
    if sys.version_info < (3, 11):  # noqa: UP036 - Debian's python3 runs this, not the project's
        raise InstallError(
            f"python3 is {sys.version.split()[0]}; the project needs 3.11 (Debian 12) or newer"
        )


if __name__ == "__main__":
    sys.exit(main())
