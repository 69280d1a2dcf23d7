"""`sudo scripts/install ROLE...`: put a lane, a payment system or the simulated bank on a Debian machine.

Why a script and not a Debian package: a lane's maintainer clones the repository on the Pi anyway (to read
the docs, to update with `git pull`), the same command works on Debian 12 amd64, Raspberry Pi OS arm64 and
armhf without a package build per architecture, and a test runs it for real on a build machine. It is
idempotent: run again after an update, it changes what changed and keeps every key, token, config and
database that exists. `--uninstall` takes it all off again but keeps keys and data unless `--purge`.

This package runs under the system's python3 before any virtualenv exists, so it imports the standard
library only.
"""

from __future__ import annotations


class InstallError(Exception):
    """A step of the install cannot be done; the message is the one line the maintainer sees."""
