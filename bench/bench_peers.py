"""Lanes of one store sharing their passes over a real 3-node NATS JetStream cluster on loopback.

- store.pass_to_peer.p50 / .p99: from one lane's commit (GateStore.record_pass returned) to both other lanes
  having applied the record in their own databases (goal: p99 <= 20 ms). Lanes take turns passing.
- store.replay_window_ms: the longest of those: for that long after a pass a second lane would still have
  accepted the same hold (after it, its check says hold_consumed and its commit would be refused).
- store.lane_rss_with_transport: the largest of three `gate run` processes (panel, reader, peers link)
  plus its own nats-server node, after taps at every lane (goal: <= 80 MB).
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.stats import latency_metrics, metric
from gate.legality import build_charge
from gate.peers.record import PassRecord
from gate.peers.server import NatsCluster
from gate.protocol.parties import new_id
from tests.fixtures.nats import LANE_KEYS, StoreLanes, peer_rig
from tests.fixtures.standins import Pcscd, PcscdInNamespace
from tests.fixtures.store import make_shop

PASSES = 300
WARM_UP = 10  # passes that open the connections and the consumers, not counted
RSS_TAPS = 3  # per lane


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def pass_to_peer(folder: Path) -> list[float]:
    """Seconds from a commit at one lane to its record applied at both others, per pass."""
    applied: dict[bytes, dict[str, float]] = {}  # list id -> applying gate -> when
    done = threading.Condition()

    def seen_at(gate: str) -> Callable[[PassRecord, str], None]:
        def seen(record: PassRecord, outcome: str) -> None:
            with done:
                applied.setdefault(record.list, {})[gate] = time.perf_counter()
                done.notify_all()

        return seen

    samples: list[float] = []
    with NatsCluster(folder / "nats", 3) as cluster, contextlib.ExitStack() as stack:
        rigs = [
            stack.enter_context(peer_rig(folder, cluster, "store-bench", g, LANE_KEYS[g], LANE_KEYS, node=i))
            for i, g in enumerate(LANE_KEYS)
        ]
        for rig in rigs:
            rig.link.on_applied = seen_at(rig.gate)
            assert rig.link.catch_up(20), "the cluster did not take the store's stream"
        shops = [make_shop(rig.store) for rig in rigs]
        for n in range(WARM_UP + PASSES):
            rig, shop = rigs[n % len(rigs)], shops[n % len(rigs)]
            others = {r.gate for r in rigs} - {rig.gate}
            hold, list_id = new_id(), new_id()
            decision = shop.decide(
                voucher=shop.voucher(hold=hold), signed_list=shop.shopping_list(list=list_id, hold=hold)
            )
            rig.store.record_pass(decision, build_charge(decision, LANE_KEYS[rig.gate]).encode())
            committed = time.perf_counter()
            rig.link.notify()
            with done:
                arrived = done.wait_for(lambda: others <= set(applied.get(list_id, {})), 10)  # noqa: B023
                assert arrived, "a record never reached the other lanes"
                latest = max(applied[list_id][g] for g in others)
            if n >= WARM_UP:
                samples.append(latest - committed)
    return samples


def lane_rss(folder: Path) -> int:
    daemon = Pcscd(folder)
    second = PcscdInNamespace(folder / "second")
    try:
        daemon.start()
        second.start()
        with NatsCluster(folder / "nats-rss", 3) as cluster:
            lanes = StoreLanes(folder / "lanes", second, cluster)
            try:
                lanes.start()
                for _ in range(RSS_TAPS):
                    for i in range(3):
                        try:
                            receipt = lanes.tap(i, lanes.card(lanes.shop.documents()))
                        except Exception as exc:
                            raise RuntimeError(f"{exc}: {second.log_path.read_text()[-1500:]}") from exc
                        assert receipt.doc.verdict == "pass"
                return max(
                    _rss(lane.process.proc.pid) + server.rss_bytes()  # type: ignore[union-attr]
                    for lane, server in zip(lanes.lanes, cluster.servers, strict=True)
                )
            finally:
                lanes.close()
    finally:
        second.close()
        daemon.close()


def run() -> Iterator[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        samples = pass_to_peer(Path(tmp))
        yield from latency_metrics("store.pass_to_peer", samples)
        yield metric("store.replay_window_ms", max(samples) * 1000, "ms")
        yield metric("store.lane_rss_with_transport", lane_rss(Path(tmp)) / 2**20, "MB")
