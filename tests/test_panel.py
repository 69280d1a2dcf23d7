"""The technician panel through Flask's test client, over a real running lane (InProcessReader, MockFactory
pins, a file GateStore): every page, the JSON endpoints, maintenance and requeue, and every way a form can
be hostile. A refused request answers 400 with one exact message and changes nothing."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import sqlite3
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from gpiozero.pins.mock import MockFactory
from markupsafe import escape

from gate.forwarder import Forwarder
from gate.lane import LaneState
from gate.legality.reasons import text_of
from gate.panel import CSP, Accounts, PanelError, PanelServer, create_app, secret_key_for, serve
from gate.protocol.parties import item
from tests.fixtures.lane import LaneRig, running_lane, wait_until
from tests.fixtures.panel import ANN, TECH, csrf_token, login, refusal
from tests.fixtures.store import PEN

PAGES = ["/", "/decisions", "/events", "/outbox", "/peers", "/maintenance"]


def tap_pass(rig: LaneRig) -> Any:
    phone = rig.shop.exit_card()
    assert rig.tap(phone).doc.verdict == "pass"
    rig.wait_state(LaneState.OPEN)
    rig.pulse("beam")
    rig.wait_state(LaneState.IDLE)
    return phone


def tap_deny(rig: LaneRig) -> Any:
    """A list at a lowered price, over a tiny guarantee: denied with price_mismatch and over_guarantee."""
    phone = rig.shop.exit_card(items=[item(PEN, 99)], voucher={"amount": 50, "stored_value": 50, "bank": 0})
    assert rig.tap(phone).doc.verdict == "deny"
    return phone


@dataclass(frozen=True)
class Snapshot:
    """Everything a refused request must leave as it was."""

    health: dict[str, Any]
    relay: list[bool]
    lane_events: int
    outbox: list[tuple[bytes, str]]


def snapshot(rig: LaneRig) -> Snapshot:
    health = rig.lane.health()
    health.pop("last_turn_age_s")
    return Snapshot(
        health,
        rig.states("relay"),
        len(rig.lane_events()),
        [(e.charge_id, e.state) for e in rig.store.outbox_entries(limit=1000)],
    )


# -- pages and headers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*PAGES, "/api/health", "/api/events", "/no-such-page"])
def test_every_answer_carries_the_security_headers_and_pages_are_not_stored(
    panel_client: FlaskClient, anon_client: FlaskClient, panel_app: Flask, path: str
) -> None:
    response = (anon_client if path == "/api/health" else panel_client).get(path)
    assert response.status_code == (404 if path == "/no-such-page" else 200)
    assert response.headers["Content-Security-Policy"] == CSP
    assert CSP.startswith("default-src 'self';")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert not panel_app.debug
    cookie = response.headers.get("Set-Cookie")
    if path == "/api/health":
        assert cookie is None  # machines get no session
    elif path in PAGES:
        assert cookie is not None and cookie.startswith("panel_session=")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_the_status_page_shows_the_lane_the_gate_the_reader_the_backlog_and_the_last_tap(
    panel_rig: LaneRig, panel_client: FlaskClient
) -> None:
    page = panel_client.get("/").text
    assert 'id="lane-state">idle<' in page
    assert "No tap since the lane started." in page
    assert 'id="backlog">0 charges, 0.00 EUR<' in page
    assert "The forwarder does not run in this process (gate run --no-forward)." in page
    assert 'http-equiv="refresh"' not in page  # changes are pushed; the page never reloads

    phone = tap_pass(panel_rig)
    page = panel_client.get("/").text
    list_hex = phone._list.doc.list.hex()
    assert f'list <code class="id">{list_hex}</code>' in page
    assert 'id="backlog">1 charge, 3.77 EUR<' in page
    assert '<span class="verdict verdict-pass">pass</span>' in page
    assert "Charged, gate opened" in page
    for step in ("nfc_read", "verify", "commit", "actuate", "receipt", "voucher_signature", "catalog"):
        assert f"{step} " in page
    assert 'id="lock"><span class="ok">locked</span>' in page
    assert '<th>Reader</th><td class="wrap">in-process</td>' in page
    assert 'id="who">tess <span class="muted">(technician)</span>' in page


def test_the_status_page_draws_the_last_hour(panel_rig: LaneRig, panel_client: FlaskClient) -> None:
    tap_pass(panel_rig)
    tap_deny(panel_rig)
    page = panel_client.get("/").text
    charts = page[page.index('id="charts"') : page.index('id="last-tap"')]
    assert charts.count("<svg ") == 4 and "<script" not in charts
    assert "1 gate openings; p50 " in charts
    assert "2 taps in the hour, at most 2 in one minute" in charts
    assert "over_guarantee 1, price_mismatch 1" in charts or "price_mismatch 1, over_guarantee 1" in charts
    assert "The total is more than your hold." in charts
    assert "1 waiting now, at most 1 in the hour" in charts


def test_the_decisions_page_lists_verdicts_every_reason_totals_and_timings(
    panel_rig: LaneRig, panel_client: FlaskClient
) -> None:
    passed = tap_pass(panel_rig)
    denied = tap_deny(panel_rig)
    page = panel_client.get("/decisions").text
    assert page.index(denied._list.doc.list.hex()[:12]) < page.index(passed._list.doc.list.hex()[:12])
    assert '<span class="verdict verdict-pass">pass</span>' in page
    assert '<span class="verdict verdict-deny">deny</span>' in page
    event = panel_rig.store.recent_events(1)[0]
    assert set(event.codes) == {"price_mismatch", "over_guarantee"}
    for code, message in event.reasons:
        assert f'<li data-code="{code}">{escape(text_of(code))} ' in page
        assert f'<div class="detail small">{escape(message)}</div>' in page
    assert "The total is more than your hold. Remove something or ask for a larger hold." in page
    assert "3.77 EUR" in page and "0.99 EUR" in page
    assert passed._voucher.doc.shopper in page
    assert "verify " in page and " ms" in page


def test_api_status_and_api_events_answer_json(panel_rig: LaneRig, panel_client: FlaskClient) -> None:
    tap_pass(panel_rig)
    tap_deny(panel_rig)
    health = panel_client.get("/api/status").get_json()
    assert health["lane"]["state"] in ("idle", "denied")
    assert health["gate_io"]["locked"] is True
    assert health["reader"]["reader"] == "in-process"
    assert health["forwarder"] is None
    assert health["backlog"] == {
        "count": 1,
        "amount": 377,
        "oldest_created_at": health["backlog"]["oldest_created_at"],
    }
    last = health["last_tap"]
    assert last["verdict"] == "deny"
    assert {r["code"] for r in last["reasons"]} == {"price_mismatch", "over_guarantee"}
    assert {r["text"] for r in last["reasons"]} == {text_of("price_mismatch"), text_of("over_guarantee")}
    assert set(last["timings_ms"]) == {"nfc_read", "verify", "receipt"}

    events = panel_client.get("/api/events?limit=5").get_json()
    assert [d["verdict"] for d in events["decisions"]] == ["deny", "pass"]
    assert events["decisions"][1]["total"] == 377 and events["decisions"][1]["currency"] == "EUR"
    assert len(events["lane_events"]) == 5
    assert all({"kind", "detail", "data", "at"} <= set(e) for e in events["lane_events"])


# -- maintenance and requeue ---------------------------------------------------------------------------------


def test_maintenance_hold_open_keep_locked_and_back_in_service_are_logged_with_their_reason(
    panel_rig: LaneRig, panel_client: FlaskClient
) -> None:
    token = csrf_token(panel_client.get("/maintenance").text)
    steps = [
        ("open", "cleaning the floor", False),
        ("locked", "reader swap", True),
        ("service", "done", True),
    ]
    for mode, reason, locked in steps:
        response = panel_client.post(
            "/maintenance", data={"csrf_token": token, "mode": mode, "reason": reason}
        )
        assert response.status_code == 303 and response.headers["Location"] == "/maintenance"
        assert panel_rig.relay_locked() is locked
        assert panel_rig.lane.health()["maintenance"] == (None if mode == "service" else mode)
    assert panel_rig.lane.state == LaneState.IDLE
    logged = [(e.data["mode"], e.data["reason"]) for e in panel_rig.lane_events("technician")]
    assert logged == [(m, r) for m, r, _ in steps]
    first = panel_rig.lane_events("technician")[0]
    assert first.detail == "hold open from the panel: cleaning the floor (by tess, technician)"
    assert (first.data["by"], first.data["role"]) == ("tess", "technician")
    page = panel_client.get("/maintenance").text
    assert "back in service: done" in page  # the flash after the redirect
    assert "hold open from the panel: cleaning the floor (by tess" in panel_client.get("/events").text


def test_a_flagged_charge_is_listed_and_requeued_once(panel_rig: LaneRig, panel_client: FlaskClient) -> None:
    phone = tap_pass(panel_rig)
    charge = phone._list.doc.list
    panel_rig.store.outbox_flag(charge, "409 conflict: hold already captured")
    page = panel_client.get("/outbox").text
    assert f'name="charge_id" value="{charge.hex()}"' in page
    assert "409 conflict: hold already captured" in page
    token = csrf_token(page)
    response = panel_client.post("/outbox/requeue", data={"csrf_token": token, "charge_id": charge.hex()})
    assert response.status_code == 303
    assert [e.state for e in panel_rig.store.outbox_entries()] == ["pending"]
    assert panel_rig.lane_events("technician")[-1].data["charge"] == charge.hex()
    again = panel_client.post("/outbox/requeue", data={"csrf_token": token, "charge_id": charge.hex()})
    assert again.status_code == 409
    assert refusal(again.text) == f"charge {charge.hex()} is not flagged"


# -- hostile requests ----------------------------------------------------------------------------------------

TOKEN = object()  # replaced by the session's real token
# Flask-WTF reads the token before the view reads the form: a body that is not a form has no token.
MISSING_TOKEN = "missing CSRF token: reload the page and submit again"
MAINTENANCE_CASES = [
    ("no token", {"mode": "open", "reason": "x"}, "missing CSRF token: reload the page and submit again"),
    (
        "empty token",
        {"csrf_token": "", "mode": "open", "reason": "x"},
        "missing CSRF token: reload the page and submit again",
    ),
    (
        "wrong token",
        {"csrf_token": "A" * 43, "mode": "open", "reason": "x"},
        "CSRF token is not valid here: reload the page and submit again",
    ),
    ("mode missing", {"reason": "x"}, "mode: missing; expected one of open, locked, service"),
    (
        "mode not in the set",
        {"mode": "half-open", "reason": "x"},
        "mode: 'half-open' is not one of open, locked, service",
    ),
    (
        "mode with markup",
        {"mode": "<script>alert(1)</script>", "reason": "x"},
        "mode: '<script>alert(1)</script>' is not one of open, locked, service",
    ),
    (
        "mode oversized",
        {"mode": "o" * 5000, "reason": "x"},
        f"mode: {'o' * 40!r}... is not one of open, locked, service",
    ),
    ("reason missing", {"mode": "open"}, "reason: missing; say why in 1-200 characters"),
    ("reason empty", {"mode": "open", "reason": ""}, "reason: empty; say why in 1-200 characters"),
    ("reason blank", {"mode": "open", "reason": "  \t "}, "reason: empty; say why in 1-200 characters"),
    ("reason 201 characters", {"mode": "open", "reason": "r" * 201}, "reason: 201 characters; at most 200"),
    ("reason oversized", {"mode": "open", "reason": "r" * 8000}, "reason: 8000 characters; at most 200"),
    (
        "reason with NUL",
        {"mode": "open", "reason": "a\x00b"},
        "reason: control character U+0000 is not allowed",
    ),
    (
        "reason with newline",
        {"mode": "open", "reason": "a\nb"},
        "reason: control character U+000A is not allowed",
    ),
    (
        "reason with an escape sequence",
        {"mode": "open", "reason": "\x1b[2Jcleared"},
        "reason: control character U+001B is not allowed",
    ),
    (
        "reason with a bidi override",
        {"mode": "open", "reason": "abc\u202edef"},
        "reason: control character U+202E is not allowed",
    ),
    (
        "reason with a script",
        {"mode": "open", "reason": "<script>alert(1)</script>"},
        "reason: '<' and '>' are not allowed",
    ),
    (
        "reason with an image tag",
        {"mode": "open", "reason": "x <img src=x onerror=alert(1)>"},
        "reason: '<' and '>' are not allowed",
    ),
    ("reason twice", {"mode": "open", "reason": ["a", "b"]}, "reason: given 2 times, expected once"),
    ("mode twice", {"mode": ["open", "locked"], "reason": "a"}, "mode: given 2 times, expected once"),
    ("unknown field", {"mode": "open", "reason": "a", "admin": "1"}, "unexpected field 'admin'"),
    (
        "unknown field with markup",
        {"mode": "open", "reason": "a", "<b>x</b>": "1"},
        "unexpected field '<b>x</b>'",
    ),
]


@pytest.fixture
def session_token(panel_client: FlaskClient) -> str:
    return csrf_token(panel_client.get("/maintenance").text)


@pytest.mark.parametrize(
    ("case", "fields", "message"), MAINTENANCE_CASES, ids=[c[0] for c in MAINTENANCE_CASES]
)
def test_a_hostile_maintenance_form_is_refused_with_its_message_and_changes_nothing(
    panel_rig: LaneRig,
    panel_client: FlaskClient,
    session_token: str,
    case: str,
    fields: dict[str, Any],
    message: str,
) -> None:
    data = dict(fields)
    if case not in ("no token", "empty token", "wrong token"):
        data["csrf_token"] = session_token
    before = snapshot(panel_rig)
    response = panel_client.post("/maintenance", data=data)
    assert response.status_code == 400
    assert refusal(response.text) == message
    assert "<script>" not in response.text and "<img" not in response.text and "<b>" not in response.text
    assert snapshot(panel_rig) == before


@pytest.mark.parametrize(
    ("case", "kwargs", "message"),
    [
        (
            "JSON instead of a form",
            {"json": {"mode": "open", "reason": "x"}},
            MISSING_TOKEN,
        ),
        (
            "plain text",
            {"data": b"mode=open&reason=x", "content_type": "text/plain"},
            MISSING_TOKEN,
        ),
        ("no body at all", {}, MISSING_TOKEN),
        (
            "a file for the reason",
            {"data": {"mode": "open", "reason": (io.BytesIO(b"x"), "r.txt")}},
            "'reason': expected text, got a file upload",
        ),
        (
            "another site's form",
            {"data": {"mode": "open", "reason": "x"}, "headers": {"Origin": "https://evil.example"}},
            "cross-site request refused: Origin 'https://evil.example' is not this panel",
        ),
        (
            "a foreign Host (DNS rebinding)",
            {"data": {"mode": "open", "reason": "x"}, "headers": {"Host": "evil.example"}},
            "Host 'evil.example' is not an address of this panel: use its IP address or hostname",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None,
)
def test_a_request_that_is_not_a_same_site_form_is_refused_and_changes_nothing(
    panel_rig: LaneRig,
    panel_client: FlaskClient,
    session_token: str,
    case: str,
    kwargs: dict[str, Any],
    message: str,
) -> None:
    if isinstance(kwargs.get("data"), dict):
        kwargs = {**kwargs, "data": {**kwargs["data"], "csrf_token": session_token}}
    before = snapshot(panel_rig)
    response = panel_client.post("/maintenance", **kwargs)
    assert response.status_code == 400
    assert refusal(response.text) == message
    assert snapshot(panel_rig) == before


def test_a_token_from_another_session_is_refused(
    panel_rig: LaneRig, panel_app: Flask, panel_client: FlaskClient
) -> None:
    before = snapshot(panel_rig)
    other = panel_app.test_client()
    theirs = csrf_token(other.get("/login").text)
    csrf_token(panel_client.get("/maintenance").text)
    response = panel_client.post("/maintenance", data={"csrf_token": theirs, "mode": "open", "reason": "x"})
    assert (
        refusal(response.text) == "CSRF token does not match this session: reload the page and submit again"
    )

    assert snapshot(panel_rig) == before


def test_state_never_changes_on_get_or_another_method(panel_rig: LaneRig, panel_client: FlaskClient) -> None:
    before = snapshot(panel_rig)
    assert panel_client.get("/maintenance?mode=open&reason=x").status_code == 200
    assert panel_client.get("/outbox/requeue?charge_id=" + "ab" * 16).status_code == 405
    for method in ("put", "delete", "patch"):
        response = getattr(panel_client, method)("/maintenance", data={"mode": "open", "reason": "x"})
        assert response.status_code == 405
        assert refusal(response.text) == f"{method.upper()} is not allowed here"
    assert snapshot(panel_rig) == before


def test_a_body_over_the_limit_is_refused_before_it_is_read(
    panel_rig: LaneRig, panel_client: FlaskClient, session_token: str
) -> None:
    before = snapshot(panel_rig)
    response = panel_client.post(
        "/maintenance", data={"csrf_token": session_token, "mode": "open", "reason": "r" * 100_000}
    )
    assert response.status_code == 413
    assert refusal(response.text) == "request too large (at most 16384 bytes)"
    assert snapshot(panel_rig) == before


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "charge_id: missing; expected 32 hexadecimal digits"),
        ("ab" * 15 + "a", f"charge_id: {'ab' * 15 + 'a'!r} is not 32 hexadecimal digits"),
        ("ab" * 17, f"charge_id: {'ab' * 17!r} is not 32 hexadecimal digits"),
        ("zz" * 16, f"charge_id: {'zz' * 16!r} is not 32 hexadecimal digits"),
        ("ab" * 16 + "\n", f"charge_id: {'ab' * 16 + chr(10)!r} is not 32 hexadecimal digits"),
        ("<script>x</script>", "charge_id: '<script>x</script>' is not 32 hexadecimal digits"),
        ("", "charge_id: '' is not 32 hexadecimal digits"),
    ],
)
def test_a_hostile_requeue_is_refused_and_the_flagged_charge_stays_flagged(
    panel_rig: LaneRig, panel_client: FlaskClient, value: str | None, message: str
) -> None:
    phone = tap_pass(panel_rig)
    panel_rig.store.outbox_flag(phone._list.doc.list, "409 conflict")
    token = csrf_token(panel_client.get("/outbox").text)
    data = {"csrf_token": token} if value is None else {"csrf_token": token, "charge_id": value}
    before = snapshot(panel_rig)
    response = panel_client.post("/outbox/requeue", data=data)
    assert response.status_code == 400
    assert refusal(response.text) == message
    assert snapshot(panel_rig) == before
    assert [e.state for e in panel_rig.store.outbox_entries()] == ["flagged"]


@pytest.mark.parametrize("value", ["0", "501", "abc", "-1", "1e3", "10000000"])
def test_a_bad_limit_is_a_400_on_pages_and_json_on_the_api(panel_client: FlaskClient, value: str) -> None:
    message = f"limit: {value!r} is not a whole number 1-500"
    page = panel_client.get(f"/decisions?limit={value}")
    assert page.status_code == 400 and refusal(page.text) == message
    api = panel_client.get(f"/api/events?limit={value}")
    assert api.status_code == 400 and api.get_json() == {"error": 400, "message": message}


def test_markup_from_the_store_is_shown_as_text(panel_rig: LaneRig, panel_client: FlaskClient) -> None:
    tap_pass(panel_rig)
    script = "<script>alert('shopper')</script>"
    with sqlite3.connect(panel_rig.folder / "gate.db") as db:  # a value the protocol would never let in
        db.execute("UPDATE events SET shopper = ?", [script])
    panel_rig.store.record_event(
        "alarm", "<script>alert('detail')</script>", {"x": "<img src=x onerror=alert(1)>"}
    )
    decisions = panel_client.get("/decisions").text
    assert "<script>alert" not in decisions
    assert "&lt;script&gt;alert(&#39;shopper&#39;)&lt;/script&gt;" in decisions
    events = panel_client.get("/events").text
    assert "<script>alert" not in events and "<img" not in events
    assert "&lt;script&gt;alert(&#39;detail&#39;)&lt;/script&gt;" in events
    assert "&lt;img src=x onerror=alert(1)&gt;" in events


def test_an_internal_error_says_where_to_look_and_shows_no_traceback(
    panel_rig: LaneRig, panel_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**narrowed: Any) -> list[Any]:
        raise RuntimeError("disk on fire at /var/lib/secret")

    monkeypatch.setattr(panel_rig.store, "find_events", broken)
    response = panel_client.get("/decisions")
    assert response.status_code == 500
    assert refusal(response.text) == "internal error (RuntimeError); see the lane's log"
    assert "Traceback" not in response.text and "/var/lib/secret" not in response.text


# -- the secret key -----------------------------------------------------------------------------------------


def test_there_is_no_default_secret(panel_rig: LaneRig, panel_accounts: Accounts, tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        create_app(panel_rig.service, accounts=panel_accounts)  # type: ignore[call-arg]
    with pytest.raises(PanelError, match="at least 16 random bytes"):
        create_app(panel_rig.service, secret_key=b"dev", accounts=panel_accounts)
    with pytest.raises(PanelError, match="at least 16 random bytes"):
        create_app(panel_rig.service, secret_key="0123456789abcdef0123", accounts=panel_accounts)  # type: ignore[arg-type]

    section = panel_rig.config.panel
    assert section.secret_key_file is None
    one, two = secret_key_for(section), secret_key_for(section)
    assert len(one) == 32 and one != two  # per process

    key_file = tmp_path / "panel.key"
    key_file.write_text("9f" * 32 + "\n")
    assert secret_key_for(replace(section, secret_key_file=key_file)) == b"9f" * 32
    key_file.write_text("short\n")
    with pytest.raises(PanelError, match=r"panel.key: the panel's secret key holds 5 bytes; at least 16"):
        secret_key_for(replace(section, secret_key_file=key_file))
    with pytest.raises(PanelError, match="cannot read the panel's secret key"):
        secret_key_for(replace(section, secret_key_file=tmp_path / "missing.key"))


# -- serving it ----------------------------------------------------------------------------------------------


def test_serve_listens_on_the_configured_address_and_says_so_when_the_port_is_taken(
    panel_rig: LaneRig, panel_accounts: Accounts
) -> None:
    with (
        PanelServer(lambda env, start: [], "127.0.0.1", 0) as taken,
        pytest.raises(PanelError, match=rf"panel: cannot listen on 127.0.0.1:{taken.port}: .*--no-panel"),
    ):
        serve(panel_rig.service, panel_accounts, port=taken.port)
    with serve(panel_rig.service, panel_accounts, host="127.0.0.1", port=0) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=2) as conn:
            conn.sendall(b"GET /api/health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200")
        assert json.loads(body)["state"] == "idle"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_the_forwarder_outage_is_one_sentence_with_the_raw_error_folded_and_clears_on_recovery(
    panel_rig: LaneRig, panel_accounts: Accounts
) -> None:
    phone = tap_pass(panel_rig)
    dead = "http://127.0.0.1:1"  # nothing listens on port 1: connection refused
    with Forwarder.from_config(panel_rig.config, panel_rig.store, url=dead, timeout_s=1) as unreachable:
        [outcome] = unreachable.drain_once()
        assert outcome.result == "retry"
        service = replace(panel_rig.service, forwarder=unreachable)
        app = create_app(service, secret_key=os.urandom(32), accounts=panel_accounts)
        client = app.test_client()
        login(client, TECH[0], TECH[2])
        status = client.get("/").text
        since = time.strftime("%H:%M", time.localtime(app.extensions["selfcheckout.watch"].unreachable_since))
        assert "The forwarder is stopped; 1 charge waiting." in status  # not started in this test
        unreachable.start()
        try:
            status = client.get("/").text
            assert f"Payment system unreachable since {since}, 1 charge waiting." in status
            assert unreachable.last_error.startswith("no answer: ConnectionError")
            assert f'<code class="wrap">{escape(unreachable.last_error)}</code>' in status
            assert status.index("Payment system unreachable") < status.index('id="forwarder-error"')
            assert 'id="backlog">1 charge, 3.77 EUR<' in status
            outbox = client.get("/outbox").text
            assert f'<code class="id">{phone._list.doc.list.hex()}</code>' in outbox
            assert escape(unreachable.last_error) in outbox
        finally:
            unreachable.close()
        app.extensions["selfcheckout.watch"].close()


def test_an_unsynchronised_clock_is_a_fault_in_one_sentence_at_the_top(
    tmp_path: Path, mock_factory: MockFactory, panel_accounts: Accounts
) -> None:
    with running_lane(tmp_path, mock_factory, lane_overrides={"clock_trusted": lambda: False}) as rig:
        app = create_app(rig.service, secret_key=os.urandom(32), accounts=panel_accounts)
        client = app.test_client()
        login(client, TECH[0], TECH[2])
        page = client.get("/").text
        assert 'id="lane-state">fault<' in page
        top = page[page.index('id="problems"') : page.index('id="forwarder"')]
        assert "The clock has not been synchronised since the lane started: every tap is denied" in top
        health = client.get("/api/health").get_json()
        assert health["state"] == "fault" and health["lane_state"] == "idle"
        app.extensions["selfcheckout.watch"].close()


def test_the_checks_page_runs_the_doctors_checks_on_the_running_lane(
    panel_rig: LaneRig, panel_client: FlaskClient, panel_app: Flask
) -> None:
    page = panel_client.get("/checks").text
    rows = dict(
        re.findall(
            r'<td data-label="Check" class="nowrap">(\w+)</td>\s*<td data-label="Result">'
            r'<span class="(ok|bad)">',
            page,
        )
    )
    assert {"keys", "reader", "gpio", "database", "disk", "clock", "payments", "feed"} <= set(rows)
    assert rows["keys"] == rows["gpio"] == rows["database"] == "ok"
    assert rows["payments"] == "bad"  # no payment system runs in this test
    assert "The GPIO backend MockFactory loads." in page  # the lane's own pins, not a second backend
    assert re.search(r'id="checks-summary" class="bad">\d+ of \d+ checks found a problem\.', page)
    attendant = panel_app.test_client()
    login(attendant, ANN[0], ANN[2])
    assert attendant.get("/checks").status_code == 403


def test_the_outage_sentence_clears_once_the_payment_system_answers_again(
    panel_rig: LaneRig, panel_accounts: Accounts, payments_stack: Any
) -> None:
    tap_pass(panel_rig)
    payments_stack.down()
    fast = {"url": payments_stack.url, "timeout_s": 1, "backoff_base_s": 0.05, "backoff_cap_s": 0.2}
    with Forwarder.from_config(panel_rig.config, panel_rig.store, **fast) as forwarder:
        app = create_app(
            replace(panel_rig.service, forwarder=forwarder),
            secret_key=os.urandom(32),
            accounts=panel_accounts,
        )
        client = app.test_client()
        login(client, TECH[0], TECH[2])
        forwarder.start()
        wait_until(lambda: "Payment system unreachable since" in client.get("/").text, 10, "the outage")
        assert 'id="forwarder-error"' in client.get("/").text
        payments_stack.up()  # it answers again (and refuses this lane's charge: its gate is not enrolled)
        wait_until(lambda: "unreachable" not in client.get("/").text, 15, "the outage to clear")
        page = client.get("/").text
        assert "The payment system answers but has not taken the charges since " in page
        assert "not a trusted key" in page and "no answer" not in page  # the error of now, not the outage
        app.extensions["selfcheckout.watch"].close()
