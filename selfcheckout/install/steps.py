"""The install and the uninstall, step by step, each step safe to repeat.

Order matters where files change hands: the user and its groups first (the unit's SupplementaryGroups must
exist), then folders with their owners, the virtualenv, the wrapper command, and only then keys and
databases, made by the service user itself through the wrapper so they are never root's. Whatever was
there (keys, tokens, configs, databases) is kept; a database or key a root command left behind is handed
back to the service user.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from selfcheckout.install import InstallError, layout, system
from selfcheckout.install.layout import Role

Say = Callable[[str], None]


def install(roles: Sequence[Role], *, scanners: Sequence[str] = (), say: Say = print) -> None:
    manifest = _read_manifest()
    names = sorted({*manifest.get("roles", []), *(r.name for r in roles)})
    every = [layout.ROLES[n] for n in names]
    _packages(roles, say)

    made_groups = [g for g in sorted({g for r in every for g in r.groups}) if system.ensure_group(g)]
    for group in made_groups:
        say(f"made group {group} (the GPIO devices get it through the udev rule)")
    made_user = system.ensure_user(layout.USER, layout.STATE, sorted({g for r in every for g in r.groups}))
    say(f"{'made' if made_user else 'kept'} user {layout.USER} (groups: {_groups_of(layout.USER)})")
    owner = system.ids(layout.USER)
    system.make_dir(layout.ETC, 0o750, (0, owner[1]))
    manifest = {
        **manifest,
        "made_groups": sorted({*manifest.get("made_groups", []), *made_groups}),
        "made_user": manifest.get("made_user", made_user),
    }
    _write_manifest(manifest)  # now, so an install that fails later is still purged of what it made

    system.make_dir(layout.PREFIX, 0o755)
    system.make_dir(layout.KEYS, 0o700, owner)
    system.make_dir(layout.STATE, 0o700, owner)
    _hand_back(owner, say)

    extras = sorted({e for r in every for e in r.extras})
    make_venv(layout.VENV, extras, log=layout.LOG, say=say)
    for folder in ("docs", "config"):
        shutil.copytree(layout.SOURCE / folder, layout.PREFIX / folder, dirs_exist_ok=True)
    template = (layout.SOURCE / "deploy" / "selfcheckout.sh").read_text()
    wrapper = template.replace("@STATE@", str(layout.STATE)).replace("@USER@", layout.USER)
    system.write_file(layout.WRAPPER, wrapper.replace("@VENV@", str(layout.VENV)), 0o755)

    for role in roles:
        if role is layout.LANE:
            _lane(owner, scanners, say)
        elif role is layout.PAYMENTS:
            _payments(owner, say)
    time_wait = _units(every, say)
    _write_manifest(
        {
            **manifest,
            "roles": names,
            "time_wait_sync_enabled": time_wait or manifest.get("time_wait_sync_enabled", False),
            "source": str(layout.SOURCE),
        }
    )


def uninstall(*, purge: bool, say: Say = print) -> None:
    manifest = _read_manifest()
    running = system.systemd_running()
    for role in layout.ROLES.values():
        for unit in role.units:
            if (layout.UNIT_DIR / unit).exists():
                if running:
                    system.run(["systemctl", "disable", "--now", unit])
                else:
                    system.run(["systemctl", "disable", unit])
                system.remove(layout.UNIT_DIR / unit)
                say(f"removed {unit}")
        for _, target in role.files:
            if system.remove(target):
                say(f"removed {target}")
    if manifest.get("time_wait_sync_enabled"):
        system.run(["systemctl", "disable", _TIME_WAIT_UNIT.name])
    if layout.TIME_WAIT_DROPIN.parent.is_dir() and not any(layout.TIME_WAIT_DROPIN.parent.iterdir()):
        layout.TIME_WAIT_DROPIN.parent.rmdir()
    for path in (layout.WRAPPER, layout.PREFIX):
        if system.remove(path):
            say(f"removed {path}")
    if running:
        system.run(["systemctl", "daemon-reload"])
    if not purge:
        if manifest:
            _write_manifest({**manifest, "roles": [], "time_wait_sync_enabled": False})
        kept = f"{layout.ETC}, {layout.STATE} (keys, configs, databases) and user {layout.USER}"
        say(f"kept {kept}: --purge removes them")
        return
    for path in (layout.ETC, layout.STATE):
        if system.remove(path):
            say(f"removed {path}")
    if manifest.get("made_user", True) and _user_exists():
        system.run(["userdel", layout.USER])
        say(f"removed user {layout.USER}")
    for group in manifest.get("made_groups", []):
        if system.group_exists(group):
            system.run(["groupdel", group])
            say(f"removed group {group}")


def _packages(roles: Sequence[Role], say: Say) -> None:
    """Install the Debian packages the roles need that are missing (apt-get update only then)."""
    wanted = [*layout.BASE_APT, *(p for r in roles for p in r.apt)]
    if platform.machine() in layout.ARM32:
        wanted += layout.ARM32_APT
    wanted = list(dict.fromkeys(wanted))
    missing = system.missing_packages(wanted)
    if missing:
        say(f"installing Debian packages: {' '.join(missing)}")
        system.apt_install(missing, layout.LOG)
    else:
        say(f"Debian packages present: {' '.join(wanted)}")


def _hand_back(owner: tuple[int, int], say: Say) -> None:
    """Give the service user back what a command run as root left in its folders (a root-owned gate.db
    makes the lane fail with 'attempt to write a readonly database')."""
    for top in (layout.STATE, layout.KEYS):
        for folder, dirs, files in os.walk(top):
            for name in [*dirs, *files]:
                path = Path(folder) / name
                if path.lstat().st_uid != owner[0]:
                    os.chown(path, *owner, follow_symlinks=False)
                    say(f"handed {path} back to {layout.USER}")


def make_venv(
    venv: Path, extras: Sequence[str], *, log: Path, say: Say = print, python: str = sys.executable
) -> None:
    """A virtualenv with the runtime dependencies and `extras` only (never the test tools); the bench's
    install.runtime_mb measures one made here. One whose python no longer runs (a Debian upgrade) is
    made again."""
    inside = venv / "bin" / "python"
    if venv.exists() and not _runs(inside):
        system.remove(venv)
    if not inside.exists():
        system.run([python, "-m", "venv", venv], log=log)
    spec = f"selfcheckout[{','.join(extras)}]" if extras else "selfcheckout"
    say(f"installing {spec} into {venv} (log: {log})")
    with tempfile.TemporaryDirectory(prefix="selfcheckout-build-") as build:
        # A copy of what the package is made of: building in it leaves no build/ or egg-info in the
        # maintainer's clone, and nothing else of the clone (a venv, databases) comes along.
        tree = Path(build) / "src"
        tree.mkdir()
        try:
            for name in _SHIPPED:
                source = layout.SOURCE / name
                if source.is_dir():
                    shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(source, tree / name)
        except (OSError, shutil.Error) as exc:
            raise InstallError(f"cannot copy the checkout {layout.SOURCE} to build it: {exc}") from exc
        target = f"{tree}[{','.join(extras)}]" if extras else str(tree)
        pip = [inside, "-m", "pip", "install", "--upgrade", "--disable-pip-version-check", "--no-input"]
        env = layout.ARM32_PIP_ENV if platform.machine() in layout.ARM32 else {}
        system.run([*pip, target], log=log, env=env)
    version = system.run([venv / "bin" / "selfcheckout", "--version"]).strip()
    say(f"{version} in {venv}")


# The files the package is built from: pyproject.toml's packages, the README its metadata names, and the
# example configs it carries as data.
_SHIPPED = (
    "pyproject.toml",
    "README.md",
    "config",
    "gate",
    "kiosk",
    "drivers",
    "payments",
    "phone",
    "selfcheckout",
)


def _runs(python: Path) -> bool:
    try:
        system.run([python, "-c", "pass"])
    except InstallError:
        return False
    return True


def _lane(owner: tuple[int, int], scanners: Sequence[str], say: Say) -> None:
    for name, target in layout.LANE.files:
        text = (layout.SOURCE / "deploy" / name).read_text()
        if name == "60-selfcheckout.rules":
            text += "".join(_scanner_rule(s) for s in scanners)
        system.write_file(target, text)
        say(f"wrote {target}")
    if not layout.LANE_CONFIG.exists():
        example = (layout.SOURCE / "config" / "lane.example.toml").read_text()
        text = _replace_once(example, 'database = "gate.db"', f'database = "{layout.STATE / "gate.db"}"')
        text = _replace_once(text, 'port_url = "/dev/ttyACM0"', 'port_url = "/dev/selfcheckout-scanner"')
        system.write_file(layout.LANE_CONFIG, text, 0o640, (0, owner[1]))
        say(f"wrote {layout.LANE_CONFIG} from the example: edit store, gate, payment system URL and pins")
    else:
        say(f"kept {layout.LANE_CONFIG}")
    if not layout.GATE_KEY.exists():
        say(system.run([layout.WRAPPER, "gate", "keygen", layout.GATE_KEY]).strip())
    else:
        say(f"kept {layout.GATE_KEY}")


def _payments(owner: tuple[int, int], say: Say) -> None:
    if not layout.PAYMENTS_CONFIG.exists():
        example = (layout.SOURCE / "config" / "payments.example.toml").read_text()
        database = f'database = "{layout.STATE / "payments.db"}"'
        text = _replace_once(example, 'database = "payments.db"', database)
        system.write_file(layout.PAYMENTS_CONFIG, text, 0o640, (0, owner[1]))
        say(f"wrote {layout.PAYMENTS_CONFIG} from the example: edit store id, currency and bank URL")
    else:
        say(f"kept {layout.PAYMENTS_CONFIG}")
    for line in system.run(
        [layout.WRAPPER, "payments", "init", "--config", layout.PAYMENTS_CONFIG]
    ).splitlines():
        say(line)


def _units(roles: Sequence[Role], say: Say) -> bool:
    """Install and enable every role's units; True when systemd-time-wait-sync was enabled for the lane."""
    for role in roles:
        for unit in role.units:
            system.write_file(layout.UNIT_DIR / unit, (layout.SOURCE / "systemd" / unit).read_text())
            system.run(["systemctl", "enable", unit])
            say(f"enabled {unit}")
    time_wait = layout.LANE in roles and _TIME_WAIT_UNIT.exists()
    if time_wait:
        system.run(["systemctl", "enable", _TIME_WAIT_UNIT.name])
        say(f"enabled {_TIME_WAIT_UNIT.name} (the lane starts once the clock is set, or after 90 s)")
    if not system.systemd_running():
        say("systemd is not running here (PID 1 is not systemd): units enabled, not started")
        return time_wait
    system.run(["systemctl", "daemon-reload"])
    if layout.LANE in roles:
        system.run(["udevadm", "control", "--reload"])
        system.run(["udevadm", "trigger"])
    for role in roles:
        for unit in role.units:
            # A new lane waits for its config and enrolment (docs/operations.md); a running one is updated.
            system.run(["systemctl", "try-restart" if role is layout.LANE else "restart", unit])
    return time_wait


_TIME_WAIT_UNIT = Path("/lib/systemd/system/systemd-time-wait-sync.service")


def _scanner_rule(vid_pid: str) -> str:
    vendor, product = vid_pid.lower().split(":")
    return (
        f'SUBSYSTEM=="tty", ATTRS{{idVendor}}=="{vendor}", ATTRS{{idProduct}}=="{product}", '
        'SYMLINK+="selfcheckout-scanner", GROUP="dialout", MODE="0660"\n'
    )


def _replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise InstallError(
            f"the example config no longer holds `{old}` exactly once: cannot make a config from it"
        )
    return text.replace(old, new)


def _groups_of(user: str) -> str:
    return system.run(["id", "-nG", user]).strip().replace(" ", ",")


def _user_exists() -> bool:
    try:
        system.ids(layout.USER)
    except KeyError:
        return False
    return True


def _read_manifest() -> dict:
    try:
        return json.loads(layout.MANIFEST.read_text())
    except (OSError, ValueError):
        return {}


def _write_manifest(data: dict) -> None:
    system.write_file(layout.MANIFEST, json.dumps(data, indent=1, sort_keys=True) + "\n")
