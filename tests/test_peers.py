"""Lanes of one store share their passes over a real NATS JetStream cluster (three nats-server nodes).

Each lane here is its store and its link (tests.fixtures.nats.PeerRig); passes are committed through the
store's own record_pass, as the lane commits them. Whole lanes with readers and gates, partitions and
SIGKILLs are in tests/test_peers_lanes.py.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

from gate import config as lane_config
from gate.config import LaneConfig
from gate.peers.doctor import check_peers
from gate.peers.link import PeerLink
from gate.peers.record import new_record
from gate.peers.server import NatsCluster, free_port
from gate.peers.transport import NatsTransport
from gate.protocol.documents import Signed
from gate.protocol.keys import SigningKey
from gate.protocol.parties import new_id
from gate.store import GateStore
from tests.fixtures.lane import SELFCHECKOUT, wait_until
from tests.fixtures.nats import commit_pass, gate_keys_feed, pass_at, peer_rig
from tests.fixtures.store import Shop, make_shop

GATES = {
    f"gate-0{n}": SigningKey.from_seed(hashlib.sha256(f"peer gate {n}".encode()).digest()) for n in (1, 2, 3)
}


def codes_at(shop: Shop, list_id: bytes, hold: bytes) -> tuple[str, ...]:
    decision = shop.decide(
        voucher=shop.voucher(hold=hold), signed_list=shop.shopping_list(list=list_id, hold=hold)
    )
    return decision.codes


def test_a_pass_at_one_lane_makes_the_list_used_and_the_hold_consumed_at_the_others(
    tmp_path: Path, nats_cluster: NatsCluster, peer_store_id: str
) -> None:
    with (
        peer_rig(tmp_path, nats_cluster, peer_store_id, "gate-01", GATES["gate-01"], GATES, node=0) as one,
        peer_rig(tmp_path, nats_cluster, peer_store_id, "gate-02", GATES["gate-02"], GATES, node=1) as two,
        peer_rig(tmp_path, nats_cluster, peer_store_id, "gate-03", GATES["gate-03"], GATES, node=2) as three,
    ):
        shops = {rig.gate: make_shop(rig.store) for rig in (one, two, three)}
        hold = new_id()
        list_id = pass_at(one, shops["gate-01"], hold=hold)
        two.wait_knows(list_id)
        three.wait_knows(list_id)
        # The same signed list (a cloned phone) and another list under the same hold, at the other lanes.
        for gate in ("gate-02", "gate-03"):
            assert "list_used" in codes_at(shops[gate], list_id, hold)
            assert "hold_consumed" in codes_at(shops[gate], new_id(), hold)
        # Every lane applied the record once, its own included, and knows where it came from.
        assert [(r.gate, o) for r, o in two.applied] == [("gate-01", "applied")]
        view = {lane["gate"]: lane for lane in two.link.status()["lanes"]}
        assert view["gate-01"]["records"] == 1 and view["gate-01"]["last_lag_ms"] >= 0
        assert one.store.peer_backlog()["unpublished"] == 0


def test_forged_revoked_and_replayed_records_are_refused_and_change_nothing(
    tmp_path: Path, nats_cluster: NatsCluster, peer_store_id: str
) -> None:
    mallory = SigningKey.from_seed(b"m" * 32)
    with peer_rig(tmp_path, nats_cluster, peer_store_id, "gate-02", GATES["gate-02"], GATES, node=1) as two:
        sender = NatsTransport(nats_cluster.urls(0), store_id=peer_store_id)
        sender.start(from_seq=1, on_record=lambda s, d: None, on_beat=lambda b: None)
        try:

            def send(signed: Signed, msg_id: str | None = None) -> None:
                wait_until(lambda: _published(sender, signed, msg_id), 10, "the stream took the record")

            def record(key: SigningKey, gate: str, list_id: bytes) -> Signed:
                return new_record(
                    key, store=peer_store_id, gate=gate, list_id=list_id, hold=new_id(), shopper="alice",
                    shopper_key=GATES["gate-01"].public_key, at_ms=int(time.time() * 1000),
                )  # fmt: skip

            good = record(GATES["gate-01"], "gate-01", new_id())
            other = record(GATES["gate-01"], "gate-01", new_id())
            forged = [
                record(mallory, "gate-01", new_id()),  # a key the store never listed
                record(GATES["gate-03"], "gate-01", new_id()),  # gate-03's key, naming gate-01
                Signed(other.type, other.kid, other.body, good.sig, other.doc),  # another record's signature
            ]
            send(good)
            for n, bad in enumerate(forged):
                send(bad, msg_id=f"forged-{n}")
            send(good, msg_id="the-same-record-again")  # past the transport's de-duplication
            wait_until(lambda: two.store.peer_cursor() == 5, 10, "five records read")
            # gate-03 is revoked: the next feed no longer lists it.
            gate_keys_feed(two.store, {g: k for g, k in GATES.items() if g != "gate-03"}, version=2)
            revoked = record(GATES["gate-03"], "gate-03", new_id())
            send(revoked)
            wait_until(lambda: two.store.peer_cursor() == 6, 10, "six records read")
        finally:
            sender.close()
        codes = [code for code, _ in two.store.peer_refusals()]
        assert codes == ["unknown_gate", "forged", "forged", "replayed", "unknown_gate"]
        used = two.store.used_list_ids()
        assert good.doc.list in used
        assert not ({r.doc.list for r in forged} | {revoked.doc.list}) & used


def _published(sender: NatsTransport, signed: Signed, msg_id: str | None) -> bool:
    try:
        sender.publish(signed.doc.gate, msg_id or signed.doc.msg_id, signed.encode(), 2.0)
    except Exception:
        return False
    return True


def test_a_pass_committed_just_before_the_lane_died_is_published_when_it_starts_again(
    tmp_path: Path, nats_cluster: NatsCluster, peer_store_id: str
) -> None:
    with peer_rig(tmp_path, nats_cluster, peer_store_id, "gate-02", GATES["gate-02"], GATES, node=1) as two:
        # gate-01 committed a pass and died before its link ran: the record waits in its database.
        with GateStore(tmp_path / "gate-01.db") as store:
            list_id = commit_pass(store, make_shop(store), GATES["gate-01"])
            assert store.peer_backlog()["unpublished"] == 1
        assert not two.knows(list_id)
        with peer_rig(
            tmp_path, nats_cluster, peer_store_id, "gate-01", GATES["gate-01"], GATES, node=0
        ) as one:
            two.wait_knows(list_id)
            wait_until(lambda: one.store.peer_backlog()["unpublished"] == 0, 5, "marked published")


def test_a_lane_on_a_new_database_takes_the_stores_passes_from_its_peers_before_it_decides(
    tmp_path: Path, nats_cluster: NatsCluster, peer_store_id: str
) -> None:
    with (
        peer_rig(tmp_path, nats_cluster, peer_store_id, "gate-01", GATES["gate-01"], GATES, node=0) as one,
        peer_rig(tmp_path, nats_cluster, peer_store_id, "gate-02", GATES["gate-02"], GATES, node=1) as two,
    ):
        passed = [pass_at(one, make_shop(one.store)), pass_at(two, make_shop(two.store))]
        for list_id in passed:
            one.wait_knows(list_id)
    # gate-01's SD card is replaced: a new, empty database (the catalog and the feed's gate keys only).
    with peer_rig(
        tmp_path, nats_cluster, peer_store_id, "gate-01", GATES["gate-01"], GATES, node=0, database="new.db"
    ) as fresh:
        assert fresh.link.catch_up(20)
        assert set(passed) <= fresh.store.used_list_ids()  # its own past pass too
        assert fresh.link.status()["caught_up"] is True


def test_gate_nats_node_derives_a_node_config_nats_server_accepts(tmp_path: Path) -> None:
    servers = ["nats://10.0.0.11:4222", "nats://10.0.0.12:4222", "nats://10.0.0.13:4222"]
    config = tmp_path / "lane.toml"
    config.write_text(lane_config.example_with(lane={"database": "/var/lib/selfcheckout/gate.db"},
                                               peers={"servers": servers}))  # fmt: skip
    printed = subprocess.run(
        [SELFCHECKOUT, "gate", "nats-node", "--config", config, "--print"], capture_output=True, text=True
    )
    assert printed.returncode == 0, printed.stderr
    text = printed.stdout
    assert 'listen: "10.0.0.11:4222"' in text and 'store_dir: "/var/lib/selfcheckout/nats"' in text
    assert 'routes: ["nats://10.0.0.12:6222", "nats://10.0.0.13:6222"]' in text
    (tmp_path / "node.conf").write_text(text)
    checked = subprocess.run(
        ["nats-server", "-c", tmp_path / "node.conf", "-t"], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # A lane without [peers] has no node to run.
    config.write_text(lane_config.example_with())
    refused = subprocess.run(
        [SELFCHECKOUT, "gate", "nats-node", "--config", config], capture_output=True, text=True
    )
    assert refused.returncode == 1 and "no [peers] section" in refused.stderr


def test_doctor_shows_the_nodes_each_lanes_last_record_and_what_waits_to_be_told(
    tmp_path: Path, nats_cluster: NatsCluster, peer_store_id: str
) -> None:
    def config(servers: list[str], database: Path) -> LaneConfig:
        path = tmp_path / "lane.toml"
        path.write_text(
            lane_config.example_with(lane={"database": str(database)}, peers={"servers": servers})
        )
        return lane_config.load(path, check_key_files=False)

    with (
        peer_rig(tmp_path, nats_cluster, peer_store_id, "gate-01", GATES["gate-01"], GATES, node=0) as one,
        peer_rig(tmp_path, nats_cluster, peer_store_id, "gate-02", GATES["gate-02"], GATES, node=1) as two,
    ):
        two.wait_knows(pass_at(one, make_shop(one.store)))
        check = check_peers(config(nats_cluster.urls(1), tmp_path / "gate-02.db"))
        assert check.ok, check
        assert check.sentence == "3 of 3 nodes answer; 1 lane(s) heard from; 0 pass(es) waiting to be told."
        assert "lane gate-01: 1 record(s), the last" in check.detail
    # Its own node gone, and a pass it could not tell.
    dead = f"nats://127.0.0.1:{free_port()}"
    with GateStore(tmp_path / "gate-02.db") as store:
        commit_pass(store, make_shop(store), GATES["gate-02"])
    check = check_peers(config([dead, *nats_cluster.urls(1)[1:]], tmp_path / "gate-02.db"))
    assert not check.ok
    assert check.sentence.startswith(f"This lane's own node {dead} does not answer")


def test_a_lane_cut_off_from_the_others_has_the_payment_systems_feed_pulled_every_few_seconds(
    tmp_path: Path,
) -> None:
    """No node answers: the link says how long it has been cut off and asks for the feed (the forwarder's
    sync_soon in a lane) instead of waiting out sync_interval_s."""
    asked: list[float] = []
    dead = NatsTransport([f"nats://127.0.0.1:{free_port()}"], store_id="store-cut-off")
    with GateStore(tmp_path / "gate.db") as store:
        link = PeerLink(store, dead, key=GATES["gate-01"], store_id="store-cut-off", gate_id="gate-01",
                        on_cut_off=lambda: asked.append(time.monotonic()))  # fmt: skip
        with link:
            assert not link.catch_up(0.5)
            wait_until(lambda: len(asked) >= 2, 20, "two feed requests while cut off")
            status = link.status()
    assert status["transport"]["connected"] is False and status["cut_off_s"] is not None
