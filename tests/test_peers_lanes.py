"""Three lanes of one store as `selfcheckout gate run` processes, each with its own vpcd reader on one
pcscd and its own node of a real NATS cluster, the payment system down (no forwarder): a cloned phone, a
partition healed, and a lane killed with SIGKILL and started again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gate.peers.server import NatsCluster, NatsServerError
from gate.protocol.parties import new_id
from tests.fixtures import standin_unavailable
from tests.fixtures.lane import Documents, wait_until
from tests.fixtures.nats import StoreLanes
from tests.fixtures.standins import PcscdInNamespace, _die_with_parent


@pytest.fixture
def store_lanes(tmp_path: Path, second_pcscd: PcscdInNamespace) -> Iterator[StoreLanes]:
    try:
        cluster = NatsCluster(tmp_path / "nats", 3, preexec_fn=_die_with_parent)
        cluster.start()
    except NatsServerError as exc:
        standin_unavailable(str(exc))
    lanes = StoreLanes(tmp_path, second_pcscd, cluster, own_node_only=True)
    try:
        lanes.start()
        yield lanes
    finally:
        lanes.close()
        cluster.close()


def test_a_cloned_phone_is_denied_at_the_next_lane_and_nothing_is_lost_through_a_partition_and_a_kill(
    store_lanes: StoreLanes,
) -> None:
    lanes = store_lanes
    one, two, three = lanes.lanes
    passed: dict[bytes, str] = {}  # list id -> the gate it passed at

    # One hold on two phones holding the same shopper key: lane 1, then lane 2 within 200 ms.
    docs = lanes.shop.documents()
    phone, clone = lanes.card(docs), lanes.card(docs)
    receipt = lanes.tap(0, phone)
    assert (receipt.doc.verdict, receipt.doc.reasons) == ("pass", ())
    passed[docs.list_id] = one.gate
    at_two = lanes.place(1, clone)  # placed at once: the lane reads it as soon as pcscd sees it
    try:
        wait_until(lambda: clone.receipt is not None, 8, "the clone's receipt at lane 2")
    finally:
        at_two.remove()
    assert clone.receipt.doc.verdict == "deny" and "list_used" in clone.receipt.doc.reasons
    # Another list under the same hold, at lane 3: the hold is consumed store-wide.
    other = Documents(docs.voucher, lanes.shop.shopping_list(list=new_id(), hold=docs.voucher.doc.hold))
    receipt = lanes.tap(2, lanes.card(other))
    assert receipt.doc.verdict == "deny" and "hold_consumed" in receipt.doc.reasons

    # Lane 3 is cut off: its node is killed. Lanes 1 and 2 go on passing and sharing; so does lane 3,
    # its record waiting on its disk.
    lanes.cluster.servers[2].kill()
    during = [lanes.shop.documents() for _ in range(3)]
    for i, d in zip((0, 1, 2), during, strict=True):
        assert lanes.tap(i, lanes.card(d)).doc.verdict == "pass"
        passed[d.list_id] = lanes.lanes[i].gate
    wait_until(lambda: {during[0].list_id, during[1].list_id} <= two.used() & one.used(), 30, "1 and 2 share")
    assert during[2].list_id not in one.used() and three.unpublished() == 1
    assert not {during[0].list_id, during[1].list_id} & three.used()
    # Healed: lane 3 reads what it missed, and the others get its pass.
    lanes.cluster.servers[2].start()
    lanes.wait_all_know(set(passed))
    wait_until(lambda: three.unpublished() == 0, 10, "lane 3 saw its record acked")

    # Lane 2 killed right after a pass (its record mid-publish, or not yet sent), then started again.
    d = lanes.shop.documents()
    assert lanes.tap(1, lanes.card(d)).doc.verdict == "pass"
    passed[d.list_id] = two.gate
    two.process.kill()
    two.process.start()
    after = lanes.shop.documents()
    assert lanes.tap(1, lanes.card(after)).doc.verdict == "pass"
    passed[after.list_id] = two.gate
    lanes.wait_all_know(set(passed))
    # Nothing lost, nothing passed twice: each pass is charged at exactly the lane that gave it.
    charges = {lane.gate: lane.charges() for lane in lanes.lanes}
    for list_id, gate in passed.items():
        assert [g for g, c in charges.items() if list_id in c] == [gate]
    assert sum(len(c) for c in charges.values()) == len(passed)
    wait_until(lambda: two.process.health()["peers"]["unpublished"] == 0, 5, "lane 2 saw its records acked")
    peers = two.process.health()["peers"]
    assert peers["caught_up"] is True and peers["refused"] == 0 and peers["connected"] is True
    assert set(peers["reachable"]) == {"gate-01", "gate-02", "gate-03"}
