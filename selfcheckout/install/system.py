"""The machine's own tools, called the way a maintainer would call them: apt-get, groupadd/useradd, systemctl.

Every call that fails becomes one InstallError line naming the command and its last line of output, so
the maintainer sees what broke without a traceback; long outputs (pip, apt) go to the install log.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from selfcheckout.install import InstallError


def run(command: Sequence[str | Path], *, log: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a command to its end; its output, or InstallError with the last line it printed."""
    args = [str(c) for c in command]
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL
        )
    except OSError as exc:
        raise InstallError(f"{args[0]}: {exc.strerror}") from exc
    output = done.stdout + done.stderr
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as f:
            f.write(f"$ {' '.join(args)}\n{output}\n")
    if done.returncode != 0:
        lines = [line for line in output.splitlines() if line.strip()]
        last = lines[-1].strip() if lines else f"exit status {done.returncode}"
        where = f" (whole output in {log})" if log is not None else ""
        raise InstallError(f"{' '.join(args[:3])} failed: {last}{where}")
    return output


def missing_packages(names: Sequence[str]) -> list[str]:
    """The Debian packages of `names` that are not installed."""
    missing = []
    for name in names:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True, check=False
        )
        if "install ok installed" not in done.stdout:
            missing.append(name)
    return missing


def apt_install(names: Sequence[str], log: Path) -> None:
    run(["apt-get", "update", "-qq"], log=log)
    run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *names],
        log=log,
        env={"DEBIAN_FRONTEND": "noninteractive"},
    )


def group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def ensure_group(name: str) -> bool:
    """Make a system group when it does not exist (gpio on stock Debian); True if it was made."""
    if group_exists(name):
        return False
    run(["groupadd", "--system", name])
    return True


def ensure_user(user: str, home: Path, groups: Sequence[str]) -> bool:
    """The system user with its own group, no login, and `groups` added; True if it was made."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        entry = None
    if entry is None:
        command = ["useradd", "--system", "--user-group", "--home-dir", str(home), "--no-create-home"]
        command += ["--shell", "/usr/sbin/nologin", "--comment", "self-checkout services"]
        if groups:
            command += ["--groups", ",".join(groups)]
        run([*command, user])
        return True
    member_of = {g.gr_name for g in grp.getgrall() if user in g.gr_mem}
    wanted = [g for g in groups if g not in member_of]
    if wanted:
        run(["usermod", "--append", "--groups", ",".join(wanted), user])
    return False


def ids(user: str) -> tuple[int, int]:
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def make_dir(path: Path, mode: int, owner: tuple[int, int] = (0, 0)) -> None:
    """A folder with exactly this owner and mode, made or corrected."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, *owner)
    path.chmod(mode)


def write_file(path: Path, text: str, mode: int = 0o644, owner: tuple[int, int] = (0, 0)) -> None:
    """Write a file the install owns (replaced on every run), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_text(text)
    os.chown(temporary, *owner)
    temporary.chmod(mode)
    temporary.replace(path)


def systemd_running() -> bool:
    """Whether systemd is PID 1 here (sd_booted(3)'s test): without it units are enabled, not started."""
    return Path("/run/systemd/system").is_dir()


def remove(path: Path) -> bool:
    """Remove a file or a folder tree if it is there; True if something was removed."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
        return True
    if path.exists() or path.is_symlink():
        path.unlink()
        return True
    return False
