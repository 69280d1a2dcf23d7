"""The files a lane config names, read exactly as `gate run` reads them: keys and the panel secret.

`config check`, `doctor` and `gate run` all go through `problems()`, so a file that would stop the lane
at start (a garbage payment-system key, a gate key others can read, a 5-byte panel secret) is refused
by the check too, instead of passing it and leaving systemd restarting a lane that cannot start. The
panel reads its secret through the same function.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gate.errors import KeyFileError
from gate.protocol.keys import read_public_key, read_secret_key, require_private

if TYPE_CHECKING:
    from gate.config import LaneConfig

MIN_PANEL_SECRET_BYTES = 16
_SECRET_HINT = "python3 -c 'import secrets; print(secrets.token_hex(32))'"


def read_panel_secret(path: Path) -> bytes:
    """The panel's session secret: at least MIN_PANEL_SECRET_BYTES bytes (its mode: see problems())."""
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the panel's secret key: {exc.strerror or exc}") from exc
    if len(key) < MIN_PANEL_SECRET_BYTES:
        raise KeyFileError(
            f"{path}: the panel's secret key holds {len(key)} bytes; at least {MIN_PANEL_SECRET_BYTES} "
            f"random bytes expected ({_SECRET_HINT})"
        )
    return key


def problems(config: LaneConfig) -> list[str]:
    """Every file the config names that `gate run` would refuse, one line each (empty when all are good)."""
    checks: list[tuple[str, Path | None, Callable[[Path], object]]] = [
        ("lane.gate_key_file", config.lane.gate_key_file, read_secret_key),  # checks its mode itself
        *(
            (f"payments.public_key_files[{i}]", p, read_public_key)
            for i, p in enumerate(config.payments.public_key_files)
        ),
        ("panel.secret_key_file", config.panel.secret_key_file, _private(read_panel_secret, "secret key")),
    ]
    out = []
    for key, path, read in checks:
        if path is None:
            continue
        try:
            read(path)
        except KeyFileError as exc:
            out.append(f"{config.source}: key '{key}': {exc}")
    return out


def _private(read: Callable[[Path], object], what: str) -> Callable[[Path], object]:
    """`read`, after refusing a file that others can read."""

    def checked(path: Path) -> object:
        require_private(path, f"the panel's {what}")
        return read(path)

    return checked
