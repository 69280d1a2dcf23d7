"""`sudo scripts/install`, run for real on this machine as root: a lane, a payment system and the simulated
bank, as a lab puts them on one machine. The tests look at what a maintainer would find: the user and the
groups the units name, folders and keys with their owners and modes, the udev, polkit and modprobe files,
units that systemd-analyze verifies and that are enabled, a virtualenv with the runtime dependencies and
the hardware backends but no test tools; then a second run that keeps every key and config, admin commands
run as root that leave the service user's files, and an uninstall that keeps data until --purge.

systemd is not PID 1 here (`systemctl start` answers "System has not been booted with systemd"), so the
units are enabled, not started; the install says so, and a test runs the lane unit's command line as the
service user instead.

One install at a time per machine: the module holds a lock, and refuses to touch an install it did not
make (a maintainer running the tests on a real lane keeps it).
"""

from __future__ import annotations

import fcntl
import grp
import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from selfcheckout.install import layout
from tests.fixtures import standin_unavailable

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / "scripts" / "install"
MARKER = Path("/var/tmp/selfcheckout-install-test")  # this install was made by these tests
LOCK = Path("/var/tmp/selfcheckout-install-test.lock")
SELFCHECKOUT = layout.WRAPPER


def install(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([INSTALL, *args], capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def installed() -> Iterator[str]:
    """The four roles installed once for the module, purged afterwards; the first run's output."""
    if os.geteuid() != 0:
        standin_unavailable("the install test runs the install for real and needs root")
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (layout.ETC.exists() or layout.PREFIX.exists()) and not MARKER.exists():
            pytest.fail(
                f"{layout.ETC} or {layout.PREFIX} holds an install these tests did not make: not touching it"
            )
        MARKER.touch()
        install("--uninstall", "--purge")
        try:
            yield install("lane", "nats", "payments", "bank").stdout
        finally:
            install("--uninstall", "--purge", check=False)
            MARKER.unlink(missing_ok=True)


def owner(path: Path) -> tuple[str, str, int]:
    st = path.stat()
    return pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name, stat.S_IMODE(st.st_mode)


def unit_values(unit: Path, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit.read_text().splitlines() if line.startswith(f"{key}=")]


def test_the_user_is_in_every_group_the_lane_unit_names(installed: str) -> None:
    user = pwd.getpwnam("selfcheckout")
    assert user.pw_shell == "/usr/sbin/nologin" and user.pw_dir == "/var/lib/selfcheckout"
    groups = unit_values(layout.UNIT_DIR / "selfcheckout-lane.service", "SupplementaryGroups")[0].split()
    assert groups == ["gpio", "dialout"]
    for group in groups:  # stock Debian has no gpio group: the install made it
        assert "selfcheckout" in grp.getgrnam(group).gr_mem, group


def test_folders_keys_and_configs_have_the_right_owners(installed: str) -> None:
    assert owner(layout.ETC) == ("root", "selfcheckout", 0o750)
    assert owner(layout.KEYS) == ("selfcheckout", "selfcheckout", 0o700)
    assert owner(layout.STATE) == ("selfcheckout", "selfcheckout", 0o700)
    for secret in ("gate.key", "ps.key", "ps-admin.token"):
        assert owner(layout.KEYS / secret) == ("selfcheckout", "selfcheckout", 0o600), secret
    for config in ("lane.toml", "payments.toml"):
        assert owner(layout.ETC / config) == ("root", "selfcheckout", 0o640), config
    assert owner(layout.STATE / "payments.db")[0] == "selfcheckout"


def test_the_configs_are_made_from_the_examples_and_pass_their_checks(installed: str) -> None:
    lane = subprocess.run(
        [SELFCHECKOUT, "config", "check", layout.LANE_CONFIG], capture_output=True, text=True
    )
    assert lane.returncode == 0 and lane.stdout.startswith(f"{layout.LANE_CONFIG}: ok"), lane.stderr
    text = layout.LANE_CONFIG.read_text()
    assert 'database = "/var/lib/selfcheckout/gate.db"' in text
    assert 'port_url = "/dev/selfcheckout-scanner"' in text
    assert 'database = "/var/lib/selfcheckout/payments.db"' in layout.PAYMENTS_CONFIG.read_text()


def test_the_venv_has_the_runtime_and_hardware_backends_but_no_test_tools(
    installed: str, tmp_path: Path
) -> None:
    python = layout.VENV / "bin" / "python"
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True
    ).stdout.lower()
    names = {line.split("==")[0] for line in listed.splitlines()}
    assert {"selfcheckout", "pyscard", "lgpio", "gpiozero", "flask", "pynacl"} <= names
    assert not names & {"playwright", "pytest", "hypothesis", "ruff", "schemathesis"}
    # gpiozero's first pin factory loads, so `gate run` no longer stops at "Unable to load any default pin
    # factory". lgpio makes notification pipes in its LG_WD, as the unit sets it.
    probe = "import lgpio, smartcard; from gpiozero.pins.lgpio import LGPIOFactory; print('ok')"
    env = {**os.environ, "LG_WD": str(tmp_path)}
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.stdout == "ok\n", done.stderr


def test_udev_polkit_and_modprobe_files_are_in_place(installed: str) -> None:
    for name, target in layout.LANE.files:
        assert target.read_text() == (ROOT / "deploy" / name).read_text(), target
        assert owner(target) == ("root", "root", 0o644)
    rules = Path("/etc/udev/rules.d/60-selfcheckout.rules").read_text()
    assert 'KERNEL=="gpiochip*", GROUP="gpio"' in rules and 'SYMLINK+="selfcheckout-scanner"' in rules
    polkit = Path("/etc/polkit-1/rules.d/60-selfcheckout-pcscd.rules").read_text()
    assert "org.debian.pcsc-lite.access_pcsc" in polkit and 'subject.user == "selfcheckout"' in polkit
    blacklist = Path("/etc/modprobe.d/selfcheckout-nfc.conf").read_text().split("\n")
    assert {"blacklist pn533_usb", "blacklist pn533", "blacklist nfc"} <= set(blacklist)


def test_the_units_are_installed_enabled_and_verify_clean(installed: str) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None
    for role in layout.ROLES.values():
        for unit in role.units:
            path = layout.UNIT_DIR / unit
            assert path.read_text() == (ROOT / "systemd" / unit).read_text()
            assert (layout.UNIT_DIR / "multi-user.target.wants" / unit).resolve() == path
            done = subprocess.run([analyze, "verify", path], capture_output=True, text=True, timeout=60)
            assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), unit
            program = unit_values(path, "ExecStart")[0].split()[0]
            assert Path(program).is_file() and program.startswith(str(layout.VENV))
    assert "systemd is not running here (PID 1 is not systemd): units enabled, not started" in installed


def test_admin_commands_as_root_leave_files_the_service_can_write(installed: str, tmp_path: Path) -> None:
    csv = Path("/var/tmp/selfcheckout-install-test.csv")
    csv.write_text(
        "code,name,category,unit,price,currency\n4006381333931,Stabilo pen,stationery,each,129,EUR\n"
    )
    csv.chmod(0o644)
    try:
        for command in (["gate", "init"], ["gate", "import-catalog", csv]):
            done = subprocess.run(
                [SELFCHECKOUT, *command, "--config", layout.LANE_CONFIG], capture_output=True, text=True
            )
            assert done.returncode == 0, done.stderr
    finally:
        csv.unlink()
    assert owner(layout.STATE / "gate.db")[0] == "selfcheckout"  # not root: the lane can write it


def test_a_second_install_keeps_keys_configs_and_hands_back_root_files(installed: str) -> None:
    kept = {p: p.read_bytes() for p in (*layout.KEYS.iterdir(), layout.LANE_CONFIG, layout.PAYMENTS_CONFIG)}
    layout.LANE_CONFIG.write_text(
        layout.LANE_CONFIG.read_text().replace('gate_id = "gate-01"', 'gate_id = "gate-07"')
    )
    kept[layout.LANE_CONFIG] = layout.LANE_CONFIG.read_bytes()
    stray = layout.STATE / "stray.db"
    stray.write_bytes(b"")  # what `sqlite3` or an admin command as root leaves behind
    assert owner(stray)[0] == "root"
    again = install("lane", "nats", "payments", "bank").stdout
    assert {p: p.read_bytes() for p in kept} == kept
    assert f"kept {layout.GATE_KEY}" in again and f"kept {layout.LANE_CONFIG}" in again
    assert f"handed {stray} back to selfcheckout" in again and owner(stray)[0] == "selfcheckout"
    stray.unlink()


def test_uninstall_keeps_data_and_purge_removes_everything(installed: str) -> None:
    key = (layout.KEYS / "gate.key").read_bytes()
    gone = install("--uninstall").stdout
    assert "kept /etc/selfcheckout, /var/lib/selfcheckout" in gone
    assert not layout.PREFIX.exists() and not layout.WRAPPER.exists()
    for role in layout.ROLES.values():
        assert not any((layout.UNIT_DIR / unit).exists() for unit in role.units)
        assert not any(target.exists() for _, target in role.files)
    assert not (layout.UNIT_DIR / "multi-user.target.wants" / "selfcheckout-lane.service").is_symlink()
    assert (layout.KEYS / "gate.key").read_bytes() == key

    install("--uninstall", "--purge")
    assert not layout.ETC.exists() and not layout.STATE.exists()
    with pytest.raises(KeyError):
        pwd.getpwnam("selfcheckout")
    with pytest.raises(KeyError):
        grp.getgrnam("gpio")  # made by the install, so taken away with it


@pytest.mark.parametrize(
    ("args", "line"),
    [
        ([], "install: name what to install: lane, nats, payments or bank (several at once for a lab)"),
        (["kiosk"], "install: no role 'kiosk': lane, nats, payments or bank"),
        (["--purge"], "install: --purge goes with --uninstall"),
        (
            ["lane", "--scanner", "0c2e"],
            "install: --scanner 0c2e: expected USB vendor and product ids as VID:PID",
        ),
    ],
    ids=["no role", "unknown role", "purge alone", "bad scanner"],
)
def test_a_wrong_command_line_is_one_line(args: list[str], line: str) -> None:
    done = install(*args, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", line + "\n")


def test_not_root_is_told_to_use_sudo() -> None:
    done = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", INSTALL, "lane"],
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stderr) == (1, "install: run as root: sudo scripts/install ...\n")
