"""Where an install puts things, and what each role needs: one table the install, the uninstall, the
tests and docs/operations.md agree on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2]  # the checkout the install runs from

USER = "selfcheckout"
PREFIX = Path("/opt/selfcheckout")
VENV = PREFIX / "venv"
LOG = PREFIX / "install.log"
ETC = Path("/etc/selfcheckout")
MANIFEST = ETC / "install.json"  # kept by a plain --uninstall, so --purge knows what it made
KEYS = ETC / "keys"
STATE = Path("/var/lib/selfcheckout")
WRAPPER = Path("/usr/local/bin/selfcheckout")
UNIT_DIR = Path("/etc/systemd/system")
TIME_WAIT_DROPIN = UNIT_DIR / "systemd-time-wait-sync.service.d" / "selfcheckout.conf"


@dataclass(frozen=True)
class Role:
    """One thing a machine can be: the packages, groups, extras, files and units it takes."""

    name: str
    apt: tuple[str, ...]  # Debian packages (only the missing ones are installed)
    groups: tuple[str, ...]  # supplementary groups of the service user
    extras: tuple[str, ...]  # pyproject extras in the virtualenv
    units: tuple[str, ...]
    files: tuple[tuple[str, Path], ...] = ()  # (file in deploy/, where it goes)


# What a Debian machine needs to make the virtualenv; pyscard builds against libpcsclite with gcc.
BASE_APT = ("python3-venv",)
LANE = Role(
    name="lane",
    apt=("python3-dev", "gcc", "libpcsclite-dev", "pcscd", "libccid"),
    groups=("gpio", "dialout"),
    extras=("nfc", "pi"),
    units=("selfcheckout-lane.service",),
    files=(
        ("60-selfcheckout.rules", Path("/etc/udev/rules.d/60-selfcheckout.rules")),
        ("60-selfcheckout-pcscd.rules", Path("/etc/polkit-1/rules.d/60-selfcheckout-pcscd.rules")),
        ("selfcheckout-nfc.conf", Path("/etc/modprobe.d/selfcheckout-nfc.conf")),
        ("time-wait-sync.conf", TIME_WAIT_DROPIN),
    ),
)
# A lane of a store with several: its node of the NATS cluster the lanes share their passes through.
NATS = Role(name="nats", apt=("nats-server",), groups=(), extras=(), units=("selfcheckout-nats.service",))
# A store's payment system, on SQLite or on a chain's PostgreSQL: the driver is always there, and libpq5 for
# the architectures psycopg has no binary wheel for.
PAYMENTS = Role(
    name="payments",
    apt=("libpq5",),
    groups=(),
    extras=("postgres",),
    units=("selfcheckout-payments.service",),
)
BANK = Role(name="bank", apt=(), groups=(), extras=(), units=("selfcheckout-bank.service",))
ROLES = {role.name: role for role in (LANE, NATS, PAYMENTS, BANK)}

# 32-bit ARM (Raspberry Pi OS armhf) has no PyPI wheel of cffi or PyNaCl: pip builds them, cffi against
# libffi and PyNaCl against Debian's libsodium (SODIUM_INSTALL=system) instead of compiling its own copy.
ARM32 = ("armv7l", "armv6l")
ARM32_APT = ("python3-dev", "gcc", "make", "libffi-dev", "libsodium-dev")
ARM32_PIP_ENV = {"SODIUM_INSTALL": "system"}

LANE_CONFIG = ETC / "lane.toml"
PAYMENTS_CONFIG = ETC / "payments.toml"
GATE_KEY = KEYS / "gate.key"
