"""The technician panel: a small Flask app over a running lane, served by `selfcheckout gate run`.

Pages (server-rendered, no script): status (`/`), recent decisions (`/decisions`), lane events
(`/events`), the charge outbox (`/outbox`, requeue a flagged charge) and maintenance (`/maintenance`: hold
open, keep locked, back in service, each with a reason). For machines: `/api/health` and `/api/events`.

It is meant for the store's LAN, where anyone may try it:
- state changes are POST forms carrying a CSRF token tied to the session; every field is checked before
  anything changes (gate.panel.forms) and a refusal is a 400 naming the field;
- a POST whose Origin is another site is refused, and so is a Host header that is not an IP address or one
  of this machine's names (DNS rebinding);
- Jinja autoescapes every template; no debug mode; CSP `default-src 'self'`, X-Frame-Options DENY,
  `Cache-Control: no-store` on every page;
- sessions are signed with the key in `panel.secret_key_file`, or, when the config names none, with a
  random key made at start, so every session ends when the lane restarts (the footer says which);
- an optional technician PIN (`create_app(..., pin=...)`) guards every page but `/api/health`.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from flask import (
    Flask,
    Response,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import HTTPException

from gate.config import PanelSection
from gate.config_files import MIN_PANEL_SECRET_BYTES, read_panel_secret, read_pin
from gate.errors import KeyFileError, LaneError
from gate.money import format_amount
from gate.panel import audit, forms
from gate.panel.forms import MODES, FormError, PanelError
from gate.panel.serving import PanelServer
from gate.service import LaneService
from gate.store import Event, LaneEvent, StoreError

__all__ = ["FormError", "PanelError", "PanelServer", "create_app", "secret_key_for", "serve"]

log = logging.getLogger(__name__)

MIN_KEY_BYTES = MIN_PANEL_SECRET_BYTES
MAX_BODY_BYTES = 16 * 1024
PIN_TRIES = 5  # wrong PINs in a row before logins pause
PIN_PAUSE_S = 60.0
CSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
_OPEN_ENDPOINTS = frozenset({"login", "static", "favicon", "api_health"})  # without the PIN
_NO_SESSION = frozenset({"static", "favicon", "api_health", "api_events"})  # no cookie for machines


def create_app(
    service: LaneService,
    *,
    secret_key: bytes,
    pin: str | None = None,
    hosts: Collection[str] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Flask:
    """The panel for one running lane. `secret_key` signs the session cookie (no default: see
    secret_key_for). `pin`, when given, is asked for once per session. `hosts` are the names the panel
    answers to besides IP addresses (default: localhost and this machine's host names)."""
    if not isinstance(secret_key, bytes) or len(secret_key) < MIN_KEY_BYTES:
        raise PanelError(f"the panel's secret key must be at least {MIN_KEY_BYTES} random bytes")
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key,
        DEBUG=False,
        PROPAGATE_EXCEPTIONS=False,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_BODY_BYTES,
        MAX_FORM_PARTS=16,
        SESSION_COOKIE_NAME="panel_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
    )
    app.debug = False
    app.jinja_env.autoescape = True  # every template, whatever its file name
    app.jinja_env.trim_blocks = app.jinja_env.lstrip_blocks = True
    app.json.sort_keys = True  # type: ignore[attr-defined]
    allowed_hosts = frozenset(h.lower() for h in (hosts if hosts is not None else _own_names()))
    app.extensions["selfcheckout.lane"] = service
    app.register_blueprint(audit.bp)
    cfg = service.config
    ephemeral_key = cfg.panel.secret_key_file is None
    pin_guard = _PinGuard(pin, clock) if pin else None

    def wants_json() -> bool:
        return request.path.startswith("/api/")

    def refuse(status: int, message: str) -> Any:
        if wants_json():
            return jsonify(error=status, message=message), status
        return render_template("error.html", status=status, message=message), status

    @app.errorhandler(FormError)
    def form_error(exc: FormError) -> Any:
        log.info("panel refused %s %s from %s: %s", request.method, request.path, request.remote_addr, exc)
        return refuse(exc.status, str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        messages = {
            404: "no such page",
            405: f"{request.method} is not allowed here",
            413: f"request too large (at most {MAX_BODY_BYTES} bytes)",
        }
        status = exc.code or 500
        return refuse(status, messages.get(status, exc.description or exc.name))

    @app.errorhandler(Exception)
    def internal_error(exc: Exception) -> Any:
        log.exception("panel: %s %s failed", request.method, request.path)
        return refuse(500, f"internal error ({type(exc).__name__}); see the lane's log")

    @app.before_request
    def guard() -> Any:
        forms.check_host(request.host, allowed_hosts)
        if request.method == "POST":
            forms.check_origin(request.headers.get("Origin"), request.host_url)
        if "csrf" not in session and request.method == "GET" and request.endpoint not in _NO_SESSION:
            session["csrf"] = forms.new_csrf_token()  # a POST without one is refused: no session
        if pin_guard and not session.get("technician") and request.endpoint not in _OPEN_ENDPOINTS:
            if request.method == "GET" and not wants_json():
                return redirect(url_for("login"), 303)
            return refuse(403, "log in with the technician PIN first")
        return None

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"  # "no-referrer" would make Origin "null"
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.context_processor
    def common() -> dict[str, Any]:
        return {
            "gate_id": cfg.lane.gate_id,
            "store_id": cfg.lane.store_id,
            "csrf_field": forms.CSRF_FIELD,
            "csrf_token": session.get("csrf", ""),
            "ephemeral_key": ephemeral_key,
            "pin_required": pin_guard is not None,
            "logged_in": bool(session.get("technician")),
            "modes": MODES,
        }

    app.add_template_filter(_when, "when")
    app.add_template_filter(_age, "age")
    app.add_template_filter(_ms, "ms")
    app.add_template_filter(format_amount, "money")
    app.add_template_filter(_hexid, "hexid")
    app.add_template_filter(_compact_json, "compact")

    def posted(*fields: str) -> dict[str, str]:
        form = forms.read_form(request, fields)
        forms.check_csrf(session.get("csrf"), form)
        return form

    # -- pages -----------------------------------------------------------------------------------------------

    @app.get("/")
    def status() -> Any:
        health = service.health()
        return render_template(
            "status.html",
            health=health,
            last=_last_tap(service),
            backlog=health["backlog"],
            flagged=len(service.store.outbox_entries("flagged", 1000)),
            catalog=service.store.catalog_counts(),
            currency=cfg.lane.currency,
            now=time.time(),
        )

    @app.get("/decisions")
    def decisions() -> Any:
        events = service.store.recent_events(forms.limit(request.args, 50))
        return render_template("decisions.html", events=events)

    @app.get("/events")
    def lane_events() -> Any:
        events = service.store.recent_lane_events(forms.limit(request.args, 100))
        return render_template("events.html", events=events)

    @app.get("/outbox")
    def outbox() -> Any:
        store = service.store
        return render_template(
            "outbox.html",
            flagged=store.outbox_entries("flagged", 100),
            pending=store.outbox_entries("pending", 100),
            backlog=store.outbox_backlog(),
            currency=cfg.lane.currency,
            now=time.time(),
        )

    @app.post("/outbox/requeue")
    def requeue() -> Any:
        charge = forms.charge_id(posted("charge_id").get("charge_id"))
        try:
            service.store.outbox_requeue(charge, time.time())
        except StoreError as exc:
            return refuse(409, str(exc))
        service.store.record_event(
            "technician",
            f"charge {charge.hex()} requeued from the panel",
            {"charge": charge.hex(), "from": request.remote_addr},
        )
        if service.forwarder is not None:
            service.forwarder.notify()
        flash(f"charge {charge.hex()} requeued: the forwarder sends it again", "ok")
        return redirect(url_for("outbox"), 303)

    @app.get("/attendant")
    def attendant() -> Any:
        return render_template("attendant.html", waiting=service.lane.awaiting_attendant())

    @app.post("/attendant/approve")
    def approve() -> Any:
        form = posted("list_id", "attendant")
        list_id = forms.list_id(form.get("list_id"))
        name = forms.attendant(form.get("attendant"))
        try:
            service.lane.approve(list_id, name)
        except (LaneError, StoreError) as exc:
            return refuse(409, str(exc))
        flash(f"list {list_id.hex()} approved by {name}: the gate is open", "ok")
        return redirect(url_for("attendant"), 303)

    @app.get("/maintenance")
    def maintenance() -> Any:
        return render_template("maintenance.html", lane=service.lane.health())

    @app.post("/maintenance")
    def set_maintenance() -> Any:
        form = posted("mode", "reason")
        mode = forms.mode(form.get("mode"))
        reason = forms.reason(form.get("reason"))
        service.lane.maintenance(None if mode == "service" else mode, reason)
        service.store.record_event(
            "technician",
            f"{MODES[mode]} from the panel: {reason}",
            {"mode": mode, "reason": reason, "from": request.remote_addr},
        )
        flash(f"{MODES[mode]}: {reason}", "ok")
        return redirect(url_for("maintenance"), 303)

    # -- the PIN ---------------------------------------------------------------------------------------------

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if pin_guard is None:
            return redirect(url_for("status"), 303)
        if request.method == "GET":
            return render_template("login.html")
        given = forms.pin(posted("pin").get("pin"))
        wait = pin_guard.paused_for()
        if wait > 0:
            return refuse(429, f"too many wrong PINs: try again in {wait:.0f} s")
        if not pin_guard.check(given):
            log.warning("panel: wrong technician PIN from %s", request.remote_addr)
            return refuse(403, "wrong PIN")
        session.clear()  # a new session on login: no token or flag from before survives it
        session["technician"] = True
        session["csrf"] = forms.new_csrf_token()
        return redirect(url_for("status"), 303)

    @app.post("/logout")
    def logout() -> Any:
        posted()
        session.clear()
        return redirect(url_for("login" if pin_guard else "status"), 303)

    @app.get("/favicon.ico")
    def favicon() -> Any:
        return "", 204  # browsers ask for one; a 404 would be an error in their console

    # -- for machines ----------------------------------------------------------------------------------------

    @app.get("/api/health")
    def api_health() -> Any:
        return jsonify({**service.health(), "last_tap": _last_tap(service)})

    @app.get("/api/events")
    def api_events() -> Any:
        n = forms.limit(request.args, 50)
        store = service.store
        return jsonify(
            decisions=[_event_json(e) for e in store.recent_events(n)],
            lane_events=[_lane_event_json(e) for e in store.recent_lane_events(n)],
        )

    return app


# -- starting it ---------------------------------------------------------------------------------------------


def secret_key_for(panel: PanelSection) -> bytes:
    """The session key: the bytes of panel.secret_key_file, or a random key for this process only."""
    if panel.secret_key_file is None:
        return os.urandom(32)
    try:
        return read_panel_secret(Path(panel.secret_key_file))
    except KeyFileError as exc:
        raise PanelError(str(exc)) from exc


def pin_for(panel: PanelSection) -> str | None:
    """The technicians' PIN from panel.pin_file (4-32 digits), or None when the config names no file."""
    if panel.pin_file is None:
        return None
    try:
        return read_pin(Path(panel.pin_file))
    except KeyFileError as exc:
        raise PanelError(str(exc)) from exc


def serve(service: LaneService, *, host: str | None = None, port: int | None = None) -> PanelServer:
    """The panel served at panel.host:panel.port on a thread (a context manager; close() stops it)."""
    panel = service.config.panel
    app = create_app(service, secret_key=secret_key_for(panel), pin=pin_for(panel))
    return PanelServer(app, panel.host if host is None else host, panel.port if port is None else port)


# -- helpers -------------------------------------------------------------------------------------------------


class _PinGuard:
    """The technician PIN, and a pause after PIN_TRIES wrong ones in a row (whoever sent them)."""

    def __init__(self, pin: str, clock: Callable[[], float]) -> None:
        self._pin = pin.encode()
        self._clock = clock
        self._lock = threading.Lock()
        self._wrong = 0
        self._paused_until = 0.0

    def paused_for(self) -> float:
        with self._lock:
            return max(0.0, self._paused_until - self._clock())

    def check(self, given: str) -> bool:
        ok = hmac.compare_digest(given.encode(), self._pin)
        with self._lock:
            if ok:
                self._wrong = 0
            else:
                self._wrong += 1
                if self._wrong >= PIN_TRIES:
                    self._wrong = 0
                    self._paused_until = self._clock() + PIN_PAUSE_S
        return ok


def _own_names() -> frozenset[str]:
    names = {"localhost"}
    for name in (socket.gethostname(), socket.getfqdn()):
        if name:
            names |= {name, f"{name.split('.')[0]}.local", name.split(".")[0]}
    return frozenset(n.lower() for n in names)


def _last_tap(service: LaneService) -> dict[str, Any] | None:
    outcome = service.lane.last_outcome
    if outcome is None:
        return None
    d = outcome.decision
    return {
        "verdict": outcome.verdict,
        "check_verdict": d.verdict,
        "decided_at": d.decided_at,
        "list": d.list_id.hex() if d.list_id else None,
        "shopper": d.shopper,
        "total": d.total,
        "currency": d.currency,
        "reasons": [{"code": r.code, "message": r.message} for r in d.reasons],
        "charged": outcome.charged,
        "opened": outcome.opened,
        "receipt_delivered": outcome.receipt_delivered,
        "timings_ms": {k: round(v * 1000, 3) for k, v in outcome.timings.items()},
        "check_timings_ms": {k: round(v * 1000, 3) for k, v in d.timings.items()},
    }


def _event_json(e: Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at,
        "verdict": e.verdict,
        "reasons": [{"code": c, "message": m} for c, m in e.reasons],
        "timings_ms": {k: round(v * 1000, 3) for k, v in e.timings.items()},
        "list": e.list_id.hex() if e.list_id else None,
        "hold": e.hold.hex() if e.hold else None,
        "shopper": e.shopper,
        "total": e.total,
        "currency": e.currency,
        "attendant": e.attendant,
    }


def _lane_event_json(e: LaneEvent) -> dict[str, Any]:
    return {"id": e.id, "at": e.at, "kind": e.kind, "detail": e.detail, "data": e.data}


def _when(at: float | None) -> str:
    if at is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def _age(at: float | None, now: float | None = None) -> str:
    if at is None:
        return "-"
    s = max(0, int((now or time.time()) - at))
    if s < 120:
        return f"{s} s ago"
    if s < 7200:
        return f"{s // 60} min ago"
    if s < 172800:
        return f"{s // 3600} h ago"
    return f"{s // 86400} days ago"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _hexid(value: bytes | str | None) -> str:
    if value is None:
        return "-"
    return value.hex() if isinstance(value, bytes) else value


def _compact_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)
