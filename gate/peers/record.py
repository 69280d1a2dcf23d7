"""The pass record: what one lane tells the other lanes of its store the moment a pass is committed.

A record names the list that passed, the hold it consumed, the shopper and their key id, the time and the
gate. It travels in the protocol's signed envelope (gate.protocol.documents), signed by the gate key that
also signs the gate's charges, so a lane applies a record only when the key that signed it is one of the
store's active gate keys in the payment system's last signed feed, and belongs to the gate the record
names. A gate taken out of the feed (revoked) is no longer listed, so its records are refused from then on.

A list passes once at a gate, so (gate, list) names a record: one delivered twice (a replay, or the same
record published again after a crash mid-publish) is recognised by the applying store and refused as a
replay, and the transport stores it once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from gate.errors import ProtocolError, SignatureError
from gate.protocol.documents import ID, NAME, Document, Signed, Validator, _text, _uint, _version, open_signed
from gate.protocol.documents import sign as sign_document
from gate.protocol.keys import SigningKey, key_id

TIME_MS = _uint(2**50)
KEY_ID = _text(re.compile(r"[0-9a-f]{16}"), "a key id of 16 hex digits")
CLOCK_SKEW_MS = 120_000  # a record dated further ahead than this is refused: no lane's clock is that far off


class RecordRefused(ProtocolError):
    """A pass record a lane will not apply: forged, from an unknown or revoked gate, replayed, malformed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code  # forged, unknown_gate, wrong_store, future, malformed, replayed


@dataclass(frozen=True)
class PassRecord(Document):
    """Lane -> the other lanes of its store, signed by the gate: a list passed here, its hold is consumed."""

    TYPE = "pass-record"
    FIELDS: ClassVar[dict[str, Validator]] = {
        "v": _version,
        "store": NAME,
        "gate": NAME,
        "list": ID,
        "hold": ID,
        "shopper": NAME,
        "shopper_kid": KEY_ID,
        "at_ms": TIME_MS,
    }
    v: int
    store: str
    gate: str
    list: bytes
    hold: bytes
    shopper: str
    shopper_kid: str
    at_ms: int

    @property
    def msg_id(self) -> str:
        """The transport's de-duplication id: the same record published twice is stored once."""
        return f"{self.gate}-{self.list.hex()}"


def new_record(
    key: SigningKey,
    *,
    store: str,
    gate: str,
    list_id: bytes,
    hold: bytes,
    shopper: str,
    shopper_key: bytes,
    at_ms: int,
) -> Signed[PassRecord]:
    record = PassRecord(1, store, gate, list_id, hold, shopper, key_id(shopper_key), at_ms)
    PassRecord.from_map(record.to_map())  # the same limits a receiving lane applies
    return sign_document(record, key)


def verify_record(
    raw: bytes, *, store: str, gate_keys: Mapping[str, tuple[str, bytes]], now_ms: int
) -> PassRecord:
    """Open and check one record against the store's gate keys (key id -> (gate, public key)).

    RecordRefused with a code saying which rule refused it; a replay is the applying store's to detect.
    """
    try:
        signed = open_signed(raw, PassRecord)
    except ProtocolError as exc:
        raise RecordRefused("malformed", f"not a pass record: {exc}") from exc
    doc = signed.doc
    listed = gate_keys.get(signed.kid)
    if listed is None:
        raise RecordRefused(
            "unknown_gate",
            f"record {doc.msg_id} is signed by key {signed.kid}, not an active gate key of the store's feed",
        )
    gate, public_key = listed
    if gate != doc.gate:
        raise RecordRefused("forged", f"record {doc.msg_id} names gate {doc.gate} but is signed by {gate}")
    try:
        signed.verify_with(public_key)
    except SignatureError as exc:
        raise RecordRefused("forged", f"record {doc.msg_id}: {exc}") from exc
    if doc.store != store:
        raise RecordRefused("wrong_store", f"record {doc.msg_id} is for store {doc.store}, not {store}")
    if doc.at_ms > now_ms + CLOCK_SKEW_MS:
        raise RecordRefused("future", f"record {doc.msg_id} is dated {doc.at_ms - now_ms} ms ahead")
    return doc
