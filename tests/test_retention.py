"""Retention prunes settled charges and old events, and never what a decision or a charge still needs:
a used list within its validity (a replay stays list_used), consumed holds, an unforwarded charge."""

from __future__ import annotations

from gate.legality import Decision, build_charge
from gate.store import GateStore
from tests.fixtures.store import NOW, Shop

DAY = 86_400.0
A_LIST, A_HOLD = bytes.fromhex("a1" * 16), bytes.fromhex("a2" * 16)
B_LIST, B_HOLD = bytes.fromhex("b1" * 16), bytes.fromhex("b2" * 16)


def _pass(shop: Shop, list_id: bytes, hold: bytes) -> Decision:
    d = shop.decide(voucher=shop.voucher(hold=hold), signed_list=shop.shopping_list(list=list_id, hold=hold))
    shop.store.record_pass(d, build_charge(d, shop.keys["gate"]).encode())
    return d


def _rows(store: GateStore, table: str) -> int:
    with store._read() as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_pruning_keeps_what_the_legality_check_and_the_forwarder_still_need(shop: Shop) -> None:
    store = shop.store
    a = _pass(shop, A_LIST, A_HOLD)
    store.outbox_settled(A_LIST, b"", NOW)  # A: settled at the payment system
    _pass(shop, B_LIST, B_HOLD)  # B: never forwarded
    denial = shop.decide(voucher=shop.voucher(key=shop.keys["mallory"]))
    store.record_denial(denial)
    later = NOW + 100 * DAY

    # Lists stay valid 200 days here: A's used id and its pass event stay; A's settled charge and the
    # denial go; B, unforwarded, keeps everything.
    pruned = store.prune(now=later, keep_events_s=90 * DAY, keep_settled_s=30 * DAY, list_valid_s=200 * DAY)
    assert (pruned.outbox, pruned.used_lists, pruned.events) == (1, 0, 1)
    assert [e.charge_id for e in store.outbox_entries()] == [B_LIST]
    assert store.facts(A_LIST, A_HOLD, "alice").list_used  # a replay of A is still list_used...
    assert store.passed_list(A_LIST).list_body == a.presentation.list.body  # ...and a repeat tap is known
    assert store.facts(B_LIST, B_HOLD, "alice").list_used

    # Once a list that old could no longer pass, its used id and pass event go too; B's stay (unsettled),
    # and both consumed holds stay whatever happens.
    pruned = store.prune(now=later, keep_events_s=90 * DAY, keep_settled_s=30 * DAY, list_valid_s=1 * DAY)
    assert (pruned.outbox, pruned.used_lists, pruned.events) == (0, 1, 1)
    assert not store.facts(A_LIST, A_HOLD, "alice").list_used
    assert _rows(store, "consumed_holds") == 2
    assert store.facts(B_LIST, B_HOLD, "alice").list_used
    assert [e.list_id for e in store.recent_events()] == [B_LIST]
    assert [e.charge_id for e in store.outbox_entries()] == [B_LIST]


def test_nothing_younger_than_its_retention_is_pruned(shop: Shop) -> None:
    _pass(shop, A_LIST, A_HOLD)
    shop.store.outbox_settled(A_LIST, b"", NOW)
    shop.store.record_event("transition", "idle -> reading: phone on the reader")
    pruned = shop.store.prune(
        now=NOW + 1 * DAY, keep_events_s=90 * DAY, keep_settled_s=30 * DAY, list_valid_s=DAY
    )
    assert pruned.total == 0
