"""Ed25519 keys with key ids, and key files.

A key id is the first 8 bytes of SHA-256 of the raw public key, in hex: short enough to travel in every
document, so a verifier picks the right key among several during a rotation without trying each.
Public keys from the outside world are checked to be canonical points of large order: libsodium's
verifier already refuses small-order keys, but refusing them where they enter keeps a bad key from ever
being stored or put in a voucher.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import nacl.bindings
import nacl.exceptions
import nacl.signing

from gate.errors import KeyFileError, SignatureError

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


def key_id(public_key: bytes) -> str:
    return hashlib.sha256(public_key).digest()[:8].hex()


def check_public_key(public_key: bytes) -> bytes:
    """Return the key if it is a usable Ed25519 public key, else raise SignatureError saying why."""
    if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_BYTES:
        raise SignatureError(f"public key must be {PUBLIC_KEY_BYTES} bytes")
    if not nacl.bindings.crypto_core_ed25519_is_valid_point(public_key):
        raise SignatureError("public key is not a canonical Ed25519 point of large order")
    return public_key


@dataclass(frozen=True)
class SigningKey:
    """A secret key and its public half, as one party holds them."""

    _key: nacl.signing.SigningKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        return cls(nacl.signing.SigningKey(seed))

    @property
    def seed(self) -> bytes:
        return bytes(self._key)

    @property
    def public_key(self) -> bytes:
        return bytes(self._key.verify_key)

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message).signature


def verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Raise SignatureError unless signature is a valid, canonical Ed25519 signature of message."""
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
        raise SignatureError(f"signature must be {SIGNATURE_BYTES} bytes")
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError) as exc:
        raise SignatureError("signature does not verify") from exc


class TrustedKeys:
    """The public keys one party trusts for one role, looked up by key id (several during a rotation)."""

    def __init__(self, public_keys: list[bytes] | tuple[bytes, ...] = ()) -> None:
        self._by_id = {key_id(check_public_key(k)): k for k in public_keys}

    def __contains__(self, kid: object) -> bool:
        return kid in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, kid: str) -> bytes:
        try:
            return self._by_id[kid]
        except KeyError:
            raise SignatureError(f"key id {kid} is not a trusted key") from None

    def ids(self) -> list[str]:
        return sorted(self._by_id)

    @classmethod
    def from_files(cls, paths: list[Path] | tuple[Path, ...]) -> TrustedKeys:
        """The keys of the config's payments.public_key_files (KeyFileError naming a bad file)."""
        return cls([read_public_key(Path(p)) for p in paths])


def write_secret_key(path: Path, key: SigningKey) -> None:
    """Write the 32-byte seed as hex, creating the file readable by its owner only."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key.seed.hex() + "\n")
        path.chmod(0o600)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot write secret key: {exc.strerror or exc}") from exc


def write_public_key(path: Path, public_key: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(public_key.hex() + "\n")
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot write public key: {exc.strerror or exc}") from exc


def require_private(path: Path, what: str) -> None:
    """Refuse a secret file that others can read: a copied key or secret is as good as published."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read {what}: {exc.strerror or exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{path}: {what} is readable by others (mode {stat.S_IMODE(mode):04o}); chmod 600 {path}"
        )


def read_secret_key(path: Path) -> SigningKey:
    """Read a secret key file, refusing one that others can read."""
    require_private(path, "secret key")
    return SigningKey.from_seed(_read_hex(path, 32, "secret key"))


def read_public_key(path: Path) -> bytes:
    key = _read_hex(path, PUBLIC_KEY_BYTES, "public key")
    try:
        return check_public_key(key)
    except SignatureError as exc:
        raise KeyFileError(f"{path}: {exc}") from exc


def _read_hex(path: Path, size: int, what: str) -> bytes:
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{path}: cannot read {what}: {exc}") from exc
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise KeyFileError(f"{path}: expected {size * 2} hex digits of {what}, found {len(text)} characters")
    return raw
