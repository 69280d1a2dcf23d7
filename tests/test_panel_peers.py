"""The panel's Peers view over a lane linked to the other lanes of its store through a real NATS cluster."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from gate.panel import Accounts, create_app
from gate.peers.server import NatsCluster
from tests.fixtures.lane import LaneRig, running_lane, wait_until
from tests.fixtures.nats import LANE_KEYS, gate_keys_feed, pass_at, peer_rig
from tests.fixtures.panel import TECH, login
from tests.fixtures.store import STORE_ID, keys, make_shop


@pytest.fixture
def linked_lane(tmp_path: Path, mock_factory: MockFactory, nats_cluster: NatsCluster) -> Iterator[LaneRig]:
    """gate-01 (the fixture lane, in-process reader), its [peers] the cluster's nodes, its own first."""
    with running_lane(tmp_path, mock_factory, peers={"servers": nats_cluster.urls(0)}) as rig:
        yield rig


def test_the_peers_view_shows_each_lane_its_last_record_lag_and_reachability(
    linked_lane: LaneRig, panel_accounts: Accounts, nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    gates = {"gate-01": keys()["gate"], "gate-02": LANE_KEYS["gate-02"]}
    gate_keys_feed(linked_lane.store, gates, version=2)
    app = create_app(linked_lane.service, secret_key=os.urandom(32), accounts=panel_accounts)
    client = app.test_client()
    assert login(client, TECH[0], TECH[2]).status_code == 303
    try:
        with peer_rig(tmp_path, nats_cluster, STORE_ID, "gate-02", gates["gate-02"], gates, node=1) as two:
            list_id = pass_at(two, make_shop(two.store))
            wait_until(lambda: list_id in linked_lane.store.used_list_ids(), 10, "gate-01 applied it")
            wait_until(lambda: 'id="lane-gate-02"' in client.get("/peers").text, 5, "gate-02's heartbeat")
            page = client.get("/peers").text
            row = page[page.index('id="lane-gate-02"') : page.index("</tr>", page.index('id="lane-gate-02"'))]
            assert '<span class="ok">yes</span>' in row and "s ago" in row and " ms" in row
            assert 'id="transport"><span class="ok">connected</span>' in page
            assert 'id="unpublished"><span class="ok">none</span>' in page
        # gate-02 stopped: its heartbeat no longer arrives.
        wait_until(
            lambda: '<span class="bad">no</span>' in client.get("/peers").text, 10, "gate-02 unreachable"
        )
    finally:
        app.extensions["selfcheckout.watch"].close()


def test_a_lane_without_peers_says_it_shares_with_none(panel_client: object) -> None:
    page = panel_client.get("/peers").text  # type: ignore[attr-defined]
    assert "shares its passes with no other lane" in page
