"""People and roles in the panel: named accounts with argon2 hashes, server-side sessions (logout, idle
timeout, a new id at login), roles, logins paced per client and per account, and `/api/health` telling
nobody's shopping. Over a real running lane, through Flask's test client; the accounts CLI as a process."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient

from gate.panel import AccountError, Accounts, create_app
from selfcheckout.cli import main
from tests.fixtures.lane import LaneRig, write_lane_files
from tests.fixtures.panel import ANN, QUICK_HASH, TECH, csrf_token, login, refusal
from tests.test_panel import tap_pass


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_every_page_but_login_and_health_needs_a_login(anon_client: FlaskClient) -> None:
    for path in ("/", "/decisions", "/events", "/outbox", "/attendant", "/let-out", "/maintenance", "/live"):
        response = anon_client.get(path)
        assert response.status_code == 303
        assert response.headers["Location"] == f"/login?next={path}"
    assert anon_client.get("/api/events").get_json() == {"error": 401, "message": "log in first"}
    assert anon_client.get("/api/status").status_code == 401
    token = csrf_token(anon_client.get("/login").text)
    refused = anon_client.post("/maintenance", data={"csrf_token": token, "mode": "open", "reason": "x"})
    assert refused.status_code == 401 and refusal(refused.text) == "log in first"


def test_api_health_without_a_login_carries_no_shopper_list_or_basket(
    panel_rig: LaneRig, anon_client: FlaskClient, panel_client: FlaskClient
) -> None:
    phone = tap_pass(panel_rig)
    answer = anon_client.get("/api/health")
    assert answer.status_code == 200
    health = answer.get_json()
    assert health["state"] == "idle" and health["problems"] == [] and health["backlog_count"] == 1
    text = answer.text
    shopping = phone._list.doc
    for secret in (shopping.list.hex(), phone._voucher.doc.shopper, "377", "3.77", "last_tap", "reasons"):
        assert secret not in text, secret
    # the same facts, with the last tap, for a logged-in person
    full = panel_client.get("/api/status").get_json()
    assert full["last_tap"]["list"] == shopping.list.hex()


def test_logout_ends_the_session_on_the_server_so_a_copied_cookie_is_worth_nothing(
    panel_rig: LaneRig, panel_app: Flask, panel_client: FlaskClient
) -> None:
    cookie = panel_client.get_cookie("panel_session")
    assert cookie is not None
    thief = panel_app.test_client()
    thief.set_cookie("panel_session", cookie.value)
    assert thief.get("/").status_code == 200  # the copy works while the session lives

    token = csrf_token(panel_client.get("/").text)
    assert panel_client.post("/logout", data={"csrf_token": token}).headers["Location"] == "/login"
    came, went = [e.detail for e in panel_rig.lane_events("panel")]
    assert (came, went) == (
        "tess (technician) logged in from 127.0.0.1",
        "tess (technician) logged out from 127.0.0.1",
    )
    assert panel_client.get("/").status_code == 303
    assert thief.get("/").status_code == 303  # the row behind it is gone


def test_the_session_id_changes_at_login_and_only_a_hash_of_it_is_stored(
    panel_app: Flask, panel_accounts: Accounts, tmp_path: Path
) -> None:
    client = panel_app.test_client()
    client.get("/login")
    before = client.get_cookie("panel_session")
    assert before is not None
    login(client, TECH[0], TECH[2])
    after = client.get_cookie("panel_session")
    assert after is not None and after.value != before.value
    planted = panel_app.test_client()
    planted.set_cookie("panel_session", before.value)
    assert planted.get("/").status_code == 303  # the id from before the login logs nobody in
    with sqlite3.connect(tmp_path / "panel.db") as db:
        stored = [row[0] for row in db.execute("SELECT id_hash FROM sessions")]
    assert after.value not in stored and len(stored[0]) == 64


def test_a_session_left_idle_ends(panel_rig: LaneRig, tmp_path: Path) -> None:
    clock = Clock()
    with Accounts(tmp_path / "idle.db", clock=clock, hasher=QUICK_HASH) as accounts:
        accounts.add(*TECH)
        app = create_app(panel_rig.service, secret_key=os.urandom(32), accounts=accounts, idle_s=900)
        client = app.test_client()
        login(client, TECH[0], TECH[2])
        clock.now += 899
        assert client.get("/").status_code == 200  # in use: the idle time starts again
        clock.now += 899
        assert client.get("/").status_code == 200
        clock.now += 901
        assert client.get("/").headers["Location"] == "/login?next=/"
        app.extensions["selfcheckout.watch"].close()


def test_an_attendant_approves_and_lets_out_but_cannot_hold_the_gate_or_requeue(
    panel_rig: LaneRig, panel_app: Flask
) -> None:
    client = panel_app.test_client()
    login(client, ANN[0], ANN[2])
    page = client.get("/").text
    assert 'href="/attendant"' in page and 'href="/let-out"' in page
    assert 'href="/maintenance"' not in page and 'href="/outbox"' not in page
    assert client.get("/maintenance").status_code == 403
    token = csrf_token(page)
    refused = client.post("/maintenance", data={"csrf_token": token, "mode": "open", "reason": "x"})
    assert refused.status_code == 403 and refusal(refused.text) == "only a technician may do this"
    assert panel_rig.relay_locked() and panel_rig.lane_events("technician") == []


def test_removing_a_person_or_resetting_their_secret_ends_their_sessions(
    panel_app: Flask, panel_accounts: Accounts, panel_client: FlaskClient
) -> None:
    other = panel_app.test_client()
    login(other, ANN[0], ANN[2])
    panel_accounts.reset(TECH[0], "a new long secret")
    assert panel_client.get("/").status_code == 303
    assert login(panel_client, TECH[0], TECH[2]).status_code == 403
    assert login(panel_client, TECH[0], "a new long secret").status_code == 303
    panel_accounts.remove(ANN[0])
    assert other.get("/").status_code == 303


def test_failed_logins_pause_the_client_first_so_staff_elsewhere_still_get_in(panel_app: Flask) -> None:
    attacker = panel_app.test_client()
    for _ in range(5):
        wrong = login(attacker, TECH[0], "000000", remote="10.9.9.9")
        assert wrong.status_code == 403 and "Wrong name or secret." in wrong.text
    paused = login(attacker, TECH[0], TECH[2], remote="10.9.9.9")  # even the right secret now waits
    assert paused.status_code == 429
    assert refusal(paused.text).startswith("too many failed logins: wait a while")
    staff = panel_app.test_client()
    assert login(staff, TECH[0], TECH[2], remote="10.1.1.1").status_code == 303


def test_failed_logins_for_one_account_from_many_clients_pause_that_account_only(panel_app: Flask) -> None:
    for i in range(10):
        client = panel_app.test_client()
        assert login(client, ANN[0], "999999", remote=f"10.8.0.{i}").status_code == 403
    late = panel_app.test_client()
    assert login(late, ANN[0], ANN[2], remote="10.8.1.1").status_code == 429
    assert login(late, TECH[0], TECH[2], remote="10.8.1.1").status_code == 303


def test_successful_logins_are_not_paced(panel_app: Flask) -> None:
    for _ in range(8):
        client = panel_app.test_client()
        assert login(client, TECH[0], TECH[2]).status_code == 303


@pytest.mark.parametrize(
    ("name", "role", "secret", "message"),
    [
        ("Tess", "technician", "longenough", "account name 'Tess': expected 1-32 lower-case letters"),
        ("bob", "manager", "longenough", "role 'manager': expected one of technician, attendant"),
        ("bob", "attendant", "4711", "the secret is too short: a PIN of at least 6 digits"),
        ("bob", "attendant", "short", "the secret is too short"),
        ("tess", "attendant", "longenough", "account 'tess' exists already"),
    ],
)
def test_accounts_refuse_bad_names_roles_weak_secrets_and_duplicates(
    panel_accounts: Accounts, name: str, role: str, secret: str, message: str
) -> None:
    with pytest.raises(AccountError, match=message):
        panel_accounts.add(name, role, secret)


def test_secrets_are_stored_as_argon2id_hashes_only(panel_accounts: Accounts, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "panel.db") as db:
        hashes = [row[0] for row in db.execute("SELECT hash FROM accounts")]
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert not any(TECH[2] in h or ANN[2] in h for h in hashes)
    assert oct((tmp_path / "panel.db").stat().st_mode & 0o777) == "0o600"


def test_the_accounts_cli_adds_lists_resets_and_removes(tmp_path: Path) -> None:
    config = write_lane_files(tmp_path)
    runner = CliRunner()

    def run(*args: str, secret: str | None = None) -> Result:
        return runner.invoke(
            main, ["panel", *args, "--config", str(config)], input=None if secret is None else secret + "\n"
        )

    added = run("add-user", "dana", "--role", "attendant", "--secret-stdin", secret="135790")
    assert added.exit_code == 0, added.output
    assert added.stdout.startswith("dana: attendant added to ")
    weak = run("add-user", "eve", "--role", "attendant", "--secret-stdin", secret="12")
    assert weak.exit_code == 1
    assert weak.stderr.strip() == (
        "Error: the secret is too short: a PIN of at least 6 digits, or at least 8 characters"
    )
    typed = run("add-user", "fay", "--role", "technician", secret="correct horse\ncorrect horse")
    assert typed.exit_code == 0 and "fay: technician added" in typed.stdout  # typed twice at the prompt
    assert [line.split("\t")[:2] for line in run("users").stdout.splitlines()] == [
        ["dana", "attendant"],
        ["fay", "technician"],
    ]
    reset = run("reset-secret", "dana", "--secret-stdin", secret="246802")
    assert reset.stdout.strip() == "dana: new secret set; their sessions have ended"
    with Accounts(tmp_path / "panel.db") as accounts:
        assert accounts.verify("dana", "246802") is not None and accounts.verify("dana", "135790") is None
    assert run("remove-user", "dana").exit_code == 0
    gone = run("remove-user", "dana")
    assert (gone.exit_code, gone.stderr.strip()) == (1, "Error: no account named 'dana'")
    assert run("remove-user", "fay").exit_code == 0
    assert "no accounts in" in run("users").stdout
