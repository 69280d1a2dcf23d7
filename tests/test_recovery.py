"""A gate whose database vanished is initialised anew, re-enrolled with the new instance, and takes back
from the payment system the passes it had reported before it decides anything: an old list is denied
`list_used` again, its hold is consumed, its charge is not sent twice."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import requests
from gpiozero.pins.mock import MockFactory

from drivers.nfc_inprocess import InProcessReader
from gate import config as lane_config
from gate.legality import check, new_challenge
from gate.protocol.documents import VERSION, ExitPresentation
from gate.protocol.keys import write_public_key, write_secret_key
from gate.recovery import recovery_message
from gate.service import open_lane
from gate.store import GateStore
from gate.store.files import init_database
from payments.local import LocalStack, SimShopper
from tests.fixtures.payments import GateSide, basket


def _lane_config(folder: Path, gate: GateSide, url: str) -> Path:
    write_secret_key(folder / "keys" / "gate.key", gate.key)
    write_public_key(folder / "keys" / "ps.pub", gate.stack.key.public_key)
    path = folder / "lane.toml"
    path.write_text(
        lane_config.example_with(
            lane={"database": "gate.db", "store_id": gate.stack.store_id},
            payments={"url": url, "timeout_s": 2.0},
        )
    )
    return path


def _replayed(gate: GateSide, store: GateStore, shopper: SimShopper) -> list[str]:
    """The shopper presents the list that passed before, answering a fresh challenge: the codes."""
    old = gate.passes[0].presentation
    assert old is not None
    challenge = new_challenge(gate.identity, time.time())
    presentation = ExitPresentation(
        v=VERSION, voucher=old.voucher, list=old.list, answer=shopper.answer(challenge, old.list)
    )
    decision = check(
        presentation.encode(),
        challenge,
        now=time.time(),
        catalog=store,
        state=store,
        policy=gate.policy,
        trusted=gate.trusted,
        gate=gate.identity,
    )
    return list(decision.codes)


def test_a_reinitialised_gate_takes_back_its_reported_passes(
    tmp_path: Path, payments_stack: LocalStack, gate_side: GateSide
) -> None:
    stack, gate = payments_stack, gate_side
    shopper = SimShopper("alice")
    stack.enrol_shopper(shopper)
    stack.top_up("alice", 10_000)
    charge_id = gate.exit(shopper, stack.place_hold(shopper, 2_000), basket(pens=2))
    with gate.forwarder() as forwarder:
        forwarder.drain_once()
    assert gate.store.outbox_entries()[0].state in ("accepted", "settled")

    # The database is lost; a technician runs `gate init`, and enrols the gate again with the new instance.
    gate.store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{gate.database}{suffix}").unlink(missing_ok=True)
    folder = tmp_path / "lane"
    config_path = _lane_config(folder, gate, stack.url)
    init = subprocess.run(
        [sys.executable, "-m", "selfcheckout", "gate", "init", "--config", str(config_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    instance = init.stdout.split("instance ")[1].strip()
    stack.admin(
        "POST",
        "/v1/gates",
        json={"gate": gate.gate_id, "public_key": gate.key.public_key.hex(), "instance": instance},
    )

    config = lane_config.load(config_path)
    with GateStore(config.lane.database, create=False) as fresh:
        assert fresh.needs_recovery() and "list_used" not in _replayed(gate, fresh, shopper)
    with (
        InProcessReader() as reader,
        open_lane(config, reader=reader, pin_factory=MockFactory(), forward=False) as service,
    ):
        store = service.store
        assert not store.needs_recovery()
        codes = _replayed(gate, store, shopper)
        assert "list_used" in codes and "hold_consumed" not in codes  # the very list: list_used alone
        (entry,) = store.outbox_entries()
        assert (entry.charge_id, entry.state) == (charge_id, "accepted")  # not sent again as pending
        assert store.outbox_backlog().count == 0


def test_a_new_database_refuses_to_run_until_the_payment_system_answers(
    tmp_path: Path, gate_side: GateSide
) -> None:
    config_path = _lane_config(tmp_path, gate_side, "http://127.0.0.1:9")  # nothing listens there
    init_database(tmp_path / "gate.db")
    done = subprocess.run(
        [sys.executable, "-m", "selfcheckout", "gate", "run", "--config", str(config_path), "--mock-gpio",
         "--no-panel"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(
        f"Error: {tmp_path / 'gate.db'} is a new database: the lane decides nothing before"
    )
    assert "the payment system did not answer (ConnectionError)" in line
    with GateStore(tmp_path / "gate.db", create=False) as store:
        assert store.needs_recovery()  # still: it tries again at the next start


def test_the_recovery_endpoint_answers_only_the_gate_itself(
    payments_stack: LocalStack, gate_side: GateSide
) -> None:
    url = f"{payments_stack.url}/v1/gates/{gate_side.gate_id}/recovery"
    instance, at = "ab" * 16, payments_stack.now()
    message = recovery_message(payments_stack.store_id, gate_side.gate_id, instance, at)
    good = {"instance": instance, "at": at, "signature": gate_side.key.sign(message).hex()}
    forged = {**good, "signature": payments_stack.key.sign(message).hex()}
    stale = {**good, "at": at - 3600}
    answers = [requests.post(url, json=body, timeout=10) for body in (good, forged, stale)]
    assert [a.status_code for a in answers] == [200, 401, 401]
    assert answers[0].json() == {"gate": gate_side.gate_id, "instance": instance, "charges": [], "next": None}
    assert answers[1].json()["error"] == "bad_signature" and answers[2].json()["error"] == "stale_request"
