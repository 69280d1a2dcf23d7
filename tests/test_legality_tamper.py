"""Property tests: no change to a valid presentation, of any byte or any signed field, ever passes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gate.protocol import encoding
from gate.protocol.documents import ExitPresentation
from gate.store import GateStore
from tests.fixtures.store import Shop, make_shop


@pytest.fixture(scope="module")
def tamper_shop() -> Iterator[Shop]:
    with GateStore(":memory:") as store:
        yield make_shop(store)


@pytest.fixture(scope="module")
def valid(tamper_shop: Shop) -> tuple[bytes, Any]:
    raw, challenge = tamper_shop.present()
    assert tamper_shop.check(raw, challenge).passed
    return raw, challenge


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_flipping_any_byte_never_passes(
    tamper_shop: Shop, valid: tuple[bytes, Any], data: st.DataObject
) -> None:
    raw, challenge = valid
    at = data.draw(st.integers(0, len(raw) - 1), label="byte")
    mask = data.draw(st.integers(1, 255), label="xor")
    tampered = raw[:at] + bytes([raw[at] ^ mask]) + raw[at + 1 :]
    decision = tamper_shop.check(tampered, challenge)
    assert decision.verdict != "pass"


def _mutate(value: Any, data: st.DataObject, path: str) -> tuple[Any, str]:
    """The same structure with one leaf changed somewhere (a different value of any type may come back)."""
    if isinstance(value, dict):
        key = data.draw(st.sampled_from(sorted(value)), label=f"{path} field")
        new, where = _mutate(value[key], data, f"{path}.{key}")
        return {**value, key: new}, where
    if isinstance(value, list):
        i = data.draw(st.integers(0, len(value) - 1), label=f"{path} index")
        new, where = _mutate(value[i], data, f"{path}[{i}]")
        return [*value[:i], new, *value[i + 1 :]], where
    if isinstance(value, bool):  # not a protocol value; here for completeness
        return not value, path
    if isinstance(value, int):
        delta = data.draw(st.integers(-(2**31), 2**31).filter(bool), label=f"{path} delta")
        return value + delta, path
    if isinstance(value, str):
        new = data.draw(st.text(min_size=0, max_size=20).filter(lambda s: s != value), label=path)
        return new, path
    if isinstance(value, bytes):
        if not value or data.draw(st.booleans(), label=f"{path} resize"):
            return value + b"\x00", path
        i = data.draw(st.integers(0, len(value) - 1), label=f"{path} byte")
        return value[:i] + bytes([value[i] ^ data.draw(st.integers(1, 255))]) + value[i + 1 :], path
    raise TypeError(type(value))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), part=st.sampled_from(["voucher", "list", "answer"]))
def test_changing_any_field_of_a_signed_document_never_passes(
    tamper_shop: Shop, valid: tuple[bytes, Any], data: st.DataObject, part: str
) -> None:
    raw, challenge = valid
    outer = encoding.decode(raw)
    envelope = outer[part]
    body = encoding.decode(envelope["b"])
    changed, where = _mutate(body, data, part)
    try:
        new_body = encoding.encode(changed)
    except Exception:  # the change made something no encoder writes: refused even earlier
        return
    tampered = encoding.encode({**outer, part: {**envelope, "b": new_body}})
    decision = tamper_shop.check(tampered, challenge)
    assert decision.verdict != "pass", where
    assert set(decision.codes) & {"malformed", f"{part}_signature" if part != "list" else "list_signature"}


@settings(max_examples=100, deadline=None)
@given(
    data=st.data(),
    field=st.sampled_from(["k", "s", "t"]),
    part=st.sampled_from(["voucher", "list", "answer"]),
)
def test_changing_an_envelope_never_passes(
    tamper_shop: Shop, valid: tuple[bytes, Any], data: st.DataObject, field: str, part: str
) -> None:
    raw, challenge = valid
    outer = encoding.decode(raw)
    changed, _ = _mutate(outer[part][field], data, f"{part}.{field}")
    tampered = encoding.encode({**outer, part: {**outer[part], field: changed}})
    assert tamper_shop.check(tampered, challenge).verdict != "pass"


def test_the_valid_presentation_round_trips(valid: tuple[bytes, Any]) -> None:
    raw, _ = valid
    assert ExitPresentation.decode(raw).encode() == raw
