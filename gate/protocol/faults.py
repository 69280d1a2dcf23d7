"""What the negative test vectors are made with: the fault families, the parties' keys, and an envelope
re-signed around a broken body, so that each vector holds exactly the one fault it is named for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gate.protocol import encoding
from gate.protocol.documents import signing_input
from gate.protocol.keys import SigningKey

L = 2**252 + 27742317777372353535851937790883648493  # order of the Ed25519 base point
SMALL_ORDER_KEYS = {
    "identity (order 1)": "01" + "00" * 31,
    "order 2": "ec" + "ff" * 30 + "7f",
    "order 4": "00" * 32,
    "order 8": "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
}
NON_CANONICAL_KEY = "ed" + "ff" * 30 + "7f"  # y = p: an out-of-range encoding

FAMILIES = (
    "encoding",  # not the deterministic encoding of what it says
    "value type",  # a CBOR value the protocol does not allow (float, tag, boolean)
    "shape",  # an unknown, missing or wrongly typed field, a bad version or a bad text or byte length
    "range",  # a number or a count outside its inclusive range
    "cross-field rule",  # a rule that ties fields of one document together (checked when decoding)
    "public key",  # a key that is not a valid Ed25519 point of the prime-order subgroup
    "envelope",  # the signed envelope itself is wrong, or an embedded one is not a map
    "signature",  # decodes, but must not verify
)


@dataclass(frozen=True)
class Parties:
    ps: SigningKey
    shopper: SigningKey
    gate: SigningKey


def envelope_bytes(t: str, kid: str, body: bytes, sig: bytes) -> bytes:
    return encoding.encode({"b": body, "k": kid, "s": sig, "t": t})


def resign(key: SigningKey, t: str, body: bytes) -> bytes:
    """An envelope of these exact body bytes, correctly signed by key: only the body can be at fault."""
    return envelope_bytes(t, key.key_id, body, key.sign(signing_input(t, key.key_id, body)))


def pairs(fields: dict[str, Any]) -> bytes:
    return b"".join(encoding.encode(k) + encoding.encode(v) for k, v in fields.items())


def replace_raw(fields: dict[str, Any], name: str, raw_value: bytes) -> bytes:
    """The canonical map with one value swapped for raw bytes that no canonical encoder would write."""
    out = bytes([0xA0 + len(fields)])
    for k, v in fields.items():
        out += encoding.encode(k) + (raw_value if k == name else encoding.encode(v))
    return out


class Out:
    def __init__(self, parties: Parties) -> None:
        self.parties = parties
        self.entries: list[dict[str, Any]] = []

    def signed(self, t: str, family: str, name: str, key: SigningKey, body: bytes) -> None:
        self.entries.append(
            {
                "name": name,
                "type": t,
                "family": family,
                "expect": "decode_error",
                "envelope": resign(key, t, body).hex(),
            }
        )

    def envelope(self, t: str, family: str, name: str, raw: bytes) -> None:
        self.entries.append(
            {"name": name, "type": t, "family": family, "expect": "decode_error", "envelope": raw.hex()}
        )

    def plain(self, t: str, family: str, name: str, raw: bytes) -> None:
        self.entries.append(
            {"name": name, "type": t, "family": family, "expect": "decode_error", "bytes": raw.hex()}
        )

    def bad_signature(self, t: str, name: str, raw: bytes, verify_with: str) -> None:
        self.entries.append(
            {
                "name": name,
                "type": t,
                "family": "signature",
                "expect": "signature_error",
                "verify_with": verify_with,
                "envelope": raw.hex(),
            }
        )
