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
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from selfcheckout.install import layout
from tests.fixtures import standin_unavailable
from tests.fixtures.lane import NotifySocket, free_port
from tests.fixtures.payments import wait_until
from tests.fixtures.standins import Pcscd, PtyPair

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / "scripts" / "install"
MARKER = Path("/var/tmp/selfcheckout-install-test")  # this install was made by these tests
LOCK = Path("/var/tmp/selfcheckout-install-test.lock")
SELFCHECKOUT = layout.WRAPPER

# The first test waits for the whole install (a venv built from PyPI): minutes on a busy machine.
pytestmark = pytest.mark.timeout(900)


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


@pytest.fixture
def notify_socket_abstract() -> Iterator[NotifySocket]:
    """systemd's notify socket in the abstract namespace, which the service user can reach."""
    listener = NotifySocket(abstract=True)
    yield listener
    listener.close()


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
    # The example configs travel with the wheel, for the installed `selfcheckout demo`.
    probe = "from gate.config import EXAMPLE; from payments.config import EXAMPLE as PS; print(EXAMPLE, PS)"
    found = subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd=tmp_path).stdout.split()
    assert [Path(f).read_text() for f in found] == [
        (ROOT / "config" / name).read_text() for name in ("lane.example.toml", "payments.example.toml")
    ]
    assert all(f.startswith(str(layout.VENV / "share" / "selfcheckout" / "config")) for f in found)


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


def as_service(*command: str | Path, **kwargs: Any) -> subprocess.Popen[bytes]:
    """A command as systemd runs the units' ExecStart: as the service user, with its groups."""
    setpriv = ["setpriv", "--reuid=selfcheckout", "--regid=selfcheckout", "--init-groups", "--"]
    return subprocess.Popen([*setpriv, *map(str, command)], cwd=layout.STATE, **kwargs)


def edit(path: Path, *changes: tuple[str, str]) -> None:
    text = path.read_text()
    for old, new in changes:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path.write_text(text)


def test_a_lab_from_the_installed_files_passes_the_doctor(
    installed: str, pcsc: Pcscd, notify_socket_abstract: NotifySocket
) -> None:
    """The lab of docs/operations.md: bank and payment system from their unit command lines, the gate
    enrolled, the lane run once from its own (gpiozero's MockFactory, no GPIO here) to take the feed,
    then `sudo selfcheckout doctor`, as the service user, through pcscd and the scanner's serial port."""
    bank_port, ps_port = free_port(), free_port()
    edit(
        layout.PAYMENTS_CONFIG,
        ("port = 8600", f"port = {ps_port}"),
        ('url = "http://127.0.0.1:8700"', f'url = "http://127.0.0.1:{bank_port}"'),
    )
    folder = Path(tempfile.mkdtemp(prefix="selfcheckout-install-test-", dir="/var/tmp"))
    folder.chmod(0o755)  # the service user reaches the scanner's pty link in it
    scanner = PtyPair(folder)
    scanner.start()
    device = scanner.device.resolve()
    os.chown(device, 0, grp.getgrnam("dialout").gr_gid)  # what the udev rule does for a real scanner
    device.chmod(0o660)
    edit(
        layout.LANE_CONFIG,
        ('url = "http://127.0.0.1:8600"', f'url = "http://127.0.0.1:{ps_port}"'),
        ('port_url = "/dev/selfcheckout-scanner"', f'port_url = "{scanner.device}"'),
        ("port = 8080", f"port = {free_port()}"),
    )
    program = layout.VENV / "bin" / "selfcheckout"
    log = (folder / "services.log").open("wb")
    services = [
        as_service(program, "payments", "bank", "--port", str(bank_port), stdout=log, stderr=log),
        as_service(program, "payments", "run", "--config", layout.PAYMENTS_CONFIG, stdout=log, stderr=log),
    ]
    try:
        admin = ["payments", "enrol-gate", "--db", layout.STATE / "payments.db", "--gate", "gate-01"]
        init = (
            [] if (layout.STATE / "gate.db").exists() else [["gate", "init", "--config", layout.LANE_CONFIG]]
        )
        for command in (*init, [*admin, "--public-key-file", layout.GATE_KEY.with_suffix(".key.pub")]):
            done = subprocess.run([SELFCHECKOUT, *command], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
        wait_until(lambda: _answers(f"http://127.0.0.1:{ps_port}/v1/health"), 20, "the payment system")
        env = {**os.environ, **notify_socket_abstract.env()}
        lane = as_service(
            program,
            "gate",
            "run",
            "--config",
            layout.LANE_CONFIG,
            "--mock-gpio",
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            notify_socket_abstract.wait_for(lambda line: line == "READY=1", 30, "the lane's READY=1")
            wait_until(lambda: "feed" not in doctor_problems(), 20, "the lane's first feed")
        finally:
            lane.terminate()
            assert lane.wait(timeout=15) == 0
        problems = doctor_problems()
    finally:
        for service in services:
            service.terminate()
            service.wait(timeout=15)
        log.close()
        log_text = (folder / "services.log").read_text(errors="replace")
        scanner.kill()
        shutil.rmtree(folder, ignore_errors=True)
    # The clock is the machine's: unsynchronised in a container with no time service, whatever we install.
    assert {name: why for name, why in problems.items() if name != "clock"} == {}, log_text


def doctor_problems() -> dict[str, str]:
    """`sudo selfcheckout doctor --json` (as the service user): each failing check's sentence by name."""
    done = subprocess.run(
        [SELFCHECKOUT, "doctor", "--config", layout.LANE_CONFIG, "--mock-gpio", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    checks = [json.loads(line) for line in done.stdout.splitlines()]
    assert {"config", "keys", "reader", "scanner", "gpio", "database", "payments", "feed"} <= {
        c["name"] for c in checks
    }, done.stdout + done.stderr
    return {c["name"]: c["sentence"] for c in checks if not c["ok"]}


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


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
