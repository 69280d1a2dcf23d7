"""The phone's state folder: every file replaced atomically, the secret key readable by its owner only.

A phone can lose power or be killed between any two instructions. Each file is written to a temporary
file in the same folder, flushed to disk, then renamed over the old one, so a reader sees the old file or
the new one, never half of either. Everything that arrives from outside is verified before it is written:
a refused answer leaves the folder exactly as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from gate.errors import KeyFileError
from gate.protocol.keys import SigningKey, read_secret_key
from phone.errors import StateError

KEY_FILE = "shopper.key"


class StateDir:
    """A folder of small files, each written whole or not at all."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def create(self) -> None:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)

    def exists(self, name: str) -> bool:
        return (self.path / name).exists()

    def read_bytes(self, name: str) -> bytes | None:
        """The file's bytes, or None if it does not exist."""
        try:
            return (self.path / name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"{self.path / name}: cannot read: {exc.strerror}") from exc

    def write_bytes(self, name: str, data: bytes, *, mode: int = 0o644) -> None:
        """Replace the file atomically: a temporary file, fsync, rename, fsync of the folder."""
        target = self.path / name
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(target.parent)

    def remove(self, name: str) -> None:
        """Delete the file if it is there, durably."""
        target = self.path / name
        try:
            target.unlink()
        except FileNotFoundError:
            return
        _fsync_dir(target.parent)

    def read_json(self, name: str) -> Any:
        data = self.read_bytes(name)
        if data is None:
            return None
        try:
            return json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StateError(f"{self.path / name}: not valid JSON: {exc}") from exc

    def write_json(self, name: str, value: Any) -> None:
        self.write_bytes(name, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())

    def write_secret_key(self, key: SigningKey) -> None:
        """The 32-byte seed as hex (the format gate.protocol.keys reads), mode 600 from the start."""
        self.write_bytes(KEY_FILE, (key.seed.hex() + "\n").encode(), mode=0o600)

    def read_secret_key(self) -> SigningKey:
        path = self.path / KEY_FILE
        if not path.exists():
            raise StateError(f"{path}: no shopper key; run `selfcheckout phone init` first")
        try:
            return read_secret_key(path)
        except KeyFileError as exc:
            raise StateError(str(exc)) from exc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
