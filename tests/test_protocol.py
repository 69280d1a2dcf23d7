"""The protocol core: the strict canonical decoder, the documents' shapes, Ed25519 keys and signatures."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any

import cbor2
import nacl.bindings
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gate.errors import DecodeError, KeyFileError, SignatureError
from gate.protocol import documents, encoding
from gate.protocol.commands import INS_CHALLENGE, INS_RECEIPT
from gate.protocol.documents import HoldVoucher, ShoppingList, open_signed, sign, signing_input
from gate.protocol.faults import NON_CANONICAL_KEY, SMALL_ORDER_KEYS
from gate.protocol.keys import (
    SigningKey,
    TrustedKeys,
    check_public_key,
    key_id,
    read_public_key,
    read_secret_key,
    verify,
    write_public_key,
    write_secret_key,
)
from tests.fixtures.store import Shop

L = 2**252 + 27742317777372353535851937790883648493
BAD_KEYS = [bytes.fromhex(k) for k in (*SMALL_ORDER_KEYS.values(), NON_CANONICAL_KEY)]
BAD_KEY_IDS = [*SMALL_ORDER_KEYS, "non-canonical y = p"]

# --- the encoding ----------------------------------------------------------------------------------------

keys_st = st.text(min_size=1, max_size=23).filter(lambda k: len(k.encode()) <= 23)
values_st = st.recursive(
    st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.text(max_size=40) | st.binary(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys_st, children, max_size=5),
    max_leaves=20,
)


@given(values_st)
def test_encode_decode_round_trip(value: Any) -> None:
    data = encoding.encode(value)
    assert encoding.decode(data) == value
    assert encoding.encode(encoding.decode(data)) == data


@given(st.dictionaries(keys_st, st.integers(0, 10), min_size=2, max_size=8))
def test_map_keys_sort_bytewise_which_is_length_first_for_short_keys(value: dict[str, int]) -> None:
    data = encoding.encode(value)
    encoded_keys = [encoding.encode(k) for k in encoding.decode(data)]
    assert encoded_keys == sorted(encoded_keys)
    assert list(encoding.decode(data)) == sorted(value, key=lambda k: (len(k.encode()), k.encode()))


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_decoding_random_bytes_never_crashes(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        encoding.decode(data)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_opening_random_bytes_as_a_document_never_crashes(data: bytes) -> None:
    for cls in (documents.ExitPresentation, documents.HoldVoucher, documents.ExitChallenge):
        with contextlib.suppress(DecodeError):
            cls.decode(data)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"", "empty"),
        (b"\x18\x01", "non-minimal integer"),
        (b"\x19\x00\x01", "non-minimal integer"),
        (b"\x58\x01\x00", "non-minimal byte string length"),
        (b"\xa2\x61b\x00\x61a\x00", "unsorted keys"),
        (b"\xa2\x61a\x00\x61a\x01", "duplicate key"),
        (b"\x9f\x00\xff", "indefinite-length array"),
        (b"\x5f\x41\x00\xff", "indefinite-length byte string"),
        (b"\x00\x00", "trailing bytes"),
        (b"\xf9\x3c\x00", "float"),
        (b"\xfb\x3f\xf0\x00\x00\x00\x00\x00\x00", "double"),
        (b"\xf5", "true"),
        (b"\xf6", "null"),
        (b"\xf7", "undefined"),
        (b"\xc1\x00", "tag"),
        (b"\xc2\x41\x01", "bignum tag"),
        (b"\xa1\x01\x00", "integer map key"),
        (b"\xa1\x78\x18" + b"k" * 24 + b"\x00", "map key longer than 23 bytes"),
        (b"\x62\xff\xfe", "invalid UTF-8"),
        (b"\x81" * 9 + b"\x00", "nested deeper than 8"),
        (b"\x81" * 100_000 + b"\x00", "nested very deep"),
        (b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff", "array claiming 2^64 entries"),
        (b"\x5b\x00\x00\x00\x00\xff\xff\xff\xff", "byte string claiming 4 GiB"),
        (b"\x1b\xff\xff\xff\xff\xff\xff\xff\xff", "integer over 2^63"),
        (b"\x40" * 70_000, "over the size limit"),
    ],
)
def test_decoder_refuses_anything_not_canonical(raw: bytes, why: str) -> None:
    with pytest.raises(DecodeError):
        encoding.decode(raw)


def test_decoder_names_the_byte_where_the_encoding_is_not_canonical() -> None:
    with pytest.raises(DecodeError, match="at byte 1"):
        encoding.decode(b"\x81\x18\x01")


def test_encoder_refuses_values_outside_the_protocol() -> None:
    for value in (1.5, None, True, {1: 2}, {"k" * 24: 0}, 2**64, object()):
        with pytest.raises(DecodeError):
            encoding.encode(value)


# --- documents ---------------------------------------------------------------------------------------------


def _voucher_fields(shop: Shop) -> dict[str, Any]:
    return encoding.decode(shop.voucher().body)


def test_a_signed_document_round_trips_and_verifies(shop: Shop) -> None:
    signed = shop.voucher()
    opened = open_signed(signed.encode(), HoldVoucher)
    assert opened == signed
    assert opened.verify_with(shop.keys["ps"].public_key) == signed.doc


@pytest.mark.parametrize("field", ["hold", "shopper", "amount", "expires", "shopper_key", "v"])
def test_a_missing_field_is_refused(shop: Shop, field: str) -> None:
    fields = _voucher_fields(shop)
    del fields[field]
    with pytest.raises(DecodeError, match="missing field"):
        HoldVoucher.from_map(fields)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hold", "11" * 16),
        ("amount", "5000"),
        ("amount", -1),
        ("amount", 10**11),
        ("shopper", b"alice"),
        ("shopper", "al ice"),
        ("currency", "eur"),
        ("store", ""),
        ("issued", 2**41),
        ("shopper_key", b"\x00" * 31),
        ("hold", b"\x11" * 17),
    ],
)
def test_a_field_of_the_wrong_type_or_range_is_refused(shop: Shop, field: str, value: Any) -> None:
    fields = _voucher_fields(shop)
    fields[field] = value
    with pytest.raises(DecodeError):
        HoldVoucher.decode(encoding.encode(fields))


def test_an_unknown_field_is_refused(shop: Shop) -> None:
    with pytest.raises(DecodeError, match="unknown field 'note'"):
        HoldVoucher.decode(encoding.encode({**_voucher_fields(shop), "note": "hi"}))


def test_list_rules_tie_fields_together(shop: Shop) -> None:
    fields = encoding.decode(shop.shopping_list().body)
    fields["items"][0]["line_total"] += 1
    with pytest.raises(DecodeError, match="line_total"):
        ShoppingList.decode(encoding.encode(fields))
    fields = encoding.decode(shop.shopping_list().body)
    fields["items"] = []
    with pytest.raises(DecodeError, match="entries"):
        ShoppingList.decode(encoding.encode(fields))


def test_line_totals_of_weighed_goods_round_half_up() -> None:
    assert documents.line_total(1, 1590, 412) == 655  # 655.08
    assert documents.line_total(1, 1000, 1) == 1  # 1.0
    assert documents.line_total(1, 500, 1) == 1  # 0.5 rounds up
    assert documents.line_total(1, 499, 1) == 0  # 0.499 rounds down
    assert documents.line_total(3, 129, None) == 387


def test_an_envelope_is_exactly_b_k_s_t_of_the_expected_type(shop: Shop) -> None:
    env = encoding.decode(shop.voucher().encode())
    with pytest.raises(DecodeError):
        open_signed({**env, "x": 1}, HoldVoucher)
    with pytest.raises(DecodeError):
        open_signed({k: v for k, v in env.items() if k != "s"}, HoldVoucher)
    with pytest.raises(DecodeError, match="expected a hold-voucher"):
        open_signed({**env, "t": "shopping-list"}, HoldVoucher)
    with pytest.raises(DecodeError):
        open_signed({**env, "s": env["s"][:63]}, HoldVoucher)
    with pytest.raises(DecodeError):
        open_signed({**env, "k": "F31F0D0377D7407E"}, HoldVoucher)


def test_the_signature_covers_context_type_and_key_id(shop: Shop) -> None:
    ps = shop.keys["ps"]
    signed = shop.voucher()
    assert signing_input(signed.type, signed.kid, signed.body) == cbor2.dumps(
        ["selfcheckout/1", "hold-voucher", ps.key_id, signed.body], canonical=True
    )
    # The same body signed as another document type does not verify as a voucher.
    other = ps.sign(signing_input("shopping-list", ps.key_id, signed.body))
    forged = documents.Signed(signed.type, signed.kid, signed.body, other, signed.doc)
    with pytest.raises(SignatureError):
        forged.verify_with(ps.public_key)


def test_verify_with_another_key_names_both_key_ids(shop: Shop) -> None:
    with pytest.raises(SignatureError, match="signed by key"):
        shop.voucher().verify_with(shop.keys["mallory"].public_key)


def test_the_nfc_instructions() -> None:
    assert (INS_CHALLENGE, INS_RECEIPT) == (0x10, 0x20)


# --- Ed25519 edge cases ---------------------------------------------------------------------------------


def _non_canonical(sig: bytes) -> bytes:
    s = int.from_bytes(sig[32:], "little") + L
    return sig[:32] + s.to_bytes(32, "little")


def test_a_non_canonical_signature_s_plus_l_is_refused() -> None:
    key = SigningKey.from_seed(b"\x07" * 32)
    sig = key.sign(b"message")
    verify(key.public_key, b"message", sig)
    assert int.from_bytes(_non_canonical(sig)[32:], "little") < 2**256
    with pytest.raises(SignatureError):
        verify(key.public_key, b"message", _non_canonical(sig))


def test_a_non_canonical_signature_on_a_document_is_refused(shop: Shop) -> None:
    signed = shop.voucher()
    bad = documents.Signed(signed.type, signed.kid, signed.body, _non_canonical(signed.sig), signed.doc)
    reopened = open_signed(bad.encode(), HoldVoucher)  # the shape is fine ...
    with pytest.raises(SignatureError):  # ... the signature is not
        reopened.verify_with(shop.keys["ps"].public_key)


@pytest.mark.parametrize("key", BAD_KEYS, ids=BAD_KEY_IDS)
def test_small_order_and_non_canonical_public_keys_are_refused_everywhere(
    shop: Shop, key: bytes, tmp_path: Path
) -> None:
    with pytest.raises(SignatureError):
        check_public_key(key)
    with pytest.raises(SignatureError):
        TrustedKeys([key])
    path = tmp_path / "bad.pub"
    write_public_key(path, key)
    with pytest.raises(KeyFileError):
        read_public_key(path)
    with pytest.raises(KeyFileError):
        TrustedKeys.from_files([path])
    # In a voucher the key is refused while decoding, before any signature is tried.
    voucher = shop.voucher(shopper_key=key)
    with pytest.raises(DecodeError, match="shopper_key"):
        open_signed(voucher.encode(), HoldVoucher)


def test_the_trivial_signature_of_the_identity_key_does_not_verify() -> None:
    identity = bytes.fromhex(SMALL_ORDER_KEYS["identity (order 1)"])
    trivial = identity + bytes(32)  # R = identity, S = 0: "valid" for every message under a naive check
    with pytest.raises(SignatureError):
        verify(identity, b"any message", trivial)
    assert not nacl.bindings.crypto_core_ed25519_is_valid_point(identity)


def test_trusted_keys_hold_several_for_rotation_and_refuse_the_rest() -> None:
    old, new, other = (SigningKey.from_seed(bytes([i]) * 32) for i in (1, 2, 3))
    trusted = TrustedKeys([old.public_key, new.public_key])
    assert len(trusted) == 2 and old.key_id in trusted and other.key_id not in trusted
    assert trusted.get(new.key_id) == new.public_key
    assert trusted.ids() == sorted([old.key_id, new.key_id])
    with pytest.raises(SignatureError, match="not a trusted key"):
        trusted.get(other.key_id)


def test_key_files_are_private_and_round_trip(tmp_path: Path) -> None:
    key = SigningKey.from_seed(os.urandom(32))
    write_secret_key(tmp_path / "gate.key", key)
    write_public_key(tmp_path / "gate.pub", key.public_key)
    assert stat.S_IMODE((tmp_path / "gate.key").stat().st_mode) == 0o600
    assert read_secret_key(tmp_path / "gate.key").public_key == key.public_key
    assert read_public_key(tmp_path / "gate.pub") == key.public_key
    assert key_id(key.public_key) == key.key_id and len(key.key_id) == 16
    (tmp_path / "gate.key").chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        read_secret_key(tmp_path / "gate.key")
    (tmp_path / "short.pub").write_text("abcd\n")
    with pytest.raises(KeyFileError, match="hex digits"):
        read_public_key(tmp_path / "short.pub")
    with pytest.raises(KeyFileError, match="cannot read"):
        read_public_key(tmp_path / "missing.pub")


def test_a_signed_document_with_a_body_that_is_not_canonical_is_refused(shop: Shop) -> None:
    ps = shop.keys["ps"]
    body = shop.voucher().body
    at = body.index(b"\x61v\x01")
    loose = body[:at] + b"\x61v\x18\x01" + body[at + 3 :]
    envelope = encoding.encode(
        {
            "b": loose,
            "k": ps.key_id,
            "s": ps.sign(signing_input("hold-voucher", ps.key_id, loose)),
            "t": "hold-voucher",
        }
    )
    with pytest.raises(DecodeError, match="not canonical"):
        open_signed(envelope, HoldVoucher)


def test_sign_is_deterministic(shop: Shop) -> None:
    doc = shop.voucher().doc
    assert sign(doc, shop.keys["ps"]) == sign(doc, shop.keys["ps"])
