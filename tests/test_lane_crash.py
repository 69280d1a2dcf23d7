"""Crash safety: `selfcheckout gate run` killed with SIGKILL at random moments while phones tap it through
pcscd + vpcd, started again each time; no pass is lost and none is charged twice.

The order the lane keeps (the decision's transaction on disk, then the gate, then the receipt) means a kill
at any instant leaves a list either not passed (the phone taps again and passes) or passed exactly once
(the phone taps again and gets the same pass back, no second charge). Each kill lands at a seeded random
moment of one of three kinds: any time after the phone is placed; while the phone answers the challenge
(nothing decided yet); or after the decision, while the receipt is on its way (the phone, slow to take it,
is lifted with the lane dead: committed, and no receipt). After every kill and at the end:
every outbox row has exactly one pass event and every pass event one outbox row, every pass receipt a
phone holds is in the outbox; and after every restart the gate I/O is locked and the lane idle (the
panel's /api/health of the running process).

Documents are dated at the real time and the catalog moved there (tests.fixtures.lane): the subprocess
runs on its own clock. Each list has its own hold, or the second list on a hold would be hold_consumed.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.errors import CardStatus
from drivers.virtual_card import VirtualCard
from gate.protocol.commands import INS_CHALLENGE, INS_RECEIPT
from gate.store import GateStore
from phone.card import ExitCard
from tests.fixtures.lane import (
    LaneProcess,
    NotifySocket,
    free_port,
    make_live_shop,
    shopping_list_of,
    wait_reader_empty,
    wait_until,
    write_lane_files,
)

SEED = 20260101
TAPS, KILLS = 36, 8  # each pcscd tap costs ~0.7 s (vpcd is polled every 0.4 s), a restart ~1 s
ANY_TIME_S = 0.8  # "any": after the phone is placed; before it is seen, mid-exchange, or with the gate open
STALL_S = 0.3  # the slow phone's pause at the challenge or the receipt (the exchange timeout is 1 s)
MOMENTS = ("any", INS_CHALLENGE, INS_RECEIPT)
KILL_NAMES = {"any": "at any time", INS_CHALLENGE: "at the challenge", INS_RECEIPT: "at the receipt"}
HARNESS_CONFIG: dict[str, dict[str, Any]] = {
    "timings": {"open_timeout_s": 0.1},  # nobody walks through: the gate closes again at once
}


class SlowPhone:
    """An ExitCard that pauses on one command; lifted meanwhile, it never takes what came."""

    def __init__(self, card: ExitCard, stall_on: int | None) -> None:
        self.card = card
        self.stall_on = stall_on
        self.reached = threading.Event()
        self.lifted = False

    def handle(self, ins: int, p1: int, p2: int, data: bytes) -> bytes:
        if ins == self.stall_on:
            self.reached.set()
            time.sleep(STALL_S)
            if self.lifted:
                raise CardStatus(0x6F00, "lifted")
        return self.card.handle(ins, p1, p2, data)


def assert_exactly_once(database: Path, receipts: dict[bytes, Any]) -> tuple[int, int]:
    """Outbox rows and pass events pair one to one; every pass receipt given is in the outbox."""
    with GateStore(database) as store:
        outbox = Counter(e.charge_id for e in store.outbox_entries(limit=100_000))
        passes = Counter(e.list_id for e in store.recent_events(100_000) if e.verdict == "pass")
    assert set(outbox.values()) <= {1} and set(passes.values()) <= {1}, "a list charged twice"
    assert set(outbox) == set(passes), "an outbox row without its pass event, or a pass without its charge"
    given = {list_id for list_id, r in receipts.items() if r is not None and r.doc.verdict == "pass"}
    assert given <= set(outbox), f"{len(given - set(outbox))} pass receipts given and not on disk"
    return len(outbox), len(passes)


def assert_started_locked(lane: LaneProcess, status: str) -> None:
    assert status.startswith("STATUS=idle"), status
    health = lane.health()
    assert health["lane"]["state"] == "idle" and health["lane"]["fire_alarm"] is False
    io = health["gate_io"]
    assert io["locked"] is True and io["holds"] == [] and io["faults"] == [], io


def test_gate_run_killed_at_random_moments_loses_no_pass_and_charges_none_twice(
    tmp_path: Path,
    pcsc: Any,
    virtual_phone: Callable[..., VirtualCard],
    notify_socket: NotifySocket,
) -> None:
    rng = random.Random(SEED)
    moments = [MOMENTS[k % len(MOMENTS)] for k in range(KILLS)]  # each kind of moment, in a seeded order
    rng.shuffle(moments)
    kills = {i: (moments.pop(), rng.random()) for i in sorted(rng.sample(range(TAPS), KILLS))}
    config = write_lane_files(tmp_path, panel={"port": free_port()}, **HARNESS_CONFIG)
    database = tmp_path / "gate.db"
    lane = LaneProcess(config, notify_socket, tmp_path / "lane.log", verbose=True)
    shop = make_live_shop(None)
    receipts: dict[bytes, Any] = {}
    counts: Counter[str] = Counter()

    def ready_for_a_tap() -> None:
        wait_reader_empty()  # pcscd saw the last phone leave: the next one is a new tap
        wait_until(lambda: lane.health()["lane"]["state"] == "idle", 3, "the gate closed", poll_s=0.02)

    def tap(card: ExitCard, timeout_s: float = 5.0) -> Any:
        before = card.receipt
        ready_for_a_tap()
        with virtual_phone(card):
            try:
                wait_until(lambda: card.receipt is not before, timeout_s, "a receipt", poll_s=0.002)
            except AssertionError as exc:
                reader = lane.health()["reader"]
                raise AssertionError(f"{exc}; reader {reader}; lane log: {lane.log_tail()[-600:]}") from None
        receipts[shopping_list_of(card).list] = card.receipt
        return card.receipt

    try:
        assert_started_locked(lane, lane.start())
        for i in range(TAPS):
            card = shop.exit_card()
            list_id = shopping_list_of(card).list
            receipts[list_id] = None
            if i not in kills:
                receipt = tap(card)
                assert (receipt.doc.verdict, receipt.doc.reasons) == ("pass", ()), receipt.doc
                counts["passed"] += 1
                continue
            moment, fraction = kills[i]
            phone = SlowPhone(card, None if moment == "any" else moment)
            ready_for_a_tap()
            with virtual_phone(phone):
                if moment == "any":
                    time.sleep(fraction * ANY_TIME_S)
                else:
                    assert phone.reached.wait(5), lane.log_tail()
                    time.sleep(fraction * STALL_S * 0.8)
                lane.kill()
                phone.lifted = True
            counts[f"kills {KILL_NAMES[moment]}"] += 1
            receipts[list_id] = card.receipt
            assert_exactly_once(database, receipts)
            assert_started_locked(lane, lane.start())
            if card.receipt is None:  # the shopper taps again
                receipt = tap(card)
                assert receipt.doc.verdict == "pass", receipt.doc
                repeat = receipt.doc.reasons == ("list_used",)
                assert repeat or receipt.doc.reasons == ()
                counts[
                    "committed, no receipt: same pass again" if repeat else "not committed: passed now"
                ] += 1
            else:
                counts["killed after the receipt"] += 1
        assert lane.terminate() == 0
    finally:
        lane.close()

    rows, passes = assert_exactly_once(database, receipts)
    print(f"\ncrash harness (seed {SEED}): {dict(counts)}; {rows} outbox rows, {passes} pass events")
    assert sum(n for k, n in counts.items() if k.startswith("kills")) == KILLS and lane.starts == KILLS + 1
    assert rows == passes == TAPS  # 0 lost, 0 duplicated
    assert all(r is not None and r.doc.verdict == "pass" for r in receipts.values())
