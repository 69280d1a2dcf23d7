"""`selfcheckout gate events` after real taps on a lane: every decision with its reasons and how long each
step took (the NFC read, the check, and for a pass the durable commit), newest first."""

from __future__ import annotations

import json
from collections.abc import Callable

from click.testing import CliRunner

from gate.lane import LaneState
from gate.protocol.parties import item
from selfcheckout.cli import main
from tests.fixtures.lane import LaneRig, shopping_list_of
from tests.fixtures.store import PEN


def events(rig: LaneRig, *args: str) -> list[dict]:
    result = CliRunner().invoke(main, ["gate", "events", "--config", str(rig.config.source), "--json", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_gate_events_lists_the_decisions_with_reasons_and_step_timings(
    lane_rig: Callable[..., LaneRig],
) -> None:
    rig = lane_rig()
    passed = rig.shop.exit_card()
    denied = rig.shop.exit_card(items=[item(PEN, 128)])
    assert rig.tap(passed).doc.verdict == "pass"
    rig.wait_state(LaneState.OPEN)
    rig.pulse("beam")
    rig.wait_state(LaneState.IDLE)
    assert rig.tap(denied).doc.verdict == "deny"
    rig.wait_event("transition", to="denied")

    rows = events(rig)
    assert [(r["type"], r["verdict"], r["list"]) for r in rows] == [
        ("decision", "deny", shopping_list_of(denied).list.hex()),
        ("decision", "pass", shopping_list_of(passed).list.hex()),
    ]
    deny, ok = rows
    assert ok["reasons"] == [] and ok["total"] == 2 * 129 + 119 and ok["currency"] == "EUR"
    assert [r["code"] for r in deny["reasons"]] == ["price_mismatch"]
    assert "128" in deny["reasons"][0]["message"]
    for row, steps in ((ok, {"nfc_read", "verify", "commit"}), (deny, {"nfc_read", "verify"})):
        timings = row["timings_ms"]
        assert steps <= set(timings), (row["verdict"], sorted(timings))
        assert all(0 <= timings[s] < 1000 for s in steps)
    assert "commit" not in deny["timings_ms"]  # nothing to commit for a denial

    with_lane = events(rig, "--lane-events", "--limit", "100")
    kinds = {r["type"] for r in with_lane}
    assert {"decision", "transition"} <= kinds
    opened = [r for r in with_lane if r["type"] == "transition" and r["data"]["to"] == "open"]
    assert len(opened) == 1 and {"nfc_read", "verify", "commit"} <= set(opened[0]["data"]["timings_ms"])

    text = CliRunner().invoke(main, ["gate", "events", "--config", str(rig.config.source)])
    assert text.exit_code == 0, text.output
    first, *rest = text.output.splitlines()
    assert "DENY" in first and "price_mismatch" in rest[0]
    assert any("PASS" in line and "commit" in line for line in rest)
