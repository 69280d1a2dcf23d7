"""Deterministic CBOR (RFC 8949 section 4.2.1) with a strict decoder.

Signatures cover bytes, so every party must produce the same bytes for the same document and refuse any
other spelling of it: a decoder that accepted a non-minimal integer or a duplicated key would let two
different byte strings mean one document. The strict decoder checks that re-encoding gives back exactly
the input, and that only the value types of the protocol occur (no floats, tags, null, booleans).
"""

from __future__ import annotations

from typing import Any

import cbor2

from gate.errors import DecodeError

# 65,535 bytes: the most the NFC transport carries in one command or answer (docs/nfc-transport.md), so
# every document fits one exchange and both limits are one number.
MAX_DOCUMENT_BYTES = 65_535
# Levels of nesting: the document item is level 1, an item inside an array or map one level deeper than its
# container. A signed body inside an envelope's `b` is a byte string (one item); it is decoded on its own and
# counts its levels from 1 again.
MAX_DEPTH = 8
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def encode(value: Any) -> bytes:
    """Deterministic CBOR of ints, text, bytes, lists and text-keyed maps."""
    if not _types_ok(value, 1, False):
        _check_types(value, 1, "value")  # raises, naming where
        raise DecodeError("value: holds a subclass of int, str, bytes, list or dict")
    return cbor2.dumps(value, canonical=True)


def decode(data: bytes, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any:
    """Decode one canonical CBOR item; anything else is a DecodeError naming what was wrong."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise DecodeError(f"document is {len(data)} bytes, over the limit of {max_bytes}")
    if not data:
        raise DecodeError("empty input")
    try:
        value = cbor2.loads(data)
    except (cbor2.CBORDecodeError, RecursionError, ValueError, TypeError, OverflowError) as exc:
        raise DecodeError(f"not well-formed CBOR: {exc}") from exc
    # cbor2 writes every integer and length in its shortest form, definite lengths only, and keeps a decoded
    # map's order: so the input is canonical iff writing it back gives the same bytes and every map's keys
    # are in deterministic order (checked by _types_ok along with the types). Cheaper than canonical=True.
    if not _types_ok(value, 1, True):
        if not _types_ok(value, 1, False):
            _check_types(value, 1, "value")  # raises, naming where
        raise _not_canonical(value, data, "map keys out of order")
    if cbor2.dumps(value) != data:
        raise _not_canonical(
            value, data, "non-minimal length, duplicate keys, indefinite length or trailing bytes"
        )
    return value


def _not_canonical(value: Any, data: bytes, why: str) -> DecodeError:
    canonical = cbor2.dumps(value, canonical=True)
    at = next((i for i, (a, b) in enumerate(zip(canonical, data, strict=False)) if a != b), None)
    at = min(len(canonical), len(data)) if at is None else at
    return DecodeError(f"not canonical CBOR: differs from the deterministic encoding at byte {at} ({why})")


def _types_ok(value: Any, depth: int, ordered: bool) -> bool:
    """The fast path of _check_types (same verdict, no message), and with `ordered` the key order check.

    Every document is walked here when decoded and when encoded, so the leaves (most of the items) are
    judged in their container's loop rather than by a call each, and a map's keys by their tuple (_keys_ok).
    """
    if depth > MAX_DEPTH:
        return False
    t = type(value)
    if t is str or t is bytes:
        return True
    if t is int:
        return _INT_MIN <= value <= _INT_MAX
    if t is list:
        items: Any = value
    elif t is dict:
        if not _keys_ok(tuple(value), ordered):
            return False
        items = value.values()
    else:
        return False
    if depth == MAX_DEPTH and value:
        return False  # its items would be one level too deep
    for item in items:
        t = type(item)
        if t is str or t is bytes:
            continue
        if t is int:
            if _INT_MIN <= item <= _INT_MAX:
                continue
            return False
        if not _types_ok(item, depth + 1, ordered):
            return False
    return True


# The verdicts on the key tuples seen, (text keys of at most 23 bytes, and in deterministic order): documents
# have a few fixed key sets, met again with every document. Bounded, since any input can bring new ones.
_KEY_VERDICTS: dict[tuple[Any, ...], tuple[bool, bool]] = {}
_KEY_VERDICTS_MAX = 1024
_KEY_VERDICT_MAX_KEYS = 32


def _keys_ok(keys: tuple[Any, ...], ordered: bool) -> bool:
    verdict = _KEY_VERDICTS.get(keys)
    if verdict is None:
        verdict = _key_verdict(keys)
        if len(_KEY_VERDICTS) < _KEY_VERDICTS_MAX and len(keys) <= _KEY_VERDICT_MAX_KEYS:
            _KEY_VERDICTS[keys] = verdict
    short_text, in_order = verdict
    return short_text and (in_order or not ordered)


def _key_verdict(keys: tuple[Any, ...]) -> tuple[bool, bool]:
    previous: tuple[int, bytes] | None = None
    in_order = True
    for key in keys:
        if type(key) is not str:
            return False, False
        raw = key.encode()
        if len(raw) > 23:
            return False, False
        # Bytewise order of the encoded keys; with keys of at most 23 bytes the head byte holds the length,
        # so this is (length, bytes) order: RFC 8949 4.2.1 and RFC 7049 canonical agree.
        here = (len(raw), raw)
        if previous is not None and here <= previous:
            in_order = False
        previous = here
    return True, in_order


def _check_types(value: Any, depth: int, where: str) -> None:
    if depth > MAX_DEPTH:
        raise DecodeError(f"{where}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, bool) or value is None:
        raise DecodeError(f"{where}: {value!r} is not a protocol value (no booleans or null)")
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise DecodeError(f"{where}: integer out of 64-bit range")
    elif isinstance(value, str | bytes):
        return
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_types(item, depth + 1, f"{where}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise DecodeError(f"{where}: map key {key!r} is not text")
            if len(key.encode()) > 23:
                raise DecodeError(f"{where}: map key {key!r} longer than 23 bytes")
            _check_types(item, depth + 1, f"{where}.{key}")
    else:
        raise DecodeError(f"{where}: {type(value).__name__} is not a protocol value")
