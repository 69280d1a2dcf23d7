"""The legality check: every rule has a passing and a denying case, asserted as the exact set of codes."""

from __future__ import annotations

import hashlib

import pytest

from gate.barcodes import variable_code
from gate.catalog import MemoryCatalog
from gate.legality import (
    RULES,
    STEPS,
    Backlog,
    StateFacts,
    audit_draw,
    build_charge,
    build_receipt,
    check,
)
from gate.protocol.documents import Charge, ExitPresentation, ExitReceipt, open_signed
from gate.protocol.keys import SigningKey
from gate.protocol.parties import item
from tests.fixtures.store import (
    BLADES,
    BUTTER,
    CAKE,
    CATALOG,
    DELI,
    EAN8,
    GOUDA,
    HOLD,
    LIST_ID,
    MILK,
    NOW,
    PEN,
    PRICE,
    PRICE_CHECKED,
    UPC_A,
    WEIGHT,
    WHISKY,
    Shop,
)

OTHER_ID = bytes.fromhex("44" * 16)


def codes(decision) -> set[str]:
    return set(decision.codes)


def test_a_good_presentation_passes_with_every_step_timed(shop: Shop) -> None:
    d = shop.decide()
    assert d.verdict == "pass" and d.passed and d.codes == ()
    assert set(STEPS) | {"total"} == set(d.timings)
    assert all(t >= 0 for t in d.timings.values())
    assert d.list_id == LIST_ID and d.hold == HOLD and d.shopper == "alice" and d.total == 2 * 129 + 119


def test_every_rule_has_a_code_and_kinds_are_deny_or_attendant() -> None:
    assert len({r.code for r in RULES}) == len(RULES)
    assert {r.kind for r in RULES} == {"deny", "attendant"}


# --- malformed ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", [b"", b"\x00", b"\xa0", b"not cbor at all", b"\x18\x01", b"\xa1\x61v\x01"], ids=repr
)
def test_malformed_presentations_are_denied_with_one_reason(shop: Shop, raw: bytes) -> None:
    d = shop.check(raw, shop.challenge())
    assert d.verdict == "deny" and d.codes == ("malformed",)
    assert d.presentation is None and d.list_id is None and "decode" in d.timings


def test_a_presentation_with_a_trailing_byte_is_malformed(shop: Shop) -> None:
    raw, challenge = shop.present()
    assert shop.check(raw, challenge).passed
    assert shop.check(raw + b"\x00", challenge).codes == ("malformed",)


def test_a_small_order_shopper_key_makes_the_presentation_malformed(shop: Shop) -> None:
    voucher = shop.voucher(shopper_key=bytes.fromhex("01" + "00" * 31))
    raw, challenge = shop.present(voucher=voucher)
    assert shop.check(raw, challenge).codes == ("malformed",)


# --- the voucher -------------------------------------------------------------------------------------------


def test_voucher_signed_by_an_untrusted_key_is_denied(shop: Shop) -> None:
    assert codes(shop.decide(voucher=shop.voucher(key=shop.keys["mallory"]))) == {"voucher_signature"}


def test_voucher_signed_by_the_next_trusted_key_passes_during_rotation(shop: Shop) -> None:
    assert shop.decide(voucher=shop.voucher(key=shop.keys["ps-next"])).passed


def test_voucher_with_a_non_canonical_signature_is_denied(shop: Shop) -> None:
    from gate.protocol.documents import Signed

    v = shop.voucher()
    s = int.from_bytes(v.sig[32:], "little") + 2**252 + 27742317777372353535851937790883648493
    bad = Signed(v.type, v.kid, v.body, v.sig[:32] + s.to_bytes(32, "little"), v.doc)
    assert codes(shop.decide(voucher=bad)) == {"voucher_signature"}


def test_voucher_expiry(shop: Shop) -> None:
    voucher = shop.voucher(expires=NOW + 10)
    raw, challenge = shop.present(voucher=voucher)
    assert shop.check(raw, challenge, now=NOW + 10).passed
    assert codes(shop.check(raw, challenge, now=NOW + 11)) == {"voucher_expired"}


def test_voucher_issued_in_the_future_beyond_the_clock_skew(shop: Shop) -> None:
    assert shop.decide(voucher=shop.voucher(issued=NOW + 120)).passed
    assert codes(shop.decide(voucher=shop.voucher(issued=NOW + 121))) == {"voucher_not_yet_valid"}


def test_voucher_for_another_store(shop: Shop) -> None:
    assert codes(shop.decide(voucher=shop.voucher(store="store-0002"))) == {"voucher_wrong_store"}


def test_voucher_in_another_currency(shop: Shop) -> None:
    assert codes(shop.decide(voucher=shop.voucher(currency="USD"))) == {"voucher_wrong_currency"}


# --- the list ----------------------------------------------------------------------------------------------


def test_list_signed_by_another_key_than_the_vouchers_shopper(shop: Shop) -> None:
    assert codes(shop.decide(signed_list=shop.shopping_list(key=shop.keys["mallory"]))) == {"list_signature"}


def test_list_for_another_hold(shop: Shop) -> None:
    assert codes(shop.decide(signed_list=shop.shopping_list(hold=OTHER_ID))) == {"list_wrong_hold"}


def test_list_for_another_store_or_currency(shop: Shop) -> None:
    assert codes(shop.decide(signed_list=shop.shopping_list(store="store-0002"))) == {"list_wrong_store"}
    assert codes(shop.decide(signed_list=shop.shopping_list(currency="USD"))) == {"list_wrong_currency"}


def test_list_age(shop: Shop) -> None:
    assert shop.decide(signed_list=shop.shopping_list(created=NOW - 86400)).passed
    assert codes(shop.decide(signed_list=shop.shopping_list(created=NOW - 86401))) == {"list_stale"}
    assert shop.decide(signed_list=shop.shopping_list(created=NOW + 120)).passed
    assert codes(shop.decide(signed_list=shop.shopping_list(created=NOW + 121))) == {"list_from_future"}


def test_total_is_the_sum_of_lines(shop: Shop) -> None:
    assert codes(shop.decide(signed_list=shop.shopping_list(total=2 * 129 + 119 - 1))) == {"total_mismatch"}


def test_total_within_the_guaranteed_amount(shop: Shop) -> None:
    items = [item(PEN, 129, 38)]  # 4902
    assert shop.decide(items, voucher=shop.voucher(amount=4902, stored_value=902, bank=4000)).passed
    assert codes(shop.decide(items, voucher=shop.voucher(amount=4901, stored_value=901, bank=4000))) == {
        "over_guarantee"
    }


def test_item_and_quantity_limits(shop: Shop) -> None:
    raw, challenge = shop.present([item(PEN, 129, 3), item(EAN8, 99)])
    assert shop.check(raw, challenge, max_items=2, max_quantity=3).passed
    assert codes(shop.check(raw, challenge, max_items=1)) == {"too_many_items"}
    assert codes(shop.check(raw, challenge, max_quantity=2)) == {"quantity_limit"}


# --- the challenge answer ----------------------------------------------------------------------------------


def test_answer_signed_by_another_key(shop: Shop) -> None:
    challenge, slist = shop.challenge(), shop.shopping_list()
    answer = shop.answer(challenge, slist, key=shop.keys["mallory"])
    assert codes(shop.decide(signed_list=slist, challenge=challenge, answer=answer)) == {"answer_signature"}


def test_answer_naming_another_gate(shop: Shop) -> None:
    challenge, slist = shop.challenge(), shop.shopping_list()
    answer = shop.answer(challenge, slist, gate="gate-02")
    assert codes(shop.decide(signed_list=slist, challenge=challenge, answer=answer)) == {"answer_wrong_gate"}


def test_a_presentation_answered_for_another_challenge_is_denied(shop: Shop) -> None:
    raw, _ = shop.present(challenge=shop.challenge(nonce=b"\x01" * 32))
    fresh = shop.challenge(nonce=b"\x02" * 32)
    assert codes(shop.check(raw, fresh)) == {"answer_wrong_nonce"}


def test_answer_for_another_list(shop: Shop) -> None:
    challenge = shop.challenge()
    other = shop.shopping_list([item(EAN8, 99)])
    answer = shop.answer(challenge, other)
    assert codes(shop.decide(challenge=challenge, answer=answer)) == {"answer_wrong_list"}


# --- the catalog -------------------------------------------------------------------------------------------


def test_every_kind_of_code_passes_at_catalog_prices(shop: Shop) -> None:
    items = [
        item(PEN, 129, 2),
        item(UPC_A, 250),  # UPC-A, filed under its EAN-13 spelling
        item("0" + UPC_A, 250),  # the same product spelt as EAN-13
        item(EAN8, 99),
        item(variable_code(WEIGHT, "00231", 412), 1590, grams=412),
        item(variable_code(PRICE, "00457", 1234), 1234),
        item(variable_code(PRICE_CHECKED, "00123", 875), 875),
    ]
    assert shop.decide(items).passed


def test_invalid_codes(shop: Shop) -> None:
    bad_pcd = variable_code(PRICE_CHECKED, "00123", 875)
    body = bad_pcd[:7] + str((int(bad_pcd[7]) + 1) % 10) + bad_pcd[8:12]
    from gate.barcodes import check_digit

    wrong_price_check = body + check_digit(body)
    d = shop.decide([item("4006381333932", 129), item(wrong_price_check, 875), item(PEN, 129)])
    assert codes(d) == {"invalid_code"}
    assert "line 1" in d.reasons[0].message and "line 2" in d.reasons[0].message


def test_unknown_items(shop: Shop) -> None:
    unknown_gs1 = variable_code(WEIGHT, "99999", 100)
    assert codes(shop.decide([item("4000000000006", 10), item(unknown_gs1, 1590, grams=100)])) == {
        "unknown_item"
    }


def test_a_price_other_than_the_catalogs_is_denied(shop: Shop) -> None:
    assert codes(shop.decide([item(PEN, 128)])) == {"price_mismatch"}


def test_an_old_price_counts_within_the_grace_period_only(shop: Shop) -> None:
    assert shop.decide([item(MILK, 109)]).passed  # changed 5 minutes ago, grace 15 minutes
    assert shop.decide([item(MILK, 119)]).passed
    assert codes(shop.decide([item(BUTTER, 199)])) == {"price_mismatch"}  # changed an hour ago
    assert shop.decide([item(BUTTER, 219)]).passed
    raw, challenge = shop.present([item(MILK, 109)])
    assert codes(shop.check(raw, challenge, price_grace_s=0)) == {"price_mismatch"}


def test_a_price_that_starts_later_does_not_count_yet(shop: Shop) -> None:
    from gate.catalog import PriceChange

    shop.store.import_catalog([PriceChange(PEN, "Stabilo pen", "stationery", "each", 99, "EUR", NOW + 60)])
    assert codes(shop.decide([item(PEN, 99)])) == {"price_mismatch"}
    raw, challenge = shop.present([item(PEN, 99)])
    assert shop.check(raw, challenge, now=NOW + 60).passed


def test_a_price_embedded_code_must_be_listed_at_its_price(shop: Shop) -> None:
    code = variable_code(PRICE, "00457", 1234)
    assert codes(shop.decide([item(code, 1200)])) == {"price_mismatch"}
    assert codes(shop.decide([item(code, 1234, grams=100)])) == {"weight_mismatch"}


def test_a_weight_embedded_code_carries_its_grams_and_the_price_per_kg(shop: Shop) -> None:
    code = variable_code(WEIGHT, "00231", 412)
    assert shop.decide([item(code, 1590, grams=412)]).passed
    assert codes(shop.decide([item(code, 1590, grams=500)])) == {"weight_mismatch"}
    assert codes(shop.decide([item(code, 1590)])) == {"weight_mismatch"}
    assert codes(shop.decide([item(code, 1490, grams=412)])) == {"price_mismatch"}
    assert codes(shop.decide([item(PEN, 129, grams=10)])) == {"weight_mismatch"}


def test_attendant_only_items_send_the_shopper_to_an_attendant(shop: Shop) -> None:
    d = shop.decide([item(WHISKY, 3499), item(BLADES, 1299)])
    assert d.verdict == "attendant" and codes(d) == {"attendant_item"}
    assert "Single malt" in d.reasons[0].message and "Razor blades" in d.reasons[0].message
    raw, challenge = shop.present([item(WHISKY, 3499)])
    assert shop.check(raw, challenge, attendant_categories=frozenset()).passed


def test_a_deny_reason_wins_over_an_attendant_reason(shop: Shop) -> None:
    d = shop.decide([item(WHISKY, 3000)])
    assert d.verdict == "deny" and codes(d) == {"attendant_item", "price_mismatch"}


def test_the_catalog_is_read_in_one_lookup_for_all_codes(shop: Shop) -> None:
    calls = []

    class Counting:
        def products(self, keys, **kw):
            calls.append(set(keys))
            return shop.store.products(keys, **kw)

    raw, challenge = shop.present([item(PEN, 129), item(EAN8, 99), item(PEN, 129), item(MILK, 119)])
    d = check(
        raw,
        challenge,
        now=NOW,
        catalog=Counting(),
        state=shop.store,
        policy=shop.policy,
        trusted=shop.trusted,
        gate=shop.gate,
    )
    assert d.passed and calls == [{PEN, EAN8, MILK}]


def test_a_memory_catalog_and_a_fake_state_judge_like_the_store(shop: Shop) -> None:
    class State:
        def facts(self, list_id, hold, shopper):
            return StateFacts(False, False, False, shopper == "alice", Backlog(0, 0, None))

    raw, challenge = shop.present()
    d = check(
        raw,
        challenge,
        now=NOW,
        catalog=MemoryCatalog(CATALOG),
        state=State(),
        policy=shop.policy,
        trusted=shop.trusted,
        gate=shop.gate,
    )
    assert codes(d) == {"shopper_denied"}


# --- the store's state -------------------------------------------------------------------------------------


def _pass(shop: Shop, raw: bytes, challenge) -> None:
    d = shop.check(raw, challenge)
    assert d.passed, d.reasons
    shop.store.record_pass(d, build_charge(d, shop.keys["gate"]).encode())


def test_a_replayed_presentation_is_denied_at_the_same_gate(shop: Shop) -> None:
    raw, challenge = shop.present()
    _pass(shop, raw, challenge)
    assert codes(shop.check(raw, challenge)) == {"list_used"}
    # A recorded transcript against a fresh challenge fails twice over.
    assert codes(shop.check(raw, shop.challenge(nonce=b"\x09" * 32))) == {"list_used", "answer_wrong_nonce"}


def test_a_second_list_on_a_consumed_hold_is_denied(shop: Shop) -> None:
    _pass(shop, *shop.present())
    second = shop.shopping_list([item(EAN8, 99)], list=OTHER_ID)
    assert codes(shop.decide(signed_list=second)) == {"hold_consumed"}


def test_a_hold_consumed_at_another_gate_once_synced(shop: Shop) -> None:
    raw, challenge = shop.present()
    assert shop.check(raw, challenge).passed
    shop.store.apply_feed(1, set(), set(), [HOLD], [])
    assert codes(shop.check(raw, challenge)) == {"hold_consumed"}


def test_deny_lists(shop: Shop) -> None:
    raw, challenge = shop.present()
    shop.store.apply_feed(1, {HOLD}, set(), [], [])
    assert codes(shop.check(raw, challenge)) == {"hold_denied"}
    shop.store.apply_feed(2, set(), {"alice"}, [], [])
    assert codes(shop.check(raw, challenge)) == {"shopper_denied"}
    shop.store.apply_feed(3, {HOLD}, {"alice"}, [], [])
    assert codes(shop.check(raw, challenge)) == {"hold_denied", "shopper_denied"}
    shop.store.apply_feed(4, set(), {"bob"}, [], [])
    assert shop.check(raw, challenge).passed


def test_the_offline_limit_on_unsettled_charges(shop: Shop) -> None:
    first = shop.shopping_list([item(EAN8, 99)], list=OTHER_ID, hold=OTHER_ID)
    other_voucher = shop.voucher(hold=OTHER_ID)
    challenge = shop.challenge()
    _pass(shop, *shop.present(voucher=other_voucher, signed_list=first, challenge=challenge))
    raw, challenge = shop.present()
    assert shop.check(raw, challenge, offline_max_count=2, offline_max_amount=100).passed
    assert codes(shop.check(raw, challenge, offline_max_count=1)) == {"offline_limit"}
    assert codes(shop.check(raw, challenge, offline_max_amount=99)) == {"offline_limit"}
    assert codes(shop.check(raw, challenge, now=NOW + 61, offline_max_age_s=60)) == {"offline_limit"}
    d = shop.check(raw, challenge, offline_max_count=1, offline_max_amount=99)
    assert codes(d) == {"offline_limit"} and "; " in d.reasons[0].message
    shop.store.outbox_settled(OTHER_ID, b"", NOW)
    assert shop.check(raw, challenge, offline_max_count=1, offline_max_amount=99).passed


# --- the random audit --------------------------------------------------------------------------------------


def test_the_audit_draw_is_deterministic_per_seed_and_list() -> None:
    assert audit_draw(0, LIST_ID) == audit_draw(0, LIST_ID)
    expected = int.from_bytes(hashlib.sha256(b"selfcheckout-audit/1|0|" + LIST_ID).digest()[:8], "big") % 1000
    assert audit_draw(0, LIST_ID) == expected
    draws = [audit_draw(7, i.to_bytes(16, "big")) for i in range(2000)]
    assert min(draws) >= 0 and max(draws) <= 999
    assert 150 < sum(d < 100 for d in draws) < 250  # about 10% under a 100 per mille policy


def test_a_list_drawn_for_an_audit_goes_to_an_attendant(shop: Shop) -> None:
    raw, challenge = shop.present()
    draw = audit_draw(42, LIST_ID)
    d = shop.check(raw, challenge, audit_per_mille=draw + 1, audit_seed=42)
    assert d.verdict == "attendant" and codes(d) == {"audit"}
    assert shop.check(raw, challenge, audit_per_mille=draw, audit_seed=42).passed
    assert shop.check(raw, challenge, audit_per_mille=0, audit_seed=42).passed


def test_a_denied_list_is_not_also_audited(shop: Shop) -> None:
    raw, challenge = shop.present([item(PEN, 1)])
    assert codes(shop.check(raw, challenge, audit_per_mille=1000)) == {"price_mismatch"}


# --- everything at once ------------------------------------------------------------------------------------


def test_every_reason_that_applies_is_reported_not_just_the_first(shop: Shop) -> None:
    shop.store.apply_feed(1, {HOLD}, {"alice"}, [], [])
    voucher = shop.voucher(key=shop.keys["mallory"], store="store-0002", currency="USD", expires=NOW - 1)
    slist = shop.shopping_list(
        [item(PEN, 128, 200), item("4000000000006", 10), item(WHISKY, 3499)],
        key=shop.keys["mallory"],
        hold=OTHER_ID,
        created=NOW + 3600,
        total=1,
    )
    challenge = shop.challenge()
    answer = shop.answer(challenge, slist, key=shop.keys["mallory"], gate="gate-09", nonce=b"\x05" * 32)
    d = shop.decide(voucher=voucher, signed_list=slist, challenge=challenge, answer=answer)
    assert codes(d) == {
        "voucher_signature",
        "voucher_expired",
        "voucher_wrong_store",
        "voucher_wrong_currency",
        "list_signature",
        "list_wrong_hold",
        "list_from_future",
        "answer_signature",
        "answer_wrong_gate",
        "answer_wrong_nonce",
        "total_mismatch",
        "unknown_item",
        "price_mismatch",
        "quantity_limit",
        "attendant_item",
        "hold_denied",
        "shopper_denied",
    }
    assert d.verdict == "deny"
    order = [r.code for r in RULES]
    assert list(d.codes) == sorted(d.codes, key=order.index)
    assert all(r.message for r in d.reasons)


def test_per_line_details_are_capped_in_the_sentence(shop: Shop) -> None:
    d = shop.decide([item(PEN, 100 + i) for i in range(6)])
    assert codes(d) == {"price_mismatch"} and d.reasons[0].message.endswith("and 3 more")


# --- the documents the gate signs --------------------------------------------------------------------------


def test_a_pass_gives_a_charge_signed_by_the_gate(shop: Shop) -> None:
    raw, challenge = shop.present()
    d = shop.check(raw, challenge)
    charge = build_charge(d, shop.keys["gate"])
    opened = open_signed(charge.encode(), Charge)
    doc = opened.verify_with(shop.keys["gate"].public_key)
    assert doc.charge == LIST_ID and doc.amount == d.total and doc.challenge == challenge
    assert ExitPresentation(v=1, voucher=doc.voucher, list=doc.list, answer=doc.answer).encode() == raw


def test_no_charge_for_a_denial(shop: Shop) -> None:
    from gate.errors import ProtocolError

    d = shop.decide([item(PEN, 1)])
    with pytest.raises(ProtocolError):
        build_charge(d, shop.keys["gate"])


def test_receipts_carry_the_verdict_and_every_code(shop: Shop) -> None:
    gate_key: SigningKey = shop.keys["gate"]
    d = shop.decide([item(PEN, 1), item(WHISKY, 3499)])
    receipt = open_signed(build_receipt(d, gate_key).encode(), ExitReceipt).verify_with(gate_key.public_key)
    assert receipt.verdict == "deny" and receipt.reasons == ("price_mismatch", "attendant_item")
    assert receipt.list == LIST_ID and receipt.nonce == d.challenge.nonce
    malformed = shop.check(b"\x00", shop.challenge())
    receipt = build_receipt(malformed, gate_key).doc
    assert receipt.reasons == ("malformed",) and receipt.list == bytes(16) and receipt.total == 0
    approved = build_receipt(shop.decide([item(WHISKY, 3499)]), gate_key, verdict="pass").doc
    assert approved.verdict == "pass" and approved.reasons == ("attendant_item",)


def test_the_decision_as_json(shop: Shop) -> None:
    j = shop.decide([item(PEN, 1)]).to_json()
    assert j["verdict"] == "deny" and j["reasons"][0]["code"] == "price_mismatch"
    assert j["list"] == LIST_ID.hex() and set(j["timings_ms"]) == set(STEPS) | {"total"}


def test_a_decoded_presentation_is_judged_like_its_bytes(shop: Shop) -> None:
    raw, challenge = shop.present()
    d = shop.check(ExitPresentation.decode(raw), challenge)
    assert d.passed and d.presentation_bytes == raw


def test_fixture_codes_are_what_the_catalog_holds() -> None:
    assert {GOUDA, DELI, CAKE} <= {c.code for c in CATALOG}
