"""The gate store: migrations, the one durable transaction of a pass, the outbox, the feed, two threads."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from gate.catalog import CatalogError, PriceChange
from gate.legality import Decision, build_charge
from gate.protocol.parties import item
from gate.store import GateStore, OutboxEntry, StoreError
from gate.store.migrations import MIGRATIONS
from tests.fixtures.store import EAN8, HOLD, LIST_ID, NOW, PEN, Shop

OTHER = bytes.fromhex("44" * 16)


def _passing(shop: Shop, list_id: bytes = LIST_ID, hold: bytes = HOLD) -> tuple[Decision, bytes]:
    voucher = shop.voucher(hold=hold)
    slist = shop.shopping_list(list=list_id, hold=hold)
    d = shop.decide(voucher=voucher, signed_list=slist)
    assert d.passed, d.reasons
    return d, build_charge(d, shop.keys["gate"]).encode()


def _count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


FOUR_WRITES = ("used_lists", "consumed_holds", "events", "outbox")


# --- opening and migrations --------------------------------------------------------------------------------


def test_migrations_run_once_and_the_file_is_wal_with_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "gate.db"
    with GateStore(path) as store:
        assert store.schema_migrations() == [m.__name__ for m in MIGRATIONS]
        with store._use() as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with GateStore(path) as store:
        assert store.schema_migrations() == [m.__name__ for m in MIGRATIONS]
        assert store.feed_version() == 0


def test_a_closed_store_refuses_work_and_close_is_idempotent(tmp_path: Path) -> None:
    store = GateStore(tmp_path / "gate.db")
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.outbox_backlog()


def test_an_unopenable_database_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "not-a-db").write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(StoreError):
        GateStore(tmp_path / "not-a-db")


# --- the durable pass --------------------------------------------------------------------------------------


def test_after_record_pass_a_second_connection_sees_all_four_writes(file_shop: Shop) -> None:
    d, charge = _passing(file_shop)
    path = Path(file_shop.store.path)
    assert [_count(path, t) for t in FOUR_WRITES] == [0, 0, 0, 0]
    file_shop.store.record_pass(d, charge, timings={"nfc_read": 0.01})
    assert [_count(path, t) for t in FOUR_WRITES] == [1, 1, 1, 1]
    with sqlite3.connect(path) as conn:
        body, state, amount = conn.execute("SELECT body, state, amount FROM outbox").fetchone()
    assert body == charge and state == "pending" and amount == d.total
    event = file_shop.store.recent_events(1)[0]
    assert event.verdict == "pass" and event.list_id == LIST_ID and "nfc_read" in event.timings
    assert "decode" in event.timings and file_shop.store.passed_here(LIST_ID)


def test_a_failure_mid_transaction_leaves_none_of_the_writes(file_shop: Shop) -> None:
    d, charge = _passing(file_shop)
    path = Path(file_shop.store.path)
    # Another writer already put a charge with this id in the outbox: the fourth insert fails.
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO outbox (charge_id, body, amount, currency, created_at, next_attempt_at, state)"
            " VALUES (?, x'00', 1, 'EUR', 0, 0, 'settled')",
            [LIST_ID],
        )
    with pytest.raises(StoreError, match="UNIQUE"):
        file_shop.store.record_pass(d, charge)
    assert [_count(path, t) for t in FOUR_WRITES] == [0, 0, 0, 1]
    assert file_shop.store.recent_events() == []


def test_a_list_cannot_pass_twice_even_if_the_check_was_skipped(shop: Shop) -> None:
    d, charge = _passing(shop)
    shop.store.record_pass(d, charge)
    with pytest.raises(StoreError):
        shop.store.record_pass(d, charge)
    assert len(shop.store.recent_events()) == 1


def test_record_pass_refuses_denials_foreign_charges_and_unapproved_attendant_checks(shop: Shop) -> None:
    denied = shop.decide([item(PEN, 1)])
    with pytest.raises(StoreError, match="verdict is deny"):
        shop.store.record_pass(denied, b"")
    d, _ = _passing(shop)
    _, other_charge = _passing(shop, list_id=OTHER)
    with pytest.raises(StoreError, match="not the one"):
        shop.store.record_pass(d, other_charge)
    with pytest.raises(StoreError, match="not a signed Charge"):
        shop.store.record_pass(d, b"\x00")
    from tests.fixtures.store import WHISKY

    attendant = shop.decide([item(WHISKY, 3499)])
    charge = build_charge(attendant, shop.keys["gate"]).encode()
    with pytest.raises(StoreError, match="attendant"):
        shop.store.record_pass(attendant, charge)
    shop.store.record_pass(attendant, charge, attendant="carol")
    event = shop.store.recent_events(1)[0]
    assert event.verdict == "pass" and event.attendant == "carol" and event.codes == ("attendant_item",)


def test_denials_and_lane_events_are_recorded(shop: Shop) -> None:
    d = shop.decide([item(PEN, 1)])
    shop.store.record_denial(d, timings={"nfc_read": 0.002, "decode": 0.5})
    event = shop.store.recent_events()[0]
    assert event.verdict == "deny" and event.codes == ("price_mismatch",)
    assert event.timings["nfc_read"] == 0.002 and event.timings["lane_decode"] == 0.5
    assert shop.store.event_presentation(event.id) == d.presentation_bytes
    malformed = shop.check(b"\x00", shop.challenge())
    shop.store.record_denial(malformed)
    assert shop.store.recent_events(1)[0].list_id is None
    shop.store.record_event("transition", "idle -> reading", {"from": "idle"})
    (event,) = shop.store.recent_lane_events()
    assert (event.kind, event.detail, event.data) == ("transition", "idle -> reading", {"from": "idle"})
    assert not shop.store.passed_here(LIST_ID)


# --- the outbox --------------------------------------------------------------------------------------------


def _two_charges(shop: Shop) -> tuple[bytes, bytes]:
    d1, c1 = _passing(shop)
    shop.store.record_pass(d1, c1)
    d2, c2 = _passing(shop, list_id=OTHER, hold=OTHER)
    shop.store.record_pass(d2, c2)
    return LIST_ID, OTHER


def test_the_forwarders_view_of_the_outbox(shop: Shop) -> None:
    first, second = _two_charges(shop)
    due = shop.store.outbox_due(NOW, 10)
    assert [e.charge_id for e in due] == [first, second]
    assert isinstance(due[0], OutboxEntry) and due[0].state == "pending" and due[0].attempts == 0
    assert shop.store.outbox_due(NOW - 1, 10) == []
    assert len(shop.store.outbox_due(NOW, 1)) == 1

    shop.store.outbox_retry_later(first, "connection refused", NOW + 30)
    assert [e.charge_id for e in shop.store.outbox_due(NOW, 10)] == [second]
    (retried,) = [e for e in shop.store.outbox_entries() if e.charge_id == first]
    assert (retried.attempts, retried.last_error, retried.next_attempt_at) == (
        1,
        "connection refused",
        NOW + 30,
    )

    backlog = shop.store.outbox_backlog()
    assert backlog.count == 2 and backlog.amount == 2 * (2 * 129 + 119) and backlog.oldest_created_at == NOW

    shop.store.outbox_settled(second, b"notice-bytes", NOW + 5)
    shop.store.outbox_flag(first, "payment system refused: unknown hold")
    assert shop.store.outbox_due(NOW + 60, 10) == []
    assert [e.charge_id for e in shop.store.outbox_entries("settled")] == [second]
    (flagged,) = shop.store.outbox_entries("flagged")
    assert flagged.last_error.startswith("payment system refused")
    assert shop.store.outbox_notice(second) == b"notice-bytes"
    assert shop.store.outbox_backlog().count == 1  # flagged still counts

    shop.store.outbox_requeue(first, NOW + 100)
    assert [e.charge_id for e in shop.store.outbox_due(NOW + 100, 10)] == [first]
    shop.store.outbox_settled(first, b"", NOW + 101)
    assert shop.store.outbox_backlog().count == 0 and shop.store.outbox_backlog().oldest_created_at is None


def test_outbox_calls_on_an_unknown_charge_are_errors(shop: Shop) -> None:
    for call in (
        lambda: shop.store.outbox_settled(OTHER, b"", NOW),
        lambda: shop.store.outbox_retry_later(OTHER, "x", NOW),
        lambda: shop.store.outbox_flag(OTHER, "x"),
        lambda: shop.store.outbox_requeue(OTHER, NOW),
    ):
        with pytest.raises(StoreError):
            call()
    with pytest.raises(StoreError):
        shop.store.outbox_entries("lost")


def test_settling_twice_is_harmless_and_retry_after_settle_changes_nothing(shop: Shop) -> None:
    first, _ = _two_charges(shop)
    shop.store.outbox_settled(first, b"n", NOW)
    shop.store.outbox_settled(first, b"n", NOW)
    shop.store.outbox_retry_later(first, "late", NOW + 9)
    (entry,) = [e for e in shop.store.outbox_entries("settled")]
    assert entry.attempts == 0 and entry.state == "settled"


# --- the feed ----------------------------------------------------------------------------------------------


def test_apply_feed_replaces_deny_sets_and_adds_holds_and_prices(shop: Shop) -> None:
    store = shop.store
    store.apply_feed(1, {HOLD}, {"mallory"}, [OTHER], [])
    assert store.feed_version() == 1 and store.deny_lists() == ({HOLD}, {"mallory"})
    assert store.facts(LIST_ID, OTHER, "x").hold_consumed
    change = PriceChange(EAN8, "Chewing gum", "sweets", "each", 109, "EUR", NOW + 10)
    store.apply_feed(2, set(), {"eve"}, [], [change])
    assert store.deny_lists() == (set(), {"eve"}) and store.feed_version() == 2
    assert store.facts(LIST_ID, OTHER, "x").hold_consumed  # consumed holds stay
    product = store.products([EAN8], now=NOW + 10, grace_s=0, currency="EUR")[EAN8]
    assert product.current_price() == 109


def test_a_bad_feed_changes_nothing(shop: Shop) -> None:
    bad = PriceChange("123", "x", "", "each", 1, "EUR", NOW)
    with pytest.raises(CatalogError, match="code"):
        shop.store.apply_feed(5, {HOLD}, set(), [], [bad])
    assert shop.store.feed_version() == 0 and shop.store.deny_lists() == (set(), set())


def test_an_older_feed_is_refused_and_does_not_roll_the_deny_list_back(shop: Shop) -> None:
    shop.store.apply_feed(4, {HOLD}, {"mallory"}, [], [])
    with pytest.raises(StoreError, match="feed version 3 is older than the applied version 4"):
        shop.store.apply_feed(3, set(), set(), [], [])
    assert shop.store.feed_version() == 4 and shop.store.deny_lists() == ({HOLD}, {"mallory"})


# --- two threads -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["file", "memory"])
def test_the_lane_and_the_forwarder_threads_share_one_store(tmp_path: Path, where: str) -> None:
    from tests.fixtures.store import make_shop

    with GateStore(tmp_path / "gate.db" if where == "file" else ":memory:") as store:
        shop = make_shop(store)
        passes = []
        for n in range(20):
            list_id = n.to_bytes(16, "big")
            passes.append(_passing(shop, list_id=list_id, hold=list_id))
        errors: list[BaseException] = []
        lane_done = threading.Event()

        def lane() -> None:
            try:
                for d, charge in passes:
                    store.record_pass(d, charge)
            except BaseException as exc:
                errors.append(exc)
            finally:
                lane_done.set()

        def forwarder() -> None:
            try:
                settled = 0
                while settled < len(passes):
                    for entry in store.outbox_due(NOW + 1, 5):
                        store.outbox_settled(entry.charge_id, b"", NOW + 1)
                        settled += 1
                    if lane_done.is_set() and not store.outbox_due(NOW + 1, 1) and settled < len(passes):
                        break
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=lane), threading.Thread(target=forwarder)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        assert store.outbox_backlog().count == 0
        assert len(store.outbox_entries("settled", 100)) == 20
        assert len(store.recent_events(100)) == 20


def test_checkpoints_run_on_the_forwarders_writes_not_inside_a_pass(file_shop: Shop) -> None:
    from gate.store.database import CHECKPOINT_EVERY

    store = file_shop.store
    with store._use() as db:
        assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    d, charge = _passing(file_shop)
    store.record_pass(d, charge)
    for n in range(CHECKPOINT_EVERY + 1):
        store.outbox_retry_later(LIST_ID, "down", NOW + n)
    assert store._commits < CHECKPOINT_EVERY
    store.checkpoint()
    assert store._commits == 0
